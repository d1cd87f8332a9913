"""Time the authors' MAML-TRPO code (HypeRL's ``MAML/``, PyTorch) at paper size on this machine (issue 24).

Runs their ``MAML/main.py`` unmodified (``runpy``, their argparse, their loop) on HalfCheetah-Vel for
``--iterations`` iterations (40 tasks x 20 episodes x 200 steps, before and after adaptation) and prints,
per iteration, the wall time split from the outside (class-level wrappers around their methods, their
files untouched):

  rollouts   ``BatchSampler.sample`` calls of the training batch (their sampler: ``SubprocVecEnv``
             workers stepping Gym's HalfCheetah, the policy called once per env step);
  adapt      the rest of ``MetaLearner.sample`` (baseline fit and the inner step, 40 tasks);
  trpo       ``MetaLearner.step`` (surrogate, CG on Fisher-vector products, line search);
  iteration  rollouts + adapt + trpo (= ``MetaLearner.sample`` + ``MetaLearner.step``: issue 24's
             "one iteration");
  eval       ``MetaLearner.evaluate_task`` (20 test tasks before and after one inner step), which
             their ``main.py`` runs every iteration; skipped unless ``--eval`` (then it returns NaNs).

This script runs in its own venv, not hyperjax's (it imports neither jax nor hyperjax)::

  python3.11 -m venv /work/authors_venv && . /work/authors_venv/bin/activate
  pip install torch --index-url https://download.pytorch.org/whl/cpu   # 2.13.0+cpu was measured
  pip install "gym==0.23.1" mujoco                                     # mujoco 4.0.1 was measured

Their code (commit e665fb75)::

  git clone https://github.com/keynans/HypeRL /tmp/hyperl   # or a `git archive` of a mirror
  python benchmarks/authors_maml.py --hyperl=/tmp/hyperl --policy=vanilla --order=first --iterations=1

What is not theirs (everything algorithmic is: policies, sampler, workers, episodes, baseline,
metalearner, TRPO, env class, action normalisation, main loop):

  * ``mujoco_py`` (does not build today) is replaced by a minimal module of the same API over the
    ``mujoco`` bindings (``load_model_from_path``, ``MjSim`` with ``step`` = ``mj_step``, ``forward``,
    ``reset``, ``get_state``/``set_state``, ``MjSimState``, ``data.get_body_xpos``,
    ``model.camera_name2id``), enough for gym 0.23.1's own ``MujocoEnv`` and ``HalfCheetahEnv`` (Gym's
    ``half_cheetah.xml``, frame skip 5), which their ``HalfCheetahVelEnv`` subclasses unchanged (reward
    -|v - v_goal| - 0.05 |a|^2). The physics is MuJoCo 3+/4's C engine instead of MuJoCo 2.0's.
  * ``maml_rl/envs/__init__.py`` is missing from HypeRL (``main.py`` imports the package for its
    registrations): ``HalfCheetahVel-v1`` is registered here as the sister repository
    (tristandeleu/pytorch-maml-rl) does: ``maml_rl.envs.utils:mujoco_wrapper`` around
    ``maml_rl.envs.mujoco.half_cheetah:HalfCheetahVelEnv``, ``max_episode_steps=200``.
  * ``torch.lstsq`` (removed from torch 2, used by their ``LinearFeatureBaseline.fit``) is defined as
    ``torch.linalg.lstsq(A, B, driver="gels")`` (the same LAPACK routine), when torch's raises "removed".
  * ``Policy.load_state_dict`` (theirs is torch's ``Module.load_state_dict``) copies into ``param.data``
    as torch 1.x did: torch 2's in-place copy bumps the parameters' version counters, and their
    ``surrogate_loss``/``kl_divergence`` (load the adapted values, forward, restore, the next task, one
    backward for all) then fail autograd's saved-tensor check. The work is the same; the gradient's
    values may not be: torch 2 reads a saved leaf parameter's current data at backward time (the
    restored initial values after the last task), while the authors' torch saw the adapted values.
  * ``main.py`` replaces ``~/.mujoco/mjkey.txt`` by a symlink when imported (a licence-key helper of
    their cluster): it runs with ``HOME`` pointing at a temporary folder, and in a temporary working
    folder (their ``./saves``, ``./logs``, ``./results``).
"""

import argparse
import collections
import os
import runpy
import sys
import tempfile
import time
import types

import numpy as np

