"""Experiment: at 1 shot, adapt on the drawing plus A randomly warped copies (small rotation, scale,
shear, shift), then score as the product does (class means over all the support rows). Prints the
product's 9-input logistic refitted on mirrored tasks adapted the same way, measured on held-out ones."""
import sys, time, math
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from warp import warp
from tools.open_set_tasks import OpenSetTasks, draw_chunks
from training.reptile import grouped, inner_loop
from training.tasks import flatten_task, to_tensor
torch.set_num_threads(1)
ways, copies, count, seed = (int(a) for a in sys.argv[1:5])
TAG = "-mild" if "--mild" in sys.argv else ""
ROT, SCALE, SHEAR, SHIFT = (math.radians(10), 0.1, 0.15, 1.5 / 14) if "--mild" not in sys.argv else (math.radians(5), 0.05, 0.07, 0.75 / 14)
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))

meta = tasks.head([p.detach() for p in tasks.state.params], ways)
adam_v = tasks.head(list(tasks.state.adam_v), ways)
out = {}
for split in ("mirrored", "test"):
    t0 = time.time(); X, L = [], []
    gen = torch.Generator().manual_seed(seed)
    for drawn, scribbles in draw_chunks(tasks.images[split], split, ways, 1, count, seed):
        g = len(drawn)
        support = to_tensor(drawn[:, :ways, 0])  # [g, N, 1, 28, 28]
        extra = [warp(support.reshape(-1, 1, 28, 28), gen, ROT, SCALE, SHEAR, SHIFT).reshape(support.shape) for _ in range(copies)]
        support = torch.stack([support] + extra, 2).reshape(g, ways * (copies + 1), 1, 28, 28)
        labels = torch.arange(ways).repeat_interleave(copies + 1).expand(g, -1).contiguous()
        queries = torch.cat([to_tensor(drawn[:, :ways, 1]), to_tensor(drawn[:, ways, :1]), torch.from_numpy(scribbles)], 1)
        steps = tasks.defaults["steps"]
        order = np.ascontiguousarray(np.broadcast_to(np.arange(support.shape[1]), (steps, g, support.shape[1])))
        params, _, _ = inner_loop(tasks.spec, tasks.adam, grouped(meta, g), grouped(adam_v, g), tasks.state.adam_t, support, labels, order)
        for t in range(g):
            x, z = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways)
            X.append(x); L.append(z)
    out[split] = (np.stack(X), np.stack(L))
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/os/augment-{ways}x1-c{copies}{TAG}-{count}.npz", fit_x=out["mirrored"][0], fit_l=out["mirrored"][1], test_x=out["test"][0], test_l=out["test"][1])
