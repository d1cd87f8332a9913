"""Checkpoints of the whole training state with orbax (atomic: a killed save leaves the last
complete checkpoint intact, and ``latest_step`` ignores unfinished ones).

Every leaf is saved under its tree path (``jax.tree_util.keystr``, e.g.
``.agent.critic_params['params']...``), next to the run's config JSON. Restoring rebuilds the tree
from an abstract state (``jax.eval_shape`` of the trainer's init) and looks each leaf up by its
path, so fields that change order cannot swap, and a state whose structure differs is refused
naming the first path that differs. Any pytree works, including MJX data with zero-size arrays,
which orbax refuses to write (they are rebuilt as zeros), and typed PRNG keys (saved as their
key data).

Integrity: each array's CRC-32 (of the bytes written) is saved in the ``structure`` item and checked
after reading, so a damaged checkpoint (truncated or bit-flipped files) is never taken for a good one;
``restore_latest`` then falls back to the newest intact checkpoint, saying in one line which it
skipped and why. (Arrays that this process cannot see whole, sharded over several processes, carry
no checksum.)
"""

import gc
import logging
import os
import re
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint is missing or belongs to another run."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint's files cannot be read, or what they hold is not what was written."""


def _crc32(x) -> int | None:
    """CRC-32 of a leaf's bytes as saved; None where this process holds only some of its shards."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return None
    return zlib.crc32(np.ascontiguousarray(np.asarray(_savable(x))).tobytes())


def manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(directory), options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    )


def _paths_and_leaves(tree) -> tuple[list[str], list]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(path) for path, _ in flat], [leaf for _, leaf in flat]


def _is_key(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _savable(x):
    """A leaf as orbax writes it: arrays as they are (sharded ones by each process, its own
    shards), typed keys as their key data."""
    return jax.random.key_data(x) if _is_key(x) else x


def save(mngr: ocp.CheckpointManager, step: int, state, config: dict, replace: bool = False) -> None:
    """Writes ``state`` and ``config`` as checkpoint ``step`` and waits until it is complete.

    ``replace``: a checkpoint of ``step`` that exists is deleted first (a state that went on within
    the step, e.g. PEARL's iteration stopped in its gradient steps); a process killed during that write
    falls back on the checkpoint before it."""
    if replace and step in mngr.all_steps():
        mngr.delete(step)
    paths, leaves = _paths_and_leaves(state)
    # orbax names arrays by their dict keys; tree paths hold characters it would split on, so the
    # arrays go by position and the ``structure`` item maps each position to its path and shape
    arrays = {str(i): _savable(x) for i, x in enumerate(leaves) if np.size(x) > 0}
    structure = {
        "paths": paths,
        "shapes": [list(np.shape(x)) for x in leaves],
        "crc32": [_crc32(x) if np.size(x) > 0 else None for x in leaves],
    }
    try:
        with _OrbaxErrorsSilenced():  # a failed write is reported once, below, not by each of orbax's threads
            mngr.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(arrays),
                    structure=ocp.args.JsonSave(structure),
                    config=ocp.args.JsonSave(config),
                ),
            )
            mngr.wait_until_finished()
    except Exception as e:  # noqa: BLE001 - a full disk or a lost mount surfaces as whatever orbax raises
        older = [s for s in mngr.all_steps() if s != step]
        kept = f"the last complete checkpoint (step {max(older)}) is kept" if older else "no checkpoint is complete"
        raise CheckpointError(f"could not write checkpoint {step} to {mngr.directory} ({_reason(e)}); {kept}") from e


def _reason(error: BaseException) -> str:
    """The root cause of a failed write in words (an OSError's, e.g. 'No space left on device')."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        code = re.search(r"os_error_code='(\d+)'", str(seen))  # tensorstore's errors name the errno
        if code:
            return os.strerror(int(code.group(1)))
        seen = seen.__cause__ or seen.__context__
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _quiet_abandoned_reads() -> None:
    """A failed restore leaves orbax's other reads of that checkpoint behind: coroutines never awaited
    (Python prints a traceback for each whenever it collects them, at once or minutes later) and
    tensorstore reads whose completion calls back into the asyncio loop orbax has closed by then
    (each prints "RuntimeError: Event loop is closed"). Both reach ``sys.unraisablehook``; while
    restoring and from then on, those two (orbax's coroutines and asyncio's closed-loop callbacks,
    nothing else) go unprinted."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_orbax_reads", False):
        return

    def hook(unraisable):
        if not (_is_orbax_coroutine(unraisable.object) or _is_closed_loop_callback(unraisable)):
            previous(unraisable)

    hook.drops_orbax_reads = True
    sys.unraisablehook = hook


def _is_orbax_coroutine(obj) -> bool:
    code = getattr(obj, "cr_code", None)
    return code is not None and "orbax" in code.co_filename


def _is_closed_loop_callback(unraisable) -> bool:
    """asyncio's ``call_soon_threadsafe`` on a closed loop (a tensorstore read completing late)."""
    if unraisable.exc_type is not RuntimeError or str(unraisable.exc_value) != "Event loop is closed":
        return False
    names = []
    tb = unraisable.exc_traceback
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return "call_soon_threadsafe" in names and names[-1] == "_check_closed"


def _damage(error: BaseException) -> str:
    """What a reader found wrong, in a few words: tensorstore's status line (e.g. "OUT_OF_RANGE: Error
    reading ... Requested byte range [14791, 18545) is not valid for value of size 17429", cut to its
    status and last clause), else the exception's type."""
    seen = error
    while seen is not None:
        status = re.match(r"([A-Z_]{4,}): (.*)", str(seen).strip())
        if status:
            clause = status.group(2).splitlines()[0].split(": ")[-1]
            return f"{status.group(1)}: {clause}"[:160]
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


class _OrbaxErrorsSilenced(logging.Filter):
    """Drops orbax's own error logs (a traceback per writer thread) while installed on absl's logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "orbax" not in record.pathname

    def __enter__(self):
        logging.getLogger("absl").addFilter(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("absl").removeFilter(self)


def restore_latest(
    mngr: ocp.CheckpointManager,
    abstract_state,
    config: dict,
    ignore: tuple[str, ...] = (),
    defaults: dict | None = None,
    warn=None,
):
    """Restores the newest intact checkpoint.

    Args:
      mngr: from :func:`manager`.
      abstract_state: a pytree of ``jax.ShapeDtypeStruct`` shaped like the saved state.
      config: this run's config; the saved one must match it except for the ``ignore`` keys.
      ignore: config keys allowed to differ (e.g. ``total_steps`` to extend a run).
      defaults: the default of each key; a key the saved config lacks (a setting added to
        hyperjax after the run began) matches its default.
      warn: ``str -> None``, told in one line of each damaged checkpoint skipped (default: stderr).

    Returns:
      ``(state, step)``.

    Raises:
      CheckpointError: no checkpoint, every one damaged, or one written with another config.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr))
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        raise CheckpointError(f"--resume: no checkpoint in {mngr.directory}; run once without --resume first")
    _quiet_abandoned_reads()  # installed before reading: a damaged file's leftovers print as the read fails
    skipped = []
    for step in steps:
        try:
            saved = _read_json(mngr, step)
            _check_config(mngr, saved["config"], config, ignore, defaults)
            state = _read(mngr, step, abstract_state, saved["structure"])
        except DamagedCheckpoint as e:
            skipped.append(step)
            older = [s for s in steps if s < step]
            then = f"trying checkpoint {older[0]}" if older else "no older checkpoint is left"
            warn(f"warning: skipped checkpoint {step} in {mngr.directory}: {e}; {then}")
            gc.collect()  # the abandoned reads' coroutines go now, unprinted, not in the middle of training
            continue
        return state, step
    raise CheckpointError(
        f"--resume: every checkpoint in {mngr.directory} is damaged ({', '.join(map(str, skipped))}); "
        "nothing to resume from"
    )


