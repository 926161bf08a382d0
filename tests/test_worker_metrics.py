"""The workers' Prometheus metrics (`--metrics-addr`) while they run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from test_credit_service import free_port


def run(cli: str, *args: str) -> None:
    subprocess.run([cli, *args, "-q"], check=True, capture_output=True, text=True)


def scrape(addr: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") is not None and "le" not in sample.labels:
                out[sample.name] = sample.value
    return out


def watch_until(cli: str, addr: str, args: list[str], done: callable) -> tuple[dict[str, float], str]:  # type: ignore[valid-type]
    worker = subprocess.Popen([cli, *args, "--metrics-addr", addr], stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.time() + 60, {}
        while time.time() < deadline:
            try:
                seen = scrape(addr)
                if done(seen):
                    break
            except OSError:
                pass
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    return seen, err


def test_forecast_worker_reports_rows_pending_and_batches(cli: str, tmp_path: Path) -> None:
    db, models = tmp_path / "plant.db", tmp_path / "models"
    run(cli, "forecast", "simulate", "--db", f"sqlite:{db}", "--variables", "3", "--days", "3")
    run(cli, "forecast", "train", "--db", f"sqlite:{db}", "--models", str(models))
    with sqlite3.connect(db) as c:
        readings = c.execute("SELECT COUNT(*) FROM datos_proceso").fetchone()[0]
    addr = f"127.0.0.1:{free_port()}"
    args = ["forecast", "watch", "--db", f"sqlite:{db}", "--models", str(models), "--poll-interval", "100ms",
            "--batch-size", "500"]  # fmt: skip
    seen, _ = watch_until(cli, addr, args, lambda m: m.get("anomaly_worker_rows_total", 0) >= readings)
    assert seen["anomaly_worker_rows_total"] == readings
    assert seen["anomaly_worker_results_total"] == readings
    assert 0 < seen["anomaly_worker_anomalies_total"] < readings
    assert seen["anomaly_worker_rejects_total"] == 0 and seen["anomaly_worker_database_errors_total"] == 0
    assert seen["anomaly_worker_pending_rows"] in (0, readings)  # the backlog at the start of the last pass
    assert abs(seen["anomaly_worker_last_pass_timestamp_seconds"] - time.time()) < 60
    # One batch latency per committed batch of 500.
    assert seen["anomaly_worker_batch_seconds_count"] == -(-readings // 500)


def test_isolation_forest_worker_counts_rejects(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--batch-size", "1000")
    with sqlite3.connect(db) as c:
        c.execute("UPDATE energy_records SET voltage = NULL WHERE id IN (3, 5)")
    addr = f"127.0.0.1:{free_port()}"
    args = ["iforest", "watch", "--db", f"sqlite:{db}", "--model", str(tmp_path / "f.json"), "--interval", "100ms"]
    seen, _ = watch_until(cli, addr, args, lambda m: m.get("anomaly_worker_rows_total", 0) >= 1000)
    assert seen["anomaly_worker_rows_total"] == 1000
    assert seen["anomaly_worker_rejects_total"] == 2 and seen["anomaly_worker_results_total"] == 998


def test_json_logs_are_one_object_per_line(cli: str, tmp_path: Path) -> None:
    import json

    db = tmp_path / "energy.db"
    run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--batch-size", "500")
    out = subprocess.run([cli, "--log-format", "json", "iforest", "watch", "--db", f"sqlite:{db}", "--model",
                          str(tmp_path / "f.json"), "--max-iterations", "1"], capture_output=True, text=True, check=True)  # fmt: skip
    events = [json.loads(line) for line in out.stderr.splitlines()]
    assert events and all({"time", "level", "target", "message"} <= set(e) for e in events)
    assert any("500 records found" in e["message"] and "batches" in e["message"] for e in events), events
    bad = subprocess.run([cli, "--log-format", "json", "iforest", "watch", "--db", f"sqlite:{db}", "--model",
                          str(tmp_path / "f.json"), "--interval", "10x"], capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 2 and json.loads(bad.stderr.splitlines()[-1])["exit_code"] == 2
