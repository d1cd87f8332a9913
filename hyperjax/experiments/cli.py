"""A small bridge from config dataclasses to absl flags, and the shared ``main``.

Every field of ``RunConfig`` and of the algorithm's config becomes a flag of the same name
(``--critic_overrides`` takes JSON, sequences take comma lists), so no flag is copied by hand.
``--preset`` picks one of the algorithm's named presets, with its values for the run's ``--env`` where
it has per-environment ones (``Algorithm.env_presets``); flags given explicitly override it.
An entry point is two lines: ``cli.define_for(name)`` and ``app.run(cli.main_for(name))``.
"""

import dataclasses
import json
import os
import sys

import jax
from absl import flags, logging

from hyperjax.train import headless

# videos during training (--video_every) render MuJoCo headless: MUJOCO_GL must name a working
# backend before anything imports mujoco (the runner's env registry does, through Brax), and this
# module is the first thing every training entry point imports; a MUJOCO_GL that cannot load ends
# nothing here (headless.FAILED: only --video_every reports it)
headless.load_mujoco(headless.flagged(sys.argv, headless.VIDEO_FLAG))

from hyperjax import config as cfg  # noqa: E402
from hyperjax.agents import registry as algorithms  # noqa: E402
from hyperjax.envs import registry  # noqa: E402
from hyperjax.experiments import quiet, runner  # noqa: E402
from hyperjax.train import checkpoint, distributed  # noqa: E402
from hyperjax.train import trainer as trainer_lib  # noqa: E402


def _kind(field: dataclasses.Field) -> str:
    text = str(field.type)
    for kind in ("bool", "dict", "Sequence", "float", "int", "str"):
        if kind in text:
            return kind
    raise TypeError(f"no flag type for {field.name}: {text}")


def define(*classes, defaults: dict | None = None, exclude: tuple[str, ...] = ()) -> None:
    """Defines one flag per dataclass field (but ``exclude``), defaulting to ``defaults`` or else
    the field's default."""
    defaults = defaults or {}
    for cls in classes:
        for field in dataclasses.fields(cls):
            if field.name in exclude:
                continue
            default = defaults.get(field.name, cfg.default_of(field))
            help_text = cfg.help_text(field)
            kind = _kind(field)
            if kind == "bool":
                flags.DEFINE_bool(field.name, default, help_text)
            elif kind == "dict":
                flags.DEFINE_string(field.name, json.dumps(default), help_text)
            elif kind == "Sequence":
                flags.DEFINE_list(field.name, [str(x) for x in default], help_text)
            elif kind == "float":
                flags.DEFINE_float(field.name, default, help_text)
            elif kind == "int":
                flags.DEFINE_integer(field.name, default, help_text)
            else:
                flags.DEFINE_string(field.name, default, help_text)


def define_for(algo: str) -> None:
    """The flags of an entry point: ``RunConfig``'s, the algorithm's config's, and ``--preset``."""
    algorithm = algorithms.get(algo)
    define(runner.RunConfig, algorithm.config, defaults=dict(algorithm.run_defaults))
    define(distributed.DistributedConfig)
    flags.DEFINE_enum(
        "preset", "paper", list(algorithm.presets), f"named {algo} hyperparameters; explicit flags override them"
    )


