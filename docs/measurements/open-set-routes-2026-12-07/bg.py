"""Experiment: a "none of these" class learned in the demo's adaptation from a fixed background set
(M training-character drawings, optional scribbles) beside the user's N classes; no meta-training."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/main")
from tools.open_set_tasks import OpenSetTasks, draw_chunks, embed, scribble
from tools.calibration import auroc
from bundle.open_set import score_inputs
from training.reptile import grouped, inner_loop
from training.tasks import flatten_task, to_tensor

torch.set_num_threads(1)
M, S, n_tasks, ways = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ckpt = sys.argv[5] if len(sys.argv) > 5 else None
tasks = OpenSetTasks(Path("/work/main/checkpoints/omniglot-20w1s/checkpoint.pt"), Path("/work/main/static/models/omniglot-20w"), Path("/work/shared/data/omniglot"))
if ckpt:
    saved = torch.load(ckpt)
    tasks.state.params, tasks.state.adam_v, tasks.state.adam_t = saved["params"], saved["adam_v"], saved["adam_t"]
spec, state = tasks.spec, tasks.state
rng = np.random.default_rng(123)
train = tasks.images["train"]
chars = rng.choice(len(train), M, replace=False)
bg = [to_tensor(train[c, rng.integers(20)][None])[0] for c in chars] if M else []
bg += [torch.from_numpy(scribble(rng))[None] for _ in range(S)]
bg = torch.stack(bg) if bg else None  # [M + S, 1, 28, 28]
B = 0 if bg is None else len(bg)
C = ways + (1 if B else 0)

def run(split, count):
    meta = tasks.head([p.detach() for p in state.params], C)
    v = tasks.head(list(state.adam_v), C)
    X, P, Z = [], [], []
    for drawn, scribbles in draw_chunks(tasks.images[split], split, ways, 1, count, 5):
        g = len(drawn)
        support, labels = flatten_task(drawn[:, :ways, :1])
        support, labels = to_tensor(support), torch.from_numpy(labels)
        queries = torch.cat([to_tensor(drawn[:, :ways, 1]), to_tensor(drawn[:, ways, :1]), torch.from_numpy(scribbles)], 1)
        if B:
            support = torch.cat([support, bg[None].expand(g, -1, -1, -1, -1)], 1)
            labels = torch.cat([labels, torch.full((g, B), ways, dtype=labels.dtype)], 1)
        n = support.shape[1]
        order = np.ascontiguousarray(np.broadcast_to(np.arange(n), (10, g, n)))
        params, _, _ = inner_loop(spec, tasks.adam, grouped(meta, g), grouped(v, g), state.adam_t, support, labels, order)
        q = queries.shape[1]
        for t in range(g):
            b = torch.cat([support[t].unsqueeze(1).expand(-1, q, -1, -1, -1), queries[t].unsqueeze(0)]).reshape(1, -1, *support.shape[2:])
            with torch.no_grad():
                blocks, _, logits = embed(spec, [p[t:t+1] for p in params], b, batches=q)
            flat = torch.cat([h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks], -1).double().numpy()
            logits = logits[0].reshape(n + 1, q, -1)[-1].double()
            prob = logits.softmax(-1).numpy()
            keep = list(range(ways)) + [n]  # real support rows (1 shot) and the query
            inset_p = logits[:, :ways].softmax(-1).numpy()
            x = score_inputs(flat[:, keep], inset_p, labels[t, :ways].numpy(), ways, [list(h.shape[1:]) for h in blocks])
            pn = prob[:, ways] if B else np.zeros(q)
            X.append(np.concatenate([x, pn[:, None]], 1)); Z.append(inset_p)
    return np.stack(X), np.stack(Z)

def fit(Xf, cols):
    y = np.zeros(Xf.shape[:2]); y[:, ways:] = 1
    x = Xf[..., cols].reshape(-1, len(cols))
    mu, sd = x.mean(0), x.std(0) + 1e-12
    xf = torch.tensor((x - mu) / sd); yt = torch.tensor(y.reshape(-1))
    w = torch.zeros(len(cols), dtype=torch.float64, requires_grad=True); b0 = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b0], max_iter=200)
    def closure():
        opt.zero_grad(); l = torch.nn.functional.binary_cross_entropy_with_logits(xf @ w + b0, yt) + 1e-4 * (w * w).sum(); l.backward(); return l
    opt.step(closure)
    return lambda X: ((X[..., cols] - mu) / sd) @ w.detach().numpy()

t0 = time.time()
Xf, _ = run("mirrored", n_tasks)
Xt, Zt = run("test", n_tasks)
acc = (Zt.argmax(-1)[:, :ways] == np.arange(ways)).mean()
res = {"msp": Xt[..., 0]}
if B:
    res["p_none"] = Xt[..., 9]
res["combo9"] = fit(Xf, list(range(9)))(Xt)
if B:
    res["combo10"] = fit(Xf, list(range(10)))(Xt)
line = f"M={M} S={S} {ways}x1 tasks={n_tasks} ckpt={ckpt} acc {acc:.4f}"
for k, s in res.items():
    line += f" | {k} novel {auroc(s[:, :ways].ravel(), s[:, ways]):.4f} scr {auroc(s[:, :ways].ravel(), s[:, ways+1]):.4f}"
print(line, f"({time.time()-t0:.0f}s)", flush=True)
