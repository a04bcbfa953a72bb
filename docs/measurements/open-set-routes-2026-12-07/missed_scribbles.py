"""The scribbles the product's score does not flag at 5-way 1-shot, each beside the class drawing it
was matched to (1,000 held-out tasks, seed 12; run from the repository root, ~2 min of one core)."""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, ".")
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bundle.open_set import threshold, unknown_scores
from tools.open_set_tasks import OpenSetTasks

torch.set_num_threads(1)
WAYS, TASKS, SEED = 5, 1000, 12
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
section = tasks.bundle.open_set
limit = threshold(section, f"{WAYS}x1")
missed = []  # (score, scribble, matched class drawing)
inset_flags = []
for _, params, support, labels, queries in tasks.adapted("test", WAYS, 1, TASKS, SEED):
    for t in range(len(support)):
        x, logits = tasks.score_inputs(params, t, support[t], labels[t], queries[t], WAYS)
        s = unknown_scores(x, section)
        inset_flags.append(s[:WAYS] > limit)
        if s[WAYS + 1] <= limit:
            matched = int(logits[WAYS + 1].argmax())
            missed.append((s[WAYS + 1], queries[t][WAYS + 1, 0].numpy(), support[t][labels[t] == matched][0, 0].numpy()))
print(f"threshold {limit:.3f}: {len(missed)} of {TASKS} scribbles not flagged, in-set flagged {100 * np.mean(inset_flags):.1f} %")
missed.sort(key=lambda m: m[0])
columns = 12
rows = -(-len(missed) // columns)
fig, axes = plt.subplots(2 * rows, columns, figsize=(columns * 0.95, rows * 2.1))
for ax in axes.ravel():
    ax.axis("off")
for i, (score, scribble, drawing) in enumerate(missed):
    top, bottom = axes[2 * (i // columns), i % columns], axes[2 * (i // columns) + 1, i % columns]
    top.imshow(scribble, cmap="gray_r", vmin=0, vmax=1)
    top.set_title(f"{score:.2f}", fontsize=8)
    bottom.imshow(drawing, cmap="gray_r", vmin=0, vmax=1)
fig.suptitle(f"Scribbles not flagged at 5-way 1-shot (score <= {limit:.2f}), above the class drawing each was matched to", fontsize=9)
fig.tight_layout()
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "missed-scribbles.png", dpi=100)
