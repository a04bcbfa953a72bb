"""The JavaScript port (web/js/preprocess.js) passes the same golden vectors, under Node."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_TEST = ROOT / "tests" / "js" / "preprocess_golden.test.mjs"


def test_js_preprocessing_passes_the_golden_vectors():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the JavaScript preprocessing port cannot be tested here")
    result = subprocess.run([node, "--test", str(JS_TEST)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
    assert "# fail 0" in result.stdout and "# pass " in result.stdout, result.stdout
