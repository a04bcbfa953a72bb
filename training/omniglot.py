"""Omniglot: the two official zips -> in-memory uint8 [characters, 20, 28, 28], and the paper's split.

Where the zips come from: a zip missing from the data directory is downloaded from the official
repository (BASE_URL) and must match the official md5. A zip already there is accepted after a
layout check instead (alphabet / character / drawing counts), because copies repacked with the
same PNGs (like the shared one in ../shared/data/omniglot/) have a different md5.

The zips are read directly (no extraction); every PNG goes through the shared preprocessing
spec once, and the result is cached (REPTILE_CACHE_DIR, else the default data directory),
keyed by spec version and zip hashes.
"""

import hashlib
import http.client
import io
import os
import sys
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.files import file_digest, write_atomic
from preprocessing import SPEC_VERSION, decode_png_ink, to_model_input

BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
ZIPS = {  # name -> (official md5, alphabets, characters)
    "images_background.zip": ("68d2efa1b9178cc56df9314c21c6e718", 30, 964),
    "images_evaluation.zip": ("6b91aef0f799c5bb55b94e3f2daec811", 20, 659),
}
DRAWINGS_PER_CHARACTER = 20
NUM_TRAIN_CHARACTERS = 1200  # the paper's split: the rest (423) are held out for testing


class DatasetError(ValueError):
    """A dataset is missing, truncated, or not laid out as expected.

    A ValueError so that the CLI reports it as a one-line `error: ...` (exit code 2), like
    other problems with the user's input, rather than a traceback."""


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "reptile-demo" / "omniglot"


def cache_dir() -> Path:
    """Where decoded datasets are cached (shared with the Mini-ImageNet loader)."""
    return Path(os.environ.get("REPTILE_CACHE_DIR") or default_data_dir())


def download(url: str, destination: Path, md5: str, progress: bool = True) -> None:
    """Download url to destination, streamed through write_atomic; verify md5 before the rename.

    On any failure neither destination nor a partial file is left behind; write_atomic names the
    partial file per process, so two processes (e.g. the ranks of a multi-process run) never share one."""
    from tqdm import tqdm

    def fetch(out) -> None:
        """Stream the response into `out`, hashing as it goes; refuse a wrong md5."""
        digest = hashlib.md5()
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=destination.name, disable=not progress, file=sys.stderr
            ) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != md5:
            raise DatasetError(
                f"download of {url} has md5 {digest.hexdigest()}, expected {md5}: refusing it (nothing was kept)"
            )

    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(destination, fetch)
    # URLError/HTTPError (404, connection refused, DNS), timeouts and disk errors are OSErrors;
    # a connection cut mid-body raises http.client.IncompleteRead, which is not.
    except (OSError, http.client.HTTPException) as error:
        raise DatasetError(f"could not download {url} to {destination}: {error}") from None


def ensure_zips(data_dir: Path, base_url: str = BASE_URL, progress: bool = True, md5: dict | None = None) -> dict:
    """Make sure both zips are in data_dir, downloading missing ones; returns name -> path.

    md5 (zip name -> expected md5 of a download) defaults to the official one; tests replace it."""
    md5 = md5 or {name: official for name, (official, _, _) in ZIPS.items()}
    paths = {}
    for name in ZIPS:
        path = Path(data_dir) / name
        if not path.is_file():
            print(f"{name} not in {data_dir}: downloading it from {base_url}", file=sys.stderr)
            download(base_url + name, path, md5[name], progress)
        paths[name] = path
    return paths


