import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from tools.calibration import auroc
import fit as shared_fit
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
names = ["ink"] + [f"pooled{b}" for b in range(1, 5)] + [f"flat{b}" for b in range(1, 5)]
fe, te = f["fit_e"], f["test_e"]
for i, nm in enumerate(names):
    s = te[..., i]
    print(f"{nm:8} alone: novel {auroc(s[:, :ways].ravel(), s[:, ways]):.3f} scribble {auroc(s[:, :ways].ravel(), s[:, ways + 1]):.3f}")
def combo(cols, label):
    X = np.concatenate([f["fit_x"], fe[..., cols]], -1); T = np.concatenate([f["test_x"], te[..., cols]], -1)
    shared_fit.run(X, T, ways, label, width=28, digits=3)
combo([], "the 9 inputs")
combo([0], "+ ink")
combo([1, 2, 3, 4], "+ pooled norms")
combo([5, 6, 7, 8], "+ flat norms")
combo(list(range(9)), "+ all")
