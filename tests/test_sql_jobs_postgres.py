"""The same SQL workflow on a real PostgreSQL server (started by the test
fixture from Debian's package): the results equal the SQLite run's; a
worker killed with SIGKILL mid-run, and a database stopped and restarted
under a running worker, leave the results table equal to a clean run's,
row for row."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from test_sql_jobs import RESULT_COLUMNS, run

ORDER = "ORDER BY ds, variable"


def pg_results(postgres: Any, database: str) -> list[tuple[str, ...]]:
    rows = postgres.sql(
        "SELECT to_char(ds, 'YYYY-MM-DD HH24:MI:SS'), variable, y, yhat, yhat_lower, yhat_upper, residual, "
        f"is_anomaly::int, anomaly_score FROM anomalies_detector {ORDER}",
        database,
    )
    return [tuple(r) for r in rows]


def count(postgres: Any, database: str, table: str = "anomalies_detector") -> int:
    return int(postgres.sql(f"SELECT COUNT(*) FROM {table}", database)[0][0])


@pytest.fixture(scope="module")
def plant_pg(cli: str, postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, list[tuple[str, ...]]]:
    """Readings and models in one database; a clean run's results."""
    db = postgres.database()
    models = tmp_path_factory.mktemp("pg") / "models"
    url = postgres.url(db)
    run(cli, "simulate", "--db", url, "--variables", "8", "--days", "6", "--anomaly-ratio", "0.01", "-q")
    run(cli, "train", "--db", url, "--models", str(models), "--to", "2024-03-08", "-q")
    clean = postgres.database()
    copy_readings(postgres, db, clean)
    run(cli, "detect", "--db", postgres.url(clean), "--models", str(models), "--once", "-q")
    return db, models, pg_results(postgres, clean)


def copy_readings(postgres: Any, source: str, target: str) -> None:
    run_sql = postgres.sql
    run_sql("CREATE EXTENSION IF NOT EXISTS dblink", target)
    run_sql(
        "CREATE TABLE datos_proceso AS SELECT * FROM dblink("
        f"'dbname={source} port={postgres.port} host=127.0.0.1 user=anomaly', "
        "'SELECT id, datetime, variable_name, value, source_file, created_at FROM datos_proceso') AS t("
        "id bigint, datetime timestamp, variable_name text, value double precision, source_file text, "
        "created_at timestamp)",
        target,
    )


def test_results_equal_the_sqlite_run(cli: str, postgres: Any, plant_pg: Any, tmp_path: Path) -> None:
    _, _, expected = plant_pg
    sqlite_db = tmp_path / "plant.db"
    models = tmp_path / "models"
    run(cli, "simulate", "--db", f"sqlite:{sqlite_db}", "--variables", "8", "--days", "6", "--anomaly-ratio", "0.01", "-q")
    run(cli, "train", "--db", f"sqlite:{sqlite_db}", "--models", str(models), "--to", "2024-03-08", "-q")
    run(cli, "detect", "--db", f"sqlite:{sqlite_db}", "--models", str(models), "--once", "-q")
    with sqlite3.connect(sqlite_db) as c:
        lite = c.execute(f"SELECT {RESULT_COLUMNS} FROM anomalies_detector {ORDER}").fetchall()
    assert len(lite) == len(expected) > 0
    for a, b in zip(lite, expected, strict=True):
        assert a[0] == b[0] and a[1] == b[1] and int(a[7]) == int(b[7])
        assert all(abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(x))) for x, y in zip(a[2:7], b[2:7], strict=True))


