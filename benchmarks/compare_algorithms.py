"""Reptile vs first-order MAML vs no meta-learning, at the same small budget, in one table.

Runs (or resumes) three short runs of the omniglot-5w5s preset into --out, then evaluates each
on the same held-out tasks (5-way 1-shot and 5-shot, both prediction modes), and prints a
markdown table (also written to --out/compare.json). Every number is measured by this script.

  .venv/bin/python benchmarks/compare_algorithms.py --meta-iters 10000 --joint-steps 20000 --tasks 1000
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/data/omniglot"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs/compare")
    parser.add_argument("--meta-iters", default="10000")
    parser.add_argument("--joint-steps", default="20000")
    parser.add_argument("--tasks", default="1000")
    args = parser.parse_args()
    common = ["--data-dir", args.data_dir, "--no-progress", "--resume"]
    runs = {  # table row -> (run directory under --out, command)
        "Reptile": (
            "reptile",
            ["train", "--preset", "omniglot-5w5s", "--meta-iters", args.meta_iters, "--eval-interval", args.meta_iters],
        ),
        "FOMAML": (
            "fomaml",
            [
                "train",
                "--preset",
                "omniglot-5w5s",
                "--algorithm",
                "fomaml",
                "--meta-iters",
                args.meta_iters,
                "--eval-interval",
                args.meta_iters,
            ],
        ),
        "No meta-learning (joint training)": (
            "joint",
            ["baseline", "--preset", "omniglot-5w5s", "--steps", args.joint_steps],
        ),
    }
    rows = []
    for name, (directory, command) in runs.items():
        out = args.out / directory
        run([*command, "--out", str(out), *common])
        reset = ["--adam-state", "reset"] if command[0] == "baseline" else []
        for shots, batch in (("1", "5"), ("5", "6")):
            report = out / f"eval-{shots}shot.json"
            if not report.exists():
                run(
                    [
                        "evaluate",
                        "--checkpoint",
                        str(out / "checkpoint.pt"),
                        "--data-dir",
                        args.data_dir,
                        "--tasks",
                        args.tasks,
                        "--shots",
                        shots,
                        "--eval-batch",
                        batch,
                        "--json",
                        str(report),
                        "--no-progress",
                        *reset,
                    ]
                )
            for r in json.loads(report.read_text())["results"]:
                rows.append({"algorithm": name, **r})
    (args.out / "compare.json").write_text(json.dumps(rows, indent=2))
    print("| algorithm | 5w1s | 5w1s transductive | 5w5s | 5w5s transductive |\n|---|---|---|---|---|")
    for name in runs:
        cells = {
            (r["shots"], r["transductive"]): f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}"
            for r in rows
            if r["algorithm"] == name
        }
        print(f"| {name} | {cells[(1, False)]} | {cells[(1, True)]} | {cells[(5, False)]} | {cells[(5, True)]} |")


if __name__ == "__main__":
    main()