def _read_json(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The ``structure`` and ``config`` items of checkpoint ``step`` (no arrays)."""
    try:
        return mngr.restore(
            step, args=ocp.args.Composite(structure=ocp.args.JsonRestore(), config=ocp.args.JsonRestore())
        )
    except Exception as e:  # noqa: BLE001 - whatever orbax raises on a damaged file is damage
        raise DamagedCheckpoint(f"its metadata is unreadable ({_damage(e)})") from e


def _check_config(mngr, saved_config: dict, config: dict, ignore, defaults) -> None:
    """Raises CheckpointError naming each key where the saved config differs from ``config``."""
    # the config is checked before any array is read (a replay buffer can be gigabytes)
    saved_config = {**{k: v for k, v in (defaults or {}).items() if k in config}, **saved_config}
    diff = sorted(
        k for k in set(saved_config) | set(config) if k not in ignore and saved_config.get(k) != config.get(k)
    )
    if diff:
        details = ", ".join(f"{k}: saved {saved_config.get(k)!r} vs now {config.get(k)!r}" for k in diff)
        raise CheckpointError(
            f"--resume: the checkpoint in {mngr.directory} is of another config ({details}); "
            "give the saved values as flags to continue it"
        )


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state):
    """The state saved at ``step`` (e.g. a parameter snapshot), shaped like ``abstract_state``,
    without a config check. Raises CheckpointError if it is missing or differs in structure."""
    if step not in mngr.all_steps():
        raise CheckpointError(f"no checkpoint {step} in {mngr.directory}; there are {sorted(mngr.all_steps())}")
    structure = mngr.restore(step, args=ocp.args.Composite(structure=ocp.args.JsonRestore()))["structure"]
    return _read(mngr, step, abstract_state, structure)


def _read(mngr: ocp.CheckpointManager, step: int, abstract_state, structure: dict):
    """Checkpoint ``step``'s arrays as ``abstract_state`` (``structure``: its saved paths and shapes),
    each checked against its saved CRC-32. Raises DamagedCheckpoint if a file is unreadable or an
    array differs from what was written."""
    targets = _targets(abstract_state, structure, mngr.directory)
    try:
        arrays = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(targets)))["state"]
    except Exception as e:  # noqa: BLE001 - a truncated or garbled file raises whatever its reader raises
        raise DamagedCheckpoint(f"its arrays are unreadable ({_damage(e)})") from e
    _verify(arrays, structure)
    return _rebuild(abstract_state, arrays, structure, mngr.directory)


def _verify(arrays: dict, structure: dict) -> None:
    """Raises DamagedCheckpoint naming the first array whose CRC-32 differs from the saved one."""
    for index, expected in enumerate(structure.get("crc32", [])):  # older checkpoints have none
        array = arrays.get(str(index))
        if expected is None or array is None:
            continue
        actual = _crc32(array)
        if actual is not None and actual != expected:
            raise DamagedCheckpoint(f"{structure['paths'][index]} differs from what was written (CRC-32 mismatch)")


def _sharding(a):
    """Where a restored leaf goes: the abstract leaf's sharding (a seed-sharded layout), else the
    default device."""
    return getattr(a, "sharding", None) or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def _matched(abstract_state, structure: dict, where) -> list[tuple[int, object]]:
    """``(saved index, abstract leaf)`` for every leaf of ``abstract_state``, found by its tree path."""
    paths, abstract_leaves = _paths_and_leaves(abstract_state)
    saved = {p: (i, tuple(shape)) for i, (p, shape) in enumerate(zip(structure["paths"], structure["shapes"]))}
    matched = []
    for path, a in zip(paths, abstract_leaves):
        if path not in saved:
            raise CheckpointError(f"--resume: the checkpoint in {where} has no leaf {path} (its state differs)")
        index, shape = saved[path]
        if shape != tuple(a.shape):
            raise CheckpointError(f"--resume: leaf {path} has shape {shape} in the checkpoint, {tuple(a.shape)} now")
        matched.append((index, a))
    known = set(paths)
    extra = [p for p in structure["paths"] if p not in known]
    if extra:
        raise CheckpointError(f"--resume: the checkpoint in {where} has leaf {extra[0]}, which this run's state lacks")
    return matched


def _targets(abstract_state, structure: dict, where) -> dict:
    """What orbax restores each saved array as: its shape and dtype in the abstract state, placed
    as the abstract state is (sharded by seed over this run's devices, whatever devices wrote it)."""
    targets = {}
    for index, a in _matched(abstract_state, structure, where):
        if int(np.prod(a.shape)) > 0:
            dtype = jnp.uint32 if _is_key(a) else a.dtype
            shape = jax.eval_shape(jax.random.key_data, a).shape if _is_key(a) else a.shape
            targets[str(index)] = jax.ShapeDtypeStruct(shape, dtype, sharding=_sharding(a))
    return targets


def restore_part(mngr: ocp.CheckpointManager, step: int, abstract_part, prefix: str):
    """The subtree at tree path ``prefix`` (e.g. ``.agent``) of the state saved at ``step``, shaped
    and placed like ``abstract_part``, without a config check. Only its arrays are read from disk
    (not, say, the replay buffer beside it). Raises CheckpointError if it is missing or differs in
    structure."""
    if step not in mngr.all_steps():
        raise CheckpointError(f"no checkpoint {step} in {mngr.directory}; there are {sorted(mngr.all_steps())}")
    structure = mngr.restore(step, args=ocp.args.Composite(structure=ocp.args.JsonRestore()))["structure"]
    inside = [  # (saved index, path below prefix, shape)
        (i, path[len(prefix) :], shape)
        for i, (path, shape) in enumerate(zip(structure["paths"], structure["shapes"]))
        if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", ".", "[")
    ]
    part = {"paths": [p for _, p, _ in inside], "shapes": [s for _, _, s in inside]}
    where = f"{mngr.directory} (step {step}, under {prefix})"
    targets = {str(inside[int(j)][0]): t for j, t in _targets(abstract_part, part, where).items()}
    arrays = {}
    if targets:  # the standard handler restores whole trees only; the PyTree one reads these files partially
        reader = ocp.CheckpointManager(mngr.directory, item_handlers={"state": ocp.PyTreeCheckpointHandler()})
        restore_args = ocp.checkpoint_utils.construct_restore_args(targets)
        args = ocp.args.PyTreeRestore(item=targets, restore_args=restore_args, partial_restore=True)
        arrays = reader.restore(step, args=ocp.args.Composite(state=args))["state"]
    by_position = {str(j): arrays[str(i)] for j, (i, _, _) in enumerate(inside) if str(i) in arrays}
    return _rebuild(abstract_part, by_position, part, where)


def _rebuild(abstract_state, arrays: dict, structure: dict, where) -> object:
    """The state shaped like ``abstract_state``, every leaf found by its tree path."""
    leaves = []
    for index, a in _matched(abstract_state, structure, where):
        if _is_key(a):
            leaves.append(jax.random.wrap_key_data(arrays[str(index)]))  # default impl
        else:
            array = arrays.get(str(index))
            leaves.append(jnp.zeros(a.shape, a.dtype, device=_sharding(a)) if array is None else array)
    return jax.tree.unflatten(jax.tree.structure(abstract_state), leaves)
