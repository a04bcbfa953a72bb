"""Hostile input to the server: integers past the interpreter's digit limit (body, page parameters,
oEmbed's url), PNGs whose header would make decoding expensive or whose structure is broken, error
messages that name the field and nothing internal, and a request framed by both Content-Length and
Transfer-Encoding (against a real uvicorn process)."""

import io
import json
import re
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import b64, data_url, drawing, make_web_dir, png_bytes, start_server_process, stop_server_process

from server.adapt_request import InputError
from server.app import create_app
from server.config import Settings, SettingsError, settings_from_env
from server.images import ImageLimits, decode_image

ROOT = Path(__file__).resolve().parent.parent
HUGE = "9" * 5000  # over Python's 4,300-digit integer-string limit
LEAKS = ("<", "Traceback", "sys.", ".py", "set_int_max_str_digits", "Exceeds the limit", "BytesIO")


# ---------------------------------------------------------------------------- helpers
def chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(width, height, raw, depth=8, colour=0, interlace=0, before_idat=b"", ihdr=None) -> bytes:
    """A PNG written by hand (any header, any chunks), its IDAT the zlib of `raw`."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace) if ihdr is None else ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + before_idat
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def grey_rows(width, height, ink_every=7) -> bytes:
    """8-bit grey rows (filter byte 0): white with a dark column every `ink_every` pixels."""
    row = bytes(0 if x % ink_every == 0 else 255 for x in range(width))
    return (b"\0" + row) * height


def task_with(image, where="query") -> dict:
    body = {
        "support": [{"image": b64(drawing(c)), "label": c} for c in range(2)],
        "query": [{"image": b64(drawing(7))}],
        "steps": 0,
    }
    if where == "query":
        body["query"][0]["image"] = image
    else:
        body["support"][1]["image"] = image
    return body


def assert_clean_4xx(r, *words, status=422):
    """A 4xx whose detail names `words` and shows nothing internal."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    for word in words:
        assert word in detail, (word, detail)
    for leak in LEAKS:
        assert leak not in detail, (leak, detail)
    assert not re.search("0x[0-9a-f]{6}", detail), detail  # an object's address
    assert len(detail) < 400, detail
    return detail


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    web = make_web_dir(tmp_path_factory.mktemp("web"))
    with TestClient(create_app(Settings(web_dir=web, workers=1, queue=8)), raise_server_exceptions=False) as c:
        yield c


def post_text(client, text: str):
    return client.post("/api/adapt", content=text.encode(), headers={"content-type": "application/json"})


# ---------------------------------------------------------------------------- giant integers
@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda t: t.replace('"steps": 0', f'"steps": {HUGE}'), "steps"),
        (lambda t: t.replace('"steps": 0', f'"steps": -{HUGE}'), "steps"),
        (lambda t: t.replace('"steps": 0', f'"lr": {HUGE}'), "lr"),
        (lambda t: t.replace('"label": 1', f'"label": {HUGE}'), "support[1].label"),
        (lambda t: t.replace('"label": 1', f'"label": -{HUGE}'), "support[1].label"),
        (lambda t: t.replace('"steps": 0', f'"extra": {{"deep": [[1, {HUGE}]]}}'), "extra.deep[0][1]"),
        (lambda t: HUGE, "body"),
        (lambda t: f"[{HUGE}, [[[[[[" + "]" * 6 + "]", "body[0]"),
    ],
)
def test_giant_integers_in_the_body_are_a_422_naming_the_field(client, edit, where):
    text = edit(json.dumps(task_with(b64(drawing(3)))))
    detail = assert_clean_4xx(post_text(client, text), where, "too many digits")
    assert detail.startswith(where)


def test_giant_integer_pixel_and_long_numbers_are_not_echoed(client):
    array = [[0.5] * 28 for _ in range(28)]
    text = json.dumps(task_with(array)).replace("0.5", HUGE, 1)
    assert_clean_4xx(post_text(client, text), "query[0].image[0][0]", "too many digits")
    long = "9" * 4000  # under the interpreter's limit: parsed, refused, and described by its length
    for text, where in (
        (json.dumps(task_with(array)).replace("0.5", long, 1), "query[0].image[0][0]"),
        (json.dumps(task_with(b64(drawing(3)))).replace('"steps": 0', f'"steps": {long}'), "steps"),
        (json.dumps(task_with(b64(drawing(3)))).replace('"label": 1', f'"label": -{long}'), "support[1].label"),
    ):
        assert_clean_4xx(post_text(client, text), where, "4000 digits")


