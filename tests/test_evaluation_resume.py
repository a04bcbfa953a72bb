"""An interrupted evaluation continues from its progress file (`evaluate --partial`) with exactly
the tasks and scores of an uninterrupted one."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import ENV, ROOT, SMALL, SPEC, run_cli

from training.evaluate import evaluate_modes
from training.model import init_params
from training.reptile import MetaState
from training.tasks import TaskSampler


class Interrupted(Exception):
    pass


def _evaluate(**kwargs) -> dict:
    params = init_params(SPEC, torch.Generator().manual_seed(0))
    state = MetaState(params, [torch.full_like(p, 1e-4) for p in params], 5)
    images = np.random.default_rng(0).integers(0, 256, (12, 4, 1, 28, 28), dtype=np.uint8)
    return evaluate_modes(
        SPEC,
        state,
        TaskSampler(images),
        np.random.default_rng(7),
        ways=3,
        shots=1,
        inner_batch=3,
        inner_iters=4,
        lr=0.01,
        tasks=25,
        chunk=10,
        **kwargs,
    )


def test_resumed_evaluation_equals_an_uninterrupted_one():
    whole = _evaluate()
    saved = []

    def stop_after_two_chunks(progress):
        saved.append(json.loads(json.dumps(progress)))  # through JSON, as the progress file keeps it
        if len(saved) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        _evaluate(on_chunk=stop_after_two_chunks)
    assert [len(p["scores"]["transductive"]) for p in saved] == [10, 20]
    counted = []
    resumed = _evaluate(resume=saved[-1], progress=counted.append)
    assert resumed == whole
    assert counted == [20, 5]  # the bar starts at the tasks already done
    assert len({r.accuracy for r in whole.values()} | {0.0, 1.0}) > 2  # not a degenerate all-or-nothing score


def test_tasks_computed_in_parts_score_as_one_chunk(monkeypatch):
    """On a CPU a chunk's tasks are fine-tuned in parts of CPU_TASKS_AT_ONCE: the same tasks and draws."""
    import training.evaluate

    monkeypatch.setattr(training.evaluate, "CPU_TASKS_AT_ONCE", 100)
    whole = _evaluate()
    monkeypatch.setattr(training.evaluate, "CPU_TASKS_AT_ONCE", 3)  # parts of 3, 3, 3 and 1 in a chunk of 10
    assert _evaluate() == whole


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, omniglot_dir):
    out = tmp_path_factory.mktemp("run")
    trained = run_cli(
        [
            "train",
            "--data-dir",
            str(omniglot_dir),
            "--out",
            str(out),
            "--meta-iters",
            "2",
            "--eval-interval",
            "1000",
            *SMALL,
        ]
    )
    assert trained.returncode == 0, trained.stderr
    return out / "checkpoint.pt"


def _evaluate_args(checkpoint, omniglot_dir, report, *extra):
    return [
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        "--data-dir",
        str(omniglot_dir),
        "--tasks",
        "400",
        "--shots",
        "1",
        "--eval-iters",
        "5",
        "--split",
        "both",
        "--json",
        str(report),
        "--no-progress",
        *extra,
    ]


def _tasks_saved(partial) -> int:
    """Tasks of the test split in the progress file so far (it is replaced atomically, never torn)."""
    if not partial.exists():
        return 0
    saved = json.loads(partial.read_text())["splits"].get("test")
    return len(saved["scores"]["transductive"]) if saved else 0


def test_killed_evaluation_continues_from_its_progress_file(tmp_path, checkpoint, omniglot_dir):
    whole = run_cli(_evaluate_args(checkpoint, omniglot_dir, tmp_path / "whole.json"))
    assert whole.returncode == 0, whole.stderr

    partial = tmp_path / "progress.json"
    args = _evaluate_args(checkpoint, omniglot_dir, tmp_path / "resumed.json", "--partial", str(partial))
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not _tasks_saved(partial) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the evaluation ended before it could be killed"
    assert 0 < _tasks_saved(partial) < 400
    assert json.loads(partial.read_text())["devices"] == ["cpu"]

    resumed = run_cli(args)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == whole.stdout  # the same figures, both splits and modes
    assert json.loads((tmp_path / "resumed.json").read_text()) == json.loads((tmp_path / "whole.json").read_text())
    assert not partial.exists()  # removed once the results are out


def test_bad_progress_or_report_paths_are_refused_before_the_work(tmp_path, checkpoint, omniglot_dir):
    partial = tmp_path / "progress.json"
    partial.write_text(json.dumps({"key": {"seed": 2, "tasks": 400}, "devices": ["cpu"], "splits": {}}))
    refused = run_cli(_evaluate_args(checkpoint, omniglot_dir, tmp_path / "r.json", "--partial", str(partial)))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "argument --partial:" in refused.stderr and "seed" in refused.stderr and "delete the file" in refused.stderr
    partial.write_text("not json")
    garbled = run_cli(_evaluate_args(checkpoint, omniglot_dir, tmp_path / "r.json", "--partial", str(partial)))
    assert garbled.returncode == 2 and "not an evaluation progress file" in garbled.stderr
    assert partial.read_text() == "not json"  # nothing of the user's is overwritten
    unwritable = run_cli(
        _evaluate_args(
            checkpoint, omniglot_dir, tmp_path / "r.json", "--partial", str(tmp_path / "no-such-dir" / "progress.json")
        )
    )
    assert unwritable.returncode == 2 and "argument --partial: cannot write" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr
    no_json_dir = run_cli(_evaluate_args(checkpoint, omniglot_dir, tmp_path / "no-such-dir" / "r.json"))
    assert no_json_dir.returncode == 2 and "argument --json: directory" in no_json_dir.stderr
