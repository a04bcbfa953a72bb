import sys, numpy as np, torch
from pathlib import Path
sys.path.insert(0, "/work/main")
from tools.open_set_tasks import OpenSetTasks
from tools.calibration import auroc
torch.set_num_threads(1)
tasks = OpenSetTasks(Path("/work/main/checkpoints/omniglot-20w1s/checkpoint.pt"), Path("/work/main/static/models/omniglot-20w"), Path("/work/shared/data/omniglot"))
if sys.argv[1] != "base":
    tasks.state.params = torch.load(sys.argv[1])
n = int(sys.argv[2])
def run(split, ways, count):
    X, Z = [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, 1, count, 5):
        for t in range(len(support)):
            x, z = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways)
            X.append(x); Z.append(z)
    return np.stack(X), np.stack(Z)
for ways in (5, 10):
    Xf, _ = run("mirrored", ways, n)
    Xt, Zt = run("test", ways, n)
    y = np.zeros(Xf.shape[:2]); y[:, ways:] = 1
    mu, sd = Xf.reshape(-1, 9).mean(0), Xf.reshape(-1, 9).std(0)
    xf = torch.tensor((Xf.reshape(-1, 9) - mu) / sd); yt = torch.tensor(y.reshape(-1))
    w = torch.zeros(9, dtype=torch.float64, requires_grad=True); b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)
    def closure():
        opt.zero_grad(); l = torch.nn.functional.binary_cross_entropy_with_logits(xf @ w + b, yt) + 1e-4 * (w * w).sum(); l.backward(); return l
    opt.step(closure)
    s = ((Xt - mu) / sd) @ w.detach().numpy()
    acc = (Zt[:, :ways].argmax(-1) == np.arange(ways)).mean()
    print(f"{sys.argv[1]} {ways}x1: acc {acc:.4f} msp novel {auroc(Xt[:, :ways, 0].ravel(), Xt[:, ways, 0]):.4f} combo novel {auroc(s[:, :ways].ravel(), s[:, ways]):.4f} scribble {auroc(s[:, :ways].ravel(), s[:, ways+1]):.4f}", flush=True)