def test_worker_killed_mid_run_loses_and_repeats_nothing(cli: str, postgres: Any, plant_pg: Any) -> None:
    source, models, expected = plant_pg
    db = postgres.database()
    copy_readings(postgres, source, db)
    url = postgres.url(db)
    run(cli, "detect", "--db", url, "--models", str(models), "--once", "--lookback", "0s", "-q")  # creates the tables
    for stop_at in (len(expected) // 4, len(expected) // 2):
        worker = subprocess.Popen(
            [cli, "watch", "--db", url, "--models", str(models), "--poll-interval", "50ms", "--batch-size", "97"],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline and count(postgres, db) < stop_at:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert 0 < count(postgres, db) < len(expected)
    run(cli, "detect", "--db", url, "--models", str(models), "--once", "-q")
    assert pg_results(postgres, db) == expected


def test_database_restart_under_a_running_worker(cli: str, postgres: Any, plant_pg: Any) -> None:
    source, models, expected = plant_pg
    db = postgres.database()
    copy_readings(postgres, source, db)
    url = postgres.url(db)
    run(cli, "detect", "--db", url, "--models", str(models), "--once", "--lookback", "0s", "-q")
    worker = subprocess.Popen(
        [cli, "watch", "--db", url, "--models", str(models), "--poll-interval", "50ms", "--batch-size", "97"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and count(postgres, db) < len(expected) // 3:
            time.sleep(0.01)
        postgres.stop()
        time.sleep(2.0)
        postgres.start()
        deadline = time.time() + 120
        while time.time() < deadline and count(postgres, db) < len(expected):
            time.sleep(0.1)
        assert worker.poll() is None, "the worker should survive the restart"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "retrying" in err and "summary:" in err
    assert pg_results(postgres, db) == expected


def test_isolation_forest_job_matches_sqlite(cli: str, postgres: Any, tmp_path: Path) -> None:
    from test_sql_jobs import iforest_job

    db = postgres.database()
    iforest_job(cli, postgres.url(db), tmp_path / "pg.json")
    lite = tmp_path / "energy.db"
    iforest_job(cli, f"sqlite:{lite}", tmp_path / "lite.json")
    pg = postgres.sql("SELECT total, anomalies, state FROM energy_records_metrics ORDER BY id", db)
    with sqlite3.connect(lite) as c:
        expected = [[str(a), str(b), s] for a, b, s in c.execute(
            "SELECT total, anomalies, state FROM energy_records_metrics ORDER BY id")]  # fmt: skip
    assert pg == expected
    # The same sensor named for each anomaly on both databases.
    query = "SELECT record_id, top_feature FROM energy_records_scores WHERE is_anomaly ORDER BY record_id"
    with sqlite3.connect(lite) as c:
        tops = [[str(r), f] for r, f in c.execute(query)]
    assert postgres.sql(query, db) == tops and all(f for _, f in tops)


def test_consumption_job_matches_sqlite(cli: str, postgres: Any, tmp_path: Path) -> None:
    from test_sql_jobs import consumption_job

    db = postgres.database()
    consumption_job(cli, postgres.url(db), tmp_path)
    lite = tmp_path / "c.db"
    consumption_job(cli, f"sqlite:{lite}", tmp_path)
    pg = postgres.sql("SELECT client_id, to_char(timestamp, 'YYYY-MM-DD HH24:MI:SS'), is_anomaly::int, severity "
                      "FROM consumo_anomalias ORDER BY 1, 2", db)  # fmt: skip
    with sqlite3.connect(lite) as c:
        expected = [[a, b, str(x), s] for a, b, x, s in c.execute(
            "SELECT client_id, timestamp, is_anomaly, severity FROM consumo_anomalias ORDER BY 1, 2")]  # fmt: skip
    assert pg == expected and len(pg) == 6 * 40 * 24
    run(cli, "archive", "--db", postgres.url(db), "--older-than", "20d", "-q")
    run(cli, "restore", "--db", postgres.url(db), "--from", "2024-01-01", "--to", "2024-01-05", "-q")
    log = postgres.sql("SELECT action, rows FROM consumo_archivo_log ORDER BY id", db)
    assert [r[0] for r in log] == ["archive", "restore"] and int(log[1][1]) == 6 * 4 * 24


def test_consumption_job_episodes_and_months_equal_python(cli: str, postgres: Any) -> None:
    from test_consumption_sql import check_job

    db = postgres.database()

    def insert(rows: list[tuple[str, str, float]]) -> None:
        values = ", ".join(f"('{c}', '{t}', {k!r})" for c, t, k in rows)
        postgres.sql(f"INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES {values}", db)

    def query(sql: str) -> list[tuple[object, ...]]:
        # Times as the SQLite tables hold them; psql prints every value as text.
        sql = sql.replace("start_time, end_time", "to_char(start_time, 'YYYY-MM-DD HH24:MI:SS'), "
                          "to_char(end_time, 'YYYY-MM-DD HH24:MI:SS')").replace("suspicious", "suspicious::int")
        return [tuple(r) for r in postgres.sql(sql, db)]

    check_job(cli, postgres.url(db), insert, query)


def test_consumption_job_rejects_what_it_cannot_flag(cli: str, postgres: Any) -> None:
    from test_sql_jobs import BAD_CONSUMPTION, consumption_with_bad_readings

    db = postgres.database()

    def insert(rows: list[tuple[object, ...]]) -> None:
        # PostgreSQL's columns are typed: text kWh and unparsable times cannot be stored, NaN can.
        kept = [(c, t, k) for c, t, k in rows if not isinstance(k, str) and t != "not a time"]
        kept += [("C00003", "2024-02-10 05:00:00", float("nan")), ("C00004", "2024-02-10 06:00:00", float("inf"))]
        values = ", ".join(f"('{c}', '{t}', {'NULL' if k is None else repr(str(k))}::float8)" for c, t, k in kept)
        postgres.sql(f"INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES {values}", db)

    consumption_with_bad_readings(cli, postgres.url(db), insert)
    rejects = postgres.sql("SELECT client_id, reason FROM consumo_rechazos ORDER BY reading_id", db)
    assert [r[0] for r in rejects] == ["C00001", "C00002", "C00005", "C00003", "C00004"]
    assert [r[1] for r in rejects][:2] == ["kwh is negative (-3)", "kwh is missing or not a number"]
    assert rejects[2][1].startswith("repeats reading") and rejects[3][1] == "kwh is not finite (NaN)"
    assert rejects[4][1] == "kwh is not finite (inf)"
    unaccounted = postgres.sql("SELECT COUNT(*) FROM consumo_lecturas r WHERE NOT EXISTS (SELECT 1 FROM consumo_anomalias a "
                               "WHERE a.reading_id = r.id) AND NOT EXISTS (SELECT 1 FROM consumo_rechazos j "
                               "WHERE j.reading_id = r.id)", db)  # fmt: skip
    assert unaccounted == [["0"]]


def test_isolation_forest_job_rejects_incomplete_records(cli: str, postgres: Any, tmp_path: Path) -> None:
    db = postgres.database()
    url, model = postgres.url(db), str(tmp_path / "forest.json")
    run(cli, "iforest", "simulate", "--db", url, "--batch-size", "600", "-q")
    run(cli, "iforest", "watch", "--db", url, "--model", model, "--interval", "50ms", "--max-iterations", "1", "-q")
    postgres.sql("INSERT INTO energy_records (datetime, voltage, current, power, temperature) VALUES "
                 "('2024-05-01 00:00:00', NULL, 10, 2200, 35), ('2024-05-01 00:00:01', 220, 10, 'Infinity', 35), "
                 "('2024-05-01 00:00:02', 221, 10.1, 2230, 34)", db)  # fmt: skip
    run(cli, "iforest", "watch", "--db", url, "--model", model, "--interval", "50ms", "--max-iterations", "2", "-q")
    rejects = postgres.sql("SELECT reason FROM energy_records_rejects ORDER BY record_id", db)
    assert rejects == [["voltage is missing or not a number"], ["power is not finite (inf)"]]
    assert postgres.sql("SELECT COUNT(*) FROM energy_records_scores", db) == [["601"]]
    assert postgres.sql("SELECT results, rejects FROM anomaly_job_state WHERE job = 'iforest:energy_records'", db) == [["601", "2"]]


def test_a_missing_database_or_refused_login_is_a_permanent_error(cli: str, postgres: Any, plant_pg: Any) -> None:
    """Exit 2 with the reason at once; an unreachable server is what `watch` retries."""
    for url in (postgres.url("no_such_database"), postgres.url().replace("anomaly@", "nobody_here@", 1)):
        out = subprocess.run([cli, "watch", "--db", url, "--models", str(plant_pg[1]), "--max-iterations", "1"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 2 and "cannot connect" in out.stderr, out.stderr[-500:]


def secret_url(postgres: Any, database: str) -> str:
    """The database's URL with a password (the test server trusts every login and ignores it)."""
    return postgres.url(database).replace("anomaly@", "anomaly:s3cret-pw@", 1)


def test_logs_never_show_the_password(cli: str, postgres: Any, tmp_path: Path) -> None:
    """Issue 15: `forecast watch` logged `watching postgres://user:secret@...`."""
    url = secret_url(postgres, postgres.database())
    models = str(tmp_path / "models")
    for args in [
        ["forecast", "simulate", "--variables", "2", "--days", "3"],
        ["forecast", "train", "--models", models, "--to", "2024-03-06"],
        ["forecast", "watch", "--models", models, "--poll-interval", "50ms", "--max-iterations", "1"],
        ["iforest", "simulate", "--batch-size", "300"],
        ["iforest", "watch", "--model", str(tmp_path / "f.json"), "--max-iterations", "1"],
        ["consumption", "watch", "--interval", "50ms", "--max-iterations", "1"],
    ]:
        out = run(cli, *args, "--db", url)
        assert "s3cret-pw" not in out.stderr, (args, out.stderr)
    out = run(cli, "forecast", "watch", "--db", url, "--models", models, "--max-iterations", "1")
    assert "watching postgres://anomaly:***@127.0.0.1" in out.stderr, out.stderr


def test_consumption_simulate_does_not_log_the_password(cli: str, postgres: Any) -> None:
    """Issue 15: `consumption simulate` logged `wrote ... to postgres://user:secret@...`."""
    url = secret_url(postgres, postgres.database())
    out = run(cli, "consumption", "simulate", "--db", url, "--clients", "2", "--days", "2")
    assert "s3cret-pw" not in out.stderr and "anomaly:***@" in out.stderr, out.stderr


def test_serve_reads_postgres_read_only_and_creates_nothing(cli: str, postgres: Any, tmp_path: Path) -> None:
    """Issue 15: serve created the jobs' tables in the dashboard's database;
    now the session is read-only and a table no job has created reads as empty."""
    from test_sql_jobs import QUERY_ROUTES, assert_empty, consumption_job, serving_url

    db = postgres.database()
    url = postgres.url(db)
    listing = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
    with serving_url(cli, url) as get:
        assert get("/ready")[0] == 200
        assert_empty(get)
    assert postgres.sql(listing, db) == [["0"]]
    consumption_job(cli, url, tmp_path)
    created = postgres.sql(listing, db)
    with serving_url(cli, url) as get:
        status, summary, _ = get("/consumption/summary")
        assert status == 200 and summary["readings"] == 6 * 40 * 24, summary
        assert all(get(path)[0] == 200 for path in QUERY_ROUTES)
    assert postgres.sql(listing, db) == created


def test_consumption_watch_uses_the_named_tables(cli: str, postgres: Any) -> None:
    db = postgres.database()
    url = postgres.url(db)
    run(cli, "consumption", "simulate", "--db", url, "--clients", "2", "--days", "35", "-q")
    postgres.sql("ALTER TABLE consumo_lecturas RENAME TO lecturas_b", db)
    postgres.sql("DROP TABLE consumo_anomalias, consumo_rechazos, consumo_mensual", db)
    run(cli, "consumption", "watch", "--db", url, "--readings-table", "lecturas_b", "--results-table", "flags_b",
        "--max-iterations", "1", "-q")  # fmt: skip
    assert count(postgres, db, "flags_b") == 2 * 35 * 24
    exist = "SELECT to_regclass('consumo_anomalias') IS NULL, to_regclass('flags_b_rejects') IS NOT NULL"
    assert postgres.sql(exist, db) == [["t", "t"]]


def test_postgres_reserved_words_are_refused_as_names(cli: str, postgres: Any, tmp_path: Path) -> None:
    """Every word this server reserves (pg_get_keywords: reserved, and
    reserved but usable as a function or type name) is refused before any
    SQL runs; the SQLite side is a unit test in anomaly-cli/src/db."""
    words = [r[0] for r in postgres.sql("SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T') ORDER BY 1")]
    assert len(words) > 80
    db = tmp_path / "never.db"
    for word in words:
        out = run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--table", word, "--batch-size", "1", check=False)
        assert out.returncode == 2 and "reserved SQL word" in out.stderr, (word, out.stderr)
    assert not db.exists()
