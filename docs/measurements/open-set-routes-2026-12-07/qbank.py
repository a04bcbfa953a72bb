"""Experiment: how alike the query is to the bank's references (other characters), beside how alike
it is to its best class. A query that matches random training characters as well as it matches its
class is likely none of them; the product already predicts the bank after adaptation, so these
inputs would cost no extra run."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from bundle.open_set import _views, _class_cosines
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
from training.tasks import to_tensor
torch.set_num_threads(1)
ways, shots, fit_count, test_count = (int(a) for a in sys.argv[1:5])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
R = int(sys.argv[5]) if len(sys.argv) > 5 else 60
bank = to_tensor(tasks.reference_bank(R))

def unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)

def query_bank_inputs(params, t, support, labels, queries):
    n, q = len(support), len(queries)
    p = [x[t:t + 1] for x in params]
    with torch.no_grad():
        bb, _, _ = embed(tasks.spec, p, torch.cat([support, bank])[None])
        qb, _, _ = embed(tasks.spec, p, query_batches(support, queries).reshape(1, -1, *support.shape[1:]), batches=q)
    shapes = [list(h.shape[1:]) for h in bb]
    bf = torch.cat([h.reshape(n + R, -1) for h in bb], -1).double().numpy()
    qf = torch.cat([h.reshape(n + 1, q, -1).transpose(0, 1) for h in qb], -1).double().numpy()  # [q, n+1, D]
    cols = []
    for bv, qv in zip(_views(bf, shapes), _views(qf, shapes)):
        refs = unit(bv[n:])  # [R, d]
        cls = _class_cosines(qv[:, :n], qv[:, -1], labels, ways).max(-1)  # [q]
        qr = unit(qv[:, -1]) @ refs.T  # [q, R]
        top = np.sort(qr, -1)[:, ::-1]
        cols += [top[:, 0], top[:, :5].mean(-1), qr.mean(-1), top[:, 0] - cls]
    return np.stack(cols, -1)  # [q, 2L * 4]

out = {}
for split, count in (("mirrored", fit_count), ("test", test_count)):
    t0 = time.time(); X, QX = [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, 21):
        for t in range(len(support)):
            x, _ = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways, bank)
            X.append(x); QX.append(query_bank_inputs(params, t, support[t], labels[t].numpy(), queries[t]))
    out[split] = [np.stack(a) for a in (X, QX)]
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/h/qbank-{ways}x{shots}-R{R}-{fit_count}-{test_count}.npz", **{f"{s}_{k}": v for s, a in out.items() for k, v in zip(("x", "q"), a)})