def character_layout(archive: zipfile.ZipFile, name: str, path: Path) -> list:
    """Sorted [(character path, [png members])] of one zip, checked against the official counts."""
    _, want_alphabets, want_characters = ZIPS[name]
    root = name[: -len(".zip")]
    characters = {}
    for member in archive.namelist():
        parts = member.split("/")
        if len(parts) == 4 and parts[0] == root and parts[3].endswith(".png"):
            characters.setdefault("/".join(parts[:3]), []).append(member)
    alphabets = {key.split("/")[1] for key in characters}
    bad = [key for key, files in characters.items() if len(files) != DRAWINGS_PER_CHARACTER]
    if len(alphabets) != want_alphabets or len(characters) != want_characters or bad:
        raise DatasetError(
            f"{path} does not have the official Omniglot layout ({root}/<alphabet>/<character>/<drawing>.png): "
            f"{len(alphabets)} alphabets (want {want_alphabets}), {len(characters)} characters "
            f"(want {want_characters}), {len(bad)} characters without {DRAWINGS_PER_CHARACTER} drawings"
        )
    return [(key, sorted(characters[key])) for key in sorted(characters)]


@dataclass
class Omniglot:
    images: np.ndarray  # uint8 [1623, 20, 28, 28], ink = 255
    names: list  # "images_background/Alphabet/characterNN" per character
    zip_sha256: dict  # zip name -> sha256, for provenance

    def split(self, seed: int, num_train: int = NUM_TRAIN_CHARACTERS):
        """The paper's split: characters shuffled with seed; (train indices, test indices)."""
        order = np.random.default_rng(seed).permutation(len(self.names))
        return np.sort(order[:num_train]), np.sort(order[num_train:])


def _decode_all(paths: dict) -> tuple:
    """Decode every drawing of both zips; any problem raises DatasetError naming the file
    (nothing partial is returned)."""
    images, names = [], []
    for name in ZIPS:
        path = paths[name]
        member = None
        try:
            with zipfile.ZipFile(path) as archive:
                for character, members in character_layout(archive, name, path):
                    names.append(character)
                    for member in members:
                        raster = to_model_input(decode_png_ink(archive.read(member)))
                        images.append(np.round(raster * 255).astype(np.uint8))
        except DatasetError:
            raise
        # BadZipFile: no central directory (truncated) or a CRC mismatch; zlib.error / EOFError:
        # a damaged compressed member; ValueError: a member that is not a readable PNG.
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            where = f" (member {member})" if member else ""
            raise DatasetError(
                f"{path} is not a readable Omniglot zip (truncated or corrupt?){where}: {error}"
            ) from None
    return np.stack(images).reshape(len(names), DRAWINGS_PER_CHARACTER, 28, 28), names


def _read_cache(cache: Path, sha: dict):
    """The cached dataset, or None if absent or unreadable (then it is simply decoded again)."""
    try:
        with np.load(cache) as stored:
            images, names = stored["images"], [str(n) for n in stored["names"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    total = sum(characters for _, _, characters in ZIPS.values())
    if images.shape != (total, DRAWINGS_PER_CHARACTER, 28, 28) or images.dtype != np.uint8 or len(names) != total:
        return None
    return Omniglot(images, names, sha)


def load_omniglot(
    data_dir=None,
    download_missing: bool = True,
    base_url: str = BASE_URL,
    progress: bool = True,
    md5: dict | None = None,
) -> Omniglot:
    """Load (and on first use decode and cache) Omniglot from data_dir.

    Missing zips are downloaded (md5-checked) unless download_missing is False, in which case
    they are a DatasetError. md5 replaces the official md5 table (for tests)."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if download_missing:
        paths = ensure_zips(data_dir, base_url, progress, md5)
    else:
        paths = {name: data_dir / name for name in ZIPS}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise DatasetError(f"missing Omniglot zips: {', '.join(missing)} (download them from {BASE_URL})")
    sha = {name: file_digest(path, "sha256") for name, path in paths.items()}
    key = hashlib.sha256(f"{SPEC_VERSION}:{sorted(sha.items())}".encode()).hexdigest()[:16]
    cache = cache_dir() / f"omniglot-28px-spec{SPEC_VERSION}-{key}.npz"
    if cache.exists():
        cached = _read_cache(cache, sha)
        if cached is not None:
            return cached
    images, names = _decode_all(paths)
    cache.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, names=np.array(names))
    write_atomic(cache, buffer.getvalue())  # a killed run never leaves a half-written cache
    return Omniglot(images, names, sha)
