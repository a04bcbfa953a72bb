"""Export a checkpoint as a *bundle* (docs/bundle.md): ONNX graphs + weights + manifest + model card.

The bundle is what the server (onnxruntime) and the browser (onnxruntime-web) run; neither
imports torch. The files are written into a fresh directory beside the target and swapped in
whole, so a reader sees the old bundle or the new one. The graphs come from
training/onnx_graphs.py, model.json from training/manifest.py, the card from bundle/card.py.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bundle.card import write_card_and_manifest
from bundle.files import sha256_file
from bundle.format import (
    ADAM_V_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    GRAPH_FILES,
    MANIFEST_FILE,
    TEST_CLASSES_FILE,
    WEIGHTS_FILE,
)

from .checkpoint import load_checkpoint
from .manifest import build_manifest, test_classes_entry
from .model import ModelSpec
from .onnx_graphs import export_graph


def write_weights(path: Path, spec: ModelSpec, payload: dict) -> None:
    """weights.safetensors: each parameter and its carried Adam v as float32."""
    from safetensors.numpy import save

    names = spec.param_names()
    tensors = {}
    for name, p, v in zip(names, payload["params"], payload["adam_v"], strict=False):
        tensors[name] = p.detach().cpu().to(torch.float32).contiguous().numpy()
        tensors[ADAM_V_PREFIX + name] = v.detach().cpu().to(torch.float32).contiguous().numpy()
    data = save(tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    path.write_bytes(_sorted_metadata(data))


def _sorted_metadata(data: bytes) -> bytes:
    """The safetensors file with its metadata keys in sorted order: safetensors (0.8) writes them in
    a per-process random order, so without this the same checkpoint exports different bytes."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])  # the header is padded with spaces to a multiple of 8
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode().ljust(length)
    if len(text) != length:
        raise RuntimeError("safetensors header changed length when its metadata was sorted")
    return data[:8] + text + data[8 + length :]


def _make_readable(directory: Path) -> None:
    """mkdtemp makes a 0700 directory (and safetensors may write 0600 files): give them the usual
    modes under the current umask, so a web server can serve the bundle."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for child in directory.iterdir():
        child.chmod(0o666 & ~umask)


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging directory to out_dir, moving an existing bundle aside first."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        out_dir.replace(old)
        staging.replace(out_dir)
        shutil.rmtree(old)
    else:
        staging.replace(out_dir)


def export_bundle(
    checkpoint: Path,
    out_dir: Path,
    name: str | None = None,
    force: bool = False,
    progress=print,
    adaptation: dict | None = None,
) -> dict:
    """Write the bundle for checkpoint into out_dir (created; an existing bundle there is replaced
    only with force). adaptation: default steps / lr and the measurement that chose them
    ("chosen_by"); without it the training config's evaluation settings. Returns the manifest."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    payload = load_checkpoint(checkpoint)
    spec = ModelSpec(**payload["spec"])
    if len(payload["adam_v"]) != len(payload["params"]):
        raise ValueError(f"{checkpoint} has no Adam state for every parameter")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_FILE).exists():
            raise ValueError(f"--out {out_dir} is a non-empty directory that is not a bundle; choose another")
        if not force:
            raise ValueError(f"--out {out_dir} already holds a bundle; pass --force to replace it")
    run_config_path = checkpoint.parent / "config.json"
    run_config = json.loads(run_config_path.read_text()) if run_config_path.exists() else None
    name = name or out_dir.name

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_weights(staging / WEIGHTS_FILE, spec, payload)
        for kind, filename in GRAPH_FILES.items():
            started = time.perf_counter()
            export_graph(spec, kind, staging / filename)
            if progress:
                progress(
                    f"{filename}: {(staging / filename).stat().st_size} bytes, {time.perf_counter() - started:.0f} s"
                )
        written = [WEIGHTS_FILE, *GRAPH_FILES.values()]
        if (checkpoint.parent / TEST_CLASSES_FILE).is_file():
            shutil.copyfile(checkpoint.parent / TEST_CLASSES_FILE, staging / TEST_CLASSES_FILE)
            written.append(TEST_CLASSES_FILE)
        files = {f: {"sha256": sha256_file(staging / f), "bytes": (staging / f).stat().st_size} for f in written}
        manifest = build_manifest(payload, checkpoint, name, files, run_config, adaptation)
        if TEST_CLASSES_FILE in files:
            count = len((staging / TEST_CLASSES_FILE).read_text().split())
            manifest["test_classes"] = test_classes_entry(count, payload["config"])
        write_card_and_manifest(staging, manifest)
        _make_readable(staging)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if manifest["warning"] and progress:
        progress(f"WARNING: {manifest['warning']}")
    return manifest
