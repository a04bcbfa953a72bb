"""Opening a bundle's files safely: model.json and the weights with every file's sha256 verified, and an
onnxruntime session per graph whose inputs and outputs are checked against model.json. Both readers
(bundle/reader.py for classification, bundle/regression.py for regression) start here.

numpy, safetensors, onnxruntime and the standard library only; never torch.
"""

import json
from pathlib import Path

import numpy as np

from . import open_set
from .files import sha256_file
from .format import MANIFEST_FILE, check_format
from .signature import signature_problem


class BundleError(Exception):
    """The bundle is missing, malformed, of another format version or head rule, or its files do
    not match the sha256 sums in its manifest."""


def read_verified(path: Path) -> tuple:
    """model.json (format and open-set section checked) and the weights, every file's sha256 verified
    -> (manifest, tensors); BundleError naming the problem."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a bundle: {MANIFEST_FILE} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path} is not valid JSON: {error}") from None
    problem = check_format(manifest, str(manifest_path)) or open_set.manifest_problem(manifest, str(manifest_path))
    if problem:
        raise BundleError(problem)
    files = manifest.get("files") or {}
    needed = [manifest["weights"]["file"]] + [g["file"] for g in manifest["graphs"].values()]
    for name in needed:
        if name not in files:
            raise BundleError(f"{manifest_path}: no sha256 for {name}")
    for name, entry in files.items():
        if Path(name).name != name:
            raise BundleError(f"{manifest_path}: file name {name!r} is not a plain name")
        file_path = path / name
        if not file_path.is_file():
            raise BundleError(f"bundle {path}: {name} is missing")
        actual = sha256_file(file_path)
        if actual != entry.get("sha256"):
            raise BundleError(
                f"bundle {path}: {name} does not match its sha256 in {MANIFEST_FILE} "
                f"(expected {entry.get('sha256')}, file has {actual}); the file is corrupted or "
                "was modified, re-export the bundle"
            )
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path / manifest["weights"]["file"]))
    except (SafetensorError, OSError, ValueError) as error:
        raise BundleError(f"bundle {path}: cannot read {manifest['weights']['file']}: {error}") from None
    return manifest, tensors


def open_session(path: Path, manifest: dict, graph: str, threads: int | None):
    """The onnxruntime session (CPU) of a bundle's graph; BundleError naming the file when onnxruntime
    cannot load it or its inputs and outputs are not model.json's."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    file = path / manifest["graphs"][graph]["file"]
    try:
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's exceptions (InvalidProtobuf, Fail, ...) share no base class
        raise BundleError(
            f"bundle {path}: {file.name} is not an ONNX graph onnxruntime can load ({_ort_reason(error)})"
        ) from None
    problem = signature_problem(path, manifest, graph, session)
    if problem:
        raise BundleError(problem)
    return session


def _ort_reason(error: Exception) -> str:
    """onnxruntime's first line without its '[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from ...' prefix."""
    line = (str(error).strip() or type(error).__name__).splitlines()[0]
    return line.rsplit(" : ", 1)[-1].split(" failed:", 1)[-1].strip()


def check_tensor(path: Path, manifest: dict, tensors: dict, key: str, shape: tuple) -> None:
    """The weights hold `key`, float32, finite, of `shape`; BundleError naming the tensor otherwise."""
    tensor = tensors.get(key)
    if tensor is None:
        raise BundleError(f"bundle {path}: the weights lack {key}")
    if tensor.shape != tuple(shape) or tensor.dtype != np.float32:
        raise BundleError(f"bundle {path}: {key} is {tensor.dtype}{list(tensor.shape)}, expected float32{list(shape)}")
    if not np.isfinite(tensor).all():
        raise BundleError(f"bundle {path}: {key} in {manifest['weights']['file']} holds NaN or infinity")


class VerifiedBundle:
    """What both readers share: a bundle whose files were verified (read_verified), its manifest's
    common fields, and one onnxruntime session per graph, created on first use."""

    def __init__(self, path: Path, manifest: dict, tensors: dict, threads: int | None = None):
        self.path = Path(path)
        self.manifest = manifest
        self._tensors = tensors
        self._threads = threads
        self._sessions = {}

    @property
    def name(self) -> str:
        """The bundle's name (model.json `name`)."""
        return self.manifest["name"]

    @property
    def warning(self) -> str | None:
        """Set when the model is not the real one (e.g. a short training run)."""
        return self.manifest.get("warning")

    @property
    def param_names(self) -> list:
        """The parameters' names, in the graphs' input order."""
        return [p["name"] for p in self.manifest["architecture"]["parameters"]]

    def session(self, graph: str):
        """The onnxruntime session of a graph (created on first use, CPU); BundleError naming the file
        when onnxruntime cannot load it or its inputs and outputs are not model.json's."""
        if graph not in self._sessions:
            self._sessions[graph] = open_session(self.path, self.manifest, graph, self._threads)
        return self._sessions[graph]
