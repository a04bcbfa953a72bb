"""Load test of POST /api/adapt on loopback.

Starts `python -m server serve` on 127.0.0.1 (or uses --url), then for each concurrency level
(default 1, 8, 32) sends --requests adaptation requests (default 5,000) from a bounded asyncio
client that keeps exactly `concurrency` requests in flight, and reports adaptations/s, p50/p99
latency of the successful requests, the 503 count (queue full or time limit; a client that gets one
waits Retry-After, as the demo page does, unless --ignore-retry-after), other errors, and the
server's resident memory (VmRSS) before the first level and after each one.

Requests are few-shot tasks drawn like the browser sends them: PNG canvas exports (280x280, dark
strokes on a transparent canvas) as data URLs, --classes x --shots support drawings and --queries queries, with the
bundle's default adaptation steps unless --steps is given.

    python -m benchmarks.server_load                 # the full measurement (takes a while)
    python -m benchmarks.server_load --requests 50   # a short smoke run
    python -m benchmarks.server_load --url http://127.0.0.1:8000 --server-pid 1234

The client runs on the same machine and takes some CPU itself; say so next to the figures.
"""

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.local_server import start_server, stop_server


def drawing(rng, size=280) -> bytes:
    """A random scribble of 2-4 dark polylines as a PNG canvas export."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))  # a cleared canvas is transparent
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 5))):
        points = [
            tuple(int(v) for v in rng.integers(size // 8, size - size // 8, 2)) for _ in range(int(rng.integers(2, 5)))
        ]
        draw.line(points, fill=(20, 20, 20, 255), width=int(rng.integers(8, 16)), joint="curve")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_tasks(count, classes, shots, queries, steps, image_format, seed=0) -> list:
    """`count` encoded /api/adapt request bodies (images as PNG data URLs or 28 x 28 arrays)."""
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(count):

        def image():
            png = drawing(rng)
            if image_format == "array":
                from preprocessing import decode_png_ink, to_model_input

                return to_model_input(decode_png_ink(png)).round(5).tolist()
            return "data:image/png;base64," + base64.b64encode(png).decode()

        body = {
            "support": [{"image": image(), "label": c} for c in range(classes) for _ in range(shots)],
            "query": [{"image": image()} for _ in range(queries)],
        }
        if steps is not None:
            body["steps"] = steps
        tasks.append(json.dumps(body).encode())
    return tasks


def rss_mb(pid) -> float | None:
    """The process's resident memory in MB (Linux /proc), None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def server_flags(args) -> list:
    """The serve flags this benchmark passes on (those given on its command line)."""
    flags = ["--log-level", "warning"]
    for flag, value in (
        ("--workers", args.workers),
        ("--queue", args.queue),
        ("--model", args.model),
        ("--timeout-s", args.timeout_s),
    ):
        if value is not None:
            flags += [flag, str(value)]
    return flags


async def run_level(url, tasks, concurrency, requests, timeout, honor_retry_after=True):
    """Send `requests` bodies with `concurrency` in flight; rates, latencies and status counts."""
    import httpx

    latencies, server_ms, statuses = [], [], {}
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def worker():
            for i in counter:
                body = tasks[i % len(tasks)]
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/adapt", content=body, headers={"Content-Type": "application/json"}
                    )
                    status = response.status_code
                    if status == 200:
                        server_ms.append(response.json()["elapsed_ms"])
                except httpx.HTTPError as error:
                    status = type(error).__name__
                elapsed = time.perf_counter() - start
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(elapsed)
                elif status == 503 and honor_retry_after:  # as the demo page does: wait, then go on
                    await asyncio.sleep(min(float(response.headers.get("retry-after", 1)), 10.0))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = statuses.get(200, 0)

    def pct(q):
        return round(float(np.percentile(latencies, q)) * 1000, 1) if latencies else None

    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": ok,
        "status_503": statuses.get(503, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
        "wall_s": round(wall, 2),
        "adaptations_per_s": round(ok / wall, 2) if wall else None,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "server_elapsed_ms_p50": round(float(np.median(server_ms)), 1) if server_ms else None,
    }


def main(argv=None):
    """Run every concurrency level against the server and print (and with --out write) the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its memory")
    parser.add_argument("--requests", type=int, default=5000, help="requests per concurrency level (default 5000)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default 1,8,32)")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=1)
    parser.add_argument("--steps", type=int, help="adaptation steps (default: the bundle's default)")
    parser.add_argument("--format", choices=["png", "array"], default="png", dest="image_format")
    parser.add_argument("--distinct-tasks", type=int, default=32, help="different request bodies to cycle through")
    parser.add_argument("--workers", type=int, help="server ONNX workers (default: the server's, the CPU count)")
    parser.add_argument("--queue", type=int, help="server queue size (default: the server's)")
    parser.add_argument("--timeout-s", type=float, help="server per-request time limit")
    parser.add_argument("--model", help="bundle directory")
    parser.add_argument("--client-timeout", type=float, default=120.0)
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="send the next request at once after a 503 (default: wait Retry-After, at most 10 s)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="requests sent before measuring")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    tasks = make_tasks(args.distinct_tasks, args.classes, args.shots, args.queries, args.steps, args.image_format)
    process, startup_s = None, None
    if args.url:
        url, pid = args.url.rstrip("/"), args.server_pid
    else:
        process, url, startup_s = start_server(*server_flags(args), env={"OMP_NUM_THREADS": "1"})
        pid = process.pid
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            ready = json.loads(response.read())
        asyncio.run(run_level(url, tasks, 1, args.warmup, args.client_timeout))
        result = {
            "benchmark": "server_load",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_at_start": os.getloadavg()},
            "server": {
                "url": url,
                "startup_to_ready_s": round(startup_s, 3) if startup_s else None,
                "workers": ready["workers"],
                "queue": ready["queue"],
                "model": ready["model"],
                "warning": ready["warning"],
            },
            "task": {
                "classes": args.classes,
                "shots": args.shots,
                "queries": args.queries,
                "steps": args.steps if args.steps is not None else "bundle default",
                "format": args.image_format,
                "body_bytes_mean": int(np.mean([len(t) for t in tasks])),
            },
            "rss_mb_before": rss_mb(pid) if pid else None,
            "levels": [],
        }
        print(
            f"server {url}: {ready['workers']} workers, queue {ready['queue']}, model {ready['model']}"
            + (f" (startup {startup_s:.2f} s)" if startup_s else "")
        )
        print(f"RSS before: {result['rss_mb_before']} MB")
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            level = asyncio.run(
                run_level(url, tasks, concurrency, args.requests, args.client_timeout, not args.ignore_retry_after)
            )
            level["rss_mb_after"] = rss_mb(pid) if pid else None
            result["levels"].append(level)
            print(json.dumps(level))
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        print(f"{'conc':>4} {'ok':>6} {'503':>5} {'adapt/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7}")
        for level in result["levels"]:
            print(
                f"{level['concurrency']:>4} {level['ok']:>6} {level['status_503']:>5} {level['adaptations_per_s']:>8} "
                f"{level['p50_ms']!s:>8} {level['p99_ms']!s:>8} {level['rss_mb_after']!s:>7}"
            )
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        if process is not None:
            stop_server(process)


if __name__ == "__main__":
    main()
