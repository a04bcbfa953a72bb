import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from tools.calibration import auroc
from fit import run
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
mx, tx, ms, ts = f["mirrored_x"], f["test_x"], f["mirrored_s"], f["test_s"]
names = ["own loss", "P(pred | query)", "P(query | pred's rows)", "mean loss", "last step loss"]
for k, name in enumerate(names):
    a = auroc(ts[:, :ways, k].ravel(), ts[:, ways, k]); sa = auroc(ts[:, :ways, k].ravel(), ts[:, ways + 1, k])
    print(f"{name:24} alone: novel {max(a, 1 - a):.3f} scribble {max(sa, 1 - sa):.3f}")
logit = lambda p: np.log(np.clip(p, 1e-12, 1)) - np.log(np.clip(1 - p, 1e-12, 1))
def feats(s):
    return np.stack([np.log(s[..., 0] + 1e-9), logit(s[..., 1]), logit(s[..., 2]), np.log(s[..., 3] + 1e-9), np.log(s[..., 4] + 1e-9)], -1)
run(mx, tx, ways, "product 17")
run(feats(ms), feats(ts), ways, "separation 5 alone")
run(np.concatenate([mx, feats(ms)], -1), np.concatenate([tx, feats(ts)], -1), ways, "17 + separation 5")
