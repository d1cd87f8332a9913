"""Curves, normalised scores, rliable IQM and performance profiles, and a summary, over many runs.

Give run directories (``config.json`` + ``metrics.csv``) or sweep folders holding them at any depth;
runs of the same (algo, env, label) are pooled as more seeds:
  python -m hyperjax.experiments.plot runs/td3_sweep --out results/td3
  python -m hyperjax.experiments.plot runs/td3_ant_mlp_seed0 runs/td3_ant_sa_hyper_seed0 --out results/ant
  python -m hyperjax.experiments.plot runs/maml_cpu --baseline vanilla --out results/maml_cpu
  python -m hyperjax.experiments.plot runs --baseline mlp,maml=vanilla --out results/all

Writes into ``--out``: ``curves.png`` (mean and bootstrap 95% band per label, one panel per algo and
env), ``summary.md`` and ``summary.json`` (final scores, normalised scores, steps to reach the
baseline's final score, IQM), and, where every env of an algo has the baseline label,
``normalized.png`` (the paper's Fig. 6 bars), ``iqm.png`` and ``profiles.png`` (rliable). A run whose
path says ``cpu``, or under a sweep folder whose ``SCALE`` file says ``cpu``, is marked "(CPU scale)".
Bad input (a missing path, no runs) is one line on stderr and exit code 1.

Normalised score: a return over the baseline label's final mean (the mean over seeds of the return at
its last common evaluation) on the same algo and env; an algo whose baseline is absent on an env, or
has a final mean <= 0 there, gets a warning and no normalised outputs. Intervals: percentile bootstrap
over seeds (``aggregate.BOOTSTRAP_REPS``), rliable's stratified bootstrap for IQM and profiles
(``--reps``, default 2,000; the tests use 50 for speed).
"""

import json
import os
import shlex
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hyperjax.experiments import quiet  # noqa: E402

with quiet.imports():  # drops mujoco-mjx's "Failed to import warp" lines (the registry loads the agents)
    from hyperjax.analysis import aggregate  # noqa: E402
    from hyperjax.experiments import checks  # noqa: E402

TAU_MAX, TAU_COUNT = 2.0, 81  # profile thresholds: 0 to 2 baseline final means (or past the best score)


