"""The access log cannot be forged: whatever a client puts in the request line (CR LF, NUL, other
control or invisible characters, spaces that mimic the status field), each request is exactly one
printable line, with the path percent-encoded. Checked on a real uvicorn process and in the app."""

import logging
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from server_helpers import make_web_dir, start_server_process

from server.app import create_app
from server.config import Settings

ROOT = Path(__file__).resolve().parent.parent
# path as sent (percent-encoded) -> how the access log must show it
FORGERIES = {
    "/x%0d%0a2026-01-01%2000:00:00,000%20INFO%20reptile_demo.access:%20GET%20/admin%20200%201.0ms": (
        "/x%0D%0A2026-01-01%2000:00:00,000%20INFO%20reptile_demo.access:%20GET%20/admin%20200%201.0ms"
    ),
    "/nul%00byte": "/nul%00byte",
    "/esc%1b%5b31mred": "/esc%1B%5B31mred",
    "/line%e2%80%a8separator%e2%80%aeoverride": "/line%E2%80%A8separator%E2%80%AEoverride",
    "/fake%20200%201.0ms": "/fake%20200%201.0ms",
    "/bad-utf8%ff%fe": "/bad-utf8%EF%BF%BD%EF%BF%BD",
    "/plain/path_-.~": "/plain/path_-.~",
}


def raw_get(port: int, target: str) -> bytes:
    """One GET with the request target exactly as given (no client-side normalising)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_a_real_server_logs_each_request_on_one_printable_line(tmp_path):
    process, port, _ = start_server_process(
        make_web_dir(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False
    )
    try:
        for target in FORGERIES:
            assert raw_get(port, target).startswith(b"HTTP/1.1 404"), target
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    log = err.decode("utf-8")  # strict: the log is valid UTF-8
    lines = log.split("\n")
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()]
    access = [line for line in lines if " reptile_demo.access: " in line]
    assert len(access) == 1 + len(FORGERIES), access  # /readyz and one line per forgery, no more
    fields = [re.search(r" reptile_demo\.access: (\S+) (\S+) (\d{3}) [\d.]+ms$", line) for line in access]
    assert all(fields), access
    assert sorted(f.groups() for f in fields) == sorted(
        [("GET", "/readyz", "200")] + [("GET", logged, "404") for logged in FORGERIES.values()]
    )
    assert not any("/admin" in line for line in lines if " reptile_demo.access: " not in line)
    assert "Traceback" not in log


def test_the_app_logs_client_values_percent_encoded(tmp_path, caplog):
    app = create_app(Settings(web_dir=make_web_dir(tmp_path), workers=1))
    with caplog.at_level(logging.INFO, logger="reptile_demo.access"), TestClient(app) as client:
        for target in FORGERIES:
            assert client.get(target).status_code == 404
        assert client.request("PATCH", "/api/adapt").status_code == 405
    messages = [r.getMessage() for r in caplog.records if r.name == "reptile_demo.access"]
    assert len(messages) == len(FORGERIES) + 1
    for message, logged in zip(messages, FORGERIES.values(), strict=False):
        method, path, status, ms = message.split(" ")
        assert (method, path, status) == ("GET", logged, "404") and ms.endswith("ms")
    assert messages[-1].startswith("PATCH /api/adapt 405 ")
    assert all(m.isprintable() and m.isascii() for m in messages)


def test_the_cli_log_format_keeps_every_message_on_one_line():
    from server.cli import LOG_FORMAT, OneLineFormatter

    record = logging.LogRecord("reptile_demo", logging.ERROR, __file__, 1, "on %s", ("/a\r\nforged\x00\x1b[2J",), None)
    line = OneLineFormatter(LOG_FORMAT).format(record)
    assert line.isprintable() and line.endswith("reptile_demo: on /a\\r\\nforged\\x00\\x1b[2J")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("reptile_demo", logging.ERROR, __file__, 1, "x\ny", (), sys.exc_info())
    first, *traceback = OneLineFormatter(LOG_FORMAT).format(record).splitlines()
    assert first.endswith("x\\ny") and traceback[0].startswith("Traceback")  # a traceback keeps its lines
