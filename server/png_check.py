"""A request's PNG checked before any decoding, so that its header bounds what decoding costs: the
chunk framing and checksums, the IHDR header (a valid format; each side and the area within the
limits), and the PNG rebuilt from the chunks decoding uses: IHDR, PLTE, tRNS, the IDATs as one
chunk, IEND. Everything else (text, compressed text, ICC profiles, animation frames) is dropped
unread: Pillow would decompress compressed text and profiles (up to 64 MB per image) and handle
every chunk in Python, none of which changes the pixels it decodes."""

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}  # by colour type
KNOWN_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
UNREADABLE = "not a readable PNG image"


class PngError(ValueError):
    """The PNG is unreadable or over a limit; the message says which (the caller names the image)."""


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _kind_name(kind: bytes) -> str:
    """A chunk type for a message: its four letters, or 'a' when they are not letters."""
    return kind.decode("ascii") if kind.isalpha() and kind.isascii() else "a"


def _chunks(data: bytes) -> list:
    """[(type, offset, length)] of every chunk from IHDR to IEND, their framing and CRCs checked."""
    view, chunks, pos = memoryview(data), [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise PngError(f"{UNREADABLE} (the file is truncated: it ends before the IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise PngError(f"{UNREADABLE} (the file is truncated: it ends inside the {_kind_name(kind)} chunk)")
        if not (kind.isascii() and kind.isalpha()):
            raise PngError(f"{UNREADABLE} (a chunk's type is not four letters: the file is corrupt)")
        if zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise PngError(f"{UNREADABLE} (the {_kind_name(kind)} chunk's checksum is wrong: the file is corrupt)")
        if not chunks and (kind != b"IHDR" or length != 13):
            raise PngError(f"{UNREADABLE} (it does not start with a 13-byte IHDR header chunk)")
        if chunks and kind == b"IHDR":
            raise PngError(f"{UNREADABLE} (a second IHDR chunk)")
        if kind[:1].isupper() and kind not in KNOWN_CRITICAL:
            raise PngError(f"{UNREADABLE} (an unknown critical chunk, {_kind_name(kind)})")
        chunks.append((kind, pos + 8, length))
        if kind == b"IEND":
            return chunks
        pos = end


def _check_header(ihdr: bytes, max_pixels: int, max_side: int) -> None:
    """IHDR's fields valid (PNG specification, 11.2.2) and its size within the limits."""
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if not (1 <= width < 2**31 and 1 <= height < 2**31):
        raise PngError(f"{UNREADABLE} (width {width} and height {height}: each must be 1..{2**31 - 1})")
    if colour not in BIT_DEPTHS:
        raise PngError(f"{UNREADABLE} (colour type {colour} does not exist)")
    if depth not in BIT_DEPTHS[colour]:
        raise PngError(f"{UNREADABLE} (bit depth {depth} is not valid for colour type {colour})")
    if compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise PngError(f"{UNREADABLE} (an unknown compression, filter or interlace method)")
    if max(width, height) > max_side:
        raise PngError(
            f"the image is too large: {width}x{height}, the limit is {max_side} pixels a side "
            f"and {max_pixels} pixels in all"
        )
    if width * height > max_pixels:
        raise PngError(
            f"the image is too large: {width}x{height} = {width * height} pixels, the limit is {max_pixels} pixels"
        )


def checked_png(data: bytes, max_pixels: int, max_side: int) -> bytes:
    """PNG bytes (the signature already checked) -> the same image with only the chunks decoding uses,
    or PngError when its structure is broken or its size over `max_side` a side or `max_pixels` in all."""
    chunks = _chunks(data)
    _, start, _ = chunks[0]
    ihdr = data[start : start + 13]
    _check_header(ihdr, max_pixels, max_side)
    first = {}
    for kind, start, length in chunks:
        if kind in (b"PLTE", b"tRNS") and kind not in first:
            first[kind] = data[start : start + length]
    if ihdr[9] == 3 and b"PLTE" not in first:
        raise PngError(f"{UNREADABLE} (a palette image without a PLTE chunk)")
    pixels = b"".join(data[start : start + length] for kind, start, length in chunks if kind == b"IDAT")
    if not pixels:
        raise PngError(f"{UNREADABLE} (no IDAT image data)")
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", ihdr)]
    parts += [_chunk(kind, first[kind]) for kind in (b"PLTE", b"tRNS") if kind in first]
    return b"".join(parts + [_chunk(b"IDAT", pixels), _chunk(b"IEND", b"")])
