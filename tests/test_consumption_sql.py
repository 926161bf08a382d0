"""The consumption SQL job's episodes and suspicious months are the Python
path's on the whole series, with readings arriving in rounds, so that
episodes spanning rounds are extended, never duplicated; on SQLite here and
on PostgreSQL in test_sql_jobs_postgres.py. `anomaly serve --db` lists them
at /consumption/episodes, and the monthly endpoint ranks the months."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly import consumption
from test_sql_jobs import run, serving

ROUNDS = 5


def readings() -> pd.DataFrame:
    """8 clients x 75 days with injected plantations, flat meters and spikes:
    long enough for the calibrated rules' 56-day tail."""
    df, events = consumption.simulate(clients=8, days=75, seed=4, anomaly_rate=0.8)
    assert {"plantation", "flat"} <= set(events["kind"])
    return df


def rounds(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Contiguous spans of time, cut at odd hours (mid-night, mid-run)."""
    cuts = pd.date_range(df.timestamp.min(), df.timestamp.max(), periods=ROUNDS + 1)[1:-1] + pd.Timedelta(hours=3)
    edges = [df.timestamp.min(), *cuts, df.timestamp.max() + pd.Timedelta(hours=1)]
    return [df[(df.timestamp >= a) & (df.timestamp < b)] for a, b in zip(edges, edges[1:])]


def values(part: pd.DataFrame) -> list[tuple[str, str, float]]:
    return list(zip(part.client_id, part.timestamp.dt.strftime("%Y-%m-%d %H:%M:%S"), part.kwh.astype(float)))


def expected(df: pd.DataFrame) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Python's episodes and months, as the tables hold them."""
    result = consumption.analyze(df)
    ep = result.episodes
    episodes = sorted(
        (c, t, s.strftime("%Y-%m-%d %H:%M:%S"), e.strftime("%Y-%m-%d %H:%M:%S"), int(n), float(p), str(v), float(k))
        for c, t, s, e, n, p, v, k in zip(ep.client, ep.type, ep.start, ep.end, ep.n_readings, ep.peak_score,
                                         ep.peak_severity, ep.kwh_above_baseline)
    )  # fmt: skip
    m = result.monthly
    months = sorted(
        (c, f"{y:04d}-{mo:02d}", float(s), bool(sus), int(n), int(sev), ";".join(r))
        for c, y, mo, s, sus, n, sev, r in zip(m.client, m.year, m.month, m.suspicion, m.suspicious, m.n_episodes,
                                               m.n_severe_episodes, m.rules)
    )  # fmt: skip
    return episodes, months


def assert_same(got: list[tuple[object, ...]], want: list[tuple[object, ...]], real: int) -> None:
    """Equal row for row; column `real` (kWh sums, added in another order) to 1e-9."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:real] + g[real + 1 :] == w[:real] + w[real + 1 :], (g, w)
        assert abs(float(g[real]) - float(w[real])) <= 1e-9 * (1 + abs(float(w[real]))), (g, w)  # type: ignore[arg-type]


def check_job(cli: str, url: str, insert: Callable[[list[tuple[str, str, float]]], None],
              query: Callable[[str], list[tuple[object, ...]]]) -> None:  # fmt: skip
    """Runs the job after each round; compares its tables with Python's run."""
    df = readings()
    run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")  # creates the tables
    for part in rounds(df):
        insert(values(part))
        run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")
    want_episodes, want_months = expected(df)
    got_episodes = sorted(
        (c, t, s, e, int(n), float(p), v, float(k))
        for c, t, s, e, n, p, v, k in query(
            "SELECT client_id, type, start_time, end_time, readings, peak_score, peak_severity, kwh_above_baseline "
            "FROM consumo_episodios")
    )  # fmt: skip
    assert len(want_episodes) > 20 and any(e[1] == "plantation" for e in want_episodes)
    assert_same(got_episodes, want_episodes, real=7)
    got_months = sorted(
        (c, m, float(s), bool(sus) if not isinstance(sus, str) else sus in ("t", "true", "1"), int(n), int(sev), r or "")
        for c, m, s, sus, n, sev, r in query(
            "SELECT client_id, month, suspicion, suspicious, episodes, severe_episodes, rules FROM consumo_mensual")
    )  # fmt: skip
    assert_same(got_months, want_months, real=2)
    assert any(m[3] for m in want_months) and not all(m[3] for m in want_months)


def test_sqlite_job_episodes_and_months_equal_python(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "consumo.db"

    def insert(rows: list[tuple[str, str, float]]) -> None:
        with sqlite3.connect(db) as c:
            c.executemany("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES (?, ?, ?)", rows)

    def query(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(db) as c:
            return c.execute(sql).fetchall()

    check_job(cli, f"sqlite:{db}", insert, query)
    # Nothing new: nothing written, episodes unchanged.
    before = query("SELECT * FROM consumo_episodios ORDER BY 1, 2, 3")
    run(cli, "consumption", "watch", "--db", f"sqlite:{db}", "--max-iterations", "1", "-q")
    assert query("SELECT * FROM consumo_episodios ORDER BY 1, 2, 3") == before

    with serving(cli, db) as (_, get):
        severe = query("SELECT COUNT(*) FROM consumo_episodios WHERE peak_severity IN ('alta', 'crítica')")[0][0]
        status, page = get("/consumption/episodes?min_severity=alta&limit=3")
        assert status == 200 and page["total"] == severe and len(page["items"]) == min(3, severe)  # type: ignore[arg-type]
        starts = [i["start"] for i in page["items"]]  # type: ignore[union-attr]
        assert starts == sorted(starts, reverse=True)
        client = page["items"][0]["client_id"]  # type: ignore[index]
        status, page = get(f"/consumption/episodes?client={client}&type=plantation&from=2024-02-01&to=2024-03-01")
        n = query(f"SELECT COUNT(*) FROM consumo_episodios WHERE client_id = '{client}' AND type = 'plantation' "
                  "AND end_time > '2024-02-01' AND start_time < '2024-03-01'")[0][0]  # fmt: skip
        assert status == 200 and page["total"] == n
        for bad in ("type=theft", "min_severity=terrible", "from=yesterday", "limit=0"):
            status, err = get(f"/consumption/episodes?{bad}")
            assert status == 400 and err["error"]["code"] == "E002", bad  # type: ignore[index]
        status, months = get("/consumption/monthly")
        rows = months["months"]  # type: ignore[index]
        assert status == 200 and all(m["rank"] >= 1 for m in rows)  # type: ignore[union-attr]
        for month in {m["month"] for m in rows}:  # type: ignore[union-attr]
            same = sorted((m for m in rows if m["month"] == month), key=lambda m: m["rank"])  # type: ignore[union-attr]
            assert same[0]["rank"] == 1
            assert np.all(np.diff([m["suspicion"] for m in same]) <= 0)


def test_serve_reads_a_monthly_table_an_older_job_created(cli: str, tmp_path: Path) -> None:
    """Before the new worker's first start adds the suspicion columns, the
    monthly endpoint still answers, with no suspicion."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as c:  # consumo_mensual as versions before episodes created it
        c.execute("CREATE TABLE consumo_mensual (client_id TEXT NOT NULL, month TEXT NOT NULL, readings INTEGER NOT NULL, "
                  "total_kwh REAL NOT NULL, anomalies INTEGER NOT NULL, critical INTEGER NOT NULL, night_mean_kwh REAL, "
                  "peak_mean_kwh REAL, score REAL NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (client_id, month))")  # fmt: skip
        c.execute("INSERT INTO consumo_mensual VALUES ('C1', '2024-01', 744, 300.5, 3, 1, 0.2, 0.9, 0.1, '2024-02-01')")
    with serving(cli, db) as (_, get):
        status, body = get("/consumption/monthly")
        assert status == 200, body
        (month,) = body["months"]  # type: ignore[misc]
        assert month["total_kwh"] == 300.5 and month["suspicion"] is None and month["rank"] is None
        status, body = get("/consumption/episodes")  # no episodes table yet: empty, not an error
        assert status == 200 and body["total"] == 0


def test_a_corrupt_episode_row_stops_the_job_clearly(cli: str, tmp_path: Path) -> None:
    """An episode of a type no rule has (a hand-edited table) fails the pass
    naming the table and the type; nothing of the batch is written."""
    db = tmp_path / "consumo.db"
    url = f"sqlite:{db}"
    run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO consumo_episodios (client_id, type, start_time, end_time, readings, peak_score, "
                  "peak_severity, kwh_above_baseline, updated_at) VALUES ('C1', 'theft', '2024-01-01 00:00:00', "
                  "'2024-01-01 01:00:00', 1, 0.9, 'crítica', 1.0, '2024-01-01 00:00:00')")  # fmt: skip
        c.execute("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES ('C1', '2024-01-02 00:00:00', 0.5)")
    out = run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", check=False)
    assert out.returncode == 1 and 'consumo_episodios holds an episode of unknown type "theft"' in out.stderr, out.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM consumo_anomalias").fetchone()[0] == 0
