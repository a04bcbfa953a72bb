"""Implementation of docs/preprocessing.md. Keep the two in step; bump SPEC_VERSION on any change."""

import numpy as np

SPEC_VERSION = 1
OUTPUT_SIZE = 28
INK_THRESHOLD = 0.5  # a pixel counts towards the ink bounding box at or above this
INK_BOX_SIDE = 22.0  # the ink's longer side spans this many output pixels
MIN_BOX_FRACTION = 0.25  # tiny drawings (a dot) are not blown up past 1/4 of the raster


class EmptyDrawingError(ValueError):
    """The raster has no pixel at or above the ink threshold."""


def ink_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 4] RGBA (any ink colour on any background) -> float64 ink in [0, 1].

    Composites over white, then ink = 1 - luminance (Rec. 601 weights). Computed in the spec's
    rearranged form ink = A (255000 - (299 R + 587 G + 114 B)) / 65025000 (an exact int32, then one
    division; the same value to ~1e-16), and only for pixels that are not fully transparent: a
    canvas export is mostly transparent, and this is ~10x faster than compositing every channel.
    """
    rgba = np.asarray(rgba)
    exact = rgba.dtype == np.uint8  # other dtypes (0..255 values in any number type) in float64
    ink = np.zeros(rgba.shape[:-1])
    flat = rgba.reshape(-1, 4)
    visible = np.flatnonzero(flat[:, 3] if exact else flat[:, 3] > 0)
    pixels = flat[visible].astype(np.int32 if exact else np.float64)
    numerator = pixels[:, 3] * (255000 - (pixels[:, 0] * 299 + pixels[:, 1] * 587 + pixels[:, 2] * 114))
    ink.reshape(-1)[visible] = numerator / 65025000.0
    return ink if exact else np.clip(ink, 0.0, 1.0)


def _box_weights(start: float, side: float, n_src: int) -> np.ndarray:
    """[OUTPUT_SIZE, n_src]: share of each source pixel [r, r+1) in each output cell.

    Output cell i covers [start + i*side/28, start + (i+1)*side/28); the weights are the
    overlap lengths divided by the cell length, so a cell's value is the mean ink over it
    (source pixels outside the raster count as 0).
    """
    cell = side / OUTPUT_SIZE
    lo = start + cell * np.arange(OUTPUT_SIZE)[:, None]
    hi = lo + cell
    r = np.arange(n_src)[None, :]
    overlap = np.clip(np.minimum(hi, r + 1.0) - np.maximum(lo, r), 0.0, None)
    return overlap / cell


def to_model_input(ink: np.ndarray) -> np.ndarray:
    """float ink raster [H, W] in [0, 1] (1 = ink) -> float32 [28, 28] in [0, 1].

    Crops a square window centred on the ink's bounding box, sized so the box's longer side
    spans INK_BOX_SIDE of the 28 output pixels, and box-filters it down (or up).
    """
    ink = np.asarray(ink, dtype=np.float64)
    if ink.ndim != 2 or min(ink.shape) < 1:
        raise ValueError(f"expected a 2-D raster, got shape {ink.shape}")
    rows = np.nonzero((ink >= INK_THRESHOLD).any(axis=1))[0]
    cols = np.nonzero((ink >= INK_THRESHOLD).any(axis=0))[0]
    if rows.size == 0:
        raise EmptyDrawingError("the drawing is empty (no ink)")
    y0, y1 = rows[0], rows[-1] + 1
    x0, x1 = cols[0], cols[-1] + 1
    box = max(y1 - y0, x1 - x0, MIN_BOX_FRACTION * max(ink.shape))
    side = box * OUTPUT_SIZE / INK_BOX_SIDE
    wy = _box_weights((y0 + y1) / 2.0 - side / 2.0, side, ink.shape[0])
    wx = _box_weights((x0 + x1) / 2.0 - side / 2.0, side, ink.shape[1])
    return (wy @ ink @ wx.T).astype(np.float32)
