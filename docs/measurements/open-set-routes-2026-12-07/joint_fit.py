import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from tools.calibration import auroc
import fit as shared_fit
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
run = lambda X, T, label: shared_fit.run(X, T, ways, label, width=30)
mx, tx, mj, tj = f["mirrored_x"], f["test_x"], f["mirrored_j"], f["test_j"]
names = [f"b{b}" for b in range(1,5)] + [f"b{b}p" for b in range(1,5)]
names = names + [n + "z" for n in names]
print("joint inputs alone (novel AUROC):", " ".join(f"{n}:{auroc(tj[:, :ways, i].ravel(), tj[:, ways, i]):.3f}" for i, n in enumerate(names)))
run(mx[..., :9], tx[..., :9], "product 9")
run(mx, tx, "product 17")
run(mj, tj, "joint 16")
run(np.concatenate([mx[..., :1], mj], -1), np.concatenate([tx[..., :1], tj], -1), "msp + joint 16")
run(np.concatenate([mx, mj], -1), np.concatenate([tx, tj], -1), "product 17 + joint 16")
run(np.concatenate([mx, mj[..., :8]], -1), np.concatenate([tx, tj[..., :8]], -1), "product 17 + joint 8 cos")
run(np.concatenate([mx, mj[..., 8:]], -1), np.concatenate([tx, tj[..., 8:]], -1), "product 17 + joint 8 z")
