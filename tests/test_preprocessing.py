"""Preprocessing spec v1 (docs/preprocessing.md): golden vectors, properties, PNG decoding errors."""

import base64
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from preprocessing.png import MAX_PNG_PIXELS, decode_png_ink
from preprocessing.spec import SPEC_VERSION, EmptyDrawingError, ink_from_rgba, to_model_input

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_PATH = GOLDEN_DIR / "preprocess_v1.json"
GOLDEN = json.loads(GOLDEN_PATH.read_text())
CASES = {case["name"]: case for case in GOLDEN["cases"]}
DRAWINGS = [name for name, case in CASES.items() if "output" in case["expected"]]


def load_make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_ink(case: dict) -> np.ndarray:
    """The raster the spec starts from, derived from the case's primary input."""
    if "png_base64" in case:
        return decode_png_ink(base64.b64decode(case["png_base64"]))
    if "rgba_base64" in case:
        rgba = np.frombuffer(base64.b64decode(case["rgba_base64"]), dtype=np.uint8)
        return ink_from_rgba(rgba.reshape(case["height"], case["width"], 4))
    return np.array(case["ink"], dtype=np.float64)


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# --- golden vectors -------------------------------------------------------------------------


def test_golden_file_matches_this_spec_version_and_is_small():
    assert GOLDEN["spec_version"] == SPEC_VERSION
    assert GOLDEN_PATH.stat().st_size < 1_000_000
    assert {"png_base64", "rgba_base64"} <= {key for case in GOLDEN["cases"] for key in case}
    assert any(case["expected"].get("error") == "EmptyDrawingError" for case in GOLDEN["cases"])


@pytest.mark.parametrize("name", list(CASES))
def test_golden_case(name):
    case = CASES[name]
    ink = case_ink(case)
    assert ink.shape == (case["height"], case["width"])
    # The stored raster (what a port without a PNG decoder starts from) is the decoded one.
    np.testing.assert_allclose(ink, np.array(case["ink"]), rtol=0, atol=1e-9)
    if case["expected"].get("error") == "EmptyDrawingError":
        with pytest.raises(EmptyDrawingError):
            to_model_input(ink)
        return
    output = to_model_input(ink)
    np.testing.assert_allclose(output, np.array(case["expected"]["output"]), rtol=0, atol=1e-5)


def test_golden_file_is_reproducible_by_its_script(omniglot_dir):
    assert load_make_golden().build(omniglot_dir) == GOLDEN_PATH.read_text()


# --- properties -----------------------------------------------------------------------------


def sample_rasters():
    rng = np.random.default_rng(0)
    rasters = [np.array(CASES[name]["ink"], dtype=np.float64) for name in DRAWINGS]
    rasters.append(rng.random((50, 70)))  # dense noise: the box is the whole raster
    sparse = np.zeros((90, 60))
    sparse[rng.integers(0, 90, 12), rng.integers(0, 60, 12)] = rng.random(12) * 0.5 + 0.5
    rasters.append(sparse)
    return rasters


@pytest.mark.parametrize("index", range(len(DRAWINGS) + 2))
def test_output_shape_dtype_and_range(index):
    output = to_model_input(sample_rasters()[index])
    assert output.shape == (28, 28) and output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0 + 1e-6
    assert output.max() > 0.0


