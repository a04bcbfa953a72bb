"""Experiment: class-agnostic density of the query's pooled block features (Mahalanobis) as a 10th input."""
import sys, time
import numpy as np, torch
sys.path.insert(0, "/work/main")
from pathlib import Path
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
from bundle.open_set import score_inputs
torch.set_num_threads(1)
ways, shots, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
out = {}
for split in ("mirrored", "test", "train"):
    t0 = time.time(); X, P, M = [], [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, 7):
        for task in range(len(support)):
            q, n = len(queries[task]), len(support[task])
            b = query_batches(support[task], queries[task]).reshape(1, -1, *support.shape[2:])
            with torch.no_grad():
                blocks, _, logits = embed(tasks.spec, [p[task:task+1] for p in params], b, batches=q)
            flat = [h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks]
            feats = torch.cat(flat, -1).double().numpy()
            probs = logits[0].reshape(n + 1, q, -1)[-1].double().softmax(-1).numpy()
            shapes = [list(h.shape[1:]) for h in blocks]
            X.append(score_inputs(feats, probs, labels[task].numpy(), ways, shapes))
            pooled = [h.reshape(n + 1, q, h.shape[1], -1).mean(-1)[-1].double().numpy() for h in blocks]  # query rows [q, 64]
            P.append(np.concatenate(pooled, -1))
            # meta (unadapted) network pooled feats of the query in the same batch
            with torch.no_grad():
                mb, _, _ = embed(tasks.spec, [p[None] for p in _] if False else [p[None] for p in tasks.head([x.detach() for x in tasks.state.params], ways)], b, batches=q)
            M.append(np.concatenate([h.reshape(n + 1, q, h.shape[1], -1).mean(-1)[-1].double().numpy() for h in mb], -1))
    out[split] = dict(inputs=np.stack(X), pooled=np.stack(P), meta=np.stack(M))
    print(split, time.time() - t0, flush=True)
np.savez(f"/tmp/h/maha-{ways}x{shots}-{count}.npz", **{f"{s}_{k}": v for s, d in out.items() for k, v in d.items()})
