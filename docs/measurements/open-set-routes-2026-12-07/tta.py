"""Experiment: test-time augmentation of the query. Each query and A mildly warped copies of it are
scored as the product scores a query (each in one batch with the support set, the bank's z-scores
beside); the 17 inputs are averaged over the copies (and their spread kept), so a score reads how
steadily the query matches its best class under small changes of the drawing."""
import sys, time, math
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from warp import warp
from tools.open_set_tasks import OpenSetTasks
from training.tasks import to_tensor
torch.set_num_threads(1)
ways, shots, fit_count, test_count, copies = (int(a) for a in sys.argv[1:6])
ROT, SCALE, SHEAR, SHIFT = math.radians(5), 0.05, 0.07, 0.75 / 14
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
bank = to_tensor(tasks.reference_bank(60))

out = {}
for split, count in (("mirrored", fit_count), ("test", test_count)):
    t0 = time.time(); X, M, S = [], [], []
    gen = torch.Generator().manual_seed(5)
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, 21):
        for t in range(len(support)):
            q = queries[t]
            allq = torch.cat([q] + [warp(q, gen, ROT, SCALE, SHEAR, SHIFT) for _ in range(copies)])  # [(A+1) q, ...]
            x, _ = tasks.score_inputs(params, t, support[t], labels[t], allq, ways, bank)
            x = x.reshape(copies + 1, len(q), -1)
            X.append(x[0]); M.append(x.mean(0)); S.append(x.std(0))
    out[split] = [np.stack(a) for a in (X, M, S)]
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/h/tta-{ways}x{shots}-A{copies}-{fit_count}-{test_count}.npz", **{f"{s}_{k}": v for s, a in out.items() for k, v in zip(("x", "m", "s"), a)})
