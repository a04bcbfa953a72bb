"""A training run's folder, shared by meta-training (training/train.py) and the joint baseline (training/baseline.py).

    checkpoint.pt      the latest checkpoint (training/checkpoint.py): every checkpoint_interval steps and at the end
    metrics.jsonl      one JSON row per logged step; on resume, rows past the checkpoint are dropped, so a run that
                       was killed and resumed logs exactly the rows of an uninterrupted one
    config.json        the config, the model, the data's provenance and where the run was made
    test_classes.txt   the held-out classes, one per line (an exported bundle lists them for evaluation)

A folder that holds a run is continued only when asked (--resume), and only with the settings it was made with.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from bundle.files import write_atomic

from .checkpoint import CHECKPOINT_NAME, load_checkpoint

METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
TEST_CLASSES_NAME = "test_classes.txt"


class RunFolder:
    """The files of the run in `out_dir`."""

    def __init__(self, out_dir):
        self.dir = Path(out_dir)
        self.checkpoint = self.dir / CHECKPOINT_NAME
        self.metrics = self.dir / METRICS_NAME
        self.config = self.dir / CONFIG_NAME

    def saved_checkpoint(self, resume: bool) -> dict | None:
        """The checkpoint to continue from, or None for a fresh run; a run already here needs `resume`."""
        if not self.checkpoint.exists():
            return None
        if not resume:
            raise ValueError(
                f"--out {self.dir} already holds a run; pass --resume to continue it or choose another --out"
            )
        return load_checkpoint(self.checkpoint)

    def check_same_settings(self, saved: dict, wanted: dict) -> None:
        """Refuse to resume with settings other than the checkpoint's, naming the saved values that differ."""
        changed = sorted(k for k, v in wanted.items() if saved.get(k) != v)
        if changed:
            raise ValueError(
                f"--resume: {self.checkpoint} was made with a different config "
                f"({', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); use the same flags"
            )

    def saved_config(self) -> dict:
        """config.json as the previous session left it ({} when there is none)."""
        return json.loads(self.config.read_text()) if self.config.exists() else {}

    def begin(self, start: int, step_key: str, config: dict, test_classes: list) -> None:
        """Create the folder, cut metrics.jsonl back to the rows whose `step_key` is at most `start` (the checkpoint's
        step), and write config.json and test_classes.txt."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = (
            [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]
            if self.metrics.exists()
            else []
        )
        write_atomic(self.metrics, "".join(json.dumps(row) + "\n" for row in rows if row[step_key] <= start))
        write_atomic(self.config, json.dumps(config, indent=2))
        (self.dir / TEST_CLASSES_NAME).write_text("\n".join(test_classes) + "\n")

    def metrics_log(self) -> "MetricsLog":
        """metrics.jsonl, open for appending rows."""
        return MetricsLog(self.metrics)


class MetricsLog:
    """Appends JSON rows to metrics.jsonl, each flushed at once: a kill loses no row logged before it."""

    def __init__(self, path: Path):
        self.file = open(path, "a")  # noqa: SIM115 (closed by close() or the with block, after the training loop)

    def write(self, row: dict) -> None:
        """Append one row."""
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Stopwatch:
    """A run's wall-clock seconds across sessions: those the checkpoint recorded plus this session's."""

    def __init__(self, before: float):
        self.before, self.started = before, time.perf_counter()

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.started


def due(done: int, every: int, last: int) -> bool:
    """Whether step `done` is one of every `every` steps, or the `last` one."""
    return done % every == 0 or done == last


def last_step(total: int, stop_after: int | None) -> int:
    """Where this session stops: the end of the run, or earlier at `stop_after` (as if killed there)."""
    return min(total, stop_after) if stop_after is not None else total


def progress_bar(total: int, start: int, desc: str, unit: str):
    """A tqdm bar on stderr that starts at the resumed step."""
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def machine() -> dict:
    """Where the run is made, for config.json: torch's threads and version, Python, the machine."""
    return {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor()} {os.cpu_count()} cpus",
    }