def test_huge_and_infinite_float_literals(client):
    base = json.dumps(task_with([[0.5] * 28 for _ in range(28)]))
    for literal in ("1e999", "-1e999", HUGE + ".5", "1" + "0" * 400 + ".0"):
        assert_clean_4xx(post_text(client, base.replace('"steps": 0', f'"lr": {literal}')), "lr")
        assert_clean_4xx(post_text(client, base.replace("0.5", literal, 1)), "query[0].image[0][0]", "finite")
    assert_clean_4xx(post_text(client, base.replace('"steps": 0', f'"lr": {"1" + "0" * 400}')), "lr", "too large")


@pytest.mark.parametrize("path", ["/", "/embed"])
@pytest.mark.parametrize("name", ["classes", "shots"])
def test_giant_page_parameters(client, path, name):
    for value in (HUGE, "-" + HUGE, "3.5", "x", ""):
        assert_clean_4xx(client.get(f"{path}?{name}={value}"), f"{name}: must be an integer")
    assert_clean_4xx(client.get(f"{path}?{name}={'9' * 30}"), f"{name}: must be at most ")
    assert_clean_4xx(client.get(f"{path}?{name}=-{'9' * 30}"), f"{name}: must be at least ")


def test_oembed_url_and_parameters(client):
    def oembed(url, **params):
        return client.get("/oembed", params={"url": url, **params})

    for value in (HUGE, "-" + HUGE, "9" * 30, "٣", "3_0", " 3", "x"):
        assert_clean_4xx(oembed(f"http://testserver/?classes={value}"), "url: classes: must be an integer 2..")
        assert_clean_4xx(oembed(f"http://testserver/embed?shots={value}"), "url: shots: must be an integer 1..")
    assert_clean_4xx(oembed("http://testserver/", maxwidth=HUGE), "maxwidth: must be an integer")
    assert_clean_4xx(oembed("http://testserver/", maxheight="-" + HUGE), "maxheight: must be an integer")
    assert_clean_4xx(oembed("http://[::1/"), "url: not a valid URL")
    assert_clean_4xx(oembed("http://testserver/?mode=<script>"), "url: mode: must be one of")
    assert_clean_4xx(oembed("http://testserver/", format="<b>"), "format: must be json")
    assert oembed("http://testserver/?classes=4&shots=2").status_code == 200


# ---------------------------------------------------------------------------- pydantic messages
def test_type_errors_name_the_field_not_the_model(client):
    good = task_with(b64(drawing(3)))
    for body, where, word in (
        ({**good, "support": ["abc"]}, "support[0]", "must be an object"),
        ({**good, "query": [3]}, "query[0]", "must be an object"),
        ({**good, "support": {}}, "support", "must be an array"),
        ({**good, "steps": 2.5}, "steps", "must be an integer"),
        ({**good, "lr": "0.1"}, "lr", "must be a number"),
        ({**good, "transductive": 1}, "transductive", "true or false"),
        ({**good, "x" * 5000: 1}, "x" * 40, "not a known field"),
    ):
        detail = assert_clean_4xx(client.post("/api/adapt", json=body), where, word)
        assert "Example" not in detail and "instance" not in detail
    for body, kind in ((b"[1, 2]", "an array"), (b'"x"', "a string"), (b"null", "null"), (b"3", "a number")):
        assert_clean_4xx(post_text(client, body.decode()), "body: must be a JSON object", kind)


# ---------------------------------------------------------------------------- image cost bounded by the header
def test_a_wide_image_is_refused_from_its_header(client):
    wide = png(1 << 20, 1, b"\0" + bytes(1 << 17), depth=1)  # 1,048,576 x 1: under the pixel limit
    assert len(wide) < 1200
    start = time.perf_counter()
    r = client.post("/api/adapt", json=task_with(b64(wide)))
    assert time.perf_counter() - start < 1.0
    assert_clean_4xx(r, "query[0].image", "1048576x1", "2048 pixels a side")
    tall = png(3, 2049, grey_rows(3, 2049))
    assert_clean_4xx(client.post("/api/adapt", json=task_with(b64(tall))), "query[0].image", "3x2049")


