"""tools/plot_evaluations.py draws `training evaluate --json` reports under labels and names a bad --reports."""

import json

import pytest
from helpers import run_python

from tools.plot_evaluations import collect, main


def report(path, accuracies, ci=0.01):
    """An evaluation report as `python -m training evaluate --json` writes it: (transductive, accuracy) rows."""
    results = [
        {"split": "test", "transductive": t, "ways": 5, "shots": 1, "accuracy": a, "ci95": ci, "tasks": 1000}
        for t, a in accuracies
    ]
    path.write_text(json.dumps({"checkpoint": "c.pt", "iteration": 10, "results": results}))
    return path


def test_reports_are_grouped_by_label_and_evaluation_mode(tmp_path):
    a0 = report(tmp_path / "a0.json", [(False, 0.90), (True, 0.95)])
    a1 = report(tmp_path / "a1.json", [(False, 0.92), (True, 0.97)])
    b0 = report(tmp_path / "b0.json", [(False, 0.80)])
    panels = collect([("A", [a0, a1]), ("B", [b0])])
    assert list(panels) == [
        "5-way 1-shot, test characters, non-transductive",
        "5-way 1-shot, test characters, transductive",
    ]
    assert panels["5-way 1-shot, test characters, non-transductive"] == {
        "A": [(90.0, 1.0), (92.0, 1.0)],
        "B": [(80.0, 1.0)],
    }
    assert panels["5-way 1-shot, test characters, transductive"] == {"A": [(95.0, 1.0), (97.0, 1.0)]}


def test_the_command_prints_the_means_and_writes_the_figure(tmp_path, capsys):
    a0 = report(tmp_path / "a0.json", [(False, 0.90)])
    a1 = report(tmp_path / "a1.json", [(False, 0.94)])
    png = tmp_path / "accuracy.png"
    main(["--reports", f"Reptile={a0},{a1}", "--reports", f"MAML={a0}", "--plot", str(png)])
    printed = capsys.readouterr().out
    assert "Reptile" in printed and "mean  92.00 %" in printed and "90.00 ± 1.00, 94.00 ± 1.00" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "contents, says",
    [
        (None, "cannot be read"),
        ("{not json", "not a report"),
        ('{"results": []}', "not a report"),
        ('{"results": [{"accuracy": 0.9}]}', "not a report"),
        ("[1, 2]", "not a report"),
    ],
)
def test_a_bad_report_is_named_under_its_flag(tmp_path, contents, says):
    path = tmp_path / "r.json"
    if contents is not None:
        path.write_text(contents)
    result = run_python("-m", "tools.plot_evaluations", "--reports", f"A={path}", "--plot", str(tmp_path / "p.png"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument --reports: {path}: {says}" in result.stderr


@pytest.mark.parametrize("text", ["A=", "=r.json", "r.json"])
def test_a_malformed_label_is_named_under_its_flag(tmp_path, text):
    result = run_python("-m", "tools.plot_evaluations", "--reports", text, "--plot", str(tmp_path / "p.png"))
    assert result.returncode == 2 and "argument --reports: expected LABEL=JSON[,JSON...]" in result.stderr


def test_a_missing_plot_folder_is_named(tmp_path):
    path = report(tmp_path / "r.json", [(False, 0.9)])
    result = run_python(
        "-m", "tools.plot_evaluations", "--reports", f"A={path}", "--plot", str(tmp_path / "no" / "p.png")
    )
    assert result.returncode == 2 and "argument --plot: the folder" in result.stderr
