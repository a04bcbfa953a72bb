"""The benchmarks run as `python -m benchmarks.<name>` and reject bad flags clearly; evaluate names a bad checkpoint."""

import ast
import json
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, run_python
from server_helpers import bundle_with_open_set

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SERVED = ROOT / "static" / "models" / "omniglot-20w"
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


def test_open_set_measures_the_served_bundle_quickly(omniglot_dir, tmp_path):
    if "open_set" not in json.loads((SERVED / "model.json").read_text()):
        pytest.skip("the served bundle has no open_set section")
    out = tmp_path / "open_set.json"
    result = run_python("-m", "benchmarks.open_set", "--quick", "--data-dir", str(omniglot_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    figures = record["settings"]["5x1"]
    assert list(record["settings"]) == ["5x1"] and figures["tasks"] == 20
    assert all(0 <= figures["flagged"][kind] <= 1 for kind in ("inset", "novel", "scribble"))
    assert 0.5 < figures["auroc_scribble"] <= 1 and 0.8 < figures["accuracy"] <= 1 and 0 <= figures["ece"] < 1
    assert len(record["goals"]) == 5 and result.stdout.count(" -> ") == 5  # each goal printed met / not met


def test_open_set_says_a_bundle_has_no_open_set_section(tmp_path):
    bundle = bundle_with_open_set(SERVED, tmp_path / "bundle", section=None)
    result = run_python("-m", "benchmarks.open_set", "--quick", "--bundle", str(bundle))
    assert result.returncode == 2 and "has no open_set section" in result.stderr and "Traceback" not in result.stderr


def test_open_set_draws_the_tasks_of_the_open_set_fit(omniglot_dir):
    """The same seed gives the benchmark and tools/open_set_tasks.py (the fit's held-out figures) the same tasks."""
    from benchmarks.open_set import draw_tasks
    from tools.open_set_tasks import OpenSetTasks

    tasks = OpenSetTasks(ROOT / "checkpoints" / "omniglot-20w1s" / "checkpoint.pt", SERVED, omniglot_dir)
    ours = draw_tasks(tasks.images["test"], 3, 2, 12, seed=1)
    for _, _, support, labels, queries in tasks.adapted("test", 3, 2, 12, seed=1):
        for task in range(len(support)):
            our_support, our_labels, our_queries = next(ours)
            assert np.array_equal(our_support, support[task].numpy()) and np.array_equal(our_labels, labels[task])
            assert np.array_equal(our_queries, queries[task].numpy())
    assert next(ours, None) is None


def test_algorithm_cost_quick_prints_a_row_per_algorithm_with_mib(tmp_path):
    """--quick on a narrow model; learn2learn's rows say how to install it (none at --peer-path)."""
    import importlib.util

    out = tmp_path / "cost.json"
    args = ["--quick", "--filters", "4", "--repeats", "1", "--peer-path", str(tmp_path), "--out", str(out)]
    result = run_python("-m", "benchmarks.algorithm_cost", *args, timeout=300)
    assert result.returncode == 0, result.stderr
    header, *rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.startswith(("algorithm ", "reptile ", "fomaml ", "maml "))
    ]
    assert header[:6] == ["algorithm", "k", "|", "project", "ms", "MiB"]
    assert [row[:2] for row in rows] == [["reptile", "5"], ["fomaml", "5"], ["maml", "5"]]
    assert all(float(row[3]) > 0 and float(row[4]) >= 0 for row in rows)  # project ms and MiB
    record = json.loads(out.read_text())["rows"]
    for row in record:
        assert row["project"]["seconds"] > 0 and row["project"]["mib"] >= 0
        if importlib.util.find_spec("learn2learn") is None:
            assert row["learn2learn"] == {"error": "not installed: make bench-extra"}
    # --replot prints the saved rows and draws them, measuring nothing
    png = tmp_path / "cost.png"
    replot = run_python("-m", "benchmarks.algorithm_cost", "--replot", str(out), "--plot", str(png), timeout=120)
    assert replot.returncode == 0, replot.stderr
    assert [line.split()[:2] for line in replot.stdout.splitlines()] == [
        ["reptile", "5"],
        ["fomaml", "5"],
        ["maml", "5"],
    ]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out.write_text("{}")
    broken = run_python("-m", "benchmarks.algorithm_cost", "--replot", str(out), timeout=120)
    assert broken.returncode != 0 and "--replot" in broken.stderr and "Traceback" not in broken.stderr


def test_algorithm_cost_peer_model_is_the_project_cnn():
    """learn2learn's side trains an nn.Module with training/model.py's layers and weights: same logits."""
    import torch

    from benchmarks.algorithm_cost import peer_model
    from training.model import ModelSpec, forward, init_params
    from training.reptile import grouped

    spec = ModelSpec(ways=5, filters=8)
    params = init_params(spec, torch.Generator().manual_seed(0))
    images = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    expected = forward(spec, grouped(params, 1), images[None])[0]
    assert torch.allclose(peer_model(spec, params)(images), expected, atol=1e-5, rtol=1e-5)


def test_learning_curves_meta_step_overrides_every_curve(tmp_path):
    """--meta-step and --meta-step-final replace the preset's (FOMAML and MAML at their own step)."""
    from benchmarks.learning_curves import curve_configs, parse_arguments

    flags = ["--presets", "omniglot-5w1s", "--algorithms", "fomaml,maml", "--out", str(tmp_path)]
    configs = curve_configs(parse_arguments([*flags, "--meta-step", "5", "--meta-step-final", "0.5"]))
    assert {(c.meta_step, c.meta_step_final) for c in configs.values()} == {(5.0, 0.5)}
    assert {c.meta_step for c in curve_configs(parse_arguments(flags)).values()} == {1.0}


def test_learning_curves_trains_resumes_and_plots(tmp_path, omniglot_dir):
    """Two curves (the ablation's g1 by Reptile and by FOMAML) x two seeds on a tiny budget: a folder
    holding runs needs --resume; then an interrupted run resumes, the rest start, and the table and
    plot come out; run again, every run is found finished."""
    from benchmarks.learning_curves import curve_configs, parse_arguments
    from training.train import train

    runs = tmp_path / "runs"
    flags = ["--presets", "ablation-g1", "--algorithms", "reptile,fomaml", "--seeds", "0,1", "--meta-iters", "3"]
    flags += ["--eval-interval", "2", "--eval-tasks", "2", "--out", str(runs), "--data-dir", str(omniglot_dir)]
    flags += ["--no-progress"]
    configs = curve_configs(parse_arguments(flags))
    assert list(configs) == ["ablation-g1-reptile", "ablation-g1-fomaml"]
    assert configs["ablation-g1-fomaml"].algorithm == "fomaml" and configs["ablation-g1-fomaml"].meta_iters == 3
    interrupted = runs / "ablation-g1-fomaml" / "seed-1"
    train(configs["ablation-g1-fomaml"].updated(seed=1), interrupted, omniglot_dir, progress=False, stop_after=1)

    refused = run_python("-m", "benchmarks.learning_curves", *flags, timeout=300)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr and "Traceback" not in refused.stderr
    plot = tmp_path / "curves.png"
    result = run_python("-m", "benchmarks.learning_curves", *flags, "--resume", "--plot", str(plot), timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{interrupted}: resuming at 1" in result.stdout and plot.stat().st_size > 10_000
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("ablation-g1-")]
    assert [row[:3] for row in rows] == [["ablation-g1-reptile", "2", "3"], ["ablation-g1-fomaml", "2", "3"]]
    assert [s["from_iteration"] for s in json.loads((interrupted / "config.json").read_text())["sessions"]] == [0, 1]
    again = run_python("-m", "benchmarks.learning_curves", *flags, "--resume", timeout=300)
    assert again.returncode == 0 and again.stdout.count(": finished (3 meta-iterations)") == 4
    report = run_python("-m", "benchmarks.learning_curves", *flags, "--no-train", timeout=300)
    assert report.returncode == 0 and "finished" not in report.stdout
    assert [line.split()[:3] for line in report.stdout.splitlines() if line.startswith("ablation-g1-")] == [
        row[:3] for row in rows
    ]
    absent = run_python("-m", "benchmarks.learning_curves", *flags[:4], "--seeds", "0,5", *flags[6:], "--no-train")
    assert absent.returncode == 2 and "argument --no-train:" in absent.stderr and "seed-5 holds no run" in absent.stderr


def test_learning_curves_reports_run_folders_trained_elsewhere(tmp_path):
    """--runs LABEL=DIR,DIR: one curve a label, a seed a folder, the estimates' own time taken out."""

    def run_folder(name, rows):
        folder = tmp_path / name
        folder.mkdir()
        lines = [{"iteration": it, "test_accuracy": acc, "elapsed_s": s, "eval_s": 1.0} for it, acc, s in rows]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        return str(folder)

    a0 = run_folder("a0", [(100, 0.5, 10.0), (200, 0.7, 21.0)])
    a1 = run_folder("a1", [(100, 0.6, 12.0), (200, 0.9, 23.0)])
    b = run_folder("b", [(100, 0.4, 5.0)])
    plot = tmp_path / "curves.png"
    result = run_python(
        "-m", "benchmarks.learning_curves", "--runs", f"two={a0},{a1}", "--runs", f"one={b}", "--plot", str(plot)
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("two ", "one "))}
    assert rows["two"][1:5] == ["2", "200", "80.00", "±"] and rows["two"][-1] == "0.1050"  # (21 - 1 + 23 - 1) / 2 / 200
    assert rows["one"][1:4] == ["1", "100", "40.00"] and plot.stat().st_size > 10_000
    for flags, message in (
        (["--runs", "two"], "argument --runs: expected LABEL=DIR"),
        (["--runs", f"x={a0}", "--runs", f"x={b}"], "argument --runs: the label 'x' is given twice"),
        (["--runs", f"x={tmp_path / 'none'}"], "none holds no run to report"),
        (["--runs", f"x={a0}", "--presets", "ablation-g1"], "not allowed with argument"),
        (["--presets", "ablation-g1"], "argument --out: required with --presets"),
    ):
        refused = run_python("-m", "benchmarks.learning_curves", *flags)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, flags


def test_learning_curves_names_a_bad_flag():
    for flags, message in (
        (["--presets", "omniglot-7w"], "argument --presets: unknown presets: omniglot-7w"),
        (["--presets", "ablation-g1", "--seeds", "0,0"], "argument --seeds: expected distinct integers"),
        (["--presets", "ablation-g1", "--algorithms", "mmal"], "argument --algorithms: unknown algorithms: mmal"),
    ):
        result = run_python("-m", "benchmarks.learning_curves", *flags, "--out", "unused", timeout=300)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
