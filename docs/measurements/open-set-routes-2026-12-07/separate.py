"""Experiment: how easily the demo's adaptation tells the query apart from each class. Each query is
added to the support set as one more class, and the meta-learned weights are adapted the demo's way
(the same steps, lr and carried Adam state) on those N*K + 1 rows. A query of an in-set character is
hard to pull apart from its class's drawings in 10 steps; a novel character or a scribble is easy.
Inputs per query: the query row's final loss, its probability of the class the product predicts,
that class's support rows' probability of the query's class, and the whole batch's final loss."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from tools.open_set_tasks import OpenSetTasks, embed
from training.reptile import grouped, inner_loop
from training.tasks import to_tensor
torch.set_num_threads(1)
ways, shots, fit_count, test_count = (int(a) for a in sys.argv[1:5])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
bank = to_tensor(tasks.reference_bank(60))
steps = int(sys.argv[5]) if len(sys.argv) > 5 else tasks.defaults["steps"]

def separation_inputs(support, labels, queries, predicted):
    """support [g, n, ...], labels [g, n], queries [g, q, ...], predicted [g, q] -> [g, q, 5]."""
    g, n = labels.shape
    q = queries.shape[1]
    images = torch.cat([support[:, None].expand(-1, q, *support.shape[1:]), queries[:, :, None]], 2).reshape(g * q, n + 1, *support.shape[2:])
    rows = torch.cat([labels[:, None].expand(-1, q, -1), torch.full((g, q, 1), ways)], 2).reshape(g * q, n + 1)
    meta = tasks.head([p.detach() for p in tasks.state.params], ways + 1)
    v = tasks.head(list(tasks.state.adam_v), ways + 1)
    order = np.ascontiguousarray(np.broadcast_to(np.arange(n + 1), (steps, g * q, n + 1)))
    params, _, losses = inner_loop(tasks.spec, tasks.adam, grouped(meta, g * q), grouped(v, g * q), tasks.state.adam_t, images, rows, order)
    with torch.no_grad():
        _, _, logits = embed(tasks.spec, params, images)
    lp = logits.log_softmax(-1).reshape(g, q, n + 1, ways + 1)
    pred = torch.as_tensor(predicted)
    own = -lp[:, :, n, ways]
    to_pred = lp[:, :, n, :ways].gather(-1, pred[..., None])[..., 0].exp()
    in_pred = (labels[:, None, :] == pred[..., None])  # [g, q, n]
    back = (lp[:, :, :n, ways].exp() * in_pred).sum(-1) / in_pred.sum(-1)
    mean_loss = -lp.gather(-1, rows.reshape(g, q, n + 1, 1))[..., 0].mean(-1)
    return torch.stack([own, to_pred, back, mean_loss, losses[-1].reshape(g, q)], -1).double().numpy()

out = {}
for split, count in (("mirrored", fit_count), ("test", test_count)):
    t0 = time.time(); X, S = [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, 21):
        predicted = []
        for t in range(len(support)):
            x, logits = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways, bank)
            X.append(x); predicted.append(logits.argmax(-1))
        S.append(separation_inputs(support, labels, queries, np.stack(predicted)))
    out[split] = [np.stack(X), np.concatenate(S)]
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/h/separate-{ways}x{shots}-s{steps}-{fit_count}-{test_count}.npz", **{f"{s}_{k}": v for s, a in out.items() for k, v in zip(("x", "s"), a)})
