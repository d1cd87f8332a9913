"""Native-physics environments: Gymnasium's MuJoCo tasks stepped by MuJoCo's C engine on the host.

On a CPU, MJX steps some tasks far slower than the C engine (HalfCheetah ~20x; Ant is cheap
in MJX: benchmarks/results/cpu_full.md), so CPU users can train on these through
``hyperjax.train.host_loop``; the agent's act + update stay one jitted call per step.
Gymnasium is an optional extra (``pip install 'hyperjax[native]'``), imported only when an env is
built. Actions come in as [-1, 1] (the library's convention) and are rescaled to each task's
bounds; observations leave as float32.
"""

import numpy as np

# The paper's four MuJoCo tasks in their current versions, plus Pendulum-v1 (classic control,
# no MuJoCo) for quick tests and demos.
MUJOCO_ENVS = ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
ENVS = (*MUJOCO_ENVS, "Pendulum-v1")
# docs/authors_code.md (Environments, bug 16): the authors' Ant has no control cost; the survive bonus of 1, the
# healthy z range [0.2, 1.0] and the clipped contact forces in the observation are v5's defaults.
_PAPER_KWARGS = {"Ant-v5": dict(ctrl_cost_weight=0.0)}
INSTALL_HINT = "pip install 'hyperjax[native]' (gymnasium with MuJoCo)"


def _gymnasium():
    try:
        import gymnasium
    except ImportError as e:
        raise ValueError(f"native-physics envs ({', '.join(ENVS)}) need gymnasium: {INSTALL_HINT}") from e
    return gymnasium


class VecEnv:
    """``num_envs`` independent Gymnasium envs stepped in turn on the host, with auto-reset.

    Host-side and mutable by nature (it owns the MuJoCo simulators); everything else in a run
    stays pure. Tracks each env's running and last finished episode return.
    """

    def __init__(
        self, name: str, num_envs: int, episode_length: int | None = None, preset: str = "paper", **gym_kwargs
    ):
        """``gym_kwargs`` go to ``gymnasium.make`` over the preset's (e.g. ``include_cfrc_ext_in_observation``)."""
        if name not in ENVS:
            raise ValueError(f"unknown native env {name!r}; valid: {', '.join(ENVS)}")
        gym = _gymnasium()
        kwargs = {**(_PAPER_KWARGS.get(name, {}) if preset == "paper" else {}), **gym_kwargs}
        if episode_length is not None:
            kwargs["max_episode_steps"] = episode_length
        try:
            self.envs = [gym.make(name, **kwargs) for _ in range(num_envs)]
        except (ImportError, gym.error.DependencyNotInstalled) as e:
            raise ValueError(f"{name} needs MuJoCo for gymnasium: {INSTALL_HINT} ({e})") from e
        space = self.envs[0].action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.observation_size = int(np.prod(self.envs[0].observation_space.shape))
        self.action_size = int(np.prod(space.shape))
        self.episode_length = self.envs[0].spec.max_episode_steps
        self.episode_return = np.zeros(num_envs)
        self.last_return = np.full(num_envs, np.nan)
        self.obs: np.ndarray | None = None  # [N, obs] current observations; None until reset

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def reset(self, seeds) -> np.ndarray:
        """Starts a new episode in every env (``seeds`` [N] ints); returns obs [N, obs]."""
        self.obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(self.envs, seeds)]).astype(np.float32)
        self.episode_return[:] = 0.0
        return self.obs

    def rescale(self, actions) -> np.ndarray:
        """Actions ``[..., act]`` in [-1, 1] -> the task's bounds (float64, what Gymnasium steps with)."""
        return self.low + (np.asarray(actions, np.float64) + 1.0) * 0.5 * (self.high - self.low)

    def step(self, actions, active=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Steps every env (or those where ``active`` [N] is true) with ``actions`` [N, act] in [-1, 1].

        Returns ``(next_obs, reward, terminated, truncated)``, each ``[N, ...]``: ``next_obs`` is
        the observation the step ended in (the terminal one where an episode ended, what the
        learner stores); ``self.obs`` then holds the observations to act on next (finished episodes
        restart). Inactive envs are left as they are and report zeros.
        """
        actions = self.rescale(actions)
        n = self.num_envs
        next_obs = np.empty((n, self.observation_size), np.float32)
        reward, terminated, truncated = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        current = self.obs.copy()
        for i, env in enumerate(self.envs):
            if active is not None and not active[i]:
                next_obs[i] = current[i]
                continue
            next_obs[i], reward[i], terminated[i], truncated[i], _ = env.step(actions[i])
            current[i] = next_obs[i]
            if terminated[i] or truncated[i]:
                current[i] = env.reset()[0]  # continues the env's own seeded stream
        self.episode_return += reward
        done = terminated | truncated
        self.last_return = np.where(done, self.episode_return, self.last_return)
        self.episode_return[done] = 0.0
        self.obs = current
        return next_obs, reward, terminated, truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()
