import sys, numpy as np
from pathlib import Path
sys.path.insert(0, "/work/main")
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
from bundle import load_bundle
from bundle.open_set import unknown_scores, threshold
from tools.open_set_tasks import character_images, draw_chunks
b = load_bundle(Path("/work/main/static/models/omniglot-20w"), threads=1)
d = np.load("/tmp/os/test-5x1-1000.npz")
scores = unknown_scores(d["inputs"].reshape(-1, 9).astype(np.float64), b.open_set).reshape(1000, 7)
images = character_images(b, Path("/work/shared/data/omniglot"), 0)
drawn = np.concatenate([c for c, _ in draw_chunks(images["test"], "test", 5, 1, 1000, 12)])
logits = d["logits"]
unflagged = np.flatnonzero(scores[:, 5] <= threshold(b.open_set, "5x1")); order = np.random.default_rng(0).choice(unflagged, 12, replace=False) if "--random" in sys.argv else np.argsort(scores[:, 5])[:12]; print(len(unflagged), "unflagged")
thr = threshold(b.open_set, "5x1")
print("threshold", thr, "novel flagged", (scores[:, 5] > thr).mean(), "inset flagged", (scores[:, :5] > thr).mean())
fig, axes = plt.subplots(3, 8, figsize=(12, 5.2))
for i, t in enumerate(order):
    c = int(logits[t, 5].argmax())
    ax1, ax2 = axes[i // 4, (i % 4) * 2], axes[i // 4, (i % 4) * 2 + 1]
    ax1.imshow(drawn[t, c, 0, 0], cmap="gray_r"); ax1.set_title("class drawing", fontsize=8)
    ax2.imshow(drawn[t, 5, 0, 0], cmap="gray_r"); ax2.set_title(f"novel, score {scores[t, 5]:.2f}", fontsize=8)
    for a in (ax1, ax2): a.set_xticks([]); a.set_yticks([])
fig.suptitle(("12 of the novel characters not flagged, drawn at random," if "--random" in sys.argv else "The 12 novel characters least flagged") + " of 1,000 held-out 5-way 1-shot tasks, beside the class drawing they were matched to")
fig.tight_layout(); fig.savefig("/tmp/os/hardest_random.png" if "--random" in sys.argv else "/tmp/os/hardest.png", dpi=90)
