"""N-way K-shot evaluation the paper's way, many tasks at once.

Each task: `ways` unseen classes, `shots` support drawings and one query drawing per class.
The model fine-tunes from the meta-parameters (and, by default, the carried Adam state) for
`iters` steps of the run's inner optimizer (Adam, or plain SGD) on mini-batches of the support
set, then predicts the queries:
transductive = all queries in one batch; non-transductive = each query in a batch with the
support set (BatchNorm uses batch statistics, so this is what stops queries informing each other).
"""

import numpy as np
import torch

from .model import ModelSpec, forward
from .reptile import MetaState, grouped, inner_loop, make_inner_optimizer
from .scores import MODE_NAMES, EvalResult, summarize
from .tasks import TaskSampler, flatten_task, minibatch_order, to_tensor

# Tasks fine-tuned together on a CPU: ten tasks' activations stay in its caches. Measured on 20-way
# 5-shot, 2 threads: 260 ms a task in tens, 416 ms with a whole chunk of 100. A GPU takes the chunk.
CPU_TASKS_AT_ONCE = 10


def predict_queries(spec, params, support, queries, transductive: bool) -> torch.Tensor:
    """Grouped params, support [G, n, ...], queries [G, q, ...] -> predicted labels [G, q]."""
    with torch.no_grad():
        if transductive:
            return forward(spec, params, queries).argmax(-1)
        q = queries.shape[1]
        predicted = []
        for task in range(queries.shape[0]):  # a task's q batches (support + one query) share its weights
            batches = torch.cat(
                [support[task].unsqueeze(1).expand(-1, q, *support.shape[2:]), queries[task].unsqueeze(0)]
            )  # [n + 1, q, ...]: batch j is column j
            logits = forward(
                spec, [p[task : task + 1] for p in params], batches.reshape(1, -1, *support.shape[2:]), batches=q
            )
            predicted.append(logits[0, -q:].argmax(-1))  # the last row of each batch is its query
        return torch.stack(predicted)


def evaluate_modes(
    spec: ModelSpec,
    state: MetaState,
    sampler: TaskSampler,
    rng: np.random.Generator,
    *,
    ways: int,
    shots: int,
    inner_batch: int,
    inner_iters: int,
    lr: float,
    tasks: int,
    modes=(False, True),
    use_adam_state: bool = True,
    inner_optimizer: str = "adam",
    replacement: bool = False,
    chunk: int = 100,
    progress=None,
    resume: dict | None = None,
    on_chunk=None,
) -> dict:
    """Accuracy on `tasks` random tasks for each prediction mode in `modes` (transductive: bool).

    Fine-tuning does not depend on the mode, so every mode is scored on the same fine-tuned
    models: one fine-tuning per task, and the modes compare on identical tasks. inner_optimizer and
    replacement: the run's (Config.inner_optimizer, Config.replacement), as the reference fine-tunes.

    After every chunk, on_chunk(progress) gets {"rng": the generator's state, "scores": {mode name:
    [score of each task so far]}}; passing that back as `resume` (same settings and chunk) continues
    the evaluation with exactly the tasks and scores of an uninterrupted one."""
    optimizer = make_inner_optimizer(inner_optimizer, lr)
    device = state.params[0].device
    correct = {mode: [] for mode in modes}
    if resume:
        rng.bit_generator.state = resume["rng"]
        correct = {mode: list(resume["scores"][MODE_NAMES[mode]]) for mode in modes}
    done = len(correct[modes[0]])
    if progress and done:
        progress(done)
    at_once = chunk if device.type == "cuda" else CPU_TASKS_AT_ONCE
    while done < tasks:
        groups = min(chunk, tasks - done)
        images, _ = sampler.sample(rng, groups, ways, shots + 1)
        support, labels = flatten_task(images[:, :, :shots])
        queries = to_tensor(images[:, :, shots]).to(device)
        support, labels = to_tensor(support).to(device), torch.from_numpy(labels).to(device)
        order = minibatch_order(rng, groups, support.shape[1], inner_batch, inner_iters, replacement=replacement)
        for part in range(0, groups, at_once):  # the chunk's tasks and draws, computed in parts
            tasks_here = slice(part, part + at_once)
            size = min(at_once, groups - part)
            params = grouped([p.detach() for p in state.params], size)
            if use_adam_state:
                v, t = grouped(state.adam_v, size), state.adam_t
            else:
                v, t = [torch.zeros_like(p) for p in params], 0
            params, _, _ = inner_loop(
                spec, optimizer, params, v, t, support[tasks_here], labels[tasks_here], order[:, tasks_here]
            )
            for mode in modes:
                predicted = predict_queries(spec, params, support[tasks_here], queries[tasks_here], mode)
                correct[mode].extend((predicted.cpu() == torch.arange(ways)).double().mean(1).tolist())
        done += groups
        if on_chunk:
            on_chunk(
                {
                    "rng": rng.bit_generator.state,
                    "scores": {MODE_NAMES[mode]: list(scores) for mode, scores in correct.items()},
                }
            )
        if progress:
            progress(groups)
    return {mode: summarize(scores) for mode, scores in correct.items()}


def evaluate(
    spec: ModelSpec, state: MetaState, sampler: TaskSampler, rng: np.random.Generator, *, transductive: bool, **settings
) -> EvalResult:
    """evaluate_modes for one prediction mode."""
    return evaluate_modes(spec, state, sampler, rng, modes=(transductive,), **settings)[transductive]
