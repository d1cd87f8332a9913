"""Bad input through the CLI: one line on stderr naming the problem and what is valid, exit code 1,
nothing created. In-process (absl flags parsed, then ``cli.main``), so the table costs no imports."""

import re

import pytest
from absl import flags

import hyperjax.experiments.sac  # noqa: F401 - defines the SAC entry point's flags
from hyperjax.agents import td3
from hyperjax.experiments import cli, runner

BASE = ["--env=pendulum", "--critic=mlp", "--total_steps=2000", "--eval_every=1000"]

BAD = [
    ("--env=antt", r"unknown env 'antt'; valid: pendulum, ant"),
    ("--backend=bullet", r"unknown backend 'bullet'; valid: mjx, generalized"),
    ("--env_preset=nope", r"unknown env preset 'nope'; valid: paper, brax"),
    ("--critic=mlp_huge", r"--critic=mlp_huge is not valid; valid: sa_hyper, as_hyper, mlp"),
    ("--num_seeds=0", r"--num_seeds=0 is out of range: it must be >= 1"),
    ("--total_steps=-5", r"--total_steps=-5 is out of range: it must be >= 1"),
    ("--eval_every=0", r"--eval_every=0 is out of range"),
    ("--eval_episodes=0", r"--eval_episodes=0 is out of range"),
    ("--buffer_size=0", r"--buffer_size=0 is out of range"),
    ("--checkpoint_every=0", r"--checkpoint_every=0 is out of range"),
    ("--episode_length=0", r"--episode_length=0 is out of range"),
    ("--seed=-1", r"--seed=-1 is out of range: it must be >= 0"),
    ("--batch_size=0", r"--batch_size=0 is out of range: it must be >= 1"),
    ("--start_steps=-1", r"--start_steps=-1 is out of range: it must be >= 0"),
    ("--gamma=1.5", r"--gamma=1.5 is out of range: it must be in \(0, 1\]"),
    ("--gamma=0", r"--gamma=0.0 is out of range: it must be in \(0, 1\]"),
    ("--gamma=nan", r"--gamma=nan is out of range"),
    ("--tau=0", r"--tau=0.0 is out of range: it must be in \(0, 1\]"),
    ("--tau=2", r"--tau=2.0 is out of range"),
    ("--actor_lr=0", r"--actor_lr=0.0 is out of range: it must be > 0"),
    ("--critic_lr=-1e-4", r"--critic_lr=-0.0001 is out of range: it must be > 0"),
    ("--alpha_lr=0", r"--alpha_lr=0.0 is out of range"),
    ("--alpha=-0.1", r"--alpha=-0.1 is out of range: it must be >= 0"),
    ("--reward_scale=0", r"--reward_scale=0.0 is out of range: it must be > 0"),
    ("--actor_hidden_sizes=0", r"--actor_hidden_sizes=0 is out of range: every entry must be >= 1"),
    ("--actor_hidden_sizes=64,-1", r"--actor_hidden_sizes=64,-1 is out of range"),
    ('--critic_overrides={"no_such_field": 1}', r"--critic_overrides: mlp has no field 'no_such_field'; valid: "),
    ('--critic_overrides={"hidden_sizes": "abc"}', r'hidden_sizes="abc" must be a list of positive integers'),
    ('--critic_overrides={"hidden_sizes": [0]}', r"hidden_sizes=\[0\] must be a list of positive integers"),
    ('--critic_overrides={"num_critics": 0}', r"num_critics=0 must be an integer >= 1"),
    ('--critic_overrides={"variant": "ddpg"}', r"variant='ddpg' is not valid; valid: sac, td3"),
    ("--critic_overrides=not json", r"--critic_overrides must be JSON"),
    ("--total_steps=1500", r"--total_steps=1500 must be a multiple of --eval_every=1000"),
    ("--buffer_size=100 --batch_size=256", r"--batch_size=256 is larger than the buffer holds at the first update"),
]


def _split(args: str) -> list[str]:
    """Flags of one table row; a JSON value keeps its spaces."""
    return [args] if args.startswith("--critic_overrides") else args.split(" ")


def _main(argv: list[str], capsys) -> tuple[int, list[str]]:
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["sac", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main("sac", [])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("args,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_creates_nothing(tmp_path, capsys, args, message):
    logdir = tmp_path / "run"
    code, lines = _main([*BASE, f"--logdir={logdir}", *_split(args)], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not logdir.exists()


def test_bad_logdirs_and_resume(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (str(a_file), r"--logdir=.*file is a file; give a folder"),
        (str(a_file / "sub"), r"cannot be created: .*file is a file"),
    ]
    for logdir, message in cases:
        code, lines = _main([*BASE, f"--logdir={logdir}"], capsys)
        assert code == 1 and len(lines) == 1 and re.search(message, lines[0]), lines
    assert a_file.read_text() == "x"
    code, lines = _main([*BASE, f"--logdir={tmp_path / 'new'}", "--resume"], capsys)
    assert code == 1 and "--resume: no run in" in lines[-1] and not (tmp_path / "new").exists()


def test_td3_ranges():
    run = runner.RunConfig(env="pendulum", total_steps=2000, eval_every=1000)
    for field, value, message in [
        ("policy_delay", 0, r"--policy_delay=0 is out of range: it must be >= 1"),
        ("target_noise", -0.2, r"--target_noise=-0.2 is out of range: it must be >= 0"),
        ("exploration_noise", -1.0, r"--exploration_noise=-1.0 is out of range"),
    ]:
        with pytest.raises(ValueError, match=message):
            runner.validate("td3", run, td3.TD3Config(critic="mlp", **{field: value}))


def test_help_states_meaning_range_and_paper_value():
    gamma = flags.FLAGS["gamma"]
    assert "Discount factor (paper: 0.99). Valid: in (0, 1]." == gamma.help
    assert "Valid: one of sa_hyper, as_hyper, mlp" in flags.FLAGS["critic"].help
    assert all(flags.FLAGS[name].help for name in ("env", "num_seeds", "batch_size", "preset", "critic_overrides"))
