"""Checkpoints of the whole training state with orbax (atomic: a killed save leaves the last
complete checkpoint intact, and ``latest_step`` ignores unfinished ones).

The state is saved as its flat list of leaves (a dict ``{index: array}``) next to the run's
config JSON; restoring rebuilds the tree from an abstract state (``jax.eval_shape`` of the
trainer's init), so any pytree works, including MJX data with zero-size arrays, which orbax
refuses to write.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint is missing or belongs to another run."""


def manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(directory), options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    )


def save(mngr: ocp.CheckpointManager, step: int, state, config: dict) -> None:
    """Writes ``state`` and ``config`` as checkpoint ``step`` and waits until it is complete."""
    leaves = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(state)) if np.size(x) > 0}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves), config=ocp.args.JsonSave(config)))
    mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, config: dict, ignore: tuple[str, ...] = ()):
    """Restores the latest complete checkpoint.

    Args:
      mngr: from :func:`manager`.
      abstract_state: a pytree of ``jax.ShapeDtypeStruct`` shaped like the saved state.
      config: this run's config; the saved one must match it except for the ``ignore`` keys.
      ignore: config keys allowed to differ (e.g. ``total_steps`` to extend a run).

    Returns:
      ``(state, step)``.

    Raises:
      CheckpointError: no checkpoint, or one written with another config.
    """
    step = mngr.latest_step()
    if step is None:
        raise CheckpointError(f"--resume: no checkpoint in {mngr.directory}; run once without --resume first")
    restored = mngr.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), config=ocp.args.JsonRestore())
    )
    saved_config = restored["config"]
    diff = sorted(
        k for k in set(saved_config) | set(config) if k not in ignore and saved_config.get(k) != config.get(k)
    )
    if diff:
        details = ", ".join(f"{k}: saved {saved_config.get(k)!r} vs now {config.get(k)!r}" for k in diff)
        raise CheckpointError(f"--resume: the checkpoint in {mngr.directory} is of another config ({details})")
    abstract_leaves, treedef = jax.tree.flatten(abstract_state)
    saved = restored["state"]
    leaves = [
        jnp.asarray(saved[str(i)], a.dtype) if str(i) in saved else jnp.zeros(a.shape, a.dtype)
        for i, a in enumerate(abstract_leaves)
    ]
    for i, (leaf, a) in enumerate(zip(leaves, abstract_leaves, strict=True)):
        if leaf.shape != a.shape:
            raise CheckpointError(f"--resume: leaf {i} has shape {leaf.shape} in the checkpoint, {a.shape} now")
    return jax.tree.unflatten(treedef, leaves), step
