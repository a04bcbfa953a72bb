"""The benchmarks run as `python -m benchmarks.<name>` and reject bad flags clearly; evaluate names a bad checkpoint."""

import ast
import pkgutil
from pathlib import Path

import pytest
from helpers import run_cli, run_python

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
HELPERS = {"local_server", "open_set_analysis"}  # imported by the benchmarks, not run
NAMES = sorted(m.name for m in pkgutil.iter_modules([str(BENCHMARKS)]) if m.name not in HELPERS)


def test_the_package_docstring_lists_every_benchmark():
    listing = ast.get_docstring(ast.parse((BENCHMARKS / "__init__.py").read_text()))
    assert len(NAMES) >= 8
    for name in NAMES:
        assert f"\n  {name} " in listing, name


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_runs_as_a_module(name):
    result = run_python("-m", f"benchmarks.{name}", "--help", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "Traceback" not in result.stderr


def test_meta_train_throughput_names_the_bad_flag():
    for flag in ("--iters", "--rounds"):
        result = run_python("-m", "benchmarks.meta_train_throughput", flag, "0", timeout=300)
        assert result.returncode == 2 and f"argument {flag}: expected a positive integer" in result.stderr


def test_evaluate_says_a_file_is_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello\n")
    result = run_cli(["evaluate", "--checkpoint", str(garbage)], timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --checkpoint: cannot read checkpoint" in result.stderr
    assert "not a checkpoint of this project" in result.stderr
