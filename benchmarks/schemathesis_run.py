"""Schemathesis against the server's OpenAPI schema: at least 3,000 generated cases, no 5xx.

Starts `python -m server serve` on 127.0.0.1 with its access log captured, runs `st run` over every
operation in the schema (positive and negative data; examples, coverage and fuzzing phases) and
reports the number of cases, the failed checks, and, independently of schemathesis, how many
responses the server itself logged with a 5xx status. The short in-process run of the same checks
is tests/test_api_fuzz.py (CI).

Checks: not_a_server_error (the requirement), and the conformance checks (status code, content type,
headers, response schema) and negative_data_rejection. positive_data_acceptance is left out: some
rules span fields (every class 0..N-1 needs an example, at most `shots` per class, transductive needs
two queries), JSON Schema cannot state them, so schema-valid requests that break them get a 422 by
design.

    python -m benchmarks.schemathesis_run                                   # 800 examples per operation
    python -m benchmarks.schemathesis_run --max-examples 30 --min-cases 0   # a short run
"""

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.local_server import start_server, stop_server

SEED = 20240601
# positive_data_acceptance is left out: rules that span fields (every class present, at most `shots`
# per class) are not JSON Schema, so schema-valid bodies that break them get 422 by design.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


def main(argv=None):
    """Serve, run schemathesis, count the server's own 5xx responses; exit status 0 when the run is clean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=800, help="per operation and phase (default 800)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--min-cases", type=int, default=3000, help="fewer generated cases fail the run")
    parser.add_argument("--workers", type=int, default=2, help="server ONNX workers")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)

    st = Path(sys.executable).with_name("st")
    workdir = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    log_path = workdir / "server.log"
    # A roomy queue and time limit: schemathesis sends one request at a time, and a 503 here would be
    # an overload artefact, not a bug.
    server, url, _ = start_server(
        "--workers",
        str(args.workers),
        "--queue",
        "64",
        "--timeout-s",
        "120",
        env={"OMP_NUM_THREADS": "1"},
        log=log_path,
    )
    try:
        started = time.perf_counter()
        st_command = [
            str(st),
            "run",
            f"{url}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(args.max_examples),
            "--seed",
            str(args.seed),
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--mode",
            "all",
            "--generation-database",
            "none",
            "--request-timeout",
            "130",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(workdir / "junit.xml"),
        ]
        run = subprocess.run(st_command, cwd=workdir, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    finally:
        stop_server(server)
    output = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", output)
    cases = int(generated.group(1)) if generated else None
    failures = sorted(set(re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", output)))
    log_lines = [line for line in log_path.read_text().splitlines() if "reptile_demo.access" in line]
    statuses, routes = {}, {}
    for line in log_lines:
        match = re.search(r" ([A-Z]+) (\S+) (\d{3}) [\d.]+ms$", line)
        if match:
            method, path, status = match.groups()
            statuses[status] = statuses.get(status, 0) + 1
            if method in ("GET", "POST"):
                key = f"{method} {path} {status}"
                routes[key] = routes.get(key, 0) + 1
    server_5xx = sum(n for code, n in statuses.items() if code.startswith("5"))
    result = {
        "benchmark": "schemathesis_run",
        "command": " ".join(st_command[1:]).replace(str(workdir), "<tmp>"),
        "schemathesis_version": importlib.metadata.version("schemathesis"),
        "seed": args.seed,
        "max_examples": args.max_examples,
        "schemathesis_exit_code": run.returncode,
        "cases_generated": cases,
        "requests_logged": len(log_lines),
        "responses_by_status": dict(sorted(statuses.items())),
        "server_5xx": server_5xx,
        "responses_by_route": dict(sorted(routes.items())),
        "failed_checks": [{"check": c, "count": int(n)} for c, n in failures],
        "elapsed_s": round(elapsed, 1),
        "ok": run.returncode == 0 and server_5xx == 0 and (cases or 0) >= args.min_cases,
    }
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    print(summary)
    print(json.dumps(result, indent=2))
    if run.returncode != 0:
        print(output[-20000:], file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
