"""Static files: MIME types, content hashes (for `?v=` cache busting and ETags), gzip/brotli.

Files are read whole (the largest, onnxruntime-web's wasm, is ~10-25 MB) and kept in a bounded
in-memory cache keyed by (path, mtime, size) together with their compressed forms, so every
file is hashed and compressed once per change.
"""

import gzip
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from bundle.files import HASH_CHARS

try:  # optional: brotli is used when installed and accepted by the client
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

MIME_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".onnx": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
COMPRESSIBLE = {
    ".wasm",
    ".onnx",
    ".safetensors",
    ".js",
    ".mjs",
    ".json",
    ".map",
    ".webmanifest",
    ".css",
    ".svg",
    ".txt",
    ".md",
}
MIN_COMPRESS_BYTES = 1024
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # may be stored, but revalidated (ETag -> 304) before each use
SHORT = "public, max-age=60"


class Entry:
    """One file's bytes, sha256 and compressed forms, as read at (mtime, size) `key`."""

    __slots__ = ("path", "key", "data", "sha256", "encoded", "lock")

    def __init__(self, path: Path, key, data: bytes):
        self.path, self.key, self.data = path, key, data
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.encoded = {}
        self.lock = threading.Lock()

    @property
    def suffix(self) -> str:
        """The file's suffix, lower case."""
        return self.path.suffix.lower()

    def etag(self, encoding: str | None) -> str:
        """The strong ETag of this content in `encoding` (None: uncompressed)."""
        return f'"{self.sha256[:20]}{"-" + encoding if encoding else ""}"'

    def body(self, encoding: str | None) -> bytes:
        """The bytes in `encoding` (None: as stored), compressed once and kept."""
        if encoding is None:
            return self.data
        with self.lock:
            if encoding not in self.encoded:
                self.encoded[encoding] = _precompressed(self.path, encoding, self.key) or _compress(self.data, encoding)
            return self.encoded[encoding]


def _compress(data: bytes, encoding: str) -> bytes:
    """`data` as brotli ('br') or gzip, at a level that keeps large files fast to compress."""
    if encoding == "br":
        # quality 11 takes ~1 s per MB; 9 is within a few percent of it at a fraction of the time
        return brotli.compress(data, quality=9 if len(data) < (4 << 20) else 6)
    return gzip.compress(data, compresslevel=9 if len(data) < (4 << 20) else 6, mtime=0)


def _precompressed(path: Path, encoding: str, key) -> bytes | None:
    """A sibling file.br / file.gz written at build time, if newer than the file itself."""
    sibling = path.with_name(path.name + (".br" if encoding == "br" else ".gz"))
    try:
        stat = sibling.stat()
    except OSError:
        return None
    return sibling.read_bytes() if stat.st_mtime_ns >= key[0] else None


class FileCache:
    """Files by path, re-read when their mtime or size changes, least recently used dropped past max_bytes."""

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Entry | None:
        """The current content of a regular file, or None if there is none."""
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None and entry.key == key:
                self._entries.move_to_end(path)
                return entry
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = Entry(path, key, data)
        with self._lock:
            self._entries[path] = entry
            self._entries.move_to_end(path)
            total = sum(len(e.data) + sum(map(len, e.encoded.values())) for e in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                total -= len(old.data) + sum(map(len, old.encoded.values()))
        return entry

    def version(self, path: Path) -> str | None:
        """The file's ?v= (sha256[:HASH_CHARS]), or None if there is no such file."""
        entry = self.get(path)
        return entry.sha256[:HASH_CHARS] if entry else None


def parse_accept_encoding(header: str) -> dict:
    """'gzip, br;q=0.8, *;q=0' -> {'gzip': 1.0, 'br': 0.8, '*': 0.0}."""
    accepted = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        accepted[name] = q
    return accepted


def choose_encoding(entry: Entry, accept_encoding: str) -> str | None:
    """'br' or 'gzip' when the file is worth compressing and the client accepts it, else None."""
    if entry.suffix not in COMPRESSIBLE or len(entry.data) < MIN_COMPRESS_BYTES:
        return None
    accepted = parse_accept_encoding(accept_encoding or "")
    wildcard = accepted.get("*", 0.0)
    candidates = (["br"] if brotli is not None else []) + ["gzip"]
    for encoding in candidates:
        if accepted.get(encoding, wildcard) > 0:
            return encoding
    return None


def version_matches(entry: Entry, v: str | None) -> bool:
    """True when ?v= is a prefix (>= 12 hex digits) of the file's sha256: the URL names this content."""
    return bool(v) and HASH_CHARS <= len(v) <= 64 and entry.sha256.startswith(v.lower())


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when If-None-Match names `etag` (or is '*')."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = [t.strip() for t in if_none_match.split(",")]
    return etag in tags or f"W/{etag}" in tags


def safe_join(root: Path, relative: str) -> Path | None:
    """root / relative if it stays inside root (no '..', no absolute parts, no dot-files, no links
    leading out), else None."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = root.joinpath(*parts)
    try:
        resolved = path.resolve()
        root_resolved = root.resolve()
    except (OSError, RuntimeError):
        return None
    if resolved != root_resolved and root_resolved not in resolved.parents:
        return None
    return path
