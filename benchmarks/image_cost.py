"""What one request PNG may cost the server: time and peak memory to check, decode and preprocess
the worst images the default limits allow, the cheap-to-send images the limits refuse or defuse,
and two POST /api/adapt requests: as many copies of the slowest allowed image as the request's
pixel budget admits, and that image in each of the most images a request may hold (70 by default,
which the budget refuses from the headers); and for scale, the longest adaptation the limits allow.

Each image is measured in a fresh process (so its peak resident memory is its own): through the
server's path (server/images.py: structure and size checked from the header, then decoded) and,
for comparison, through the bare decoder (preprocessing's decode_png_ink + to_model_input) with no
check before it. The request is sent to `python -m server serve --workers 1` on loopback, whose
peak memory is read from /proc (VmHWM).

    python -m benchmarks.image_cost                  # every case, 5 timed runs each
    python -m benchmarks.image_cost --repeat 1 --out runs/image_cost.json
"""

import argparse
import base64
import json
import os
import platform
import resource
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from benchmarks.local_server import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


# ---------------------------------------------------------------------------- PNGs written by hand
def chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(width, height, depth, colour, idat: bytes, interlace=0, before_idat=b"") -> bytes:
    """A PNG of the given header whose IDAT is `idat` (already compressed)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + before_idat + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def paeth_rows(width, height, pixel: bytes, interlace=0) -> bytes:
    """Scanlines of one repeated pixel, every row Paeth-filtered (the most work to unfilter), per
    Adam7 pass when interlaced: the first row of a pass holds the pixel once, then zeros."""
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    out = bytearray()
    for x0, y0, dx, dy in passes:
        cols, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if cols <= 0 or rows <= 0:
            continue
        out += b"\x04" + pixel + bytes((cols - 1) * len(pixel))
        out += (b"\x04" + bytes(cols * len(pixel))) * (rows - 1)
    return bytes(out)


def ink_columns(width, height, every=7) -> bytes:
    """8-bit grey scanlines (filter 0): white with a black column every `every` pixels."""
    row = bytes(0 if x % every == 0 else 255 for x in range(width))
    return (b"\0" + row) * height


def zlib_of_zeros(size: int) -> bytes:
    """zlib of `size` zero bytes, compressed piece by piece (no `size`-byte buffer)."""
    packer, piece, out = zlib.compressobj(9), bytes(1 << 20), []
    for _ in range(size // len(piece)):
        out.append(packer.compress(piece))
    return b"".join(out) + packer.flush()


def cases() -> list:
    """(name, PNG bytes, whether the server's default limits admit it)."""
    black16 = b"\0" * 6 + b"\xff\xff"  # RGBA, 16 bits a channel: opaque black
    palette = chunk(b"PLTE", b"\0\0\0" + b"\xff" * 765) + chunk(b"tRNS", b"\xff")
    text_bomb = chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(1 << 20), 9))
    return [
        ("grey 8-bit 1024x1024", png(1024, 1024, 8, 0, zlib.compress(ink_columns(1024, 1024), 9)), True),
        ("grey 8-bit 2048x512", png(2048, 512, 8, 0, zlib.compress(ink_columns(2048, 512), 9)), True),
        ("grey 8-bit 512x2048", png(512, 2048, 8, 0, zlib.compress(ink_columns(512, 2048), 9)), True),
        ("RGBA 16-bit 1024x1024", png(1024, 1024, 16, 6, zlib.compress(paeth_rows(1024, 1024, black16), 9)), True),
        (
            "RGBA 16-bit interlaced 1024x1024",
            png(1024, 1024, 16, 6, zlib.compress(paeth_rows(1024, 1024, black16, 1), 9), interlace=1),
            True,
        ),
        (
            "RGBA 16-bit interlaced 2048x512",
            png(2048, 512, 16, 6, zlib.compress(paeth_rows(2048, 512, black16, 1), 9), interlace=1),
            True,
        ),
        (
            "palette + tRNS 1024x1024",
            png(1024, 1024, 8, 3, zlib.compress(paeth_rows(1024, 1024, b"\0"), 9), before_idat=palette),
            True,
        ),
        ("1-bit 1048576x1 (over the side limit)", png(1 << 20, 1, 1, 0, zlib.compress(bytes(1 + (1 << 17)), 9)), False),
        ("1x1, IDAT inflating to 500 MB", png(1, 1, 8, 0, zlib_of_zeros(500 << 20)), True),
        (
            "64x64 + 60 zTXt chunks of 1 MB",
            png(64, 64, 8, 0, zlib.compress(ink_columns(64, 64)), before_idat=text_bomb * 60),
            True,
        ),
        (
            "64x64 + 40,000 empty chunks",
            png(64, 64, 8, 0, zlib.compress(ink_columns(64, 64)), before_idat=chunk(b"abCd", b"") * 40000),
            True,
        ),
    ]


