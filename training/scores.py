"""Per-task scores summarised as an accuracy with its 95 % interval, and the names of the prediction modes.

Shared by the evaluation of a checkpoint (training/evaluate.py, torch) and of an exported bundle
(training/evaluate_bundle.py, onnxruntime), so it imports numpy only.
"""

import math
from dataclasses import dataclass

import numpy as np

# transductive: bool -> the mode's name in results, progress files and bundles
MODE_NAMES = {False: "non_transductive", True: "transductive"}


@dataclass
class EvalResult:
    accuracy: float  # mean over tasks
    ci95: float  # half-width of the 95 % confidence interval of the mean
    tasks: int

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "ci95": self.ci95, "tasks": self.tasks}

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.2f} ± {100 * self.ci95:.2f} % ({self.tasks} tasks)"


def summarize(per_task) -> EvalResult:
    """Scores of each task (fraction of its queries right) -> mean and normal 95 % interval (NaN for one task)."""
    per_task = np.asarray(per_task, dtype=np.float64)
    ci = 1.96 * per_task.std(ddof=1) / math.sqrt(len(per_task)) if len(per_task) > 1 else float("nan")
    return EvalResult(float(per_task.mean()), float(ci), len(per_task))