def test_the_largest_allowed_shapes_are_decoded(client):
    for width, height in ((2048, 512), (512, 2048), (1024, 1024)):
        r = client.post("/api/adapt", json=task_with(b64(png(width, height, grey_rows(width, height)))))
        assert r.status_code == 200, r.text


def test_the_image_limits_are_settings(tmp_path):
    assert settings_from_env({"REPTILE_DEMO_MAX_IMAGE_SIDE": "512"}).max_image_side == 512
    assert settings_from_env({"REPTILE_DEMO_MAX_REQUEST_PIXELS": "2000000"}).max_request_pixels == 2000000
    for bad in ({"max_image_side": 0}, {"max_image_side": 2049}):
        with pytest.raises(SettingsError, match="max_image_side"):
            Settings(**bad)
    for bad in ({"max_request_pixels": 1000}, {"max_request_pixels": 1 + (1 << 30)}):
        with pytest.raises(SettingsError, match="max_request_pixels"):
            Settings(**bad)
    settings = Settings(
        web_dir=make_web_dir(tmp_path), workers=1, max_image_side=512, max_image_pixels=15000, max_request_pixels=32000
    )
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/adapt", json=task_with(b64(png(600, 10, grey_rows(600, 10)))))
        assert_clean_4xx(r, "query[0].image", "600x10", "512 pixels a side")
        square = b64(png(100, 100, grey_rows(100, 100)))  # 10,000 pixels each
        body = task_with(square)
        body["support"][0]["image"] = square
        assert c.post("/api/adapt", json=body).status_code == 200  # 2 x 10,000 + 105 x 105
        body["support"][1]["image"] = data_url(png(100, 130, grey_rows(100, 130)))
        r = c.post("/api/adapt", json=body)
        assert_clean_4xx(r, "the images are too large together", "33000 pixels", "32000 pixels per request")


def test_the_request_pixel_budget_is_checked_before_any_decoding(client):
    """71 images of 1024 x 1024 (a 60-150 ms decode each) are refused at once from their headers."""
    big = b64(png(1024, 1024, grey_rows(1024, 1024)))
    body = {
        "support": [{"image": big, "label": i // 5} for i in range(50)],
        "query": [{"image": big}] * 20,
        "steps": 0,
    }
    start = time.perf_counter()
    r = client.post("/api/adapt", json=body)
    assert time.perf_counter() - start < 1.0
    assert_clean_4xx(r, f"{70 * 1024 * 1024} pixels", f"{8 * 1024 * 1024} pixels per request")
    claim = png(2**31 - 1, 2**31 - 1, b"")  # a header claims 4.6e18 pixels: not echoed digit by digit
    body["query"] = [{"image": b64(claim)}] * 20
    assert_clean_4xx(client.post("/api/adapt", json=body), "far more pixels than that")


def test_ancillary_chunks_are_dropped_unread():
    """A zTXt bomb, text, an ICC profile and an unknown ancillary chunk: decoded as if absent, quickly."""
    raw = grey_rows(64, 64)
    bomb = chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * 1_000_000, 9))
    extras = bomb * 60 + chunk(b"tEXt", b"a\0b") + chunk(b"iCCP", b"p\0\0" + zlib.compress(b"x" * 1000)) * 2
    extras += chunk(b"abCd", b"") * 1000
    limits = ImageLimits(512 * 1024, 1024 * 1024, 2048)
    plain = decode_image(b64(png(64, 64, raw)), "query[0].image", limits)
    start = time.perf_counter()
    loaded = decode_image(b64(png(64, 64, raw, before_idat=extras)), "query[0].image", limits)
    assert time.perf_counter() - start < 0.1  # Pillow would inflate 64 MB of text first
    np.testing.assert_array_equal(loaded, plain)


