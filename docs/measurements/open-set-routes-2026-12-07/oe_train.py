"""Prototype: fine-tune the demo's checkpoint so that, after the demo's own adaptation, novel characters
get uniform predictions (outlier exposure, first-order through the adaptation) and in-set queries stay right."""
import sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, "/work/main")
from tools.open_set_tasks import OpenSetTasks, query_batches
from training.model import forward
from training.reptile import grouped, inner_loop
from training.tasks import TaskSampler, flatten_task, to_tensor, with_rotations

torch.set_num_threads(1)
iters, lam, beta, out = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
tasks = OpenSetTasks(Path("/work/main/checkpoints/omniglot-20w1s/checkpoint.pt"), Path("/work/main/static/models/omniglot-20w"), Path("/work/shared/data/omniglot"))
spec, state = tasks.spec, tasks.state
phi = [p.detach().clone() for p in state.params]
sampler = TaskSampler(with_rotations(tasks.images["train"]))
rng = np.random.default_rng(0)
opt = torch.optim.Adam(phi, lr=beta)
G, M = 4, 2
t0 = time.time()
for it in range(iters):
    ways = [5, 10, 3, 8][it % 4]
    drawn, _ = sampler.sample(rng, G, ways + M, 2)
    support, labels = flatten_task(drawn[:, :ways, :1])
    support, labels = to_tensor(support), torch.from_numpy(labels)
    queries = torch.cat([to_tensor(drawn[:, :ways, 1]), to_tensor(drawn[:, ways:, 0])], 1)  # [G, ways + M, ...]
    rows = [i % spec.ways for i in range(ways)]
    meta = [p.detach() for p in phi[:-2]] + [phi[-2].detach()[rows], phi[-1].detach()[rows]]
    v = tasks.head(list(state.adam_v), ways)
    order = np.ascontiguousarray(np.broadcast_to(np.arange(ways), (10, G, ways)))
    adapted, _, _ = inner_loop(spec, tasks.adam, grouped(meta, G), grouped(v, G), state.adam_t, support, labels, order)
    leaves = [p.detach().requires_grad_() for p in adapted]
    loss = 0
    for g in range(G):
        q = queries.shape[1]
        b = query_batches(support[g], queries[g]).reshape(1, -1, *support.shape[2:])
        logits = forward(spec, [p[g:g+1] for p in leaves], b, batches=q)[0].reshape(ways + 1, q, ways)[-1]
        logp = logits.log_softmax(-1)
        loss = loss + F.nll_loss(logp[:ways], torch.arange(ways)) + lam * (-logp[ways:].mean(-1)).mean()
    grads = torch.autograd.grad(loss / G, leaves)
    opt.zero_grad()
    for p, gr, i in zip(phi, grads, range(len(phi))):
        gsum = gr.sum(0)
        if i >= len(phi) - 2:
            full = torch.zeros_like(p); full.index_add_(0, torch.tensor(rows), gsum); gsum = full
        p.grad = gsum
    opt.step()
    if it % 100 == 0:
        print(it, round(time.time() - t0), float(loss) / G, flush=True)
    if (it + 1) % 1000 == 0 or it + 1 == iters:
        torch.save([p.detach() for p in phi], out)
