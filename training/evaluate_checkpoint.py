"""The `evaluate` command's work: a checkpoint's N-way K-shot accuracy, split by split, in each prediction mode.

training/evaluate.py is the procedure; this module decides what it measures, keeps a long evaluation's
progress on disk (training/evaluation_progress.py) so it can be continued, and writes the JSON report.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.files import file_digest

from .data import load_task_data
from .evaluate import evaluate_modes
from .evaluation_progress import EvaluationProgress

MODES = {"both": (False, True), "transductive": (True,), "non-transductive": (False,)}  # --mode -> transductive
SPLITS = {"both": ["test", "train"], "test": ["test"], "train": ["train"]}  # --split -> splits, in order


@dataclass(frozen=True)
class EvaluationSettings:
    """What `evaluate` measures: its flags, with the checkpoint's config filling those not given."""

    ways: int
    shots: int
    eval_batch: int
    eval_iters: int
    lr: float
    seed: int
    tasks: int
    mode: str = "both"  # a key of MODES
    adam_state: str = "carry"  # fine-tune from the trained Adam state (carry) or a fresh Adam (reset)
    split: str = "test"  # a key of SPLITS

    def fine_tuning(self) -> dict:
        """The settings the report lists: fine-tuning, task seed and task count."""
        return {
            "eval_batch": self.eval_batch,
            "eval_iters": self.eval_iters,
            "lr": self.lr,
            "seed": self.seed,
            "tasks": self.tasks,
        }

    def progress_key(self, checkpoint: Path) -> dict:
        """What a progress file must have been started with to be continued; the checkpoint by its sha256."""
        return {
            "checkpoint_sha256": file_digest(checkpoint, "sha256"),
            "ways": self.ways,
            "shots": self.shots,
            "mode": self.mode,
            "adam_state": self.adam_state,
            **self.fine_tuning(),
        }


def evaluate_checkpoint(
    checkpoint: Path,
    trained: tuple,
    settings: EvaluationSettings,
    *,
    device: str = "cpu",
    data_dir=None,
    saved: EvaluationProgress | None = None,
    report: Path | None = None,
    show_progress: bool = True,
    on_result=None,
) -> list:
    """Evaluate `trained` (training.checkpoint.load_trained of `checkpoint`) split by split; returns the result rows.

    on_result(split, transductive, EvalResult) is called as each figure is known. With `saved`, each split
    continues from the progress file, which is removed once the results are out. `report`: the JSON file
    the rows are written to, with the checkpoint, its iteration, the settings and the devices used."""
    payload, config, spec, state = trained
    state.params = [p.to(device) for p in state.params]
    state.adam_v = [v.to(device) for v in state.adam_v]
    data = load_task_data(config.dataset, data_dir, config.seed)
    fine_tuning = settings.fine_tuning()
    rows = []
    for split in SPLITS[settings.split]:
        sampler = data.test if split == "test" else data.train_eval
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=settings.tasks, desc=f"evaluate ({split})", unit="task", file=sys.stderr)
        by_mode = evaluate_modes(
            spec,
            state,
            sampler,
            np.random.default_rng(settings.seed),
            ways=settings.ways,
            shots=settings.shots,
            inner_batch=settings.eval_batch,
            inner_iters=settings.eval_iters,
            lr=settings.lr,
            tasks=settings.tasks,
            modes=MODES[settings.mode],
            use_adam_state=settings.adam_state == "carry",
            inner_optimizer=config.inner_optimizer,  # fine-tune as the run was trained to: Adam or SGD
            replacement=config.replacement,
            progress=bar.update if bar else None,
            resume=saved.resume(split) if saved else None,
            on_chunk=saved.saver(split) if saved else None,
        )
        if bar:
            bar.close()
        for transductive, result in by_mode.items():
            if on_result:
                on_result(split, transductive, result)
            rows.append(
                {
                    "split": split,
                    "transductive": transductive,
                    "ways": settings.ways,
                    "shots": settings.shots,
                    **result.to_dict(),
                }
            )
    if report:
        devices = saved.devices if saved else [device]  # more than one: a --partial evaluation moved
        contents = {
            "checkpoint": str(checkpoint),
            "iteration": payload["iteration"],
            "adam_state": settings.adam_state,
            "inner_optimizer": config.inner_optimizer,
            "settings": fine_tuning,
            "devices": devices,
            "results": rows,
        }
        Path(report).write_text(json.dumps(contents, indent=2))
    if saved:
        saved.finished()
    return rows