def test_interlaced_16_bit_and_palette_images_decode_like_the_plain_one():
    image = Image.open(io.BytesIO(drawing(4, size=64))).convert("L")
    pixels = np.asarray(image)
    limits = ImageLimits(512 * 1024, 1024 * 1024, 2048)
    plain = decode_image(b64(png_bytes(image)), "q", limits)
    rgba16 = np.repeat(pixels[..., None], 4, axis=2).astype(">u2") * 257
    rgba16[..., 3] = 65535
    raw16 = b"".join(b"\0" + row.tobytes() for row in rgba16)
    np.testing.assert_allclose(decode_image(b64(png(64, 64, raw16, depth=16, colour=6)), "q", limits), plain, atol=1e-6)
    palette = chunk(b"PLTE", bytes(np.repeat(np.arange(256, dtype=np.uint8), 3)))
    raw8 = b"".join(b"\0" + row.tobytes() for row in pixels)
    np.testing.assert_allclose(
        decode_image(b64(png(64, 64, raw8, colour=3, before_idat=palette)), "q", limits), plain, atol=1e-6
    )
    interlaced = png(64, 64, _adam7(pixels), interlace=1)
    np.testing.assert_allclose(decode_image(b64(interlaced), "q", limits), plain, atol=1e-6)


def _adam7(pixels: np.ndarray) -> bytes:
    """8-bit grey pixels as Adam7-interlaced scanlines (filter byte 0)."""
    out = b""
    for x0, y0, dx, dy in (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            out += b"".join(b"\0" + row.tobytes() for row in sub)
    return out


# ---------------------------------------------------------------------------- corrupt PNGs: clean messages
def _corrupt_pngs() -> list:
    good = drawing(2)
    ihdr_end = 8 + 8 + 13 + 4
    raw = grey_rows(16, 16)
    cases = [(f"truncated at {n}", good[:n]) for n in (9, 12, 16, 20, 29, ihdr_end, ihdr_end + 10, len(good) - 12)]
    cases += [("truncated by one byte", good[:-1])]
    ihdr_crc = bytearray(good)
    ihdr_crc[29] ^= 0xFF
    cases.append(("bad IHDR CRC", bytes(ihdr_crc)))
    idat_crc = bytearray(good)
    idat_crc[-13] ^= 0xFF  # the last byte of IDAT's CRC (IEND is the last 12 bytes)
    cases.append(("bad IDAT CRC", bytes(idat_crc)))
    cases += [
        ("zero width", png(0, 5, b"")),
        ("zero height", png(5, 0, b"")),
        ("bit depth 3", png(16, 16, raw, depth=3)),
        ("colour type 5", png(16, 16, raw, colour=5)),
        ("bit depth 16 palette", png(16, 16, raw, depth=16, colour=3)),
        ("interlace 2", png(16, 16, raw, interlace=2)),
        ("IHDR of 12 bytes", png(16, 16, raw, ihdr=struct.pack(">IIBBBB", 16, 16, 8, 0, 0, 0))),
        ("IHDR not first", b"\x89PNG\r\n\x1a\n" + chunk(b"tEXt", b"a\0b") + png(16, 16, raw)[8:]),
        ("palette without PLTE", png(16, 16, raw, colour=3)),
        ("unknown critical chunk", png(16, 16, raw, before_idat=chunk(b"ABCD", b""))),
        ("chunk type not letters", png(16, 16, raw, before_idat=chunk(b"a<0x", b""))),
        ("no IDAT", png(16, 16, raw)[:33] + chunk(b"IEND", b"")),
        (
            "corrupt IDAT data",
            png(16, 16, raw)[:33] + chunk(b"IDAT", b"\x78\x9c" + bytes(range(40))) + chunk(b"IEND", b""),
        ),
        ("short IDAT data", png(16, 16, raw[:100])),
        ("signature only", b"\x89PNG\r\n\x1a\n"),
    ]
    return cases


@pytest.mark.parametrize("name, data", _corrupt_pngs(), ids=[name for name, _ in _corrupt_pngs()])
def test_corrupt_pngs_get_a_clean_422_naming_the_image(client, name, data):
    for where in ("query", "support"):
        field = "query[0].image" if where == "query" else "support[1].image"
        detail = assert_clean_4xx(client.post("/api/adapt", json=task_with(b64(data), where)), field)
        assert "PNG" in detail or "size" in detail, detail


def test_mutated_pngs_with_valid_checksums_decode_or_get_a_clean_error():
    """Random edits inside chunks (their CRCs recomputed, so Pillow sees the damage): every one is
    decoded or refused with a clean message, never another exception."""
    rng = np.random.default_rng(0)
    limits = ImageLimits(512 * 1024, 1024 * 1024, 2048)
    seeds = [drawing(1), drawing(2, size=64, mode="RGBA"), drawing(3, size=50, mode="P"), drawing(4, size=30, mode="1")]
    for _ in range(400):
        data = seeds[int(rng.integers(len(seeds)))]
        parts, pos = [], 8
        while pos < len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            parts.append([kind, bytearray(data[pos + 8 : pos + 8 + length])])
            pos += 12 + length
        for _ in range(int(rng.integers(1, 4))):
            payload = parts[int(rng.integers(len(parts)))][1]
            if payload and rng.random() < 0.7:
                payload[int(rng.integers(len(payload)))] = int(rng.integers(256))
            elif payload:
                del payload[int(rng.integers(len(payload))) :]
        mutated = b"\x89PNG\r\n\x1a\n" + b"".join(chunk(kind, bytes(payload)) for kind, payload in parts)
        try:
            decode_image(b64(mutated), "query[0].image", limits)
        except InputError as error:
            assert str(error).startswith("query[0].image: ") and not any(leak in str(error) for leak in LEAKS)


def test_other_bad_images_get_clean_messages(client):
    for image, words in (
        ("data:image/svg+xml;base64,PHN2Zz4=", ("query[0].image", "data:image/png;base64,")),
        ("data:<script>,AAAA", ("query[0].image", "data URL")),
        ("%%%", ("query[0].image", "base64")),
        (b64(b"GIF89a" + bytes(20)), ("query[0].image", "GIF")),
        ({"a": 1}, ("query[0].image", "an object")),
        ([[0.5] * 28] * 27 + [["x"] * 28], ("query[0].image[27][0]", "a string")),
        ([[0.5] * 28] * 27 + [[{}] * 28], ("query[0].image[27][0]", "an object")),
        ([[2] * 28] * 28, ("query[0].image[0][0]", "[0, 1]")),
    ):
        assert_clean_4xx(client.post("/api/adapt", json=task_with(image)), *words)


# ---------------------------------------------------------------------------- Content-Length and Transfer-Encoding
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, port, _ = start_server_process(make_web_dir(tmp_path_factory.mktemp("web_process")))
    yield {"port": port, "process": process}
    stop_server_process(process)


def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes; everything the server answers until it closes the connection (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        reply = b""
        try:
            while data := s.recv(65536):
                reply += data
        except TimeoutError:
            reply += b"<still open>"
    return reply


def test_content_length_and_transfer_encoding_together_are_refused(server):
    body = b'{"support": [], "query": []}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    # a request after it: smuggled when the two framings disagree, so it must not be answered
    follow = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for content_length in (len(chunked), 5, 0):
        request = (
            b"POST /api/adapt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % content_length
        )
        reply = exchange(server["port"], request + chunked + follow)
        head, _, rest = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), reply[:300]
        assert b"connection: close" in head.lower()
        assert b"Content-Length and Transfer-Encoding" in rest
        assert b"<still open>" not in reply and reply.count(b"HTTP/1.1") == 1, reply[-300:]
    # refused on every route, before the route runs
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = exchange(server["port"], request + b"0\r\n\r\n" + follow)
    assert reply.startswith(b"HTTP/1.1 400") and reply.count(b"HTTP/1.1") == 1, reply[:300]
    # either framing alone still works, and keeps the connection open for the next request
    plain = b"POST /api/adapt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    reply = exchange(server["port"], plain % len(body) + body + follow)
    assert reply.startswith(b"HTTP/1.1 422") and b"HTTP/1.1 200" in reply
    chunk_only = (
        b"POST /api/adapt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    reply = exchange(server["port"], chunk_only + chunked + follow)
    assert reply.startswith(b"HTTP/1.1 422") and b"HTTP/1.1 200" in reply
