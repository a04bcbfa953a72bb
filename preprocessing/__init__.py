"""The one image preprocessing spec (docs/preprocessing.md): raster -> 28x28 model input.

Shared by training and the server; depends only on numpy (and Pillow for PNG decoding),
so the server can use it without torch. The browser implements the same spec in JS and
both pass the golden vectors in tests/golden/.
"""

from .png import decode_png_ink
from .spec import OUTPUT_SIZE, SPEC_VERSION, EmptyDrawingError, ink_from_rgba, to_model_input

__all__ = ["SPEC_VERSION", "OUTPUT_SIZE", "EmptyDrawingError", "ink_from_rgba", "to_model_input", "decode_png_ink"]