POLICY_FLAGS = {"vanilla": ["--no_hyper"], "context": ["--no_hyper", "--use_task"], "hyper": []}


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def install_mujoco_py() -> None:
    """A ``mujoco_py`` module with the few calls gym 0.23.1's ``MujocoEnv`` makes, over ``mujoco``."""
    import mujoco

    mod = types.ModuleType("mujoco_py")
    MjSimState = collections.namedtuple("MjSimState", "time qpos qvel act udd_state")

    class Model:
        def __init__(self, m):
            self._m = m
            self._camera_name2id = {m.camera(i).name: i for i in range(m.ncam)}

        def __getattr__(self, name):
            return getattr(self._m, name)

        def camera_name2id(self, name):
            return self._camera_name2id[name]

    class Data:
        def __init__(self, m, d):
            self._d = d
            self._body = {m.body(i).name: i for i in range(m.nbody)}

        def __getattr__(self, name):
            return getattr(self._d, name)

        def get_body_xpos(self, name):
            return self._d.xpos[self._body[name]]

    class MjSim:
        def __init__(self, model):
            self.model = model
            self._m = model._m
            self._d = mujoco.MjData(self._m)
            self.data = Data(self._m, self._d)

        def step(self):
            mujoco.mj_step(self._m, self._d)

        def forward(self):
            mujoco.mj_forward(self._m, self._d)

        def reset(self):
            mujoco.mj_resetData(self._m, self._d)

        def get_state(self):
            d = self._d
            act = d.act.copy() if self._m.na else None
            return MjSimState(d.time, d.qpos.copy(), d.qvel.copy(), act, {})

        def set_state(self, state):
            d = self._d
            d.time = state.time
            d.qpos[:] = state.qpos
            d.qvel[:] = state.qvel
            if self._m.na and state.act is not None:
                d.act[:] = state.act

    def load_model_from_path(path):
        return Model(mujoco.MjModel.from_xml_path(path))

    mod.MjSimState, mod.MjSim, mod.load_model_from_path = MjSimState, MjSim, load_model_from_path
    sys.modules["mujoco_py"] = mod


def install_torch_lstsq() -> None:
    import torch

    try:
        torch.lstsq(torch.ones(1, 1), torch.ones(1, 1))
    except (AttributeError, RuntimeError):  # torch 2: a stub that raises "removed"
        torch.lstsq = lambda b, a: (torch.linalg.lstsq(a, b, driver="gels").solution, None)


def install_legacy_load_state_dict() -> None:
    """Their ``Policy.load_state_dict`` as torch 1.x ran it: values copied into ``param.data``.

    ``surrogate_loss`` and ``kl_divergence`` load each task's adapted values into the module, run the
    forward pass, restore the old values, and backpropagate through all tasks at the end. torch 2's
    ``load_state_dict`` copies in place into the parameter (a version-counter bump), so the next task's
    load fails autograd's saved-tensor check; torch 1.x copied into ``.data`` (no bump). Same work.
    """
    import torch
    from maml_rl.policies.policy import Policy

    def load_state_dict(self, state_dict, strict=True):
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.data.copy_(state_dict[name])

    Policy.load_state_dict = load_state_dict


def register_env() -> None:
    from gym.envs.registration import register

    register(
        "HalfCheetahVel-v1",
        entry_point="maml_rl.envs.utils:mujoco_wrapper",
        kwargs={"entry_point": "maml_rl.envs.mujoco.half_cheetah:HalfCheetahVelEnv"},
        max_episode_steps=200,
    )


