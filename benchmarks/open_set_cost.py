"""What the "none of these" score costs a request: Bundle.adapt of the same tasks with the bundle's
open-set section and with it removed, alternating, side by side in one run.

With the section, each query's batch (the support set, then the query) also returns every block's
output, and bundle/open_set.py scores it; transductive prediction also runs those per-query batches.

    python -m benchmarks.open_set_cost [--bundle static/models/omniglot-20w] [--settings 5x1,10x5]
        [--repeats 20] [--transductive]
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.open_set_study import parse_settings, positive
from tools.fit_open_set import write_open_set

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "static" / "models" / "omniglot-20w"


def time_adapt(bundle, support, labels, queries, transductive: bool) -> float:
    """Seconds of one Bundle.adapt with the bundle's defaults."""
    started = time.perf_counter()
    bundle.adapt(support, labels, queries, transductive=transductive)
    return time.perf_counter() - started


def main(argv=None) -> int:
    """Time both bundles on the same random tasks, alternating, and print the ratio per setting."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="a bundle with an open_set section")
    parser.add_argument(
        "--settings", type=parse_settings, default=parse_settings("5x1,10x1,10x5"), help="WAYSxSHOTS,..."
    )
    parser.add_argument("--repeats", type=positive, default=20, help="timed adaptations per bundle and setting")
    parser.add_argument("--transductive", action="store_true", help="transductive prediction (default: per query)")
    args = parser.parse_args(argv)
    from bundle import BundleError, load_bundle

    try:
        scored = load_bundle(args.bundle, threads=1)
    except BundleError as error:
        parser.error(f"argument --bundle: {error}")
    if scored.open_set is None:
        parser.error(f"argument --bundle: {args.bundle} has no open_set section")
    with tempfile.TemporaryDirectory() as scratch:
        plain_dir = Path(scratch) / "plain"
        shutil.copytree(args.bundle, plain_dir)
        write_open_set(plain_dir, None)
        plain = load_bundle(plain_dir, threads=1)
        rng = np.random.default_rng(0)
        mode = "transductive" if args.transductive else "non-transductive"
        print(f"Bundle.adapt, {mode}, one onnxruntime thread, median of {args.repeats}, alternating:")
        for ways, shots in args.settings:
            support = rng.random((ways * shots, 1, 28, 28), dtype=np.float32)
            labels = np.repeat(np.arange(ways), shots)
            queries = rng.random((ways + 2, 1, 28, 28), dtype=np.float32)
            times = {"plain": [], "scored": []}
            for bundle in (plain, scored):  # warm-up: sessions, caches
                time_adapt(bundle, support, labels, queries, args.transductive)
            for _ in range(args.repeats):
                for name, bundle in (("plain", plain), ("scored", scored)):
                    times[name].append(time_adapt(bundle, support, labels, queries, args.transductive))
            plain_ms, scored_ms = (1000 * float(np.median(times[k])) for k in ("plain", "scored"))
            print(
                f"  {ways}x{shots}, {ways + 2} queries: without the score {plain_ms:.1f} ms, with it "
                f"{scored_ms:.1f} ms ({scored_ms / plain_ms:.2f}x)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
