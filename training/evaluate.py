"""N-way K-shot evaluation the paper's way, many tasks at once.

Each task: `ways` unseen classes, `shots` support drawings and one query drawing per class.
The model fine-tunes from the meta-parameters (and, by default, the carried Adam state) for
`iters` Adam steps on mini-batches of the support set, then predicts the queries:
transductive = all queries in one batch; non-transductive = each query in a batch with the
support set (BatchNorm uses batch statistics, so this is what stops queries informing each other).
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from .model import ModelSpec, forward
from .reptile import InnerAdam, MetaState, _grouped, inner_loop
from .tasks import TaskSampler, flatten_task, minibatch_order, to_tensor


@dataclass
class EvalResult:
    accuracy: float  # mean over tasks
    ci95: float  # half-width of the 95 % confidence interval of the mean
    tasks: int

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "ci95": self.ci95, "tasks": self.tasks}

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.2f} ± {100 * self.ci95:.2f} % ({self.tasks} tasks)"


# Images in one non-transductive forward. A 100-task chunk of 20-way 5-shot is 2,000 (task, query)
# batches of 101 images: ~200,000 images at once overflow CUDA's 32-bit indexing in the grouped
# convolution and take ~10 GB of activations, so the batches go through in slices of about this many.
MAX_PREDICT_IMAGES = 20_000
MODE_NAMES = {False: "non_transductive", True: "transductive"}


def predict_queries(spec, params, support, queries, transductive: bool,
                    max_images: int = MAX_PREDICT_IMAGES) -> torch.Tensor:
    """Grouped params, support [G, n, ...], queries [G, q, ...] -> predicted labels [G, q]."""
    with torch.no_grad():
        if transductive:
            return forward(spec, params, queries).argmax(-1)
        groups, q = queries.shape[:2]
        pairs = torch.arange(groups * q, device=queries.device)  # one batch per (task, query) pair
        per_slice = max(1, max_images // (support.shape[1] + 1))
        predicted = []
        for chunk in pairs.split(per_slice):
            task, query = chunk // q, chunk % q
            batches = torch.cat([support[task], queries[task, query].unsqueeze(1)], 1)
            predicted.append(forward(spec, [p[task] for p in params], batches)[:, -1].argmax(-1))
        return torch.cat(predicted).reshape(groups, q)


def evaluate_modes(spec: ModelSpec, state: MetaState, sampler: TaskSampler, rng: np.random.Generator, *, ways: int,
                   shots: int, inner_batch: int, inner_iters: int, lr: float, tasks: int, modes=(False, True),
                   use_adam_state: bool = True, chunk: int = 100, progress=None, resume: dict | None = None,
                   on_chunk=None) -> dict:
    """Accuracy on `tasks` random tasks for each prediction mode in `modes` (transductive: bool).

    Fine-tuning does not depend on the mode, so every mode is scored on the same fine-tuned
    models: one fine-tuning per task, and the modes compare on identical tasks.

    After every chunk, on_chunk(progress) gets {"rng": the generator's state, "scores": {mode name:
    [score of each task so far]}}; passing that back as `resume` (same settings and chunk) continues
    the evaluation with exactly the tasks and scores of an uninterrupted one."""
    adam = InnerAdam(lr=lr)
    device = state.params[0].device
    correct = {mode: [] for mode in modes}
    if resume:
        rng.bit_generator.state = resume["rng"]
        correct = {mode: list(resume["scores"][MODE_NAMES[mode]]) for mode in modes}
    done = len(correct[modes[0]])
    if progress and done:
        progress(done)
    while done < tasks:
        groups = min(chunk, tasks - done)
        images, _ = sampler.sample(rng, groups, ways, shots + 1)
        support, labels = flatten_task(images[:, :, :shots])
        queries = to_tensor(images[:, :, shots]).to(device)
        support, labels = to_tensor(support).to(device), torch.from_numpy(labels).to(device)
        order = minibatch_order(rng, groups, support.shape[1], inner_batch, inner_iters)
        params = _grouped([p.detach() for p in state.params], groups)
        if use_adam_state:
            v, t = _grouped(state.adam_v, groups), state.adam_t
        else:
            v, t = [torch.zeros_like(p) for p in params], 0
        params, _, _ = inner_loop(spec, adam, params, v, t, support, labels, order)
        for mode in modes:
            predicted = predict_queries(spec, params, support, queries, mode)
            correct[mode].extend((predicted.cpu() == torch.arange(ways)).double().mean(1).tolist())
        done += groups
        if on_chunk:
            on_chunk({"rng": rng.bit_generator.state,
                      "scores": {MODE_NAMES[mode]: list(scores) for mode, scores in correct.items()}})
        if progress:
            progress(groups)
    return {mode: _summary(np.array(scores)) for mode, scores in correct.items()}


def _summary(per_task: np.ndarray) -> EvalResult:
    ci = 1.96 * per_task.std(ddof=1) / math.sqrt(len(per_task)) if len(per_task) > 1 else float("nan")
    return EvalResult(float(per_task.mean()), float(ci), len(per_task))


def evaluate(spec: ModelSpec, state: MetaState, sampler: TaskSampler, rng: np.random.Generator, *,
             transductive: bool, **settings) -> EvalResult:
    """evaluate_modes for one prediction mode."""
    return evaluate_modes(spec, state, sampler, rng, modes=(transductive,), **settings)[transductive]
