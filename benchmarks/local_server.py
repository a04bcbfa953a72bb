"""A demo server of this checkout for one benchmark run: `python -m server serve` on a free loopback port,
and its memory and CPU time read from /proc (Linux)."""

import asyncio
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


def proc_status_mb(pid, key="VmRSS") -> float | None:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM) in MB, None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid) -> float | None:
    """The process's resident memory in MB (Linux /proc), None where it cannot be read."""
    return proc_status_mb(pid, "VmRSS")


def cpu_s(pid) -> float | None:
    """User + system CPU seconds the process has used, None where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Monitor:
    """Over one run: the server's peak RSS (sampled every 50 ms) and CPU seconds, and this process's
    (the load client's) CPU seconds."""

    def __init__(self, pid):
        self.pid, self.peak, self._task = pid, None, None

    async def _sample(self):
        """Read VmRSS every 50 ms until cancelled."""
        while True:
            rss = rss_mb(self.pid)
            if rss is not None:
                self.peak = max(self.peak or 0.0, rss)
            await asyncio.sleep(0.05)

    def start(self):
        """Begin sampling (call inside the event loop)."""
        self.cpu_start = cpu_s(self.pid) if self.pid else None
        self.client_cpu_start = time.process_time()
        if self.pid:
            self._task = asyncio.get_running_loop().create_task(self._sample())

    def stop(self) -> dict:
        """Stop sampling; the peak RSS and the CPU seconds used since start."""
        client_cpu = round(time.process_time() - self.client_cpu_start, 2)
        if self._task is not None:
            self._task.cancel()
        cpu_end = cpu_s(self.pid) if self.pid else None
        used = round(cpu_end - self.cpu_start, 2) if cpu_end is not None and self.cpu_start is not None else None
        return {
            "rss_mb_peak": round(self.peak, 1) if self.peak else None,
            "server_cpu_s": used,
            "client_cpu_s": client_cpu,
        }