def install_timers(run_eval: bool, rows: list) -> None:
    """Class-level wrappers around their sampler's and learner's methods; a row per iteration."""
    from maml_rl.metalearner import MetaLearner
    from maml_rl.sampler import BatchSampler

    state = {"phase": None, "rollouts": 0.0, "calls": 0}
    cur: dict = {}
    orig_sample_b, orig_sample_m = BatchSampler.sample, MetaLearner.sample
    orig_step, orig_eval = MetaLearner.step, MetaLearner.evaluate_task

    def sampler_sample(self, *a, **k):
        t = time.perf_counter()
        out = orig_sample_b(self, *a, **k)
        if state["phase"] == "train":
            state["rollouts"] += time.perf_counter() - t
            state["calls"] += 1
        return out

    def meta_sample(self, *a, **k):
        if state["phase"] == "eval":
            return orig_sample_m(self, *a, **k)
        cur.clear()
        cur.update(load_before=loadavg(), t0=time.perf_counter())
        state.update(phase="train", rollouts=0.0, calls=0)
        out = orig_sample_m(self, *a, **k)
        state["phase"] = None
        cur["collect"] = time.perf_counter() - cur["t0"]
        cur["rollouts"], cur["sampler_calls"] = state["rollouts"], state["calls"]
        return out

    def meta_step(self, *a, **k):
        t = time.perf_counter()
        out = orig_step(self, *a, **k)
        cur["trpo"] = time.perf_counter() - t
        return out

    def meta_eval(self, *a, **k):
        t = time.perf_counter()
        if run_eval:
            state["phase"] = "eval"
            out = orig_eval(self, *a, **k)
            state["phase"] = None
        else:
            out = (float("nan"), float("nan"))
        row = {
            "iteration_s": cur["collect"] + cur["trpo"],
            "rollouts_s": cur["rollouts"],
            "adapt_s": cur["collect"] - cur["rollouts"],
            "trpo_s": cur["trpo"],
            "eval_s": time.perf_counter() - t if run_eval else None,
            "sampler_calls": cur["sampler_calls"],
            "load_before": cur["load_before"],
            "load_after": loadavg(),
        }
        rows.append(row)
        ev = f"{row['eval_s']:.1f}" if run_eval else "skipped"
        print(
            f"[authors_maml] iteration {len(rows)}: {row['iteration_s']:.1f} s = rollouts {row['rollouts_s']:.1f}"
            f" ({row['sampler_calls']} sampler calls) + adapt {row['adapt_s']:.1f} + trpo {row['trpo_s']:.1f};"
            f" eval {ev}; load {row['load_before']} -> {row['load_after']}",
            flush=True,
        )
        return out

    BatchSampler.sample, MetaLearner.sample = sampler_sample, meta_sample
    MetaLearner.step, MetaLearner.evaluate_task = meta_step, meta_eval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyperl", required=True, help="HypeRL checkout (the folder holding MAML/)")
    parser.add_argument("--policy", choices=sorted(POLICY_FLAGS), default="vanilla")
    parser.add_argument("--order", choices=("first", "second"), default="first", help="first: --first-order")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--num_workers", type=int, default=1, help="their --num-workers (default on 2 cores: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meta_batch", type=int, default=40, help="paper: 40 (smaller: a smoke test)")
    parser.add_argument("--fast_batch", type=int, default=20, help="paper: 20 (smaller: a smoke test)")
    parser.add_argument("--eval", action="store_true", help="run their per-iteration test evaluation")
    parser.add_argument("--torch_threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()

    maml_dir = os.path.join(os.path.abspath(args.hyperl), "MAML")
    main_py = os.path.join(maml_dir, "main.py")
    if not os.path.exists(main_py):
        sys.exit(f"no {main_py}: --hyperl must name a HypeRL checkout")
    sys.path.insert(0, maml_dir)
    install_mujoco_py()
    install_torch_lstsq()
    register_env()
    install_legacy_load_state_dict()
    rows: list = []
    install_timers(args.eval, rows)

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"[authors_maml] torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}")
    argv = [
        main_py, "--env-name=HalfCheetahVel-v1", f"--num-batches={args.iterations}",
        f"--num-workers={args.num_workers}", f"--seed={args.seed}", "--device=cpu",
        f"--meta-batch-size={args.meta_batch}", f"--fast-batch-size={args.fast_batch}",
        *POLICY_FLAGS[args.policy], *(["--first-order"] if args.order == "first" else []),
    ]  # fmt: skip
    print("[authors_maml] their command: python main.py " + " ".join(argv[1:]), flush=True)
    work = tempfile.mkdtemp(prefix="authors_maml_")
    home = os.path.join(work, "home")
    os.makedirs(os.path.join(home, ".mujoco"))
    os.makedirs(os.path.join(work, "results"))
    old_home, old_cwd = os.environ.get("HOME"), os.getcwd()
    os.environ["HOME"] = home
    os.chdir(work)
    sys.argv = argv
    t0 = time.perf_counter()
    try:
        runpy.run_path(main_py, run_name="__main__")
    finally:
        os.chdir(old_cwd)
        if old_home is not None:
            os.environ["HOME"] = old_home
    total = time.perf_counter() - t0
    its = np.array([r["iteration_s"] for r in rows])
    print(
        f"[authors_maml] {args.policy} {args.order} order: {len(rows)} iterations, "
        f"median {np.median(its):.1f} s/iteration (rollouts {np.median([r['rollouts_s'] for r in rows]):.1f}, "
        f"adapt {np.median([r['adapt_s'] for r in rows]):.1f}, trpo {np.median([r['trpo_s'] for r in rows]):.1f});"
        f" whole run {total:.1f} s incl. setup"
    )


if __name__ == "__main__":
    main()
