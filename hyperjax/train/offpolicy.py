"""The off-policy family: any agent with the ``contract.Agent`` functions and a config with
``batch_size``, ``start_steps``, ``num_envs``, ``updates_per_step``, ``sample_with_replacement`` and
``same_eval_starts`` (the fields SAC and TD3 share) trains under one protocol
(replay; the paper's one env and one update per env step, or the throughput mode),
in the XLA loop (``loop.py``) or, for native-physics envs, the host loop (``host_loop.py``).

``algorithm(...)`` turns an agent module's pieces into its registry
entry; SAC and TD3 use it.
"""

from collections.abc import Callable, Mapping
from typing import Any

from hyperjax.envs import registry
from hyperjax.train import contract, host_loop, loop, trainer

# (config, obs_size, action_size) -> Agent
MakeAgent = Callable[[Any, int, int], contract.Agent]


def loop_config(config, update_after: int, setting: trainer.Setting, episode_length: int) -> loop.LoopConfig:
    """The protocol's settings from an off-policy agent config and the run's ``setting``."""
    return loop.LoopConfig(
        batch_size=config.batch_size,
        start_steps=config.start_steps,
        update_after=update_after,
        buffer_size=setting.buffer_size,
        eval_episodes=setting.eval_episodes,
        episode_length=episode_length,
        num_seeds=setting.num_seeds,
        num_envs=config.num_envs,
        updates_per_step=config.updates_per_step,
        sample_with_replacement=config.sample_with_replacement,
        same_eval_starts=config.same_eval_starts,
    )


def make_trainer(make_agent: MakeAgent, update_after: int, config, setting: trainer.Setting) -> trainer.Trainer:
    """The trainer for ``setting.env``: the host loop over native envs, else the XLA loop."""
    env = setting.env
    if env.on_host:  # MuJoCo's C engine on the host, one jitted call per step
        train_env = env.make_host(setting.num_seeds)
        eval_env = env.make_host(setting.num_seeds * setting.eval_episodes)
        agent = make_agent(config, train_env.observation_size, train_env.action_size)
        protocol = loop_config(config, update_after, setting, train_env.episode_length)  # Gymnasium's limit
        return host_loop.make_trainer(agent, train_env, eval_env, protocol)
    xla_env = env.make()
    agent = make_agent(config, xla_env.observation_size, xla_env.action_size)
    return loop.make_trainer(agent, xla_env, loop_config(config, update_after, setting, xla_env.episode_length))


def check(config, update_after: int, setting: trainer.Setting) -> None:
    """Raises ValueError (one line) for protocol settings that cannot work."""
    if registry.is_meta(setting.env.name):
        valid = ", ".join(n for n in registry.ENVS if not registry.is_meta(n))
        raise ValueError(f"--env={setting.env.name} is a meta-RL task (a meta-learner trains on it); valid: {valid}")
    if config.batch_size < 1:
        raise ValueError(f"--batch_size must be a positive integer, got {config.batch_size}")
    if config.start_steps < 0:
        raise ValueError(f"--start_steps must be >= 0, got {config.start_steps}")
    if config.num_envs > 1 and setting.env.on_host:
        raise ValueError(
            f"--num_envs={config.num_envs}: native envs ({setting.env.name}) step one env per seed on the host; "
            "use --num_envs=1 or an MJX/Brax env"
        )
    if config.num_envs > setting.buffer_size:
        raise ValueError(f"--num_envs={config.num_envs} is larger than --buffer_size={setting.buffer_size}")
    held = min(update_after, setting.buffer_size)
    if config.batch_size > held:
        raise ValueError(
            f"--batch_size={config.batch_size} is larger than the buffer holds at the first update "
            f"({held} transitions); lower --batch_size or raise --start_steps/--buffer_size"
        )


def algorithm(
    name: str,
    config_cls: type,
    make_agent: MakeAgent,
    first_update: Callable[[Any], int],
    run_name: Callable[[Any], str],
    check_config: Callable[[Any], None] = lambda config: None,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    env_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    legacy_defaults: Mapping[str, Any] | None = None,
) -> contract.Algorithm:
    """The registry entry of an off-policy algorithm.

    Args:
      first_update: ``config -> int``, buffer size at the first update (``LoopConfig.update_after``).
      check_config: the algorithm's own checks of its config (e.g. its critic's name).
      presets: named overrides; ``paper`` (the defaults) is always there.
      env_presets: per preset and environment, overrides over the preset (``contract.Algorithm``).
      legacy_defaults: fields added after runs began, as those runs ran (``contract.Algorithm``).
    """

    def check_all(config, setting: trainer.Setting) -> None:
        check_config(config)
        check(config, first_update(config), setting)

    return contract.Algorithm(
        name=name,
        config=config_cls,
        make_trainer=lambda config, setting: make_trainer(make_agent, first_update(config), config, setting),
        first_update=first_update,
        check=check_all,
        run_name=run_name,
        presets={"paper": {}, **(presets or {})},
        make_agent=make_agent,
        step_multiple=lambda config: config.num_envs,
        env_presets=env_presets or {},
        legacy_defaults=legacy_defaults or {},
    )
