"""Checkpoints are keyed by tree path: reordered fields restore correctly, other structures are refused."""

import sys
import types

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperjax.train import checkpoint


@flax.struct.dataclass
class _State:
    critic: dict
    target_critic: dict  # the same shapes as critic: keyed by position these could swap silently
    empty: jax.Array  # zero-size (orbax refuses to write these; rebuilt on restore)


@flax.struct.dataclass
class _Reordered:
    target_critic: dict
    critic: dict
    empty: jax.Array


@flax.struct.dataclass
class _Other:
    critic: dict
    target_actor: dict
    empty: jax.Array


def _save(tmp_path):
    state = _State(
        critic={"w": jnp.arange(6.0).reshape(2, 3)}, target_critic={"w": -jnp.ones((2, 3))}, empty=jnp.zeros(0)
    )
    mngr = checkpoint.manager(str(tmp_path / "ckpt"))
    checkpoint.save(mngr, 7, state, {"run.seed": 0})
    return state, mngr


def test_fields_are_found_by_path_not_position(tmp_path):
    state, mngr = _save(tmp_path)
    abstract = jax.eval_shape(lambda: _Reordered(state.target_critic, state.critic, state.empty))
    restored, step = checkpoint.restore_latest(mngr, abstract, {"run.seed": 0})
    assert step == 7 and isinstance(restored, _Reordered)
    np.testing.assert_array_equal(restored.critic["w"], state.critic["w"])
    np.testing.assert_array_equal(restored.target_critic["w"], state.target_critic["w"])
    assert restored.empty.shape == (0,)


def test_another_structure_is_refused_naming_the_path(tmp_path):
    state, mngr = _save(tmp_path)
    other = jax.eval_shape(lambda: _Other(state.critic, state.target_critic, state.empty))
    with pytest.raises(checkpoint.CheckpointError, match=r"has no leaf \.target_actor\['w'\]"):
        checkpoint.restore_latest(mngr, other, {"run.seed": 0})
    wider = jax.eval_shape(lambda: state.replace(critic={"w": jnp.zeros((2, 4))}))
    with pytest.raises(checkpoint.CheckpointError, match=r"leaf \.critic\['w'\] has shape \(2, 3\) in the checkpoint"):
        checkpoint.restore_latest(mngr, wider, {"run.seed": 0})
    smaller = jax.eval_shape(lambda: {"critic": state.critic})
    with pytest.raises(checkpoint.CheckpointError, match=r"has no leaf \['critic'\]\['w'\]"):
        checkpoint.restore_latest(mngr, smaller, {"run.seed": 0})


def test_typed_prng_keys_round_trip(tmp_path):
    state = {"key": jax.random.key(3), "keys": jax.random.split(jax.random.key(4), 5), "x": jnp.ones(2)}
    mngr = checkpoint.manager(str(tmp_path / "ckpt"))
    checkpoint.save(mngr, 1, state, {})
    restored, _ = checkpoint.restore_latest(mngr, jax.eval_shape(lambda: state), {})
    assert restored["keys"].shape == (5,) and jnp.issubdtype(restored["keys"].dtype, jax.dtypes.prng_key)
    for name in ("key", "keys"):
        np.testing.assert_array_equal(jax.random.key_data(restored[name]), jax.random.key_data(state[name]))
    np.testing.assert_array_equal(jax.random.uniform(restored["key"]), jax.random.uniform(state["key"]))


def test_a_setting_added_since_the_run_began_matches_its_default(tmp_path):
    state, mngr = _save(tmp_path)  # saved with {"run.seed": 0} only
    abstract = jax.eval_shape(lambda: state)
    defaults = {"run.seed": 0, "agent.num_envs": 1}
    _, step = checkpoint.restore_latest(mngr, abstract, {"run.seed": 0, "agent.num_envs": 1}, defaults=defaults)
    assert step == 7
    with pytest.raises(checkpoint.CheckpointError, match=r"agent.num_envs: saved 1 vs now 4"):
        checkpoint.restore_latest(mngr, abstract, {"run.seed": 0, "agent.num_envs": 4}, defaults=defaults)
    with pytest.raises(checkpoint.CheckpointError, match=r"agent.num_envs: saved None vs now 1"):
        checkpoint.restore_latest(mngr, abstract, {"run.seed": 0, "agent.num_envs": 1})  # no defaults: refused


