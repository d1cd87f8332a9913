"""Run outputs: the metrics CSV, TensorBoard event files, the progress line with ETA, and the
learning-curve PNG."""

import csv
import importlib.util
import os
import sys
import time


class CsvLog:
    """Appends rows to ``path``; on resume, drops rows past the restored step first."""

    def __init__(self, path: str, columns: list[str], resume_step: int | None = None):
        self.path, self.columns = path, columns
        rows = []
        if resume_step is not None and os.path.exists(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: _fmt(row.get(k, "")) for k in self.columns})


class TensorBoard:
    """Scalars for TensorBoard, written by tensorboardX into the run's folder, so
    ``tensorboard --logdir runs`` lists every run by its folder name, side by side.

    Tags: ``eval/return_mean`` and ``eval/return_seed{i}``, ``train/<metric>`` (means over seeds),
    ``perf/steps_per_sec``, and ``VIDEO_TAG`` (``video``: needs moviepy). On resume, events past the
    restored step are dropped (``purge_step``).
    """

    VIDEO_TAG = "video/deterministic_policy"
    # tensorboardX stores a video as one animated GIF in the event file: at most this many frames
    # (beyond: every k-th frame at 1/k the frame rate, still real time), so long episodes do not bloat the events
    MAX_VIDEO_FRAMES = 200

    def __init__(self, logdir: str, resume_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir, purge_step=resume_step, flush_secs=10)
        # tensorboardX's add_video encodes with moviepy; without it, it logs an error and writes nothing
        self.videos = importlib.util.find_spec("moviepy") is not None

    def write(self, step: int, row: dict) -> None:
        for key, value in row.items():
            if key in ("step", "wall_s") or not isinstance(value, (int, float)) or value != value:
                continue
            if key.startswith("return_"):
                tag = f"eval/{key}"
            elif key == "steps_per_sec":
                tag = "perf/steps_per_sec"
            else:
                tag = f"train/{key}"
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def video(self, step: int, path: str, fps: float) -> bool:
        """Adds the video file ``path`` (read back with imageio) under ``VIDEO_TAG``, at most
        ``MAX_VIDEO_FRAMES`` frames; returns whether it did: False without moviepy (not a dependency)."""
        if not self.videos:
            return False
        import imageio.v3 as iio

        frames = iio.imread(path, plugin="FFMPEG", index=None)  # [T, H, W, 3] uint8
        every = -(-len(frames) // self.MAX_VIDEO_FRAMES)
        clip = frames[::every].transpose(0, 3, 1, 2)[None]  # [1, T, 3, H, W]: tensorboardX's NTCHW
        self.writer.add_video(self.VIDEO_TAG, clip, step, fps=fps / every)
        self.writer.flush()
        return True

    def close(self) -> None:
        self.writer.close()


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def read_csv(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Progress:
    """A one-line progress bar with steps/s and ETA (redrawn in place on a terminal)."""

    def __init__(self, total: int, start: int = 0, stream=sys.stderr, unit: str = "steps"):
        self.total, self.start, self.stream, self.unit = total, start, stream, unit.split()[-1]
        self.t0, self.tty = time.perf_counter(), stream.isatty()
        self.rate = None

    def update(self, step: int, message: str = "", rate: float | None = None) -> None:
        self.rate = rate if rate is not None else self.rate
        frac = step / self.total
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        eta = (self.total - step) / self.rate if self.rate else float("nan")
        line = f"[{bar}] {step:,}/{self.total:,} ({100 * frac:.1f}%)"
        if self.rate:
            per_step = f"{1 / self.rate:,.1f} s per {self.unit.removesuffix('s')}"
            speed = f"{self.rate:,.1f} {self.unit}/s" if self.rate >= 1 else per_step
            line += f" | {speed} | ETA {_duration(eta)}"
        line += f" | {message}" if message else ""
        end = "" if self.tty and step < self.total else "\n"
        print(("\r" if self.tty else "") + line, end=end, file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def plot_curves(
    csv_path: str,
    png_path: str,
    title: str,
    num_seeds: int,
    extra_returns: tuple[str, ...] = (),
    step_name: str = "environment steps",
) -> None:
    """Evaluation return against steps: one thin line per seed, the mean in bold, and the means of
    ``extra_returns`` (e.g. MAML's before-adaptation return) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_csv(csv_path)
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for s in range(num_seeds):
        ax.plot(steps, [float(r[f"return_seed{s}"]) for r in rows], lw=0.8, alpha=0.5)
    ax.plot(steps, [float(r["return_mean"]) for r in rows], lw=2.2, color="k", label=f"mean of {num_seeds} seed(s)")
    for name in extra_returns:
        label = f"{name.replace('_', ' ')} (mean)"
        ax.plot(steps, [float(r[f"{name}_mean"]) for r in rows], lw=1.8, ls="--", label=label)
    ax.set(xlabel=step_name, ylabel="evaluation return", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
