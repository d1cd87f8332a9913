"""What the agents share: the two interfaces, ``Agent`` (an off-policy learner's pure functions)
and ``Algorithm`` (an algorithm's registry entry), re-exported from ``hyperjax.train.contract``
where they are defined (the loops run them); ``ActorCriticConfig`` (the fields SAC and TD3 share)
with its critic helpers; and ``apply_gradients``."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import optax

from hyperjax import config as cfg
from hyperjax.nn import critics, hyper
from hyperjax.train import contract

Agent = contract.Agent
Algorithm = contract.Algorithm
Metrics = contract.Metrics


@dataclasses.dataclass
class ActorCriticConfig:
    """The fields SAC and TD3 share, declared once (their configs extend it; paper values as defaults)."""

    critic: str = cfg.field("sa_hyper", "Q network, by name (paper: sa_hyper).", valid=lambda: critics.CRITICS)
    critic_overrides: dict = cfg.field(
        help="JSON of the critic's module fields, e.g. '{\"hidden_sizes\": [64]}'.", default_factory=dict
    )
    actor_hidden_sizes: Sequence[int] = cfg.field(
        (256, 256), "Policy MLP widths (paper: 256,256).", valid=cfg.POSITIVE_INT
    )
    critic_lr: float | None = cfg.field(
        None, "Critic Adam learning rate; unset: the critic's own (paper: 5e-5 hyper, 3e-4 others).", valid=cfg.POSITIVE
    )
    actor_lr: float = cfg.field(3e-4, "Policy Adam learning rate (paper: 3e-4).", valid=cfg.POSITIVE)
    gamma: float = cfg.field(0.99, "Discount factor (paper: 0.99).", valid=cfg.UNIT_INTERVAL)
    compute_dtype: str = cfg.field(
        "float32",
        "Compute dtype of the hypernetwork critics' primary network and heads; bfloat16 keeps parameters, "
        "optimiser state and the dynamic network in float32.",
        valid=hyper.COMPUTE_DTYPES,
    )
    num_envs: int = cfg.field(
        1,
        "Throughput mode: environments per seed stepped together (paper: 1); env-step counts "
        "(--total_steps, --eval_every, ...) must be multiples of it.",
        valid=cfg.POSITIVE_INT,
    )
    updates_per_step: int = cfg.field(
        1,
        "Throughput mode: gradient steps per step of all --num_envs envs (paper: 1); the replay ratio "
        "is updates_per_step / num_envs.",
        valid=cfg.POSITIVE_INT,
    )
    same_eval_starts: bool = cfg.field(
        True,
        "Evaluate from the same start states at every evaluation (paper: on; the authors' eval env is "
        "re-seeded with seed + 100 each time); off: fresh start states per evaluation.",
    )
    sample_with_replacement: bool = cfg.field(
        True, "Replay batches drawn with replacement (TD3 code: numpy randint) or without (SAC code: random.sample)."
    )


def critic_overrides(config: ActorCriticConfig, variant: str) -> dict:
    """The critic's module fields: the code base's inits (``variant``), the compute dtype, then
    ``--critic_overrides`` over both."""
    overrides = {"variant": variant}
    if config.compute_dtype != "float32":
        overrides["dtype"] = config.compute_dtype
    return {**overrides, **config.critic_overrides}


def check_critic(config: ActorCriticConfig) -> None:
    """Raises ValueError (one line) for a critic setting that cannot be built."""
    critics.check_overrides(config.critic, config.critic_overrides)
    if config.compute_dtype != "float32" and config.critic not in critics.HYPER_CRITICS:
        raise ValueError(
            f"--compute_dtype={config.compute_dtype} applies to the hypernetwork critics "
            f"({', '.join(critics.HYPER_CRITICS)}); --critic={config.critic} computes in float32"
        )


def apply_gradients(optimizer: optax.GradientTransformation, params, opt_state, grads) -> tuple[Any, optax.OptState]:
    """One optimiser step."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
