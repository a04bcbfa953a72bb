"""Experiment: continue the served model's Reptile with a "none" class (row 19) in every task: 19
characters plus drawings of other characters labelled none, so the init learns to fit a none class fast."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/main")
from tools.open_set_tasks import OpenSetTasks
from training.reptile import InnerAdam, meta_step
from training.tasks import TaskSampler, flatten_task, minibatch_order, to_tensor, with_rotations

torch.set_num_threads(1)
iters, step0, none_count, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tasks = OpenSetTasks(Path("/work/main/checkpoints/omniglot-20w1s/checkpoint.pt"), Path("/work/main/static/models/omniglot-20w"), Path("/work/shared/data/omniglot"))
spec, state = tasks.spec, tasks.state.copy()
sampler = TaskSampler(with_rotations(tasks.images["train"]))
adam = InnerAdam(lr=0.00046)
rng = np.random.default_rng(0)
G, W, S = 3, 19, 9
t0 = time.time()
for it in range(iters):
    drawn, _ = sampler.sample(rng, G, W + none_count, S)
    images, labels = flatten_task(drawn[:, :W])
    others = drawn[:, W:, 0]  # one drawing each of none_count other characters
    images = np.concatenate([images, others], 1)
    labels = np.concatenate([labels, np.full((G, none_count), W)], 1)
    order = minibatch_order(rng, G, images.shape[1], 15, 12)
    frac = 1 - it / iters
    losses = meta_step(spec, adam, state, to_tensor(images), torch.from_numpy(labels), order, step0 * frac)
    if it % 200 == 0:
        print(it, round(time.time() - t0), [round(float(x), 3) for x in losses.mean(1)], flush=True)
torch.save({"params": state.params, "adam_v": state.adam_v, "adam_t": state.adam_t}, out)
print("saved", out, round(time.time() - t0), flush=True)
