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
        rgba = np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"not a readable PNG image: {error}") from None
    return ink_from_rgba(rgba)