def parse_baselines(text: str) -> tuple[str, dict[str, str]]:
    """``"mlp,maml=vanilla"`` -> ``("mlp", {"maml": "vanilla"})``: a default label and per-algo ones."""
    default, per_algo = "mlp", {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" in item:
            algo, label = item.split("=", 1)
            per_algo[algo.strip()] = label.strip()
        else:
            default = item
    return default, per_algo


def _scale(groups) -> str:
    return " (CPU scale)" if any(g.cpu_scale for g in groups) else ""


def _colors(groups) -> dict[str, str]:
    labels = sorted({g.label for g in groups.values()})
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def _panels(n: int, width: float = 4.6, height: float = 3.4):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=110, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_curves(groups: dict, path: str) -> None:
    """One panel per (algo, env), one line per label: mean over seeds and its bootstrap 95% band."""
    panels = sorted({(a, e) for a, e, _ in groups})
    colors = _colors(groups)
    fig, axes = _panels(len(panels))
    for ax, (algo, env) in zip(axes, panels):
        members = [g for g in groups.values() if (g.algo, g.env) == (algo, env)]
        for g in members:
            mean, low, high = aggregate.bootstrap_ci(g.returns)
            ax.plot(g.steps, mean, color=colors[g.label], lw=1.6, label=f"{g.label} ({len(g.seeds)} seeds)")
            ax.fill_between(g.steps, low, high, color=colors[g.label], alpha=0.2, lw=0)
        ax.set(xlabel=members[0].step_name, ylabel="evaluation return", title=f"{algo.upper()} {env}{_scale(members)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("mean over seeds, 95% bootstrap interval", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_normalized(norm: dict, groups: dict, path: str) -> None:
    """The paper's Fig. 6: per label, the normalised final score averaged over envs (bar) and per env (points)."""
    colors = _colors(groups)
    fig, axes = _panels(len(norm), width=1.2 + 0.9 * max(len(n["labels"]) for n in norm.values()))
    for ax, (algo, n) in zip(axes, sorted(norm.items())):
        envs = n["envs"]
        for i, label in enumerate(n["labels"]):
            per_env = [n["scores"][label].get(env, np.nan) for env in envs]
            ax.bar(i, np.nanmean(per_env), color=colors[label], alpha=0.7)
            for j, value in enumerate(per_env):
                ax.plot(i + 0.25 * (j / max(len(envs) - 1, 1) - 0.5), value, "o", color=f"C{j}", ms=4, mec="k", mew=0.4)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(n["labels"])), n["labels"], rotation=30, ha="right", fontsize=8)
        ax.set(ylabel=f"final score / {n['baseline']} final mean")
        ax.set_title(f"{algo.upper()} normalised final score, {n['runs']}+ seeds per env{n['scale']}", fontsize=9)
        handles = [plt.Line2D([], [], ls="", marker="o", color=f"C{j}", mec="k", mew=0.4) for j in range(len(envs))]
        ax.legend(handles, envs, fontsize=7, title="env", title_fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_iqm(norm: dict, groups: dict, path: str) -> None:
    """rliable's IQM of normalised final scores with stratified-bootstrap 95% intervals, per algo."""
    colors = _colors(groups)
    fig, axes = _panels(len(norm), height=0.8 + 0.45 * max(len(n["iqm"]) for n in norm.values()))
    for ax, (algo, n) in zip(axes, sorted(norm.items())):
        labels = sorted(n["iqm"])
        for i, label in enumerate(labels):
            low, high = n["iqm_ci"][label]
            ax.barh(i, high - low, left=low, height=0.6, color=colors[label], alpha=0.6)
            ax.plot([n["iqm"][label]] * 2, [i - 0.3, i + 0.3], color="k", lw=1.5)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.axvline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xlabel(f"IQM of final score / {n['baseline']} final mean")
        ax.set_title(f"{algo.upper()} IQM, {n['runs']} runs x {len(n['envs'])} envs, 95% CI{n['scale']}", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_profiles(norm: dict, groups: dict, path: str) -> None:
    """rliable's performance profiles (score distributions) with their 95% bands, per algo."""
    colors = _colors(groups)
    fig, axes = _panels(len(norm))
    for ax, (algo, n) in zip(axes, sorted(norm.items())):
        top = max([TAU_MAX, *(1.05 * m.max() for m in n["matrices"].values())])
        taus = np.linspace(0.0, top, TAU_COUNT)
        profiles, cis = aggregate.performance_profiles(n["matrices"], taus, reps=n["reps"])
        for label in sorted(profiles):
            ax.plot(taus, profiles[label], color=colors[label], lw=1.6, label=label)
            ax.fill_between(taus, cis[label][0], cis[label][1], color=colors[label], alpha=0.2, lw=0)
        ax.set(xlabel=f"normalised score tau ({n['baseline']} final mean = 1)", ylabel="fraction of runs > tau")
        ax.set_title(
            f"{algo.upper()} performance profile, {n['runs']} runs x {len(n['envs'])} envs{n['scale']}", fontsize=9
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summarize(groups: dict, baseline: str, per_algo: dict[str, str], reps: int, warn) -> tuple[list[dict], dict]:
    """Table rows (one per group) and the normalised results per algo that has its baseline everywhere."""
    rows, norm = [], {}
    for algo in sorted({a for a, _, _ in groups}):
        base = per_algo.get(algo, baseline)
        refs, missing = aggregate.baselines(groups, base, algo)
        bad = [env for env, ref in refs.items() if not ref > 0]
        normalizable = not missing and not bad
        if not normalizable:
            why = f"absent on {', '.join(missing)}" if missing else f"final mean <= 0 on {', '.join(bad)}"
            warn(f"{algo}: baseline label {base!r} {why}; skipping its normalised scores, IQM and profiles")
        members = [g for g in groups.values() if g.algo == algo]
        for g in members:
            mean, low, high = aggregate.bootstrap_ci(g.returns[:, -1])
            row = {
                "algo": algo,
                "env": g.env,
                "label": g.label,
                "seeds": list(g.seeds),
                "step_name": g.step_name,
                "last_step": int(g.steps[-1]),
                "max_step": g.max_step,
                "final_mean": float(mean),
                "final_ci": [float(low), float(high)],
                "cpu_scale": g.cpu_scale,
                "paths": list(g.paths),
            }
            if g.env in refs:  # the baseline ran on this env
                ref = refs[g.env]
                curve = g.returns.mean(axis=0)
                row.update(
                    baseline=base,
                    baseline_final_mean=ref,
                    steps_to_baseline=aggregate.steps_to_reach(g.steps, curve, ref),
                )
            if normalizable:
                row.update(normalized_final=float(mean / ref), normalized_ci=[float(low / ref), float(high / ref)])
            rows.append(row)
        if normalizable:
            matrices, envs, left_out = aggregate.score_matrices(groups, refs, algo)
            if left_out:
                warn(f"{algo}: {', '.join(left_out)} left out of the IQM and profiles: not run on every env")
            points, intervals = aggregate.iqm(matrices, reps=reps)
            norm[algo] = {
                "baseline": base,
                "envs": envs,
                "labels": sorted({g.label for g in members}),
                "scores": {
                    label: {r["env"]: r["normalized_final"] for r in rows if (r["algo"], r["label"]) == (algo, label)}
                    for label in sorted({g.label for g in members})
                },
                "matrices": matrices,
                "runs": min((m.shape[0] for m in matrices.values()), default=0),
                "iqm": points,
                "iqm_ci": intervals,
                "scale": _scale(members),
                "reps": reps,
                "left_out": left_out,
            }
    return rows, norm


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3g}"


def markdown(rows: list[dict], norm: dict, reps: int, command: str) -> str:
    """summary.md: a table per algo, the IQM tables, the definitions, the command."""
    lines = ["# Results", ""]
    for algo in sorted({r["algo"] for r in rows}):
        members = [r for r in rows if r["algo"] == algo]
        scale = " (CPU scale)" if any(r["cpu_scale"] for r in members) else ""
        lines += [f"## {algo.upper()}{scale}", ""]
        lines += [
            "| env | label | seeds | last step | final return (95% CI) | normalised final (95% CI) | "
            "steps to baseline final |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in members:
            seeds = f"{len(r['seeds'])} ({', '.join(map(str, r['seeds']))})"
            last = f"{r['last_step']:,} {r['step_name']}"
            if r["max_step"] > r["last_step"]:  # an unfinished run: the group stops at the steps all runs have
                last += f" ({len(r['seeds'])} seeds to step {r['last_step']:,}; some runs to {r['max_step']:,})"
            final = f"{_num(r['final_mean'])} ({_num(r['final_ci'][0])} to {_num(r['final_ci'][1])})"
            normalised, reach = "-", "-"
            if "normalized_final" in r:
                lo, hi = r["normalized_ci"]
                normalised = f"{r['normalized_final']:.2f} ({lo:.2f} to {hi:.2f})"
            if "baseline" in r:
                reach = "not reached" if r["steps_to_baseline"] is None else f"{r['steps_to_baseline']:,}"
            lines.append(f"| {r['env']} | {r['label']} | {seeds} | {last} | {final} | {normalised} | {reach} |")
        lines.append("")
        uneven = sorted(
            {r["env"] for r in members for o in members if o["env"] == r["env"] and o["last_step"] != r["last_step"]}
        )
        if uneven:
            lines += [
                f"Labels end at different steps on {', '.join(uneven)}: their final scores are not at one step.",
                "",
            ]
        if any(r["seeds"].count(s) > 1 for r in members for s in r["seeds"]):
            lines += ["Some seed numbers appear in more than one run folder; every copy is counted.", ""]
        if algo in norm:
            n = norm[algo]
            lines += [
                f"IQM over {', '.join(n['envs'])} ({n['runs']} runs per env), normalised by {n['baseline']}:",
                "",
                "| label | IQM | 95% CI |",
                "|---|---:|---:|",
            ]
            for label, value in sorted(n["iqm"].items()):
                lo, hi = n["iqm_ci"][label]
                lines.append(f"| {label} | {value:.3f} | {lo:.3f} to {hi:.3f} |")
            lines.append("")
            if n["left_out"]:
                lines += [f"Left out of the IQM and profiles (not run on every env): {', '.join(n['left_out'])}.", ""]
    lines += [
        "## Definitions",
        "",
        "Runs of the same (algo, env, label) are pooled as seeds and aligned on the evaluation steps all of them "
        "have. The final return of a seed is its evaluation return at the group's last common evaluation; the "
        "final mean is the mean of that over seeds. Intervals on returns are percentile-bootstrap 95% intervals "
        f"over seeds ({aggregate.BOOTSTRAP_REPS:,} resamples, numpy seed {aggregate.SEED}); one seed gives a "
        "zero-width interval. Normalised score: a return divided by the baseline label's final mean on the same "
        "algo and env (1.0 = the baseline's final mean). Steps to baseline final: the first evaluation step at "
        "which the group's mean curve reaches the baseline's final mean. IQM: rliable's interquartile mean (the "
        "mean of the middle 50% of all runs x envs normalised final scores) with stratified-bootstrap 95% "
        f"intervals (runs resampled within each env, {reps:,} resamples, numpy seed "
        f"{aggregate.SEED}); each env contributes its first N seeds, N the fewest any env has. Performance "
        "profiles: rliable's fraction of runs scoring above each threshold, with the same bootstrap.",
        "",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def _json(norm: dict) -> dict:
    """The normalised results, JSON-clean: score matrices as ``{label: [runs][envs]}`` lists."""
    out = {}
    for algo, n in norm.items():
        out[algo] = {k: v for k, v in n.items() if k not in ("matrices", "scale")}
        out[algo]["matrices"] = {label: m.tolist() for label, m in n["matrices"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = checks.ArgumentParser(prog="python -m hyperjax.experiments.plot", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run directories or sweep folders holding them")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--baseline", default="mlp", help="label scores are normalised by; per algo: 'mlp,maml=vanilla'"
    )
    parser.add_argument(
        "--reps",
        type=checks.positive,
        default=aggregate.RLIABLE_REPS,
        help="stratified-bootstrap resamples of the IQM intervals and profiles (rliable; slow: ~1 ms each)",
    )
    args = parser.parse_args(argv)
    command = "python -m hyperjax.experiments.plot " + shlex.join(sys.argv[1:] if argv is None else argv)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def work() -> int:
        checks.folder(args.out, "--out")
        groups = aggregate.load_groups(args.paths)
        if not groups:
            raise ValueError("the run directories found hold no evaluation")
        os.makedirs(args.out, exist_ok=True)
        return _write(args, groups, command, warn)

    return checks.one_line_errors(work, "the outputs written so far are in --out")


def _write(args, groups, command: str, warn) -> int:
    for g in groups.values():
        if g.duplicate_seeds:
            warn(f"{g.algo} {g.env} {g.label}: seed(s) {list(g.duplicate_seeds)} in more than one folder; all kept")
    baseline, per_algo = parse_baselines(args.baseline)
    rows, norm = summarize(groups, baseline, per_algo, args.reps, warn)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        statistics = {
            "confidence": aggregate.CONFIDENCE,
            "bootstrap_reps": aggregate.BOOTSTRAP_REPS,
            "rliable_reps": args.reps,
            "numpy_seed": aggregate.SEED,
        }
        summary = {"command": command, "statistics": statistics, "groups": rows, "normalized": _json(norm)}
        json.dump(summary, f, indent=2)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(markdown(rows, norm, args.reps, command))
    plot_curves(groups, os.path.join(args.out, "curves.png"))
    written = ["summary.json", "summary.md", "curves.png"]
    if norm:
        plot_normalized(norm, groups, os.path.join(args.out, "normalized.png"))
        plot_iqm(norm, groups, os.path.join(args.out, "iqm.png"))
        plot_profiles(norm, groups, os.path.join(args.out, "profiles.png"))
        written += ["normalized.png", "iqm.png", "profiles.png"]
    runs = sum(len(g.paths) for g in groups.values())
    print(f"{len(groups)} groups from {runs} run folders; wrote {', '.join(written)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
