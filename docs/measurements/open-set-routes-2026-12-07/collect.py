"""Collect per-channel statistics of adapted features for a learned open-set head experiment."""
import sys, time
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, "/work/main")
from tools.open_set_tasks import OpenSetTasks, query_batches, embed

split, ways, shots, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(1)
tasks = OpenSetTasks(Path("/work/main/checkpoints/omniglot-20w1s/checkpoint.pt"), Path("/work/main/static/models/omniglot-20w"), Path("/work/shared/data/omniglot"))
out = {k: [] for k in ("inputs", "logits", "dot", "qq", "mm", "mm_pair", "qpool", "mpool")}
t0 = time.time()
for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, seed):
    for task in range(len(support)):
        x, z = tasks.score_inputs(params, task, support[task], labels[task], queries[task], ways)
        out["inputs"].append(x.astype(np.float32)); out["logits"].append(z.astype(np.float32))
        s, qs, lab = support[task], queries[task], labels[task]
        q, n = len(qs), len(s)
        batches = query_batches(s, qs).reshape(1, -1, *s.shape[1:])
        with torch.no_grad():
            blocks, _, _ = embed(tasks.spec, [p[task:task+1] for p in params], batches, batches=q)
        onehot = torch.nn.functional.one_hot(lab, ways).double()
        onehot = onehot / onehot.sum(0)
        dots, qqs, mms, pairs, qp, mp = [], [], [], [], [], []
        for h in blocks:
            C = h.shape[1]
            h = h.double().reshape(n + 1, q, C, -1).transpose(0, 1)  # [q, n+1, C, HW]
            sup, qu = h[:, :-1], h[:, -1]
            means = torch.einsum("sc,qsfh->qcfh", onehot, sup)  # [q, N, C, HW]
            dots.append(torch.einsum("qcfh,qfh->qcf", means, qu))
            qqs.append((qu * qu).sum(-1))
            mms.append((means * means).sum(-1))
            pairs.append(torch.einsum("qafh,qbfh->qabf", means, means))
            qp.append(qu.mean(-1)); mp.append(means.mean(-1))
        for k, v in (("dot", dots), ("qq", qqs), ("mm", mms), ("mm_pair", pairs), ("qpool", qp), ("mpool", mp)):
            out[k].append(torch.stack(v, 1).float().numpy())  # block axis 1
arrays = {k: np.stack(v) for k, v in out.items()}
np.savez(f"/tmp/os/{split}-{ways}x{shots}-{count}.npz", **arrays)
print(split, ways, shots, count, "done", time.time() - t0, {k: v.shape for k, v in arrays.items()})
