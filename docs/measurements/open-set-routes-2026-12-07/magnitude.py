"""Experiment: does the size of the query's response (which the cosines ignore) separate scribbles?
Per query: the product's 9 inputs, and for the class the model picks: |log| of the ratio of ink
(sum of the model input) and of each block's pooled and flat feature norms, query over class mean."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from bundle.open_set import score_inputs
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
torch.set_num_threads(1)
ways, shots, count, seed = (int(a) for a in sys.argv[1:5])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
out = {}
for split in ("mirrored", "test"):
    t0 = time.time(); X, E = [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, seed):
        for t in range(len(support)):
            sup, lab, qs = support[t], labels[t].numpy(), queries[t]
            q, n = len(qs), len(sup)
            b = query_batches(sup, qs).reshape(1, -1, *sup.shape[1:])
            with torch.no_grad():
                blocks, _, logits = embed(tasks.spec, [p[t:t+1] for p in params], b, batches=q)
            flat = [h.reshape(n + 1, q, -1).transpose(0, 1).double().numpy() for h in blocks]  # [q, n+1, D]
            pooled = [h.reshape(n + 1, q, h.shape[1], -1).mean(-1).transpose(0, 1).double().numpy() for h in blocks]
            probs = logits[0].reshape(n + 1, q, -1)[-1].double().softmax(-1).numpy()
            shapes = [list(h.shape[1:]) for h in blocks]
            X.append(score_inputs(np.concatenate(flat, -1), probs, lab, ways, shapes))
            pick = probs.argmax(-1)  # [q]
            onehot = np.eye(ways)[lab] / np.bincount(lab, minlength=ways)
            ink_s = sup.reshape(n, -1).sum(-1).double().numpy(); ink_q = qs.reshape(q, -1).sum(-1).double().numpy()
            cols = [np.abs(np.log(ink_q / (onehot.T @ ink_s)[pick]))]
            for feats in pooled + flat:
                means = np.einsum("sc,qsd->qcd", onehot, feats[:, :-1])  # [q, C, D]
                nq = np.linalg.norm(feats[:, -1], axis=-1); nm = np.linalg.norm(means[np.arange(q), pick], axis=-1)
                cols.append(np.abs(np.log(nq / nm)))
            E.append(np.stack(cols, -1))
    out[split] = (np.stack(X), np.stack(E))
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/os/magnitude-{ways}x{shots}-{count}.npz", fit_x=out["mirrored"][0], fit_e=out["mirrored"][1], test_x=out["test"][0], test_e=out["test"][1])
