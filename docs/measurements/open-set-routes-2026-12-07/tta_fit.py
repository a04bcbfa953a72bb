import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from fit import run
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
run(f["mirrored_x"], f["test_x"], ways, "product 17 (the drawing)")
run(f["mirrored_m"], f["test_m"], ways, "17 averaged over the copies")
run(np.concatenate([f["mirrored_x"], f["mirrored_s"]], -1), np.concatenate([f["test_x"], f["test_s"]], -1), ways, "17 + their spread over the copies")
run(np.concatenate([f["mirrored_m"], f["mirrored_s"]], -1), np.concatenate([f["test_m"], f["test_s"]], -1), ways, "averaged 17 + spread")
