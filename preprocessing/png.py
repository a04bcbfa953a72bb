"""PNG bytes -> ink raster, the entry point of the spec for scans and canvas exports."""

import io

import numpy as np
from PIL import Image

MAX_PNG_PIXELS = 2048 * 2048  # refuse decompression bombs before decoding


def decode_png_ink(data: bytes) -> np.ndarray:
    """PNG bytes (dark ink on a light background, any mode, alpha allowed) -> float64 ink [H, W]."""
    from .spec import ink_from_rgba

    try:
        image = Image.open(io.BytesIO(data))
        if image.format != "PNG":
            raise ValueError(f"not a PNG image (got {image.format})")
        width, height = image.size
        if width * height > MAX_PNG_PIXELS:
            raise ValueError(f"image too large: {width}x{height} pixels (limit {MAX_PNG_PIXELS})")
        rgba = _sixteen_bit_grey_rgba(image) if image.mode.startswith("I") else np.asarray(image.convert("RGBA"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"not a readable PNG image: {error}") from None
    return ink_from_rgba(rgba)


def _sixteen_bit_grey_rgba(image: Image.Image) -> np.ndarray:
    """A 16-bit greyscale PNG (Pillow's "I;16" or "I") -> uint8 RGBA, each sample scaled to 8 bits
    (v / 257, rounded) and a tRNS grey value made transparent: Pillow's own conversion clips the
    16-bit values at 255, which turns every grey but the darkest into white."""
    values = np.asarray(image, dtype=np.int64)
    grey = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    alpha = np.full(grey.shape, 255, dtype=np.uint8)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        alpha[values == transparent] = 0
    return np.dstack([grey, grey, grey, alpha])
