"""Mini-ImageNet, the Ravi & Larochelle split -> in-memory uint8 [classes, images, 3, 84, 84].

Expected layout of the data directory (not downloaded automatically: the images are ImageNet's):

    train.csv, val.csv, test.csv   header `filename,label`, one image a row (label = ImageNet wnid);
                                   64 / 16 / 20 classes of 600 images in the standard split
    images/<filename>              the JPEGs (any size; resized here to 84x84 RGB)

Classes are ordered by wnid, images within a class as in the CSV. Channel-first, because
training/tasks.py samples [classes, images, C, H, W]. Decoding 60,000 JPEGs takes minutes,
so the arrays are cached as an .npz (REPTILE_CACHE_DIR, else the default data directory).
"""

import csv
import hashlib
import os
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bundle.files import sha256_file, write_atomic

from .omniglot import DatasetError

SPLITS = ("train", "val", "test")
STANDARD_CLASSES = {"train": 64, "val": 16, "test": 20}
STANDARD_IMAGES_PER_CLASS = 600
IMAGE_SIZE = 84
CACHE_VERSION = 1  # bump when the decoding below changes, so old caches are not reused


@dataclass
class MiniImageNet:
    train: np.ndarray  # uint8 [64, 600, 3, 84, 84] in the standard split
    val: np.ndarray  # uint8 [16, 600, 3, 84, 84]
    test: np.ndarray  # uint8 [20, 600, 3, 84, 84]
    train_classes: list  # wnids, one per row of train
    val_classes: list
    test_classes: list
    csv_sha256: dict  # "train.csv" etc. -> sha256, for provenance


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "reptile-demo" / "miniimagenet"


def _read_split(path: Path) -> dict:
    """wnid -> [filenames] of one CSV, classes sorted by wnid."""
    if not path.is_file():
        raise DatasetError(
            f"missing {path}: Mini-ImageNet needs train.csv, val.csv, test.csv and images/ "
            f"(the Ravi & Larochelle split) in {path.parent}"
        )
    classes = {}
    try:
        with open(path, newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header != ["filename", "label"]:
                raise DatasetError(f"{path}: expected the header 'filename,label', got {header!r}")
            for line, row in enumerate(rows, start=2):
                if len(row) != 2 or not all(row):
                    raise DatasetError(f"{path}, line {line}: expected 'filename,label', got {row!r}")
                classes.setdefault(row[1], []).append(row[0])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path} is not a readable CSV: {error}") from None
    if not classes:
        raise DatasetError(f"{path} lists no images")
    return {wnid: classes[wnid] for wnid in sorted(classes)}


def _check_splits(data_dir: Path, splits: dict) -> None:
    """Equal image counts within each split (they become one array), no class in two splits;
    a warning, not an error, when the sizes are not the standard split's (small test folders)."""
    for split, classes in splits.items():
        counts = {wnid: len(files) for wnid, files in classes.items()}
        if len(set(counts.values())) > 1:
            low, high = min(counts, key=counts.get), max(counts, key=counts.get)
            raise DatasetError(
                f"{data_dir / (split + '.csv')}: classes have unequal image counts "
                f"({low}: {counts[low]}, {high}: {counts[high]}); every class needs the same number"
            )
    seen = {}
    for split, classes in splits.items():
        for wnid in classes:
            if wnid in seen:
                raise DatasetError(f"{data_dir}: class {wnid} is in both {seen[wnid]}.csv and {split}.csv")
            seen[wnid] = split
    sizes = {split: (len(classes), len(next(iter(classes.values())))) for split, classes in splits.items()}
    if any(sizes[s] != (STANDARD_CLASSES[s], STANDARD_IMAGES_PER_CLASS) for s in SPLITS):
        found = ", ".join(f"{s} {c} classes x {n} images" for s, (c, n) in sizes.items())
        warnings.warn(
            f"{data_dir}: not the standard Mini-ImageNet split ({found}; the Ravi & Larochelle "
            f"split has 64/16/20 classes x {STANDARD_IMAGES_PER_CLASS} images)",
            stacklevel=3,
        )


def _decode_image(path: Path) -> np.ndarray:
    """One image file -> uint8 [3, 84, 84]."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")  # also forces the decode: a truncated file fails here
            if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
            return np.asarray(image).transpose(2, 0, 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path} is not a readable image: {error}") from None


def _decode_split(paths: list, shape: tuple) -> np.ndarray:
    """Decode paths (class-major) into one uint8 array of shape [classes, images, 3, 84, 84].

    Threads: Pillow releases the GIL while decoding and resizing. Each worker writes its own
    slot of the preallocated array, so the peak memory is the array itself."""
    out = np.empty((*shape, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    flat = out.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)

    def work(index: int) -> None:
        flat[index] = _decode_image(paths[index])

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        for _ in pool.map(work, range(len(paths))):  # re-raises the first worker error, in order
            pass
    finally:
        pool.shutdown(cancel_futures=True)  # on an error, do not decode the rest first
    return out


def _read_cache(cache: Path, shapes: dict):
    try:
        with np.load(cache) as stored:
            arrays = {split: stored[split] for split in SPLITS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # unreadable (e.g. a disk filled up): decode again
    if any(arrays[s].shape != (*shapes[s], 3, IMAGE_SIZE, IMAGE_SIZE) or arrays[s].dtype != np.uint8 for s in SPLITS):
        return None
    return arrays


def load_miniimagenet(data_dir=None) -> MiniImageNet:
    """Load (and on first use decode and cache) Mini-ImageNet from data_dir (see the module doc)."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if not data_dir.is_dir():
        raise DatasetError(
            f"no Mini-ImageNet folder at {data_dir}: it is not downloaded automatically; put "
            "train.csv, val.csv, test.csv and images/ (Ravi & Larochelle split) there or pass --data-dir"
        )
    splits = {split: _read_split(data_dir / f"{split}.csv") for split in SPLITS}
    csv_sha256 = {f"{split}.csv": sha256_file(data_dir / f"{split}.csv") for split in SPLITS}
    _check_splits(data_dir, splits)

    # The cache key covers the CSVs and each image's size and mtime: a cheap stat, not a hash of
    # 60,000 files, that still notices a replaced image. The stat also finds missing images early.
    paths, key = {}, hashlib.sha256(f"{CACHE_VERSION}:{IMAGE_SIZE}:{sorted(csv_sha256.items())}".encode())
    for split, classes in splits.items():
        paths[split] = [data_dir / "images" / name for files in classes.values() for name in files]
        for path in paths[split]:
            try:
                stat = path.stat()
            except OSError:
                raise DatasetError(f"missing image {path} (listed in {data_dir / (split + '.csv')})") from None
            key.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    shapes = {split: (len(classes), len(next(iter(classes.values())))) for split, classes in splits.items()}
    cache_dir = Path(os.environ.get("REPTILE_CACHE_DIR") or default_data_dir())
    cache = cache_dir / f"miniimagenet-{IMAGE_SIZE}px-v{CACHE_VERSION}-{key.hexdigest()[:16]}.npz"

    arrays = _read_cache(cache, shapes) if cache.exists() else None
    if arrays is None:
        arrays = {split: _decode_split(paths[split], shapes[split]) for split in SPLITS}
        cache.parent.mkdir(parents=True, exist_ok=True)
        # streamed, not built in memory: the arrays are ~1.3 GB in the real split
        write_atomic(cache, lambda handle: np.savez(handle, **arrays))
    return MiniImageNet(
        **arrays, **{f"{split}_classes": list(splits[split]) for split in SPLITS}, csv_sha256=csv_sha256
    )
