"""File helpers every stage shares: a file's digest, and writes that a kill never leaves half done."""

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

HASH_CHARS = 12  # URLs name a file's content as ?v=<sha256[:12]>


def file_digest(path, algorithm: str) -> str:
    """The hex digest of a file (any hashlib algorithm), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path) -> str:
    """The hex sha256 of a file."""
    return file_digest(path, "sha256")


def write_atomic(path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: readers see the old
    file or the new one, never a part. data: the bytes, text (UTF-8), or a function that writes
    them to the open file (to stream what should not be held in memory at once); if it raises,
    nothing is renamed and the temporary file is removed."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")  # per process: concurrent writers never share one
    try:
        with open(partial, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
