"""A demo server of this checkout for one benchmark run: `python -m server serve` on a free loopback port."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*flags: str, env: dict | None = None, log: Path | None = None, wait_s: float = 60.0) -> tuple:
    """(process, url, seconds until /readyz answered 200) of `python -m server serve` with `flags`.

    `env` is added to this process's environment; the server's output goes to the file `log` if
    given, else to this process's own output."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), *flags]
    environment = {**os.environ, **(env or {})}
    started = time.perf_counter()
    if log:
        with open(log, "w") as output:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    else:
        process = subprocess.Popen(command, cwd=ROOT, env=environment)
    while time.perf_counter() - started < wait_s:
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited with status {process.returncode}" + (f":\n{log.read_text()}" if log else "")
            )
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - started
        except OSError:  # not listening yet, or 503 while the model loads
            time.sleep(0.02)
    process.kill()
    raise SystemExit(f"the server did not become ready in {wait_s:.0f} s")


def stop_server(process: subprocess.Popen, wait_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the server has not exited after wait_s."""
    process.terminate()
    try:
        process.wait(wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
