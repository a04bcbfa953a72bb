"""Request images -> model input: a PNG (base64 or a data URL, preprocessed by the spec in
preprocessing/) or a 28x28 array. Runs on a pool worker; every error names the image."""

import base64
import binascii
import math
import struct

import numpy as np

from preprocessing import EmptyDrawingError, decode_png_ink, to_model_input

from .adapt_request import IMAGE_SIDE, InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"


def _png_size(data: bytes):
    """(width, height) from the IHDR chunk, which must come first in a PNG."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _not_png_message(data: bytes) -> str:
    """Why `data` is not a PNG, naming the format it is when its signature says so."""
    kinds = {
        b"\xff\xd8\xff": "a JPEG",
        b"GIF8": "a GIF",
        b"RIFF": "a RIFF/WebP file",
        b"BM": "a BMP",
        b"<svg": "an SVG",
        b"<?xm": "an XML/SVG file",
        b"%PDF": "a PDF",
    }
    for magic, kind in kinds.items():
        if data.startswith(magic):
            return f"not a PNG image (the data is {kind}); send a PNG"
    return "not a PNG image (the data does not start with the PNG signature)"


def decode_image(value, where: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """One request image -> float32 [28, 28] model input, or InputError naming `where`."""
    if isinstance(value, str):
        return _decode_png(value, where, max_bytes, max_pixels)
    if isinstance(value, list):
        return _decode_array(value, where)
    kind = (
        "null"
        if value is None
        else {bool: "a boolean", int: "a number", float: "a number", dict: "an object"}.get(
            type(value), type(value).__name__
        )
    )
    raise InputError(
        f"{where}: expected a PNG (base64 or a data:image/png;base64, URL) or a 28x28 array of numbers, got {kind}"
    )


def _decode_png(text: str, where: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A base64 PNG or data URL -> model input, checking sizes before decoding."""
    payload = text.strip()
    if payload[:5].lower() == "data:":
        header, comma, payload = payload.partition(",")
        if not comma or header.lower().replace(" ", "") != DATA_URL_PREFIX[:-1]:
            raise InputError(f"{where}: a data URL must start with {DATA_URL_PREFIX!r}, got {header[:40]!r}")
    payload = "".join(payload.split())
    if len(payload) * 3 // 4 > max_bytes + 2:
        raise InputError(
            f"{where}: the image is too large: about {len(payload) * 3 // 4} bytes, the limit is "
            f"{max_bytes} bytes per image"
        )
    if not payload:
        raise InputError(f"{where}: the image is an empty string; send a PNG as base64")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{where}: not valid base64 (use the standard alphabet with padding, or a {DATA_URL_PREFIX}... URL)"
        ) from None
    if len(data) > max_bytes:
        raise InputError(
            f"{where}: the image is too large: {len(data)} bytes, the limit is {max_bytes} bytes per image"
        )
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(f"{where}: {_not_png_message(data)}")
    size = _png_size(data)
    if size is None:
        raise InputError(f"{where}: not a readable PNG image (no IHDR header chunk)")
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{where}: not a readable PNG image (size {width}x{height})")
    if width * height > max_pixels:
        raise InputError(
            f"{where}: the image is too large: {width}x{height} = {width * height} pixels, the limit is "
            f"{max_pixels} pixels"
        )
    try:
        ink = decode_png_ink(data)
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None
    except Exception as error:  # a decoder failure on hostile data must stay a 4xx
        raise InputError(f"{where}: not a readable PNG image ({type(error).__name__})") from None
    try:
        return to_model_input(ink)
    except EmptyDrawingError:
        raise InputError(
            f"{where}: the drawing is empty (no pixel is dark enough to count as ink); draw something "
            "dark on a light background"
        ) from None


def _decode_array(rows: list, where: str) -> np.ndarray:
    """A 28x28 list of numbers in [0, 1] -> model input."""
    if len(rows) != IMAGE_SIDE or not all(isinstance(r, list) and len(r) == IMAGE_SIDE for r in rows):
        shape = [len(rows)]
        if rows and all(isinstance(r, list) for r in rows):
            lengths = sorted({len(r) for r in rows})
            shape.append(lengths[0] if len(lengths) == 1 else f"{lengths[0]}..{lengths[-1]}")
        raise InputError(
            f"{where}: an array image must be 28 rows of 28 numbers (28x28), got shape {'x'.join(map(str, shape))}"
        )
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            if type(x) is not float and type(x) is not int:
                kind = {bool: "a boolean", str: "a string", type(None): "null"}.get(type(x), type(x).__name__)
                raise InputError(f"{where}[{i}][{j}]: expected a number, got {kind}")
            if not -math.inf < x < math.inf:  # NaN fails both comparisons
                raise InputError(f"{where}[{i}][{j}]: must be finite (NaN and infinity are not allowed)")
            if not 0 <= x <= 1:
                raise InputError(f"{where}[{i}][{j}]: model input values are in [0, 1] (ink = 1), got {x}")
    image = np.array(rows, dtype=np.float32)
    if not image.any():
        raise InputError(f"{where}: the drawing is empty (every value is 0, no ink)")
    return image