# ---------------------------------------------------------------------------- one image, in a fresh process
def measure_one(path: str, route: str, repeat: int) -> dict:
    """In this process: decode the PNG at `path` through `route` (server or decoder); seconds and MB."""
    from preprocessing import decode_png_ink, to_model_input
    from server.adapt_request import InputError
    from server.config import Settings
    from server.images import ImageLimits, decode_image

    data = Path(path).read_bytes()
    text = base64.b64encode(data).decode()
    s = Settings()
    limits = ImageLimits(s.max_image_bytes, s.max_image_pixels, s.max_image_side)

    def run():
        if route == "server":
            try:
                decode_image(text, "image", limits)
                return "decoded"
            except InputError as error:
                return str(error)
        try:
            to_model_input(decode_png_ink(data))
            return "decoded"
        except Exception as error:  # the bare decoder's own refusals, reported as they are
            return f"{type(error).__name__}: {str(error)[:80]}"

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, outcome = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"outcome": outcome, "seconds": sorted(times)[len(times) // 2], "peak_mb": (peak - before) / 1024}


def measure_in_child(data: bytes, route: str, repeat: int) -> dict:
    """measure_one in a fresh Python process (its peak memory is its own)."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.image_cost", "--child", f.name, route, str(repeat)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
    if out.returncode != 0:
        return {"outcome": f"the process failed: {out.stderr.strip()[-200:]}", "seconds": None, "peak_mb": None}
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------- one full request
def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of process `pid` so far (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request_body(image: bytes, width: int, height: int, fill_budget: bool) -> bytes:
    """An /api/adapt body, 0 steps: as many copies of `image` (width x height) as the request's pixel
    budget admits (2 classes, one query), or (fill_budget False) `image` in each of the most images
    a request may have (50 support drawings and 20 queries by default)."""
    from server.config import Settings

    s = Settings()
    text = base64.b64encode(image).decode()
    if fill_budget:
        copies = s.max_request_pixels // (width * height)
        support = [{"image": text, "label": i % 2} for i in range(copies - 1)]
        query = [{"image": text}]
    else:
        support = [{"image": text, "label": i // s.max_shots} for i in range(s.max_classes * s.max_shots)]
        query = [{"image": text}] * s.max_queries
    return json.dumps({"support": support, "query": query, "steps": 0}).encode()


def longest_adaptation_body() -> bytes:
    """For scale: the longest adaptation the default limits allow (10 classes x 5 drawings, 20
    queries, 200 steps), its drawings as 28x28 arrays (no decoding)."""
    from server.config import Settings

    s = Settings()

    def stroke(k: int) -> list:
        return [[1.0 if abs(col - 4 - k % 20) < 2 and 4 <= row < 24 else 0.0 for col in range(28)] for row in range(28)]

    support = [{"image": stroke(i), "label": i // s.max_shots} for i in range(s.max_classes * s.max_shots)]
    query = [{"image": stroke(i)} for i in range(s.max_queries)]
    return json.dumps({"support": support, "query": query, "steps": s.max_steps}).encode()


def measure_request(body: bytes) -> dict:
    """POST `body` to /api/adapt of a one-worker server on loopback; its time and the server's peak memory."""
    process, url, _ = start_server("--workers", "1", env={"OMP_NUM_THREADS": "1"}, log=Path(os.devnull))
    try:
        before = vm_hwm_mb(process.pid)
        request = urllib.request.Request(url + "/api/adapt", body, {"Content-Type": "application/json"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                status, answer = r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read())
        task = json.loads(body)
        return {
            "images": len(task["support"]) + len(task["query"]),
            "body_bytes": len(body),
            "status": status,
            "seconds": time.perf_counter() - start,
            "preprocess_ms": answer.get("timing", {}).get("preprocess_ms"),
            "adapt_ms": answer.get("timing", {}).get("adapt_ms"),
            "detail": answer.get("detail"),
            "peak_mb_before": before,
            "peak_mb_after": vm_hwm_mb(process.pid),
        }
    finally:
        stop_server(process)


def main(argv=None) -> int:
    """Measure every case and the full request; print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per image (the median is reported)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, route, repeat = args.child
        print(json.dumps(measure_one(path, route, int(repeat))))
        return 0
    if args.repeat < 1:
        parser.error("argument --repeat: expected a positive integer")
    rows = []
    print(f"{'image':40} {'bytes':>8}  {'route':8} {'ms':>8} {'peak MB':>8}  outcome")
    for name, data, admitted in cases():
        for route in ("server", "decoder"):
            m = measure_in_child(data, route, args.repeat)
            rows.append({"image": name, "bytes": len(data), "admitted": admitted, "route": route, **m})
            ms = f"{m['seconds'] * 1000:8.1f}" if m["seconds"] is not None else "       -"
            mb = f"{m['peak_mb']:8.1f}" if m["peak_mb"] is not None else "       -"
            print(f"{name:40} {len(data):8}  {route:8} {ms} {mb}  {m['outcome'][:70]}", flush=True)
    server_rows = [r for r in rows if r["route"] == "server" and r["admitted"] and r["outcome"] == "decoded"]
    worst = max(server_rows, key=lambda r: r["seconds"])
    image = next(data for name, data, _ in cases() if name == worst["image"])
    width, height = struct.unpack(">II", image[16:24])
    requests = {}
    for key, fill_budget in (("most_pixels_admitted", True), ("most_images_refused", False)):
        requests[key] = r = measure_request(request_body(image, width, height, fill_budget))
        print(
            f"\none request of {r['images']} x '{worst['image']}' ({r['body_bytes']} bytes, 0 steps, 1 worker): "
            f"HTTP {r['status']} in {r['seconds']:.2f} s (preprocess {r['preprocess_ms']} ms); server peak memory "
            f"{r['peak_mb_before']:.0f} -> {r['peak_mb_after']:.0f} MB" + (f"; {r['detail']}" if r["detail"] else "")
        )
    requests["longest_adaptation"] = r = measure_request(longest_adaptation_body())
    print(
        f"\nfor scale, the longest adaptation the limits allow ({r['images']} 28x28 arrays, 200 steps, 1 worker): "
        f"HTTP {r['status']} in {r['seconds']:.2f} s (adapt {r['adapt_ms']} ms)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
        args.out.write_text(json.dumps({"machine": machine, "images": rows, "requests": requests}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
