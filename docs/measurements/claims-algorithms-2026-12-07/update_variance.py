"""One-off: how noisy is each algorithm's per-task meta-update, at the same weights? (docs/claims.md, section 4)

For each start (a checkpoint's weights and carried Adam state, or a random initialization) and each algorithm,
T training tasks are drawn as meta-training draws them (the preset omniglot-5w1s: 5-way, 10 drawings a class,
5 Adam steps on batches of 10) and each task's update u_t is taken as the meta-update would take it:
Reptile phi_t - theta, FOMAML and MAML the last (meta-gradient) step. Reported, over distinct pairs of tasks:
the mean cosine between two tasks' updates, and the signal-to-noise ratio |E u|^2 / E|u - E u|^2, with
|E u|^2 estimated without bias by the mean inner product of distinct tasks' updates. Both are free of the
update's scale, so algorithms whose steps differ in size compare; higher = a less noisy update, which the
paper gives as the reason Reptile converges faster. The spread: the same over 5 disjoint chunks of tasks.

    python docs/measurements/claims-algorithms-2026-12-07/update_variance.py TASKS CHECKPOINT... [--random-init]
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, ".")
from training.checkpoint import load_trained  # noqa: E402
from training.data import load_task_data  # noqa: E402
from training.model import init_params  # noqa: E402
from training.presets import PRESETS  # noqa: E402
from training.reptile import grouped, inner_loop_of, make_inner_optimizer  # noqa: E402
from training.tasks import flatten_task, minibatch_order, to_tensor  # noqa: E402

torch.set_num_threads(1)
tasks = int(sys.argv[1])
paths = [a for a in sys.argv[2:] if not a.startswith("--")]
config = PRESETS["omniglot-5w1s"]
_, run_config, spec, state = load_trained(Path(paths[0]))
data = load_task_data("omniglot", Path("../shared/data/omniglot"), run_config.seed)
starts = [(p, *load_trained(Path(p))[3:]) for p in paths]
starts = [(p, s.params, s.adam_v, s.adam_t) for p, s in starts]
if "--random-init" in sys.argv:
    params = init_params(spec, torch.Generator().manual_seed(run_config.seed))
    starts.append(("random init", params, [torch.zeros_like(p) for p in params], 0))
adam = make_inner_optimizer(config.inner_optimizer, config.lr)
CHUNK = 5  # tasks at once, as a meta-batch


def updates(algorithm, params, v, t, rng):
    """[tasks, P] float64: each task's meta-update from (params, v, t)."""
    rows = []
    for _ in range(tasks // CHUNK):
        images, _ = data.meta_train.sample(rng, CHUNK, config.ways, config.train_shots)
        images, labels = flatten_task(images)
        order = minibatch_order(rng, CHUNK, config.ways * config.train_shots, config.inner_batch, config.inner_iters)
        theta = [p.detach() for p in params]
        final, before_last, _ = inner_loop_of(algorithm)(
            spec, adam, grouped(theta, CHUNK), grouped(v, CHUNK), t, to_tensor(images), torch.from_numpy(labels), order
        )
        base = grouped(theta, CHUNK) if algorithm == "reptile" else before_last
        rows.append(torch.cat([(f - b).reshape(CHUNK, -1).double() for f, b in zip(final, base, strict=True)], 1))
    return torch.cat(rows).numpy()


def figures(u):
    """(mean pairwise cosine, signal-to-noise) of updates u [T, P] over distinct pairs."""
    n = len(u)
    total, squares = u.sum(0), (u * u).sum()
    signal = (total @ total - squares) / (n * (n - 1))  # unbiased |E u|^2
    unit = u / np.linalg.norm(u, axis=1, keepdims=True)
    unit_total = unit.sum(0)
    cosine = (unit_total @ unit_total - n) / (n * (n - 1))
    return cosine, signal / (squares / n - signal)


print(f"{'start':<60} {'algorithm':<8} {'cosine':>18} {'signal/noise':>22} {'|u|':>9}")
for label, params, v, t in starts:
    for algorithm in ("reptile", "fomaml", "maml"):
        u = updates(algorithm, params, v, t, np.random.default_rng(7))  # the same tasks for every algorithm
        cos, snr = figures(u)
        parts = np.array([figures(c) for c in np.array_split(u, 5)])
        print(
            f"{label:<60} {algorithm:<8} {cos:8.4f} ({parts[:, 0].min():.4f}-{parts[:, 0].max():.4f}) "
            f"{snr:8.4f} ({parts[:, 1].min():.4f}-{parts[:, 1].max():.4f}) {np.linalg.norm(u, axis=1).mean():9.4f}",
            flush=True,
        )
