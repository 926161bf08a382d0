"""SQL jobs, end to end, on SQLite and (when a server is given) PostgreSQL.

    .venv/bin/python benches/sql_jobs.py [--days 365] [--variables 25] [--postgres URL]

1. Backfill: a year of 5-minute readings for 25 variables (2.6 M rows)
   through `anomaly simulate` (the inserts), `anomaly train` (all history)
   and `anomaly detect --once`; wall time of each.
2. Watch mode: `anomaly watch --poll-interval 50ms` running while a writer
   inserts one datetime (all variables) per second for 30 s; the delay from
   the insert's commit to the last of its result rows, p50 and p99 (SQLite:
   polling the results every 2 ms; PostgreSQL, where the worker wakes on
   LISTEN/NOTIFY: the server's own `created_at` and `processed_at`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "anomaly"


def timed(*args: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run([str(CLI), *args, "-q"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - t


class Sqlite:
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:{path}"
        self.conn = sqlite3.connect(path, isolation_level=None)

    def insert(self, ts: str, values: list[tuple[str, float]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO datos_proceso (datetime, variable_name, value) VALUES (?, ?, ?)",
            [(ts, v, x) for v, x in values],
        )
        self.conn.execute("COMMIT")

    def results_at(self, ts: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM anomalies_detector WHERE ds = ?", (ts,)).fetchone()[0])


class Postgres:
    def __init__(self, url: str) -> None:
        self.url = url

    def psql(self, sql: str) -> str:
        return subprocess.run(["psql", "-At", "-d", self.url, "-c", sql], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    def insert(self, ts: str, values: list[tuple[str, float]]) -> None:
        rows = ",".join(f"('{ts}', '{v}', {x})" for v, x in values)
        self.psql(f"INSERT INTO datos_proceso (datetime, variable_name, value) VALUES {rows}")

    def results_at(self, ts: str) -> int:
        return int(self.psql(f"SELECT COUNT(*) FROM anomalies_detector WHERE ds = '{ts}'") or 0)

    def server_delays(self, first: str) -> list[float]:
        """Insert commit to last result, by the server's own clock (psql polls add no delay here)."""
        out = self.psql(
            "SELECT EXTRACT(EPOCH FROM (MAX(a.processed_at) - MIN(r.created_at))) * 1000 "
            "FROM datos_proceso r JOIN anomalies_detector a ON a.ds = r.datetime AND a.variable = r.variable_name "
            f"WHERE r.datetime >= '{first}' GROUP BY r.datetime"
        )
        return [float(x) for x in out.split()]


def bench(db: Sqlite | Postgres, days: int, variables: int, work: Path) -> dict[str, object]:
    models = work / "models"
    out: dict[str, object] = {"readings": days * 288 * variables}
    out["simulate_s"] = timed("simulate", "--db", db.url, "--variables", str(variables), "--days", str(days))
    out["train_s"] = timed("train", "--db", db.url, "--models", str(models))
    out["detect_once_s"] = timed("detect", "--db", db.url, "--models", str(models), "--once")
    worker = subprocess.Popen([str(CLI), "watch", "--db", db.url, "--models", str(models), "--poll-interval", "50ms",
                               "-q"])  # fmt: skip
    delays = []
    try:
        time.sleep(1.0)
        start = 1_709_510_400 + days * 86_400  # the first datetime after the simulated year
        for i in range(30):
            ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 300))
            values = [(f"VAR_{v + 1:02d}", 50.0 + v) for v in range(variables)]
            t0 = time.perf_counter()
            db.insert(ts, values)
            while db.results_at(ts) < variables:
                time.sleep(0.002)
            delays.append((time.perf_counter() - t0) * 1000)
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    if isinstance(db, Postgres):
        delays = db.server_delays(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)))
    delays.sort()
    out["watch_delay_ms"] = {"p50": statistics.median(delays), "p99": delays[int(0.99 * (len(delays) - 1))],
                             "max": delays[-1]}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--variables", type=int, default=25)
    parser.add_argument("--postgres", help="URL of an empty PostgreSQL database")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    results = {"sqlite": bench(Sqlite(work / "plant.db"), args.days, args.variables, work)}
    if args.postgres:
        results["postgres"] = bench(Postgres(args.postgres), args.days, args.variables, work / "pg")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