def _two_checkpoints(tmp_path):
    """Checkpoints 1 and 2 of a state whose arrays differ between them."""
    mngr = checkpoint.manager(str(tmp_path / "ckpt"))
    for step in (1, 2):
        state = _State(
            critic={"w": jax.random.normal(jax.random.key(step), (64, 64))},
            target_critic={"w": -jnp.ones((2, 3))},
            empty=jnp.zeros(0),
        )
        checkpoint.save(mngr, step, state, {"run.seed": 0})
    return mngr, jax.eval_shape(lambda: state)


def _largest_file(directory):
    """The largest array data file (random numbers do not compress, so it holds ``critic['w']``)."""
    return max((p for p in (directory / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["truncate", "flip_bit"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_intact_one(tmp_path, damage):
    mngr, abstract = _two_checkpoints(tmp_path)
    victim = _largest_file(tmp_path / "ckpt" / "2")
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    lines = []
    restored, step = checkpoint.restore_latest(mngr, abstract, {"run.seed": 0}, warn=lines.append)
    assert step == 1
    np.testing.assert_array_equal(restored.critic["w"], jax.random.normal(jax.random.key(1), (64, 64)))
    assert len(lines) == 1 and "skipped checkpoint 2" in lines[0] and "trying checkpoint 1" in lines[0], lines
    # both damaged: one error naming them, not a traceback from orbax
    victim = _largest_file(tmp_path / "ckpt" / "1")
    victim.write_bytes(victim.read_bytes()[:10])
    with pytest.raises(checkpoint.CheckpointError, match=r"every checkpoint .* is damaged \(2, 1\)"):
        checkpoint.restore_latest(mngr, abstract, {"run.seed": 0}, warn=lines.append)


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KB filesystem (tmpfs; needs root, skipped elsewhere)."""
    import subprocess

    path = tmp_path / "small"
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(small_disk, caplog):
    mngr = checkpoint.manager(str(small_disk / "ckpt"))
    checkpoint.save(mngr, 1, {"w": jnp.ones(10)}, {"run.seed": 0})
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.save(mngr, 2, {"w": jax.random.normal(jax.random.key(0), (200_000,))}, {"run.seed": 0})
    assert str(error.value) == (
        f"could not write checkpoint 2 to {small_disk / 'ckpt'} (No space left on device); "
        "the last complete checkpoint (step 1) is kept"
    )
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "orbax's thread errors reached the log"
    assert mngr.all_steps() == [1]
    restored, step = checkpoint.restore_latest(mngr, jax.eval_shape(lambda: {"w": jnp.ones(10)}), {"run.seed": 0})
    assert step == 1 and float(restored["w"].sum()) == 10.0


def test_late_reads_of_an_abandoned_checkpoint_print_nothing(monkeypatch):
    """Reads of a damaged checkpoint that complete after orbax closed its event loop call back into
    the closed loop; Python reports each as unraisable (a traceback apiece). Those, and nothing else,
    go unprinted once a restore has begun."""
    import asyncio

    printed = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)  # stands for Python's printing hook
    checkpoint._quiet_abandoned_reads()
    loop = asyncio.new_event_loop()
    loop.close()

    def report(error):
        sys.unraisablehook(
            types.SimpleNamespace(
                exc_type=type(error), exc_value=error, exc_traceback=error.__traceback__, err_msg=None, object=None
            )
        )

    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as e:
        report(e)
    try:
        raise RuntimeError("Event loop is closed")  # the same words from elsewhere: printed
    except RuntimeError as e:
        report(e)
    assert [str(u.exc_value) for u in printed] == ["Event loop is closed"]
