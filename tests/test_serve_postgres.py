"""`anomaly serve --db postgres://...` as operators run it: PostgreSQL stopped
and restarted under it, and SIGTERM while requests are in flight."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from test_credit_service import free_port


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def start(cli: str, url: str) -> tuple[subprocess.Popen[str], str]:
    base = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen([cli, "serve", "--db", url, "--addr", base.removeprefix("http://")],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(200):
        try:
            if get(base + "/health") == 200:
                return server, base
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"serve did not start: {server.communicate()[1]}")


def test_serve_survives_a_database_restart_and_stops_cleanly(cli: str, postgres: Any) -> None:
    db = postgres.database()
    server, base = start(cli, postgres.url(db))
    try:
        assert get(base + "/ready") == 200 and get(base + "/anomalies") == 200
        postgres.stop()
        during = [get(base + "/anomalies") for _ in range(3)]
        assert set(during) <= {503}, during  # unavailable, said so, not a crash
        assert get(base + "/ready") == 503 and get(base + "/health") == 200
        postgres.start()
        deadline = time.time() + 30
        while time.time() < deadline and get(base + "/ready") != 200:
            time.sleep(0.2)
        after = [get(base + path) for path in ["/anomalies", "/variables", "/monthly", "/summary"] * 5]
        assert set(after) == {200}, after  # no 5xx once the database is back
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        assert "anomaly_database_up 1" in metrics
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "panicked" not in err


def test_sigterm_mid_load_finishes_requests_and_exits_0(cli: str, postgres: Any) -> None:
    db = postgres.database()
    server, base = start(cli, postgres.url(db))
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                statuses.append(get(base + "/anomalies?all=true"))
            except OSError:
                return  # the listener closed: the server is stopping

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert server.returncode == 0, err
    assert "panicked" not in err and "SIGTERM" in err
    assert statuses and set(statuses) == {200}, set(statuses)
