"""Parameter counts and the paper-size table printed by the demo and the closing notes."""

import jax
import jax.numpy as jnp

from hyperjax.nn import critics


def count_params(params) -> int:
    """Total number of scalars in a pytree of arrays."""
    return sum(int(x.size) for x in jax.tree.leaves(params))


def critic_param_counts(obs_size: int, action_size: int, names=tuple(critics.CRITICS)) -> dict[str, int]:
    """Parameters of ONE Q network (``num_critics=1``) of each critic, at paper size.

    Uses ``jax.eval_shape``: no memory is allocated and nothing is computed.
    """
    obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, action_size))
    counts = {}
    for name in names:
        module = critics.make_critic(name, action_size=action_size, num_critics=1)
        shapes = jax.eval_shape(module.init, jax.random.key(0), obs, act)
        counts[name] = count_params(shapes)
    return counts


def critic_table(dims: dict[str, tuple[int, int]]) -> str:
    """Markdown table of per-Q parameter counts; ``dims`` maps a label to ``(obs, act)``."""
    per_env = {label: critic_param_counts(*d) for label, d in dims.items()}
    header = "| critic | " + " | ".join(f"{k} (obs {d[0]}, act {d[1]})" for k, d in dims.items()) + " |"
    lines = [header, "|---" * (len(dims) + 1) + "|"]
    for name in critics.CRITICS:
        lines.append(f"| {name} | " + " | ".join(f"{per_env[k][name]:,}" for k in dims) + " |")
    return "\n".join(lines)
