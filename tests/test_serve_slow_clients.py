"""`anomaly serve` against slow and broken clients: each gets the service's
timeouts, and none of them holds it for anyone else."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from test_credit_service import free_port


@pytest.fixture()
def server(cli: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    # serve opens its database read-only and creates nothing: an existing
    # database without the results tables answers empty pages.
    sqlite3.connect(tmp_path / "r.db").execute("CREATE TABLE notes (x TEXT)").connection.close()
    proc = subprocess.Popen([cli, "serve", "--db", f"sqlite:{tmp_path / 'r.db'}", "--addr", f"127.0.0.1:{port}",
                             "--header-timeout", "1s", "--request-timeout", "2s", "--max-connections", "40"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            break
        except OSError:
            time.sleep(0.05)
    yield "127.0.0.1", port
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "panicked" not in err, err


def answer_within(sock: socket.socket, seconds: float) -> tuple[float, bytes]:
    """What the server sends (b"" when it closes) and after how long."""
    sock.settimeout(seconds)
    start, data = time.time(), b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return time.time() - start, data


def test_slow_and_broken_clients_get_timeouts(server: tuple[str, int]) -> None:
    host, port = server
    idle = socket.create_connection((host, port))
    partial = socket.create_connection((host, port))
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    short = socket.create_connection((host, port))
    short.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":")
    chunked = socket.create_connection((host, port))
    chunked.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFF\r\nabc")
    # Meanwhile others are served at once.
    start = time.time()
    assert urllib.request.urlopen(f"http://{host}:{port}/anomalies", timeout=5).status == 200
    assert time.time() - start < 1.0
    for sock in (idle, partial):  # closed after the 1 s header timeout, without an answer
        waited, data = answer_within(sock, 10)
        assert data == b"" and waited < 5, (waited, data)
    for sock in (short, chunked):  # 408 after the 2 s request timeout, then closed
        waited, data = answer_within(sock, 10)
        assert data.startswith(b"HTTP/1.1 408") and b"E408" in data and waited < 8, (waited, data)


def test_connections_beyond_the_limit_are_closed_and_the_service_recovers(server: tuple[str, int]) -> None:
    host, port = server
    hogs = [socket.create_connection((host, port)) for _ in range(40)]
    time.sleep(0.3)
    extra = socket.create_connection((host, port))
    waited, data = answer_within(extra, 5)
    assert data == b"" and waited < 2  # closed on arrival
    for sock in hogs:  # the idle ones are dropped after the header timeout
        answer_within(sock, 10)
    assert urllib.request.urlopen(f"http://{host}:{port}/health", timeout=5).status == 200
