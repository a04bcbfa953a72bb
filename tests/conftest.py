import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Decoded datasets are cached here between test runs (first decode of Omniglot takes ~15 s).
os.environ.setdefault("REPTILE_CACHE_DIR", str(ROOT / ".cache"))


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    path = Path(os.environ.get("OMNIGLOT_DATA_DIR", ROOT.parent / "shared" / "data" / "omniglot")).resolve()
    if not (path / "images_background.zip").exists():
        pytest.fail(f"the shared Omniglot copy is missing at {path} (set OMNIGLOT_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def omniglot(omniglot_dir):
    from training.omniglot import load_omniglot

    return load_omniglot(omniglot_dir, download_missing=False)
