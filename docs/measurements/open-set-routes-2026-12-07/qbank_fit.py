import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from tools.calibration import auroc
from fit import run
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
mx, tx, mq, tq = f["mirrored_x"], f["test_x"], f["mirrored_q"], f["test_q"]
kinds = ["max", "top5", "mean", "max-class"]
for k, kind in enumerate(kinds):
    print(kind, "alone per view (novel AUROC):", " ".join(f"{auroc(tq[:, :ways, 4 * v + k].ravel(), tq[:, ways, 4 * v + k]):.3f}" for v in range(8)))
run(mx, tx, ways, "product 17")
for k, kind in enumerate(kinds):
    sel = [4 * v + k for v in range(8)]
    run(np.concatenate([mx, mq[..., sel]], -1), np.concatenate([tx, tq[..., sel]], -1), ways, f"17 + 8 {kind}")
run(np.concatenate([mx, mq], -1), np.concatenate([tx, tq], -1), ways, "17 + all 32")