@pytest.mark.parametrize("name", DRAWINGS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_by_90_degrees_commutes(name, k):
    ink = np.array(CASES[name]["ink"], dtype=np.float64)
    np.testing.assert_allclose(to_model_input(np.rot90(ink, k)), np.rot90(to_model_input(ink), k), atol=1e-6)


@pytest.mark.parametrize("name", DRAWINGS)
def test_mirroring_commutes(name):
    ink = np.array(CASES[name]["ink"], dtype=np.float64)
    np.testing.assert_allclose(to_model_input(ink[:, ::-1]), to_model_input(ink)[:, ::-1], atol=1e-6)


@pytest.mark.parametrize("offset", [(0, 0), (3, 50), (70, 5), (70, 70), (40, 0)])
def test_translating_the_ink_within_the_raster_changes_nothing(offset):
    drawing = np.array(CASES["small_off_centre"]["ink"])[5:40, 60:95]  # the whole drawing
    reference = np.zeros((105, 105))
    reference[10:45, 20:55] = drawing
    moved = np.zeros((105, 105))
    moved[offset[0] : offset[0] + 35, offset[1] : offset[1] + 35] = drawing
    assert moved.sum() == pytest.approx(drawing.sum())  # nothing was cut off
    np.testing.assert_allclose(to_model_input(moved), to_model_input(reference), atol=1e-6)


@pytest.mark.parametrize("name", ["omniglot_korean", "tiny_dot", "touching_edge", "non_square_120x80"])
@pytest.mark.parametrize("factor", [2, 3])
def test_upscaling_the_raster_changes_nothing(name, factor):
    """Each pixel as a factor x factor block: the same picture at a higher resolution."""
    ink = np.array(CASES[name]["ink"], dtype=np.float64)
    upscaled = np.kron(ink, np.ones((factor, factor)))
    np.testing.assert_allclose(to_model_input(upscaled), to_model_input(ink), atol=1e-5)


def test_rendering_at_another_resolution_changes_little():
    """The same strokes rendered on a 105 and a 315 raster (pen scaled too) look alike after the spec."""
    stroke_ink = load_make_golden().stroke_ink
    lines = [[(20, 30), (80, 25), (85, 75)], [(50, 15), (50, 70)]]
    small = stroke_ink(105, 105, lines, 4.5)
    large = stroke_ink(315, 315, [[(3 * r, 3 * c) for r, c in line] for line in lines], 13.5)
    difference = np.abs(to_model_input(small) - to_model_input(large))
    assert difference.mean() < 0.02 and difference.max() < 0.25


def test_empty_and_faint_drawings_raise():
    with pytest.raises(EmptyDrawingError, match="empty"):
        to_model_input(np.zeros((105, 105)))
    with pytest.raises(EmptyDrawingError):
        to_model_input(np.full((30, 30), 0.49))
    assert issubclass(EmptyDrawingError, ValueError)
    assert to_model_input(np.pad([[0.5]], 10)).max() > 0  # the threshold itself counts as ink


@pytest.mark.parametrize("shape", [(105,), (0, 5), (2, 3, 4)])
def test_non_raster_input_raises(shape):
    with pytest.raises(ValueError, match="2-D raster"):
        to_model_input(np.zeros(shape))


def test_ink_from_rgba_composites_over_white():
    rgba = np.array(
        [[[0, 0, 0, 0], [0, 0, 0, 255], [255, 255, 255, 255], [0, 0, 0, 128], [255, 0, 0, 255]]], dtype=np.uint8
    )
    np.testing.assert_allclose(ink_from_rgba(rgba)[0], [0, 1, 0, 128 / 255, 1 - 0.299], atol=1e-12)


# --- PNG decoding ---------------------------------------------------------------------------


def test_decode_png_reads_modes_and_alpha():
    grey = Image.fromarray(np.array([[0, 255], [51, 255]], dtype=np.uint8))
    np.testing.assert_allclose(decode_png_ink(png_bytes(grey)), [[1, 0], [0.8, 0]], atol=1e-12)
    transparent = Image.new("RGBA", (3, 2), (0, 0, 0, 0))  # a cleared canvas is white, not black
    np.testing.assert_allclose(decode_png_ink(png_bytes(transparent)), np.zeros((2, 3)), atol=1e-12)


def test_decode_png_scales_16_bit_grey_to_8_bits():
    """A 16-bit grey PNG reads as the same ink as its 8-bit twin (v / 257), its tRNS grey as background."""
    values = np.array([[0, 0x3333, 0x8080], [0xCCCC, 0xFFFF, 0x1234]], dtype=np.uint16)
    twin = Image.fromarray(np.rint(values / 257.0).astype(np.uint8))
    sixteen = Image.fromarray(values)
    assert Image.open(io.BytesIO(png_bytes(sixteen))).mode.startswith("I")
    np.testing.assert_allclose(decode_png_ink(png_bytes(sixteen)), decode_png_ink(png_bytes(twin)), atol=1e-12)
    out = io.BytesIO()
    sixteen.save(out, format="PNG", transparency=0)  # black marked transparent: background, not ink
    ink = decode_png_ink(out.getvalue())
    assert ink[0, 0] == 0 and ink[0, 1] > 0.7


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a readable PNG"),
        (b"hello, this is not an image", "not a readable PNG"),
        (png_bytes(Image.new("RGB", (16, 16), "white"), "JPEG"), "not a PNG image .got JPEG"),
        (png_bytes(Image.new("L", (64, 64), 128))[:8], "not a readable PNG"),  # the signature only
        (
            png_bytes(Image.fromarray((np.arange(4096).reshape(64, 64) % 251).astype(np.uint8)))[:150],
            "not a readable PNG",
        ),
        (png_bytes(Image.new("1", (2100, 2100), 1)), "image too large: 2100x2100"),
    ],
)
def test_decode_png_rejects_bad_input_with_a_clear_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        decode_png_ink(data)
    assert MAX_PNG_PIXELS < 2100 * 2100
