import sys, numpy as np, torch
torch.manual_seed(0); torch.set_num_threads(1)
def load(p):
    d = np.load(p); return {k: torch.from_numpy(d[k]).float() for k in d.files}
def auroc(neg, pos):
    neg, pos = np.asarray(neg), np.asarray(pos)
    allv = np.concatenate([neg, pos]); r = allv.argsort().argsort() + 1.0
    return (r[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2) / (len(neg) * len(pos))
def targets(d, ways):
    T, Q = d["inputs"].shape[:2]
    y = torch.zeros(T, Q); y[:, ways:] = 1; return y
class Head(torch.nn.Module):
    def __init__(s, blocks=4, C=64, mode="full"):
        super().__init__()
        s.mode = mode
        s.w = torch.nn.Parameter(torch.zeros(blocks, C, dtype=torch.float32))
        s.P = torch.nn.Parameter(torch.eye(C, dtype=torch.float32).repeat(blocks, 1, 1))
        n = 1 + blocks * 2 * (3 if mode == "full" else 1)
        s.lin = torch.nn.Linear(n, 1)
        s.mu = None
    def feats(s, d):
        w = torch.nn.functional.softplus(s.w + 0.5413)  # softplus(0.5413)=1
        if s.mode == "fixed": w = torch.ones_like(w)
        dot = torch.einsum("tqbcf,bf->tqbc", d["dot"], w)
        qq = torch.einsum("tqbf,bf->tqb", d["qq"], w)
        mm = torch.einsum("tqbcf,bf->tqbc", d["mm"], w)
        cos = dot / (qq[..., None] * mm).clamp_min(1e-24).sqrt()
        P = s.P if s.mode != "fixed" else torch.eye(64, dtype=torch.float32).repeat(4, 1, 1)
        qp = torch.einsum("tqbf,bfg->tqbg", d["qpool"], P); mp = torch.einsum("tqbcf,bfg->tqbcg", d["mpool"], P)
        pcos = torch.nn.functional.cosine_similarity(mp, qp[..., None, :], dim=-1)
        msp = 1 - d["logits"].softmax(-1).max(-1).values
        cols = [msp[..., None]]
        for c, extra in ((cos, True), (pcos, True)):
            top = c.topk(2, dim=-1).values
            cols.append(1 - top[..., 0])
            if s.mode == "full":
                cols.append(top[..., 0] - top[..., 1])
                cols.append(top[..., 0] - c.mean(-1))
        return torch.cat(cols, -1)
    def forward(s, d):
        x = s.feats(d)
        if s.mu is None:
            s.mu = x.reshape(-1, x.shape[-1]).mean(0).detach(); s.sd = x.reshape(-1, x.shape[-1]).std(0).detach()
        return s.lin((x - s.mu) / s.sd)[..., 0]
def fit(head, fits, steps, lr=0.02):
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for i in range(steps):
        loss = 0
        for d, ways in fits:
            y = targets(d, ways); z = head(d)
            wt = torch.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
            loss = loss + (torch.nn.functional.binary_cross_entropy_with_logits(z, y, weight=wt))
        opt.zero_grad(); loss.backward(); opt.step()
    return head
def report(name, head, tests):
    with torch.no_grad():
        for d, ways, tag in tests:
            z = head(d).numpy()
            print(f"{name:12s} {tag}: novel {auroc(z[:, :ways].ravel(), z[:, ways]):.4f} scribble {auroc(z[:, :ways].ravel(), z[:, ways+1]):.4f}")
sets = [s.split(":") for s in sys.argv[1:]]
fits = [(load(f"/tmp/os/mirrored-{s}.npz"), int(s.split("x")[0])) for s, _ in sets]
tests = [(load(f"/tmp/os/test-{s}.npz"), int(s.split("x")[0]), s) for s, _ in sets]
for mode, steps in (("fixed", 150), ("full", 150), ("weights", 200)):
    if mode == "fixedfull": continue
    head = Head(mode="full" if mode == "full" else ("fixed" if mode == "fixed" else "weights"))
    if mode == "weights": head.mode = "weights"
    fit(head, fits, steps)
    report(mode, head, tests)
