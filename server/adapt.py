"""POST /api/adapt's work on a pool worker: decode the images, adapt the bundle, predict (with the
open-set score when the bundle has one), and the check that the bundle's preprocessing spec is the
one this server implements."""

import math
import time
from collections.abc import Sequence

import numpy as np

from preprocessing import SPEC_VERSION

from .adapt_request import InputError, Plan
from .images import ImageLimits, decode_image


class _CheckedBatches(Sequence):
    """Bundle.adapt's `batches`: the whole support set at every step (the default), checking the
    job's deadline before each step so a request never runs past its time limit."""

    def __init__(self, size: int, steps: int, check):
        self._batch = np.arange(size)
        self._steps = steps
        self._check = check

    def __len__(self):
        return self._steps

    def __getitem__(self, index):
        if not -self._steps <= index < self._steps:
            raise IndexError(index)
        self._check()
        return self._batch

    def __iter__(self):
        for _ in range(self._steps):
            self._check()
            yield self._batch


def run_plan(bundle, plan: Plan, check, limits: ImageLimits, queued_s: float = 0.0) -> dict:
    """On a worker: decode the images, adapt, predict. check() raises when the job must stop."""
    t0 = time.perf_counter()
    support = []
    for i, image in enumerate(plan.support):
        support.append(decode_image(image, f"support[{i}].image", limits))
        check()
    queries = []
    for i, image in enumerate(plan.queries):
        queries.append(decode_image(image, f"query[{i}].image", limits))
        check()
    t1 = time.perf_counter()
    result = bundle.adapt(
        np.stack(support),
        plan.labels,
        np.stack(queries),
        steps=plan.steps,
        lr=plan.lr,
        optimizer=plan.optimizer,
        transductive=plan.transductive,
        classes=plan.classes,
        batches=_CheckedBatches(len(support), plan.steps, check),
    )
    t2 = time.perf_counter()
    losses = [float(x) for x in result.losses]
    scores = result.unknown_scores  # float64 [q] or None (bundle/open_set.py)
    finite_scores = scores is None or np.isfinite(scores).all()
    if not (np.isfinite(result.probabilities).all() and finite_scores and all(math.isfinite(x) for x in losses)):
        bad = next((k for k, x in enumerate(losses) if not math.isfinite(x)), None)
        where = f" (non-finite loss before step {bad})" if bad is not None else ""
        raise InputError(f"the adaptation diverged{where} with lr={plan.lr:g}; use a smaller lr")
    return {
        "probabilities": result.probabilities.astype(np.float64).tolist(),
        "predictions": result.predictions.tolist(),
        "unknown": None if result.unknown is None else [bool(flag) for flag in result.unknown],
        "unknown_scores": None if scores is None else scores.tolist(),
        "losses": losses,
        "classes": plan.classes,
        "steps": plan.steps,
        "lr": plan.lr,
        "transductive": plan.transductive,
        "optimizer": plan.optimizer,
        "timing": {
            "queue_ms": round(queued_s * 1000, 3),
            "preprocess_ms": round((t1 - t0) * 1000, 3),
            "adapt_ms": round((t2 - t1) * 1000, 3),
        },
    }


def check_spec(bundle):
    """The server implements preprocessing spec SPEC_VERSION only; refuse a bundle trained on another."""
    wanted = bundle.manifest.get("input", {}).get("preprocessing_spec")
    if wanted != SPEC_VERSION:
        raise ValueError(
            f"the bundle was trained with preprocessing spec {wanted!r}; this server implements "
            f"spec {SPEC_VERSION} only"
        )
