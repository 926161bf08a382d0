"""SQL jobs, end to end, on SQLite and (when a server is given) PostgreSQL.

    .venv/bin/python benches/sql_jobs.py [--days 365] [--variables 25] [--postgres URL] [--skip-watch]

Needs `target/release/anomaly` and the bare insert reference
`target/release/examples/bare_insert` (under CARGO_TARGET_DIR if set):
`cargo build --release -p anomaly-cli --example bare_insert`. PostgreSQL's
Python reference needs psycopg 3 (`pip install -r benches/requirements.txt`);
without it only that one number is skipped.

1. Backfill: a year of 5-minute readings for 25 variables (2.6 M rows)
   through `anomaly simulate` (the inserts), `anomaly train` (all history)
   and `anomaly detect --once` (scores them and writes as many result rows
   into `anomalies_detector`); wall time of each.
2. Bare insert references, same run: as many result rows, generated before
   the clock starts, into an empty table with the results table's schema
   (unique key, four indexes), in one transaction. `bare_python_insert_s`:
   one prepared statement, `executemany` (stdlib sqlite3 with WAL,
   synchronous=NORMAL, a 256 MB cache; psycopg 3 on PostgreSQL).
   `bare_rust_insert_s`: the `bare_insert` example (SQLite: one prepared
   statement, same pragmas; PostgreSQL: `COPY ... FROM STDIN`). On SQLite
   each writes a fresh database file; on PostgreSQL, a fresh table dropped
   afterwards. `detect_vs_python` / `detect_vs_rust`: `detect_once_s` over each.
3. Watch mode (unless `--skip-watch`): `anomaly watch --poll-interval 50ms`
   running while a writer inserts one datetime (all variables) per second for
   30 s; the delay from the insert's commit to the last of its result rows,
   p50 and p99 (SQLite: polling the results every 2 ms; PostgreSQL, where the
   worker wakes on LISTEN/NOTIFY: the server's own `created_at` and
   `processed_at`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import psycopg
except ImportError:
    psycopg = None

ROOT = Path(__file__).resolve().parents[1]
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
CLI = RELEASE / "anomaly"
BARE = RELEASE / "examples" / "bare_insert"
START = 1_709_510_400  # 2024-03-04 00:00:00 UTC, the first simulated datetime
COLUMNS = "ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score, processed_at"


def timed(*args: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run([str(CLI), *args, "-q"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - t


def results_ddl(t: str, postgres: bool) -> str:
    """The results table's schema (as `anomaly` creates it) under another name."""
    ts, real, flag, pk = ("TIMESTAMP", "DOUBLE PRECISION", "BOOLEAN", "BIGSERIAL PRIMARY KEY") if postgres else \
        ("TEXT", "REAL", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT")  # fmt: skip
    processed = "TIMESTAMP NOT NULL DEFAULT now()" if postgres else "TEXT NOT NULL"
    return (f"DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id {pk}, ds {ts} NOT NULL, variable TEXT NOT NULL, "
            f"y {real}, yhat {real}, yhat_lower {real}, yhat_upper {real}, residual {real}, is_anomaly {flag} NOT NULL, "
            f"anomaly_score {real}, processed_at {processed}, UNIQUE (ds, variable)); "
            f"CREATE INDEX idx_{t}_ds ON {t}(ds); CREATE INDEX idx_{t}_variable ON {t}(variable); "
            f"CREATE INDEX idx_{t}_is_anomaly ON {t}(is_anomaly); CREATE INDEX idx_{t}_score ON {t}(anomaly_score);")  # fmt: skip


@functools.lru_cache(maxsize=1)
def result_rows(n: int, variables: int) -> list[tuple[object, ...]]:
    """n plausible result rows in key order (datetime-major), generated before any clock starts."""
    stamps = [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(START + 300 * s)) for s in range(-(-n // variables))]
    names = [f"VAR_{v + 1:02d}" for v in range(variables)]
    rng, rows = random.Random(7), []
    for i in range(n):
        step, v = divmod(i, variables)
        yhat = 50.0 + v + 10.0 * math.sin(2 * math.pi * (step % 288) / 288)
        y, score = yhat + 4.0 * (rng.random() - 0.5), 100.0 * rng.random()
        rows.append((stamps[step], names[v], y, yhat, yhat - 3.0, yhat + 3.0, y - yhat, score >= 99.0, score,
                     "2024-03-05 00:00:00"))  # fmt: skip
    return rows


def bare_rust(url: str, rows: int, variables: int, table: str) -> float:
    args = [str(BARE), "--db", url, "--rows", str(rows), "--variables", str(variables), "--table", table]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return float(json.loads(proc.stdout)["seconds"])


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

    def results(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM anomalies_detector").fetchone()[0])

    def bare_inserts(self, rows: int, variables: int, work: Path) -> tuple[float | None, float]:
        conn = sqlite3.connect(work / "bare_python.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(results_ddl("bare_results", postgres=False))
        data = result_rows(rows, variables)
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO bare_results ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data)
        conn.execute("COMMIT")
        python_s = time.perf_counter() - t
        conn.close()
        return python_s, bare_rust(f"sqlite:{work / 'bare_rust.db'}", rows, variables, "bare_results")


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

    def results(self) -> int:
        return int(self.psql("SELECT COUNT(*) FROM anomalies_detector"))

    def bare_inserts(self, rows: int, variables: int, work: Path) -> tuple[float | None, float]:
        py_table, rust_table = f"bare_python_{os.getpid()}", f"bare_rust_{os.getpid()}"
        python_s = None
        try:
            if psycopg is None:
                print("psycopg (v3) is not installed: skipping PostgreSQL's bare Python insert "
                      "(pip install -r benches/requirements.txt)", file=sys.stderr)  # fmt: skip
            else:
                data = result_rows(rows, variables)
                with psycopg.connect(self.url) as conn:
                    conn.execute(results_ddl(py_table, postgres=True))
                    conn.commit()
                    t = time.perf_counter()
                    with conn.cursor() as cur:
                        cur.executemany(f"INSERT INTO {py_table} ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})", data)
                    conn.commit()
                    python_s = time.perf_counter() - t
            return python_s, bare_rust(self.url, rows, variables, rust_table)
        finally:
            self.psql(f"DROP TABLE IF EXISTS {py_table}, {rust_table}")

    def server_delays(self, first: str) -> list[float]:
        """Insert commit to last result, by the server's own clock (psql polls add no delay here)."""
        out = self.psql(
            "SELECT EXTRACT(EPOCH FROM (MAX(a.processed_at) - MIN(r.created_at))) * 1000 "
            "FROM datos_proceso r JOIN anomalies_detector a ON a.ds = r.datetime AND a.variable = r.variable_name "
            f"WHERE r.datetime >= '{first}' GROUP BY r.datetime"
        )
        return [float(x) for x in out.split()]


def ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 2) if b else None


def watch(db: Sqlite | Postgres, days: int, variables: int, models: Path) -> dict[str, float]:
    worker = subprocess.Popen([str(CLI), "watch", "--db", db.url, "--models", str(models), "--poll-interval", "50ms",
                               "-q"])  # fmt: skip
    delays = []
    start = START + days * 86_400  # the first datetime after the simulated history
    try:
        time.sleep(1.0)
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
    return {"p50": statistics.median(delays), "p99": delays[int(0.99 * (len(delays) - 1))], "max": delays[-1]}


def bench(db: Sqlite | Postgres, args: argparse.Namespace, work: Path) -> dict[str, object]:
    models = work / "models"
    days, variables = args.days, args.variables
    out: dict[str, object] = {"readings": days * 288 * variables}
    out["simulate_s"] = timed("simulate", "--db", db.url, "--variables", str(variables), "--days", str(days))
    out["train_s"] = timed("train", "--db", db.url, "--models", str(models))
    out["detect_once_s"] = detect = timed("detect", "--db", db.url, "--models", str(models), "--once")
    out["result_rows"] = rows = db.results()
    python_s, rust_s = db.bare_inserts(rows, variables, work)
    out["bare_python_insert_s"], out["bare_rust_insert_s"] = python_s, rust_s
    out["detect_vs_python"], out["detect_vs_rust"] = ratio(detect, python_s), ratio(detect, rust_s)
    if not args.skip_watch:
        out["watch_delay_ms"] = watch(db, days, variables, models)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--variables", type=int, default=25)
    parser.add_argument("--postgres", help="URL of an empty PostgreSQL database")
    parser.add_argument("--skip-watch", action="store_true", help="backfill and bare inserts only")
    args = parser.parse_args()
    for binary, build in ((CLI, "cargo build --release -p anomaly-cli"),
                          (BARE, "cargo build --release -p anomaly-cli --example bare_insert")):  # fmt: skip
        if not binary.exists():
            print(f"{binary} is missing; build it first: {build}", file=sys.stderr)
            raise SystemExit(2)
    work = Path(tempfile.mkdtemp())
    results = {"sqlite": bench(Sqlite(work / "plant.db"), args, work)}
    if args.postgres:
        results["postgres"] = bench(Postgres(args.postgres), args, work / "pg")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
