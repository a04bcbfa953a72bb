"""Experiment: a second network's features for the open-set score. The joint-training baseline
(the same 4-block network trained to classify all training characters at once) gives a generic
character embedding; each query's cosine with each class mean in it (flat and pooled per block), and
z-scores against the bank in the same batch, join the product's 17 inputs."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from bundle.open_set import _views, _class_cosines
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
from training.model import ModelSpec
from training.tasks import to_tensor
torch.set_num_threads(1)
ways, shots, fit_count, test_count = (int(a) for a in sys.argv[1:5])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
import os
if os.environ.get("STEPS"): tasks.defaults = {**tasks.defaults, "steps": int(os.environ["STEPS"])}
bank = to_tensor(tasks.reference_bank())
J = torch.load("runs/omniglot-20w-joint/checkpoint.pt", weights_only=False)["joint"]
jspec = ModelSpec(**J["spec"]); jparams = [torch.as_tensor(p)[None] for p in J["params"]]
R = len(bank)

def joint_inputs(support, labels, queries):
    rows = torch.cat([support, bank]); n, q = len(rows), len(queries)
    b = query_batches(rows, queries).reshape(1, -1, *rows.shape[1:])
    with torch.no_grad():
        blocks, _, _ = embed(jspec, jparams, b, batches=q)
    feats = torch.cat([h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks], -1).double().numpy()  # [q, n+1, D]
    shapes = [list(h.shape[1:]) for h in blocks]
    s = len(labels); cols_c, cols_z = [], []
    for v in _views(feats, shapes):  # [q, n+1, d]
        cos = _class_cosines(v[:, :s], v[:, -1], labels, ways)  # [q, C]
        ref = _class_cosines(v[:, :s], v[:, s:s + R].transpose(1, 0, 2), labels, ways)  # [R, q, C]
        z = (cos - ref.mean(0)) / (ref.std(0) + 1e-6)
        cols_c.append(1 - cos.max(-1)); cols_z.append(-z.max(-1))
    return np.stack(cols_c + cols_z, -1)

out = {}
for split, count in (("mirrored", fit_count), ("test", test_count)):
    t0 = time.time(); X, JX, P = [], [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, 21):
        for t in range(len(support)):
            x, logits = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways, bank)
            X.append(x); P.append(logits)
            JX.append(joint_inputs(support[t], labels[t].numpy(), queries[t]))
    out[split] = [np.stack(a) for a in (X, JX, P)]
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/h/joint-s{os.environ.get('STEPS', 10)}-{ways}x{shots}-{fit_count}-{test_count}.npz", **{f"{s}_{k}": v for s, a in out.items() for k, v in zip(("x", "j", "logits"), a)})
