"""`reptile-demo serve` on a bundle whose sha256 sums match but whose files are bad (edited by hand
with model.json's sums updated, a bad export): it exits with code 2 and one line naming the file
and what is wrong with it, never a traceback, and never starts serving."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bundle import BundleError, load_bundle
from bundle.files import sha256_file
from server.app import create_app
from server.config import DEFAULT_MODEL, Settings

ROOT = Path(__file__).resolve().parent.parent


def corrupt_bundle(root: Path, name: str, change) -> Path:
    """A copy of the default bundle changed by change(folder, manifest), every sha256 then made to match."""
    folder = root / name
    shutil.copytree(DEFAULT_MODEL, folder)
    manifest = json.loads((folder / "model.json").read_text())
    change(folder, manifest)
    for file, entry in manifest["files"].items():
        entry["sha256"], entry["bytes"] = sha256_file(folder / file), (folder / file).stat().st_size
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


def write(file: str, data: bytes):
    return lambda folder, manifest: (folder / file).write_bytes(data)


def truncate(file: str, keep: int):
    return lambda folder, manifest: (folder / file).write_bytes((folder / file).read_bytes()[:keep])


def swap(file: str, other: str):
    return lambda folder, manifest: shutil.copyfile(folder / other, folder / file)


def rename_graph_input(old: str, new: str, in_manifest: bool):
    """predict.onnx's input `old` renamed to `new` (and in model.json too when in_manifest)."""

    def change(folder, manifest):
        onnx = pytest.importorskip("onnx")
        model = onnx.load(str(folder / "predict.onnx"))
        for value in model.graph.input:
            value.name = new if value.name == old else value.name
        for node in model.graph.node:
            node.input[:] = [new if name == old else name for name in node.input]
        onnx.save(model, str(folder / "predict.onnx"))
        if in_manifest:
            for entry in manifest["graphs"]["predict"]["inputs"]:
                entry["name"] = new if entry["name"] == old else entry["name"]

    return change


def declare(graph: str, tensor: str, **fields):
    """model.json's declaration of one graph input changed (the graph file left as it is)."""

    def change(folder, manifest):
        next(e for e in manifest["graphs"][graph]["inputs"] if e["name"] == tensor).update(fields)

    return change


def nan_weight(folder, manifest):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "weights.safetensors"))
    tensors["fc.bias"][0] = np.nan
    save_file(tensors, str(folder / "weights.safetensors"))


def drop_graph(folder, manifest):
    del manifest["graphs"]["train_step_adam"]


# name -> (change, words the one line must hold)
CASES = {
    "garbage_graph": (write("predict.onnx", b"not a graph" * 50), ["predict.onnx", "not an ONNX graph", "Protobuf"]),
    "empty_graph": (write("train_step_adam.onnx", b""), ["train_step_adam.onnx", "not an ONNX graph"]),
    "truncated_graph": (truncate("train_step_sgd.onnx", 4000), ["train_step_sgd.onnx", "not an ONNX graph"]),
    "graph_of_another_role": (
        swap("predict.onnx", "train_step_sgd.onnx"),
        ["predict.onnx", "predict graph's signature", "17 inputs", "model.json declares 15"],
    ),
    "renamed_input": (
        rename_graph_input("images", "pixels", in_manifest=False),
        ["predict.onnx", "input 15 is 'pixels'", "model.json declares 'images'"],
    ),
    "renamed_input_declared_too": (
        rename_graph_input("images", "pixels", in_manifest=True),
        ["model.json", "predict graph's signature", "'pixels' where this reader needs 'images'"],
    ),
    "wrong_declared_dtype": (
        declare("train_step_sgd", "labels", dtype="int32"),
        ["train_step_sgd.onnx", "labels is int64", "model.json declares int32"],
    ),
    "fixed_batch_declared": (
        declare("predict", "images", shape=[2, 1, 28, 28]),
        ["predict.onnx", "images is float32", "declares float32[2, 1, 28, 28]"],
    ),
    "graph_not_declared": (drop_graph, ["model.json declares no train_step_adam graph"]),
    "garbage_weights": (write("weights.safetensors", b"\xff" * 4096), ["weights.safetensors", "cannot read"]),
    "truncated_weights": (truncate("weights.safetensors", 5000), ["weights.safetensors", "cannot read"]),
    "nan_weights": (nan_weight, ["fc.bias", "weights.safetensors", "NaN or infinity"]),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {name: corrupt_bundle(root, name, change) for name, (change, _) in CASES.items()}


def test_a_corrupt_bundle_with_matching_sha256_exits_2_with_one_line(bundles):
    # all at once: each process exits at startup, before it would listen (a wrong exit would serve: timeout)
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--model", str(folder), "--port", "9", "--workers", "1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for name, folder in bundles.items()
    }
    failures = []
    for name, process in processes.items():
        try:
            out, err = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        lines = [line for line in err.splitlines() if line.strip()]
        words = CASES[name][1]
        ok = (
            process.returncode == 2
            and len(lines) == 1
            and lines[0].startswith(f"reptile-demo: cannot serve {bundles[name]}")
            and all(word in lines[0] for word in words)
            and "Traceback" not in err + out
        )
        if not ok:
            failures.append(f"{name}: rc {process.returncode}, stderr {err!r}, expected the words {words}")
    assert not failures, "\n".join(failures)


def test_the_reader_names_the_file(bundles):
    with pytest.raises(BundleError, match=r"predict\.onnx is not an ONNX graph onnxruntime can load"):
        load_bundle(bundles["garbage_graph"]).open_graphs()
    bundle = load_bundle(bundles["graph_of_another_role"])
    bundle.session("train_step_sgd")  # a good graph still opens on its own
    with pytest.raises(BundleError, match=r"predict\.onnx does not match the predict graph's signature"):
        bundle.session("predict")
    load_bundle(DEFAULT_MODEL).open_graphs()  # the committed bundle passes every check


def test_other_asgi_servers_log_why_the_bundle_is_not_served(bundles, caplog):
    app = create_app(Settings(model=bundles["renamed_input"], workers=1))
    with caplog.at_level(logging.ERROR, logger="reptile_demo"), TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 503 and "input 15 is 'pixels'" in r.json()["detail"]
    assert any("is not usable" in record.getMessage() and "pixels" in record.getMessage() for record in caplog.records)


def test_missing_page_templates_exit_2_with_one_line(tmp_path):
    web = tmp_path / "web"
    (web / "templates").mkdir(parents=True)
    (web / "templates" / "index.html").write_text("<p>only the demo page</p>")
    process = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "9", "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "OMP_NUM_THREADS": "1", "REPTILE_DEMO_WEB_DIR": str(web)},
    )
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert process.returncode == 2, process.stderr
    assert lines == [f"reptile-demo: cannot serve the pages: {web / 'templates'} lacks embed.html"]
