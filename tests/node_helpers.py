"""Running tests/js scripts under Node for the JS-against-Python tests (no torch here)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORT = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs"


def node_or_skip(runtime: bool = True) -> str:
    """The node executable (and onnxruntime-web's wasm build when `runtime`), else skip."""
    node = shutil.which("node")
    if node is None or (runtime and not ORT.is_file()):
        pytest.skip("node or web/node_modules/onnxruntime-web (make setup) is missing")
    return node


def run_node(node: str, script: Path, spec: dict, tmp_path: Path) -> dict:
    """Run a tests/js script on `spec` (written as JSON) -> its JSON output."""
    (tmp_path / "case.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [node, str(script), str(tmp_path / "case.json")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
