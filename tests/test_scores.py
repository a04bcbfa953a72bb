"""The summary of per-task scores (training/scores.py), and `evaluate-bundle` measuring and recording a
bundle without importing torch (it runs the bundle's ONNX graphs)."""

import math
import shutil
import textwrap

import numpy as np
import pytest
from helpers import ROOT, run_python

from training.scores import MODE_NAMES, summarize


def test_summary_is_the_mean_with_a_normal_95_percent_interval():
    scores = [0.2, 0.4, 1.0, 0.6]
    result = summarize(scores)
    assert result.accuracy == pytest.approx(0.55) and result.tasks == 4
    assert result.ci95 == pytest.approx(1.96 * np.std(scores, ddof=1) / 2)
    assert str(result) == f"55.00 ± {100 * result.ci95:.2f} % (4 tasks)"
    assert math.isnan(summarize([1.0]).ci95)  # one task: no interval
    assert MODE_NAMES == {False: "non_transductive", True: "transductive"}


def test_evaluate_bundle_runs_without_torch(tmp_path, omniglot_dir):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROOT / "static" / "models" / "omniglot-20w", bundle)
    script = textwrap.dedent(
        f"""
        import sys
        from training.cli import main

        args = ["evaluate-bundle", "--bundle", {str(bundle)!r}, "--data-dir", {str(omniglot_dir)!r}]
        code = main([*args, "--tasks", "2", "--settings", "2x1,3x1", "--jobs", "2", "--record", "--no-progress"])
        torch = sorted(name for name in sys.modules if name.split(".")[0] == "torch")
        print("torch modules:", torch)
        sys.exit(code or bool(torch))
        """
    )
    result = run_python("-c", script, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "torch modules: []" in result.stdout and "2-way 1-shot, transductive: " in result.stdout
    assert "recorded in" in result.stdout
