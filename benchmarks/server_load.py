"""Load test of POST /api/adapt on loopback: concurrency levels, or capacity against 8x overload.

Starts `python -m server serve` on 127.0.0.1 (or uses --url). Two modes:

- levels (default): for each concurrency level (default 1, 8, 32), --requests adaptation requests
  (default 5,000) from a bounded asyncio client that keeps exactly `concurrency` requests in flight;
  a client that gets a 503 waits Retry-After, as the demo page does, unless --ignore-retry-after,
  then sends its next request.
- --overload: goodput at capacity and under --factor (8) x that concurrency, side by side, each
  for --duration seconds, with clients that honour Retry-After (wait the advertised seconds, then
  retry the same task) and clients that retry at once. Capacity is --capacity, or the measured knee:
  the smallest concurrency (workers, 2 x workers, ... up to workers + queue) whose goodput is within
  5 % of the best.

Each run reports goodput (successful adaptations/s), p50/p99 latency of the successful requests
(and, under --overload, of the tasks: first attempt to success, retries and waits included), 503s,
other errors, the CPU seconds of the server and of the client, and the server's resident memory:
sampled every 50 ms for the peak of each run, and the kernel's high-water mark (VmHWM) at the end.

Requests are few-shot tasks drawn like the browser sends them: PNG canvas exports (280x280, dark
strokes on a transparent canvas) as data URLs, --classes x --shots support drawings and --queries
queries, with the bundle's default adaptation steps unless --steps is given.

    python -m benchmarks.server_load                 # the levels (takes a while)
    python -m benchmarks.server_load --overload      # capacity against 8x overload (~3 min)
    python -m benchmarks.server_load --quick [--overload]   # a short smoke run of either
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

from benchmarks.local_server import Monitor, proc_status_mb, rss_mb, start_server, stop_server

MAX_WAIT_S = 10.0  # the longest Retry-After a client honours, as the demo page does


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


def pct_ms(seconds, q):
    """The q-th percentile of `seconds` in ms, None for no samples."""
    return round(float(np.percentile(seconds, q)) * 1000, 1) if seconds else None


def rounded(mb):
    """MB to one decimal; None stays None (a process /proc cannot read)."""
    return round(mb, 1) if mb is not None else None


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


async def post(client, body):
    """One attempt: (status or the exception's name, the response or None, seconds)."""
    import httpx

    start = time.perf_counter()
    try:
        response = await client.post("/api/adapt", content=body, headers={"Content-Type": "application/json"})
        return response.status_code, response, time.perf_counter() - start
    except httpx.HTTPError as error:
        return type(error).__name__, None, time.perf_counter() - start


def retry_after_s(response) -> float:
    """The advertised Retry-After in seconds, at most MAX_WAIT_S."""
    try:
        return min(float(response.headers.get("retry-after", 1)), MAX_WAIT_S)
    except ValueError:
        return 1.0


async def run_level(url, tasks, concurrency, requests, timeout, honor_retry_after=True, pid=None):
    """Send `requests` bodies with `concurrency` in flight; rates, latencies and status counts."""
    import httpx

    latencies, server_ms, statuses = [], [], {}
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    monitor = Monitor(pid)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def worker():
            for i in counter:
                status, response, elapsed = await post(client, tasks[i % len(tasks)])
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(elapsed)
                    server_ms.append(response.json()["elapsed_ms"])
                elif status == 503 and honor_retry_after:  # as the demo page does: wait, then go on
                    await asyncio.sleep(retry_after_s(response))

        monitor.start()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = statuses.get(200, 0)
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": ok,
        "status_503": statuses.get(503, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
        "wall_s": round(wall, 2),
        "adaptations_per_s": round(ok / wall, 2) if wall else None,
        "p50_ms": pct_ms(latencies, 50),
        "p99_ms": pct_ms(latencies, 99),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "server_elapsed_ms_p50": round(float(np.median(server_ms)), 1) if server_ms else None,
        **monitor.stop(),
    }


async def run_scenario(url, tasks, concurrency, duration_s, honor_retry_after, timeout, pid=None):
    """`concurrency` clients for `duration_s`, each retrying a task until it succeeds: after a 503 it
    waits Retry-After if honor_retry_after, else retries at once. Goodput, latencies, 503s."""
    import httpx

    request_s, task_s, statuses = [], [], {}
    counter = iter(range(1 << 62))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    monitor = Monitor(pid)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        end = time.perf_counter() + duration_s

        async def worker():
            while time.perf_counter() < end:
                body, first = tasks[next(counter) % len(tasks)], time.perf_counter()
                while time.perf_counter() < end:
                    status, response, elapsed = await post(client, body)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        request_s.append(elapsed)
                        task_s.append(time.perf_counter() - first)
                        break
                    if status != 503:
                        break  # not a retryable answer: count it and go on to the next task
                    if honor_retry_after:
                        await asyncio.sleep(min(retry_after_s(response), max(0.0, end - time.perf_counter())))

        monitor.start()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = statuses.get(200, 0)
    attempts = sum(statuses.values())
    return {
        "concurrency": concurrency,
        "retry_after": "honoured" if honor_retry_after else "ignored",
        "wall_s": round(wall, 2),
        "ok": ok,
        "goodput_per_s": round(ok / wall, 2),
        "attempts_per_s": round(attempts / wall, 2),
        "status_503": statuses.get(503, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
        "p50_ms": pct_ms(request_s, 50),
        "p99_ms": pct_ms(request_s, 99),
        "task_p50_ms": pct_ms(task_s, 50),
        "task_p99_ms": pct_ms(task_s, 99),
        **monitor.stop(),
    }


def measure_knee(url, tasks, workers, queue, seconds, timeout, pid) -> tuple:
    """(knee, sweep): goodput at workers, 2 x workers, ... up to workers + queue, each for `seconds`;
    the knee is the smallest concurrency within 5 % of the best goodput."""
    sweep, concurrency = [], workers
    while concurrency <= workers + queue:
        level = asyncio.run(run_scenario(url, tasks, concurrency, seconds, True, timeout, pid))
        sweep.append({k: level[k] for k in ("concurrency", "goodput_per_s", "p50_ms", "p99_ms", "status_503")})
        print(json.dumps(sweep[-1]))
        concurrency *= 2
    best = max(level["goodput_per_s"] for level in sweep)
    knee = min(level["concurrency"] for level in sweep if level["goodput_per_s"] >= 0.95 * best)
    return knee, sweep


def run_overload(args, url, pid, ready, tasks) -> dict:
    """Capacity and factor x capacity, Retry-After honoured and ignored: four runs side by side."""
    result = {"duration_s": args.duration, "factor": args.factor}
    if args.capacity:
        capacity = args.capacity
        result["capacity_from"] = "--capacity"
    else:
        capacity, result["knee_sweep"] = measure_knee(
            url, tasks, ready["workers"], ready["queue"], args.knee_s, args.client_timeout, pid
        )
        result["capacity_from"] = f"the measured knee ({args.knee_s:g} s per level)"
    result["capacity"] = capacity
    result["runs"] = []
    for load, concurrency in (("capacity", capacity), (f"{args.factor}x", capacity * args.factor)):
        for honor in (True, False):
            run = asyncio.run(run_scenario(url, tasks, concurrency, args.duration, honor, args.client_timeout, pid))
            run["load"] = load
            result["runs"].append(run)
            print(json.dumps(run))
    print(
        f"{'load':>8} {'conc':>4} {'Retry-After':>11} {'goodput/s':>9} {'tries/s':>8} {'503':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'task p99':>8} {'srv cpu':>7} {'cli cpu':>7} {'peak MB':>7}"
    )
    for run in result["runs"]:
        print(
            f"{run['load']:>8} {run['concurrency']:>4} {run['retry_after']:>11} {run['goodput_per_s']:>9} "
            f"{run['attempts_per_s']:>8} {run['status_503']:>6} {run['p50_ms']!s:>7} {run['p99_ms']!s:>7} "
            f"{run['task_p99_ms']!s:>8} {run['server_cpu_s']!s:>7} {run['client_cpu_s']!s:>7} {run['rss_mb_peak']!s:>7}"
        )
    return result


def run_levels(args, url, pid, tasks) -> list:
    """Every --concurrency level, --requests each; prints a table."""
    levels = []
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        level = asyncio.run(
            run_level(url, tasks, concurrency, args.requests, args.client_timeout, not args.ignore_retry_after, pid)
        )
        level["rss_mb_after"] = rounded(rss_mb(pid)) if pid else None
        levels.append(level)
        print(json.dumps(level))
    print(f"{'conc':>4} {'ok':>6} {'503':>5} {'adapt/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7} {'peak MB':>7}")
    for level in levels:
        print(
            f"{level['concurrency']:>4} {level['ok']:>6} {level['status_503']:>5} {level['adaptations_per_s']:>8} "
            f"{level['p50_ms']!s:>8} {level['p99_ms']!s:>8} {level['rss_mb_after']!s:>7} {level['rss_mb_peak']!s:>7}"
        )
    return levels


def parse_args(argv):
    """The command line; --quick fills in short values for the counts and durations not given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its memory and CPU")
    parser.add_argument("--quick", action="store_true", help="a short run: 200 requests a level, or 6 s runs")
    parser.add_argument("--requests", type=int, help="requests per concurrency level (default 5000)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default 1,8,32)")
    parser.add_argument("--overload", action="store_true", help="capacity against --factor x capacity")
    parser.add_argument("--capacity", type=int, help="with --overload: concurrency at capacity (default: the knee)")
    parser.add_argument("--factor", type=int, default=8, help="with --overload: the overload factor (default 8)")
    parser.add_argument("--duration", type=float, help="with --overload: seconds per run (default 30)")
    parser.add_argument("--knee-s", type=float, help="with --overload: seconds per knee level (default 5)")
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
        help="levels: send the next request at once after a 503 (default: wait Retry-After, at most 10 s)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="requests sent before measuring")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    for flag, quick, full in (("requests", 200, 5000), ("duration", 6.0, 30.0), ("knee_s", 2.0, 5.0)):
        if getattr(args, flag) is None:
            setattr(args, flag, quick if args.quick else full)
    for flag in ("requests", "duration", "knee_s", "factor", "capacity"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"argument --{flag.replace('_', '-')}: expected a positive number, got {value:g}")
    return args


def main(argv=None):
    """Run the levels or the overload comparison against the server; print (and with --out write) the results."""
    args = parse_args(argv)
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
            "mode": "overload" if args.overload else "levels",
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
            "rss_mb_before": rounded(rss_mb(pid)) if pid else None,
        }
        print(
            f"server {url}: {ready['workers']} workers, queue {ready['queue']}, model {ready['model']}"
            + (f" (startup {startup_s:.2f} s)" if startup_s else "")
        )
        print(f"RSS before: {result['rss_mb_before']} MB")
        if args.overload:
            result["overload"] = run_overload(args, url, pid, ready, tasks)
        else:
            result["levels"] = run_levels(args, url, pid, tasks)
        result["rss_mb_high_water"] = rounded(proc_status_mb(pid, "VmHWM")) if pid else None
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        print(f"server RSS high-water mark (VmHWM): {result['rss_mb_high_water']} MB")
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        if process is not None:
            stop_server(process)


if __name__ == "__main__":
    main()
