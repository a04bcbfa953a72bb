"""Request images -> model input: a PNG (base64 or a data URL, its structure and size checked by
png_check.py, then preprocessed by the spec in preprocessing/) or a 28x28 array. Runs on a pool
worker; every error names the image."""

import base64
import binascii
import math
import struct
from typing import NamedTuple

import numpy as np

from preprocessing import EmptyDrawingError, decode_png_ink, to_model_input

from .adapt_request import IMAGE_SIDE, InputError, json_kind, number_text
from .png_check import PNG_SIGNATURE, PngError, checked_png

DATA_URL_PREFIX = "data:image/png;base64,"


class ImageLimits(NamedTuple):
    """What one PNG may be: bytes (decoded from base64), pixels in all and pixels a side."""

    max_bytes: int
    max_pixels: int
    max_side: int


def _base64_payload(text: str) -> str:
    """The base64 of a PNG given as base64 or a data URL (the URL's header is checked later)."""
    payload = text.strip()
    if payload[:5].lower() == "data:":
        payload = payload.partition(",")[2]
    return "".join(payload.split())


def check_request_pixels(images: list, limit: int) -> None:
    """InputError unless the PNGs among `images` hold at most `limit` pixels together, read from the
    first bytes of each (its IHDR), before any is decoded: one image's cost grows with its pixels,
    and a request may hold many images."""
    total = 0
    for value in images:
        if isinstance(value, str):
            try:
                head = base64.b64decode(_base64_payload(value)[:32], validate=True)
            except (binascii.Error, ValueError):
                continue  # decode_image says what is wrong with it
            if len(head) == 24 and head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                total += width * height
    if total > limit:
        held = f"{total} pixels" if total < 10**15 else "far more pixels than that"  # headers can claim 2**62
        raise InputError(
            f"the images are too large together: their PNGs hold {held}, the limit is {limit} pixels per request"
        )


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


def decode_image(value, where: str, limits: ImageLimits) -> np.ndarray:
    """One request image -> float32 [28, 28] model input, or InputError naming `where`."""
    if isinstance(value, str):
        return _decode_png(value, where, limits)
    if isinstance(value, list):
        return _decode_array(value, where)
    raise InputError(
        f"{where}: expected a PNG (base64 or a data:image/png;base64, URL) or a 28x28 array of numbers, "
        f"got {json_kind(value)}"
    )


def _decode_png(text: str, where: str, limits: ImageLimits) -> np.ndarray:
    """A base64 PNG or data URL -> model input, checking sizes and structure before decoding."""
    if text.lstrip()[:5].lower() == "data:":
        header, comma, _ = text.strip().partition(",")
        if not comma or header.lower().replace(" ", "") != DATA_URL_PREFIX[:-1]:
            raise InputError(f"{where}: a data URL must start with {DATA_URL_PREFIX} (a PNG as base64)")
    payload = _base64_payload(text)
    if len(payload) * 3 // 4 > limits.max_bytes + 2:
        raise InputError(
            f"{where}: the image is too large: about {len(payload) * 3 // 4} bytes, the limit is "
            f"{limits.max_bytes} bytes per image"
        )
    if not payload:
        raise InputError(f"{where}: the image is an empty string; send a PNG as base64")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{where}: not valid base64 (use the standard alphabet with padding, or a {DATA_URL_PREFIX}... URL)"
        ) from None
    if len(data) > limits.max_bytes:
        raise InputError(
            f"{where}: the image is too large: {len(data)} bytes, the limit is {limits.max_bytes} bytes per image"
        )
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(f"{where}: {_not_png_message(data)}")
    try:
        data = checked_png(data, limits.max_pixels, limits.max_side)
    except PngError as error:
        raise InputError(f"{where}: {error}") from None
    try:
        ink = decode_png_ink(data)
    except Exception:  # Pillow's text (and object reprs) must not reach the client; the structure was checked
        raise InputError(
            f"{where}: not a readable PNG image (the compressed image data is corrupt or too short)"
        ) from None
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
                raise InputError(f"{where}[{i}][{j}]: expected a number, got {json_kind(x)}")
            if not -math.inf < x < math.inf:  # NaN fails both comparisons
                raise InputError(f"{where}[{i}][{j}]: must be finite (NaN and infinity are not allowed)")
            if not 0 <= x <= 1:
                raise InputError(f"{where}[{i}][{j}]: model input values are in [0, 1] (ink = 1), got {number_text(x)}")
    image = np.array(rows, dtype=np.float32)
    if not image.any():
        raise InputError(f"{where}: the drawing is empty (every value is 0, no ink)")
    return image
