"""Omniglot download / verification / loading (training/omniglot.py).

Downloads are tested against a local HTTP server on 127.0.0.1 (nothing here touches the network);
the real data is the shared, repacked copy (conftest's omniglot_dir / omniglot fixtures).
"""

import functools
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import omniglot as og
from training.omniglot import DatasetError, ensure_zips, load_omniglot

ROOT = Path(__file__).resolve().parent.parent
NAMES = list(og.ZIPS)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of a threading HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private decode cache, so a test can check that nothing was cached."""
    path = tmp_path / "cache"
    monkeypatch.setenv("REPTILE_CACHE_DIR", str(path))
    return path


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def files_in(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- download -------------------------------------------------------------------------------


def test_download_fetches_missing_zips_and_verifies_md5(server, tmp_path, capsys):
    served, url = server
    contents = {name: os.urandom(200_000) for name in NAMES}
    for name, data in contents.items():
        (served / name).write_bytes(data)
    data_dir = tmp_path / "data"  # does not exist yet: created by the download

    paths = ensure_zips(data_dir, url, progress=True, md5={n: md5_of(d) for n, d in contents.items()})

    assert {name: path.read_bytes() for name, path in paths.items()} == contents
    assert files_in(data_dir) == sorted(NAMES)  # no .part left
    err = capsys.readouterr().err
    assert f"images_background.zip not in {data_dir}: downloading it from {url}" in err
    assert "200k" in err  # the tqdm bar, sized from Content-Length


def test_download_only_fetches_what_is_missing(server, tmp_path):
    served, url = server
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / NAMES[0]).write_bytes(b"local copy")  # present: kept as is (checked later by layout)
    (served / NAMES[1]).write_bytes(b"remote")
    paths = ensure_zips(data_dir, url, progress=False, md5={NAMES[0]: "unused", NAMES[1]: md5_of(b"remote")})
    assert paths[NAMES[0]].read_bytes() == b"local copy"
    assert paths[NAMES[1]].read_bytes() == b"remote"


def test_download_md5_mismatch_is_refused_and_leaves_nothing(server, tmp_path):
    served, url = server
    for name in NAMES:
        (served / name).write_bytes(b"not the official zip")
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError, match=r"md5 .* expected 68d2efa1b9178cc56df9314c21c6e718: refusing it") as info:
        ensure_zips(data_dir, url, progress=False)  # the official md5 table
    assert url + "images_background.zip" in str(info.value)
    assert files_in(data_dir) == []  # neither the zip nor its .part


def test_download_of_the_repacked_copy_fails_the_official_md5(server, tmp_path, omniglot_dir):
    """The shared copy is repacked: as a download it must fail the official md5 (it is only
    accepted as a local copy, after the layout check)."""
    served, url = server
    for name in NAMES:
        os.symlink(omniglot_dir / name, served / name)
    with pytest.raises(DatasetError, match="refusing it"):
        load_omniglot(tmp_path / "data", base_url=url, progress=False)
    assert files_in(tmp_path / "data") == []


def test_download_404_is_a_clear_error(server, tmp_path):
    _, url = server  # serves an empty folder
    with pytest.raises(DatasetError, match=r"could not download .*images_background\.zip.*404"):
        ensure_zips(tmp_path / "data", url, progress=False)
    assert files_in(tmp_path / "data") == []


def test_download_connection_refused_is_a_clear_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        DatasetError, match=r"could not download http://127\.0\.0\.1:\d+/images_background\.zip .*refused"
    ):
        ensure_zips(tmp_path / "data", f"http://127.0.0.1:{port}/", progress=False)
    assert files_in(tmp_path / "data") == []


def test_local_copy_is_not_downloaded_again(omniglot_dir):
    """Zips already in the folder are used as they are: the (unreachable) URL is never asked."""
    paths = ensure_zips(omniglot_dir, "http://127.0.0.1:1/", progress=False)
    assert paths == {name: omniglot_dir / name for name in NAMES}


def test_download_then_load_end_to_end(server, tmp_path, omniglot_dir, omniglot):
    """load_omniglot on an empty folder downloads both zips (md5 table replaced by the shared
    copy's, which is what the server has) and gives the same dataset as the shared copy."""
    served, url = server
    for name in NAMES:
        os.symlink(omniglot_dir / name, served / name)
    md5 = {name: og.file_digest(omniglot_dir / name, "md5") for name in NAMES}
    loaded = load_omniglot(tmp_path / "data", base_url=url, progress=False, md5=md5)
    assert files_in(tmp_path / "data") == sorted(NAMES)
    assert loaded.zip_sha256 == omniglot.zip_sha256
    assert loaded.names == omniglot.names
    np.testing.assert_array_equal(loaded.images, omniglot.images)


# --- broken local copies --------------------------------------------------------------------


def _data_dir_with(tmp_path, omniglot_dir, background: bytes) -> Path:
    """A data folder with the given bytes as images_background.zip and the good evaluation zip."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "images_background.zip").write_bytes(background)
    os.symlink(omniglot_dir / "images_evaluation.zip", data_dir / "images_evaluation.zip")
    return data_dir


def test_truncated_zip_is_a_clear_error(tmp_path, omniglot_dir, cache_dir):
    whole = (omniglot_dir / "images_background.zip").read_bytes()
    data_dir = _data_dir_with(tmp_path, omniglot_dir, whole[: len(whole) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_omniglot(data_dir, download_missing=False)
    assert str(data_dir / "images_background.zip") in str(info.value)
    assert files_in(cache_dir) == []  # nothing partial cached


def test_corrupt_member_is_a_clear_error(tmp_path, omniglot_dir, cache_dir):
    """Damaged bytes inside the first drawing (the zips are stored uncompressed): CRC mismatch."""
    path = omniglot_dir / "images_background.zip"
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
    data = bytearray(path.read_bytes())
    start = first.header_offset + 30 + len(first.filename.encode()) + len(first.extra)  # the member's data
    data[start + 40 : start + 60] = bytes(20)
    data_dir = _data_dir_with(tmp_path, omniglot_dir, bytes(data))
    with pytest.raises(DatasetError) as info:
        load_omniglot(data_dir, download_missing=False)
    message = str(info.value)
    assert str(data_dir / "images_background.zip") in message and first.filename in message
    assert files_in(cache_dir) == []


def _png(ink: bool = True) -> bytes:
    image = Image.new("L", (105, 105), 255)
    if ink:
        image.paste(0, (30, 40, 70, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(path: Path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _drawings(root: str, alphabet: str, character: str, count: int = 20, png: bytes | None = None) -> dict:
    png = png or _png()
    return {f"{root}/{alphabet}/{character}/{i:04d}_01.png": png for i in range(1, count + 1)}


def test_wrong_layout_is_a_clear_error(tmp_path, omniglot_dir, cache_dir):
    """A valid zip, but not Omniglot's layout: 1 alphabet, 2 characters, one with 19 drawings."""
    data_dir = _data_dir_with(tmp_path, omniglot_dir, b"")
    _zip(
        data_dir / "images_background.zip",
        _drawings("images_background", "Latin", "character01")
        | _drawings("images_background", "Latin", "character02", 19),
    )
    with pytest.raises(DatasetError) as info:
        load_omniglot(data_dir, download_missing=False)
    message = str(info.value)
    assert str(data_dir / "images_background.zip") in message
    assert "1 alphabets (want 30), 2 characters (want 964), 1 characters without 20 drawings" in message
    assert files_in(cache_dir) == []


def test_other_zip_under_the_right_name_is_a_clear_error(tmp_path, omniglot_dir, cache_dir):
    """The evaluation zip saved as images_background.zip: valid, but the wrong root folder."""
    data_dir = _data_dir_with(tmp_path, omniglot_dir, (omniglot_dir / "images_evaluation.zip").read_bytes())
    with pytest.raises(DatasetError, match="0 alphabets .want 30."):
        load_omniglot(data_dir, download_missing=False)


@pytest.fixture
def tiny_layout(monkeypatch):
    """Shrink the official counts to 1 alphabet / 1 character per zip, so small zips pass the layout check."""
    monkeypatch.setattr(og, "ZIPS", {name: (md5, 1, 1) for name, (md5, _, _) in og.ZIPS.items()})


def test_tiny_dataset_decodes_and_caches(tmp_path, tiny_layout, cache_dir):
    for name in NAMES:
        _zip(tmp_path / name, _drawings(name[:-4], "Latin", "character01"))
    data = load_omniglot(tmp_path, download_missing=False)
    assert data.images.shape == (2, 20, 28, 28) and data.images.dtype == np.uint8
    assert data.names == ["images_background/Latin/character01", "images_evaluation/Latin/character01"]
    assert data.images.max() == 255 and data.images[:, :, 0, 0].max() == 0  # ink = 255, centred
    assert len(list(cache_dir.glob("omniglot-28px-spec*.npz"))) == 1
    again = load_omniglot(tmp_path, download_missing=False)  # from the cache
    assert again.names == data.names and isinstance(again.names[0], str)
    np.testing.assert_array_equal(again.images, data.images)


def test_unreadable_png_is_a_clear_error(tmp_path, tiny_layout, cache_dir):
    members = _drawings("images_background", "Latin", "character01")
    bad = sorted(members)[0]
    members[bad] = b"\x89PNG but not really"
    _zip(tmp_path / "images_background.zip", members)
    _zip(tmp_path / "images_evaluation.zip", _drawings("images_evaluation", "Latin", "character01"))
    with pytest.raises(DatasetError) as info:
        load_omniglot(tmp_path, download_missing=False)
    assert str(tmp_path / "images_background.zip") in str(info.value) and bad in str(info.value)
    assert files_in(cache_dir) == []


def test_corrupt_cache_is_decoded_again(tmp_path, tiny_layout, cache_dir):
    for name in NAMES:
        _zip(tmp_path / name, _drawings(name[:-4], "Latin", "character01"))
    first = load_omniglot(tmp_path, download_missing=False)
    (cache,) = cache_dir.glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    np.testing.assert_array_equal(load_omniglot(tmp_path, download_missing=False).images, first.images)


def test_missing_folder_without_download_is_a_clear_error(tmp_path):
    from training.data import load_task_data

    missing = tmp_path / "nowhere"
    with pytest.raises(
        DatasetError, match=f"missing Omniglot zips: {re.escape(str(missing / 'images_background.zip'))}"
    ):
        load_omniglot(missing, download_missing=False)
    with pytest.raises(ValueError, match="missing Omniglot zips"):  # a ValueError, as the CLI expects
        load_task_data("omniglot", missing, seed=0, download=False)
    assert not missing.exists()


def test_cli_reports_a_truncated_zip_in_one_line(tmp_path, omniglot_dir):
    whole = (omniglot_dir / "images_background.zip").read_bytes()
    data_dir = _data_dir_with(tmp_path, omniglot_dir, whole[: len(whole) // 2])
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", REPTILE_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--meta-iters",
            "1",
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(data_dir / "images_background.zip") in lines[0]
    assert not (out / "checkpoint.pt").exists()


# --- the shared copy ------------------------------------------------------------------------


def test_shared_copy_loads(omniglot):
    assert omniglot.images.shape == (1623, 20, 28, 28) and omniglot.images.dtype == np.uint8
    assert len(omniglot.names) == 1623 and len(set(omniglot.names)) == 1623
    assert all(re.fullmatch(r"images_(background|evaluation)/[^/]+/character\d\d", n) for n in omniglot.names)
    assert sum(n.startswith("images_background/") for n in omniglot.names) == 964
    assert len({n.split("/")[1] for n in omniglot.names}) == 50
    assert omniglot.names[0] == "images_background/Alphabet_of_the_Magi/character01"
    assert omniglot.images.max() == 255 and (omniglot.images.reshape(1623 * 20, -1).max(1) > 0).all()  # ink everywhere
    assert set(omniglot.zip_sha256) == set(NAMES)


def test_split_is_the_papers(omniglot):
    train, test = omniglot.split(0)
    assert len(train) == 1200 and len(test) == 423
    assert not set(train) & set(test) and set(train) | set(test) == set(range(1623))
    again_train, again_test = omniglot.split(0)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    other_train, _ = omniglot.split(1)
    assert set(other_train) != set(train)
