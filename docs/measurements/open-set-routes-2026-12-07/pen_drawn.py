"""The shipped open-set score on pen-drawn held-out characters (Omniglot trajectories rendered with the demo's pen)."""
import sys, json, time, numpy as np, torch
sys.path.insert(0, "/work/main")
from pathlib import Path
from benchmarks.stroke_replay import load_drawings
from tools.strokes import render, SIZE, SCALE, EPSILON_PX
from preprocessing import to_model_input, decode_png_ink
from tools.open_set_tasks import OpenSetTasks, open_set_figures
from bundle.open_set import unknown_scores, threshold, setting_key
from tools.calibration import softmax
torch.set_num_threads(1)
ways, shots, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
data = Path("../shared/data/omniglot")
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), data)
seed = tasks.bundle.manifest["provenance"]["training_config"]["seed"]
chars = load_drawings(data, seed, 56, 20, EPSILON_PX)
pack = lambda strokes: [np.concatenate([s / SIZE * SCALE, np.zeros((len(s), 1))], 1).ravel().tolist() for s in strokes]
pen = np.stack([[to_model_input(render(pack(st))) for _, st in d] for _, d in chars]).astype(np.float32)[:, :, None] * 255
png = np.stack([[to_model_input(decode_png_ink(p)) for p, _ in d] for _, d in chars]).astype(np.float32)[:, :, None] * 255
print(len(chars), "characters", pen.shape, flush=True)
sec = json.load(open("static/models/omniglot-20w/model.json"))["open_set"]
for name, images in (("pen", pen), ("png", png)):
    tasks.images["test"] = images
    t0 = time.time(); X, L = [], []
    for _, params, support, labels, queries in tasks.adapted("test", ways, shots, count, 11):
        for t in range(len(support)):
            x, z = tasks.score_inputs(params, t, support[t], labels[t], queries[t], ways)
            X.append(x); L.append(z)
    X, L = np.stack(X), np.stack(L)
    s = unknown_scores(X, sec); lim = threshold(sec, setting_key(ways, shots))
    f = open_set_figures(softmax(L), s, s > lim, ways)
    print(name, f"{ways}x{shots}", json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items() if k != "flagged_ci95"}), f"{time.time()-t0:.0f}s", flush=True)
    np.savez(f"/tmp/h/pen-{name}-{ways}x{shots}.npz", inputs=X, logits=L)
