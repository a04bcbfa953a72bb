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


@pytest.fixture(scope="module")
def web_dir(tmp_path_factory):
    """A stand-in web/ folder (server_helpers.make_web_dir) for the server tests of one module."""
    from server_helpers import make_web_dir

    return make_web_dir(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(web_dir):
    """The server in FastAPI's test client: the default bundle, 2 workers, a queue of 16."""
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.config import Settings

    with TestClient(create_app(Settings(web_dir=web_dir, workers=2, queue=16))) as c:
        yield c