def from_flags(cls, preset: dict | None = None, exclude: tuple[str, ...] = ()):
    """Builds ``cls`` from the parsed flags (``exclude``: fields left at their defaults);
    ``preset`` values stand where a flag was not given."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        value = getattr(flags.FLAGS, field.name)
        if preset and field.name in preset and not flags.FLAGS[field.name].present:
            values[field.name] = preset[field.name]
            continue
        kind = _kind(field)
        if kind == "dict":
            try:
                value = cfg.as_tuples(json.loads(value))
            except json.JSONDecodeError as e:
                raise ValueError(f"--{field.name} must be JSON, e.g. '{{\"hidden_sizes\": [64]}}': {e}") from e
        elif kind == "Sequence":
            value = cfg.int_list(field.name, value)
        values[field.name] = value
    return cls(**values)


CACHE_VARIABLE = "HYPERJAX_COMPILATION_CACHE"


def use_compilation_cache() -> str | None:
    """Turns on JAX's persistent compilation cache for an entry point: a rerun or ``--resume`` of the
    same configuration loads its programs instead of compiling them again (MJX programs take
    minutes to compile on a CPU). The folder is ``$HYPERJAX_COMPILATION_CACHE`` (``off``: no cache),
    default ``~/.cache/hyperjax/xla``; a ``JAX_COMPILATION_CACHE_DIR`` the user set wins."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    folder = os.environ.get(CACHE_VARIABLE, os.path.join(os.path.expanduser("~"), ".cache", "hyperjax", "xla"))
    if folder == "off":
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return folder


def prepare() -> None:
    """What every entry point does first: absl logging to warnings, the known dependency noise
    off, JAX's persistent compilation cache on."""
    logging.set_verbosity(logging.WARNING)
    quiet.warnings_off()
    use_compilation_cache()


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with a bad flag as one line (``error: flag --num_seeds=abc: ...``) and exit
    code 1, instead of absl's two; the ``flags_parser`` of every absl entry point's ``app.run``."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {str(e).splitlines()[0]} (see --helpfull)", file=sys.stderr)
        sys.exit(1)


def main(algo: str, argv) -> None:
    """Runs the experiment the flags describe; errors become one line on stderr and exit 1."""
    del argv
    prepare()
    algorithm = algorithms.get(algo)
    try:
        try:  # first: before any other JAX call
            distributed.initialize_from(from_flags(distributed.DistributedConfig))
        except RuntimeError as e:
            raise ValueError(f"--distributed: could not join the run ({str(e).splitlines()[0]})") from e
        run_config = from_flags(runner.RunConfig)
        # --backend=auto (MAML's default) as it resolves on this machine, so config.json says what ran
        backend = registry.resolve_backend(run_config.env, run_config.backend)
        run_config = dataclasses.replace(run_config, backend=backend)
        # the preset's values for this env (e.g. per-task learning rates), so config.json holds what ran
        agent_config = from_flags(algorithm.config, algorithm.preset_values(flags.FLAGS.preset, run_config.env))
        runner.validate(algo, run_config, agent_config)
        if run_config.video_every and headless.FAILED:  # MUJOCO_GL could not load: no videos
            raise ValueError(f"--video_every: {headless.FAILED}")
        if distributed.is_primary():
            print(
                f"{algo.upper()} | env {run_config.env} "
                f"({runner.env_spec(run_config).describe()}) | {algorithm.run_name(agent_config)} | "
                f"{run_config.num_seeds} seed(s) from {run_config.seed} | "
                f"{run_config.total_steps:,} {algorithm.step_name} | "
                f"{trainer_lib.describe_devices(run_config.num_seeds, algorithm.tasks_per_seed(agent_config))}",
                file=sys.stderr,
            )
        result = runner.run(algo, run_config, agent_config)
    except (ValueError, checkpoint.CheckpointError, runner.TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except runner.Interrupted as e:
        print(("\n" if sys.stderr.isatty() else "") + str(e), file=sys.stderr)  # after a \r progress bar
        sys.exit(130)
    except KeyboardInterrupt:  # a second Ctrl-C (or one before training began): out at once
        print(
            "\ninterrupted: stopped at once; --resume continues from the last complete checkpoint",
            file=sys.stderr,
        )
        sys.exit(130)
    if not distributed.is_primary():
        return
    returns = result["returns"]
    per_seed = ", ".join(f"seed {run_config.seed + i}: {r:.1f}" for i, r in enumerate(returns))
    print(f"final evaluation return at step {result['step']:,}: mean {returns.mean():.1f} ({per_seed})")
    print(f"logs, curve.png and checkpoints in {result['logdir']}")


def main_for(algo: str):
    """The ``app.run`` main of an entry point."""
    return lambda argv: main(algo, argv)
