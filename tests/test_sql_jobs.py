"""The plant team's SQL workflow on the embedded SQLite, through the real
`anomaly` binary: simulate -> train -> detect --once -> watch, exactly once
(re-runs, late readings, malformed readings, a worker killed with SIGKILL
mid-batch and restarted: the results table equals a clean run's, row for
row)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RESULT_COLUMNS = "ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score"


@contextlib.contextmanager
def serving(cli: str, db: Path) -> Iterator[tuple[int, Callable[[str], tuple[int, dict[str, object]]]]]:
    """`anomaly serve --db` on a free port, until the block ends: (port, get)."""
    import json
    import urllib.error
    import urllib.request

    from test_credit_service import free_port

    port = free_port()
    server = subprocess.Popen([cli, "serve", "--db", f"sqlite:{db}", "--addr", f"127.0.0.1:{port}", "-q"])

    def get(path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, json.loads(body) if body.startswith(b"{") else {}

    try:
        for _ in range(100):
            try:
                get("/health")
                break
            except OSError:
                time.sleep(0.05)
        yield port, get
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


def run(cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([cli, *args], capture_output=True, text=True, timeout=600, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def results(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(f"SELECT {RESULT_COLUMNS} FROM anomalies_detector ORDER BY ds, variable").fetchall()


def scalar(db: Path, sql: str) -> object:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def plant(cli: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six days of 5-minute readings of 8 variables; models trained on the first four."""
    root = tmp_path_factory.mktemp("plant")
    db, models = root / "plant.db", root / "models"
    run(cli, "simulate", "--db", f"sqlite:{db}", "--variables", "8", "--days", "6", "--anomaly-ratio", "0.01", "-q")
    run(cli, "train", "--db", f"sqlite:{db}", "--models", str(models), "--to", "2024-03-08", "-q")
    assert (models / "detector.json").exists() or any(models.iterdir())
    return db, models


def fresh(plant: tuple[Path, Path], tmp_path: Path) -> Path:
    db = tmp_path / "copy.db"
    shutil.copy(plant[0], db)
    return db


def test_detect_once_scores_every_reading_once(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    db, models = fresh(plant, tmp_path), plant[1]
    readings = scalar(db, "SELECT COUNT(*) FROM datos_proceso")
    out = run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert f'"results":{readings}' in out.stdout
    again = run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert '"readings":0' in again.stdout
    rows = results(db)
    assert len(rows) == readings == len({(r[0], r[1]) for r in rows})
    anomalies = sum(r[7] for r in rows)
    assert 0 < anomalies < 0.2 * len(rows)  # the 2-sigma rule flags ~5% of normal readings, plus spikes
    assert all(0 <= r[8] <= 100 for r in rows)
    state = scalar(db, "SELECT results FROM anomaly_job_state WHERE job = 'forecast'")
    assert state == readings


def test_domain_first_commands_equal_their_aliases(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    """`anomaly forecast simulate|train|detect` write what the top-level aliases write, row for row."""
    urls = {form: f"sqlite:{tmp_path / f'{form}.db'}" for form in ("alias", "domain")}
    for form, prefix in (("alias", []), ("domain", ["forecast"])):
        url, models = urls[form], str(tmp_path / f"{form}_models")
        run(cli, *prefix, "simulate", "--db", url, "--variables", "3", "--days", "3", "-q")
        run(cli, *prefix, "train", "--db", url, "--models", models, "--to", "2024-03-06", "-q")
        out = run(cli, *prefix, "detect", "--db", url, "--models", models, "--once", "--json", "-q")
        assert '"results":2592' in out.stdout, out.stdout
    assert results(tmp_path / "alias.db") == results(tmp_path / "domain.db")
    usage = run(cli, "forecast", "detect", "--db", urls["domain"], "--models", str(tmp_path / "x"), check=False)
    assert usage.returncode == 2 and "--once" in usage.stderr


def test_late_and_malformed_readings(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    db, models = fresh(plant, tmp_path), plant[1]
    with sqlite3.connect(db) as c:  # hold back one old datetime: it arrives late
        late = c.execute("SELECT datetime, variable_name, value FROM datos_proceso WHERE datetime = '2024-03-05 10:00:00'").fetchall()
        c.execute("DELETE FROM datos_proceso WHERE datetime = '2024-03-05 10:00:00'")
    run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "-q")
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES (?, ?, ?)", late)
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('2024-03-12 00:00:00', 'VAR_01', 'abc')")
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('2024-03-12 00:00:00', 'NEW_VAR', 1.0)")
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('2024-03-12 00:00:00', 'VAR_02', NULL)")
    out = run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert f'"results":{len(late)}' in out.stdout and '"rejects":3' in out.stdout
    assert scalar(db, "SELECT COUNT(*) FROM anomalies_detector WHERE ds = '2024-03-05 10:00:00'") == len(late)
    with sqlite3.connect(db) as c:
        reasons = sorted(r[0] for r in c.execute("SELECT reason FROM anomalies_detector_rejects"))
    assert reasons == ["missing value", 'no model for variable "NEW_VAR"', 'value "abc" is not a number']
    # Rejected readings are not retried on every pass.
    again = run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert '"readings":0' in again.stdout


def test_a_poison_row_is_rejected_and_the_rest_scored(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    """A BLOB variable name or a year-9999 reading among good ones: each a reject with its reason, every other reading scored."""
    db, models = fresh(plant, tmp_path), plant[1]
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('2024-03-06 10:00:00', ?, 50.0)",
                  (b"\x00\xff",))  # fmt: skip
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('not a time', 'VAR_01', 50.0)")
    readings = scalar(db, "SELECT COUNT(*) FROM datos_proceso")
    out = run(cli, "forecast", "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert f'"results":{readings - 2}' in out.stdout and '"rejects":2' in out.stdout, out.stdout
    with sqlite3.connect(db) as c:
        reasons = sorted(r[0] for r in c.execute("SELECT reason FROM anomalies_detector_rejects"))
    assert reasons == ["unparsable datetime", "variable_name is not text"]


def test_worker_killed_mid_batch_loses_and_repeats_nothing(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    clean, models = fresh(plant, tmp_path), plant[1]
    run(cli, "detect", "--db", f"sqlite:{clean}", "--models", str(models), "--once", "-q")
    expected = results(clean)

    db = tmp_path / "killed.db"
    shutil.copy(plant[0], db)
    total = len(expected)
    for stop_at in (total // 4, total // 2):  # two kills, each mid-run
        worker = subprocess.Popen(
            [cli, "watch", "--db", f"sqlite:{db}", "--models", str(models), "--poll-interval", "50ms",
             "--batch-size", "97"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline and scalar(db, "SELECT COUNT(*) FROM anomalies_detector") < stop_at:
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    partial = scalar(db, "SELECT COUNT(*) FROM anomalies_detector")
    assert 0 < partial < total, partial
    run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "-q")
    assert results(db) == expected


def test_watch_stops_on_sigterm_with_a_summary(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    db, models = fresh(plant, tmp_path), plant[1]
    worker = subprocess.Popen(
        [cli, "watch", "--db", f"sqlite:{db}", "--models", str(models), "--poll-interval", "100ms"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and scalar(db, "SELECT COUNT(*) FROM anomalies_detector") < scalar(db, "SELECT COUNT(*) FROM datos_proceso"):
        time.sleep(0.1)
    with sqlite3.connect(db) as c:  # a new datetime lands while the worker watches
        c.execute("INSERT INTO datos_proceso (datetime, variable_name, value) VALUES ('2024-03-10 00:00:00', 'VAR_03', 61.0)")
    time.sleep(1.0)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "summary:" in err and "iteration" in err
    assert scalar(db, "SELECT COUNT(*) FROM anomalies_detector WHERE ds = '2024-03-10 00:00:00'") == 1


def test_bad_database_and_models_are_clear_errors(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    out = run(cli, "detect", "--db", "mysql://x", "--models", str(plant[1]), "--once", check=False)
    assert out.returncode == 2 and "unknown database URL" in out.stderr
    out = run(cli, "detect", "--db", f"sqlite:{tmp_path / 'x.db'}", "--models", str(tmp_path / "none"), "--once", check=False)
    assert out.returncode == 2 and "run `anomaly train`" in out.stderr


def test_a_file_that_is_no_database_is_a_permanent_error(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    """Text, random bytes, a truncated database or a directory: exit 2 at once with the reason, not a retry loop."""
    text, noise, cut = tmp_path / "notes.txt", tmp_path / "noise.db", tmp_path / "cut.db"
    text.write_text("readings,here\n" * 100)
    noise.write_bytes(bytes(range(256)) * 64)
    cut.write_bytes(plant[0].read_bytes()[:4096 * 3])
    for target in (text, noise, cut, tmp_path):
        started = time.time()
        out = run(cli, "watch", "--db", f"sqlite:{target}", "--models", str(plant[1]), "--poll-interval", "50ms",
                  "--max-iterations", "3", check=False)  # fmt: skip
        assert out.returncode == 2 and str(target) in out.stderr, (target, out.returncode, out.stderr[-500:])
        assert time.time() - started < 20


def test_stream_scores_json_lines_and_survives_bad_ones(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    import json

    db, models = fresh(plant, tmp_path), plant[1]
    run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "-q")
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT ds, variable, y, yhat, is_anomaly, anomaly_score FROM anomalies_detector "
                         "WHERE ds >= '2024-03-09 12:00:00' ORDER BY ds, variable LIMIT 5").fetchall()  # fmt: skip
    lines = [json.dumps({"datetime": r[0], "variable_name": r[1], "value": r[2]}) for r in rows]
    lines[2:2] = ["not json", json.dumps({"datetime": "2024-03-09 12:00:00", "variable_name": "NOPE", "value": 1}),
                  json.dumps({"datetime": "yesterday", "variable_name": "VAR_01", "value": 1}), ""]  # fmt: skip
    proc = subprocess.run([cli, "stream", "--models", str(models), "-q"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["error"]["line"] for o in out if "error" in o] == [3, 4, 5]
    scored = [o for o in out if "error" not in o]
    assert len(scored) == len(rows)
    # A line that is not UTF-8, or longer than the 64 kB cap, is one bad
    # line (issue 15: the first ended the stream, the second had no bound).
    data = b"\n".join([lines[0].encode(), b'{"datetime": "\xff\xfe"}', b"x" * 200_000, lines[1].encode()]) + b"\n"
    proc = subprocess.run([cli, "stream", "--models", str(models), "-q"], input=data, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("error", {}).get("line") for o in out] == [None, 2, 3, None]
    assert "UTF-8" in out[1]["error"]["message"] and "longer than 65536 bytes" in out[2]["error"]["message"]
    for o, r in zip(scored, rows, strict=True):  # the same numbers as the database job
        assert (o["ds"], o["variable"], o["y"], o["yhat"], int(o["is_anomaly"]), o["anomaly_score"]) == (r[0], r[1], r[2], r[3], r[4], r[5])


def test_serve_answers_dashboard_queries(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    db, models = fresh(plant, tmp_path), plant[1]
    run(cli, "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "-q")
    with serving(cli, db) as (port, get):
        with sqlite3.connect(db) as c:
            flagged = c.execute("SELECT COUNT(*) FROM anomalies_detector WHERE is_anomaly = 1 AND variable = 'VAR_02' "
                                "AND ds >= '2024-03-08'").fetchone()[0]  # fmt: skip
        status, page = get("/anomalies?variable=VAR_02&from=2024-03-08&limit=7&offset=2")
        assert status == 200 and page["total"] == flagged and len(page["items"]) == 7  # type: ignore[arg-type]
        items = page["items"]
        assert all(i["variable"] == "VAR_02" and i["is_anomaly"] and i["ds"] >= "2024-03-08" for i in items)  # type: ignore[union-attr]
        assert [i["ds"] for i in items] == sorted((i["ds"] for i in items), reverse=True)  # type: ignore[union-attr]
        status, stats = get("/variables")
        assert status == 200 and len(stats["variables"]) == 8  # type: ignore[arg-type]
        status, months = get("/monthly?variable=VAR_01")
        assert status == 200 and [m["month"] for m in months["months"]] == ["2024-03"]  # type: ignore[union-attr]
        status, summary = get("/summary")
        total = scalar(db, "SELECT COUNT(*) FROM anomalies_detector")
        assert status == 200 and summary["results"] == total and summary["state"] in {"Normal", "Precaución", "Crítico"}
        status, err = get("/anomalies?from=yesterday")
        assert status == 400 and err["error"]["code"] == "E002"  # type: ignore[index]
        status, err = get("/anomalies?limit=0")
        assert status == 400
        # Every error is a JSON body with a code (issue 15: 404 and 405 were
        # empty, a bad query string plain text, min_score=nan ignored).
        for path, code in [("/predict", 405), ("/nothing", 404), ("/anomalies?limit=abc", 400),
                           ("/anomalies?min_score=nan", 400), ("/consumption/anomalies?offset=x", 400)]:  # fmt: skip
            status, err = get(path)
            assert status == code and err["error"]["code"] == f"E{code}".replace("E400", "E002"), (path, err)  # type: ignore[index]


def iforest_job(cli: str, url: str, model: Path) -> None:
    run(cli, "iforest", "simulate", "--db", url, "--batch-size", "3000", "--anomaly-ratio", "0.05", "-q")
    run(cli, "iforest", "watch", "--db", url, "--model", str(model), "--interval", "50ms", "--max-iterations", "1", "-q")
    # A live stream: 4 ticks of 5 records, the table trimmed to 3010 records.
    run(cli, "iforest", "simulate", "--db", url, "--interval", "20ms", "--ticks", "4", "--batch-size", "5",
        "--max-records", "3010", "-q")  # fmt: skip
    run(cli, "iforest", "watch", "--db", url, "--model", str(model), "--interval", "50ms", "--max-iterations", "1", "-q")


def test_isolation_forest_job_scores_each_record_once(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    iforest_job(cli, f"sqlite:{db}", tmp_path / "forest.json")
    assert scalar(db, "SELECT COUNT(*) FROM energy_records") == 3010
    assert scalar(db, "SELECT COUNT(*) FROM energy_records_scores") == 3020  # trimmed records keep their scores
    with sqlite3.connect(db) as c:
        metrics = c.execute("SELECT total, anomalies, percent, state, first_record_id, last_record_id "
                            "FROM energy_records_metrics ORDER BY id").fetchall()  # fmt: skip
    assert [(m[0], m[4], m[5]) for m in metrics] == [(3000, 1, 3000), (20, 3001, 3020)]
    total, flagged, percent, state = metrics[0][:4]
    assert 2.0 < percent < 12.0 and abs(percent - 100 * flagged / total) < 1e-9
    assert state == ("Normal" if percent < 5 else "Precaución" if percent < 10 else "Crítico")
    # Nothing new: a pass writes nothing.
    run(cli, "iforest", "watch", "--db", f"sqlite:{db}", "--model", str(tmp_path / "forest.json"), "--interval", "50ms",
        "--max-iterations", "1", "-q")  # fmt: skip
    assert scalar(db, "SELECT COUNT(*) FROM energy_records_metrics") == 2
    # Each anomaly names the sensor that pushed it most toward anomalous, and that push's share.
    with sqlite3.connect(db) as c:
        tops = c.execute("SELECT is_anomaly, top_feature, top_share FROM energy_records_scores").fetchall()
    flagged = [(f, s) for a, f, s in tops if a]
    assert flagged and all(f in ("voltage", "current", "power", "temperature") and 0 < s <= 1 for f, s in flagged)
    assert all(f is None and s is None for a, f, s in tops if not a)


def test_isolation_forest_job_rejects_a_value_float32_cannot_hold_and_scores_the_rest(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--batch-size", "1000", "-q")
    with sqlite3.connect(db) as c:
        c.execute("UPDATE energy_records SET voltage = 1e39 WHERE id = 7")
    run(cli, "iforest", "watch", "--db", f"sqlite:{db}", "--model", str(tmp_path / "f.json"), "--max-iterations", "1",
        "-q")  # fmt: skip
    with sqlite3.connect(db) as c:
        rejects = c.execute("SELECT record_id, reason FROM energy_records_rejects").fetchall()
    assert rejects == [(7, "voltage = 1e39 is beyond the float32 range")]
    assert scalar(db, "SELECT COUNT(*) FROM energy_records_scores") == 999


def test_isolation_forest_job_adds_the_explanation_columns_to_an_older_scores_table(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as c:  # the scores table as versions before explanations created it
        c.execute("CREATE TABLE energy_records_scores (record_id INTEGER PRIMARY KEY, score REAL NOT NULL, "
                  "decision REAL NOT NULL, is_anomaly INTEGER NOT NULL, scored_at TEXT NOT NULL)")  # fmt: skip
    run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--batch-size", "2000", "--anomaly-ratio", "0.05", "-q")
    run(cli, "iforest", "watch", "--db", f"sqlite:{db}", "--model", str(tmp_path / "f.json"), "--max-iterations", "1",
        "-q")  # fmt: skip
    assert scalar(db, "SELECT COUNT(*) FROM energy_records_scores WHERE is_anomaly AND top_feature IS NOT NULL") > 0


def consumption_job(cli: str, url: str, tmp_path: Path) -> None:
    """Simulate 6 clients x 40 days into the database, flag them with `watch`
    in two rounds (the second after more readings land), archive and restore."""
    run(cli, "consumption", "simulate", "--db", url, "--clients", "6", "--days", "40", "--seed", "5", "-q")
    run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1", "-q")
    run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1", "-q")


def test_consumption_job_rejects_poison_rows_and_flags_the_rest(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "consumo.db"
    url = f"sqlite:{db}"
    run(cli, "consumption", "simulate", "--db", url, "--clients", "3", "--days", "10", "--seed", "5", "-q")
    with sqlite3.connect(db) as c:
        n = c.execute("SELECT COUNT(*) FROM consumo_lecturas").fetchone()[0]
        c.executemany("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES (?, ?, ?)",
                      [("C00001", "2024-01-11 05:30:00", 1.0), ("C00002", "9999-12-31 23:00:00", 1.0),
                       (b"\x00\xff", "2024-01-11 06:00:00", 1.0)])  # fmt: skip
    run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")
    with sqlite3.connect(db) as c:
        rejects = [r for _, r in c.execute("SELECT reading_id, reason FROM consumo_rechazos ORDER BY reading_id")]
        flagged = c.execute("SELECT COUNT(*) FROM consumo_anomalias").fetchone()[0]
    assert rejects == ["timestamp 2024-01-11 05:30:00 is not on the 60-minute grid",
                       "timestamp 9999-12-31 23:00:00 is in the future or before 1970",
                       "client_id is not text"]  # fmt: skip
    assert flagged == n  # every other reading flagged
    # The poison rows stay out of later passes' context: new readings of the same clients are flagged too.
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES ('C00002', '2024-01-11 00:00:00', 0.5)")
    run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")
    assert scalar(db, "SELECT COUNT(*) FROM consumo_anomalias") == n + 1


def test_a_bounded_worker_whose_pass_fails_exits_with_the_error(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    run(cli, "iforest", "simulate", "--db", f"sqlite:{db}", "--batch-size", "100", "-q")
    # A model over a column the records table lacks: every pass fails on its query.
    (tmp_path / "x.csv").write_text("wattage\n" + "\n".join(str(i % 7) for i in range(50)) + "\n")
    run(cli, "iforest", "fit", "-i", str(tmp_path / "x.csv"), "-m", str(tmp_path / "f.json"), "-q")
    start = time.time()
    out = run(cli, "iforest", "watch", "--db", f"sqlite:{db}", "--model", str(tmp_path / "f.json"), "--columns",
              "wattage", "--max-iterations", "1", check=False)  # fmt: skip
    assert out.returncode == 1 and "wattage" in out.stderr and time.time() - start < 20, out.stderr


def test_consumption_job_matches_the_file_detector(cli: str, tmp_path: Path) -> None:
    import csv

    db = tmp_path / "consumo.db"
    url = f"sqlite:{db}"
    consumption_job(cli, url, tmp_path)
    run(cli, "consumption", "simulate", "--output", str(tmp_path / "r.csv"), "--clients", "6", "--days", "40",
        "--seed", "5", "-q")  # fmt: skip
    run(cli, "consumption", "detect", "--input", str(tmp_path / "r.csv"), "--output", str(tmp_path / "f.csv"), "-q")
    with open(tmp_path / "f.csv") as f:
        expected = sorted((r["client_id"], r["timestamp"], r["is_anomaly"] == "true", r["severity"]) for r in csv.DictReader(f))
    with sqlite3.connect(db) as c:
        got = sorted((a, b, bool(x), s) for a, b, x, s in c.execute(
            "SELECT client_id, timestamp, is_anomaly, severity FROM consumo_anomalias"))  # fmt: skip
        months = c.execute("SELECT COUNT(*), SUM(readings) FROM consumo_mensual").fetchone()
    assert got == expected and sum(g[2] for g in got) > 0
    assert months == (6 * 2, 6 * 40 * 24)  # January and February, every reading counted once

    run(cli, "archive", "--db", url, "--older-than", "20d", "-q")
    run(cli, "restore", "--db", url, "--from", "2024-01-01", "--to", "2024-01-05", "-q")
    with sqlite3.connect(db) as c:
        log = c.execute("SELECT action, rows FROM consumo_archivo_log ORDER BY id").fetchall()
        live = c.execute("SELECT COUNT(*) FROM consumo_lecturas").fetchone()[0]
        archived = c.execute("SELECT COUNT(*) FROM consumo_lecturas_archivo").fetchone()[0]
    assert [a for a, _ in log] == ["archive", "restore"] and log[1][1] == 6 * 4 * 24
    assert live + archived == 6 * 40 * 24 and archived == log[0][1] - log[1][1]
    # Restored readings keep their flags: nothing is flagged twice.
    out = run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1")
    assert "summary: 1 iterations, 0 readings flagged" in out.stderr
    assert scalar(db, "SELECT COUNT(*) FROM consumo_anomalias") == 6 * 40 * 24


BAD_CONSUMPTION = [  # (client, timestamp, kwh) inserted after a clean history, and the reason expected
    ("C00001", "2024-02-10 03:00:00", -3.0, "kwh is negative (-3)"),
    ("C00002", "2024-02-10 04:00:00", None, "kwh is missing or not a number"),
    ("C00003", "2024-02-10 05:00:00", "n/d", "kwh is missing or not a number"),
    ("C00004", "not a time", 1.0, "timestamp cannot be parsed"),
    ("C00005", "2024-01-15 12:00:00", 9.0, "repeats reading"),  # same client and time as a stored one
]


def consumption_with_bad_readings(cli: str, url: str, insert: Callable[[list[tuple[object, ...]]], None]) -> None:
    run(cli, "consumption", "simulate", "--db", url, "--clients", "5", "--days", "40", "--seed", "2", "-q")
    run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1", "-q")
    insert([(c, t, k) for c, t, k, _ in BAD_CONSUMPTION])
    out = run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "2")
    assert "5 readings rejected to consumo_rechazos" in out.stderr


def test_consumption_job_rejects_what_it_cannot_flag(cli: str, tmp_path: Path) -> None:
    """Every reading gets a flag or a reject with its reason, once: nothing
    is skipped silently, and a rerun adds nothing."""
    db = tmp_path / "c.db"

    def insert(rows: list[tuple[object, ...]]) -> None:
        with sqlite3.connect(db) as c:
            c.executemany("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES (?, ?, ?)", rows)

    consumption_with_bad_readings(cli, f"sqlite:{db}", insert)
    with sqlite3.connect(db) as c:
        rejects = c.execute("SELECT client_id, reason FROM consumo_rechazos ORDER BY reading_id").fetchall()
        first = c.execute("SELECT id FROM consumo_lecturas WHERE client_id = 'C00005' AND timestamp = '2024-01-15 12:00:00' "
                          "ORDER BY id LIMIT 1").fetchone()[0]  # fmt: skip
        unaccounted = c.execute("SELECT COUNT(*) FROM consumo_lecturas r WHERE NOT EXISTS (SELECT 1 FROM consumo_anomalias a "
                                "WHERE a.reading_id = r.id) AND NOT EXISTS (SELECT 1 FROM consumo_rechazos j "
                                "WHERE j.reading_id = r.id)").fetchone()[0]  # fmt: skip
        state = c.execute("SELECT results, rejects FROM anomaly_job_state WHERE job = 'consumption'").fetchone()
        flagged = c.execute("SELECT COUNT(*) FROM consumo_anomalias").fetchone()[0]
    assert [c for c, _ in rejects] == [c for c, *_ in BAD_CONSUMPTION]
    assert all(reason.startswith(expected) for (_, reason), (*_, expected) in zip(rejects, BAD_CONSUMPTION))
    assert rejects[-1][1] == f"repeats reading {first} (same client and time)"
    assert unaccounted == 0 and flagged == 5 * 40 * 24 and state == (flagged, 5)
    again = run(cli, "consumption", "watch", "--db", f"sqlite:{db}", "--interval", "50ms", "--max-iterations", "1")
    assert "rejected" not in again.stderr and scalar(db, "SELECT COUNT(*) FROM consumo_rechazos") == 5


def test_isolation_forest_job_rejects_incomplete_records_and_scores_late_ids(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    url, model = f"sqlite:{db}", str(tmp_path / "forest.json")

    def watch() -> subprocess.CompletedProcess[str]:
        return run(cli, "iforest", "watch", "--db", url, "--model", model, "--interval", "50ms", "--max-iterations", "1")

    run(cli, "iforest", "simulate", "--db", url, "--batch-size", "600", "-q")
    watch()
    top = scalar(db, "SELECT MAX(id) FROM energy_records")
    with sqlite3.connect(db) as c:
        c.executemany(
            "INSERT INTO energy_records (id, datetime, voltage, current, power, temperature) VALUES (?, ?, ?, ?, ?, ?)",
            [(top + 10, "2024-05-01 00:00:00", None, 10.0, 2200.0, 35.0),
             (top + 11, "2024-05-01 00:00:01", 220.0, "n/d", 2200.0, 35.0),
             (top + 12, "2024-05-01 00:00:02", 220.0, 10.0, float("inf"), 35.0),
             (top + 13, "2024-05-01 00:00:03", 221.0, 10.1, 2230.0, 34.0)],
        )  # fmt: skip
    out = watch()
    assert "3 records rejected to energy_records_rejects" in out.stderr
    # Committed late with a lower id than the watermark (another writer's transaction).
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO energy_records (id, datetime, voltage, current, power, temperature) "
                  "VALUES (?, '2024-05-01 00:00:04', 219.0, 9.9, 2180.0, 35.5)", (top + 5,))  # fmt: skip
    watch()
    with sqlite3.connect(db) as c:
        rejects = c.execute("SELECT record_id, reason FROM energy_records_rejects ORDER BY record_id").fetchall()
        state = c.execute("SELECT results, rejects FROM anomaly_job_state WHERE job = 'iforest:energy_records'").fetchone()
    assert rejects == [(top + 10, "voltage is missing or not a number"), (top + 11, "current is missing or not a number"),
                       (top + 12, "power is not finite (inf)")]  # fmt: skip
    assert scalar(db, "SELECT COUNT(*) FROM energy_records_scores") == 600 + 2 and state == (602, 3)
    assert scalar(db, f"SELECT COUNT(*) FROM energy_records_scores WHERE record_id = {top + 5}") == 1
    assert "records rejected" not in watch().stderr


def test_consumption_job_flags_readings_committed_below_the_watermark(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    url = f"sqlite:{db}"
    run(cli, "consumption", "simulate", "--db", url, "--clients", "3", "--days", "35", "--seed", "4", "-q")
    top = scalar(db, "SELECT MAX(id) FROM consumo_lecturas")
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO consumo_lecturas (id, client_id, timestamp, kwh) VALUES (?, 'C00001', '2024-02-05 01:00:00', 0.4)",
                  (top + 10,))  # fmt: skip
    run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1", "-q")
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO consumo_lecturas (id, client_id, timestamp, kwh) VALUES (?, 'C00002', '2024-02-05 02:00:00', 0.5)",
                  (top + 3,))  # fmt: skip
    run(cli, "consumption", "watch", "--db", url, "--interval", "50ms", "--max-iterations", "1", "-q")
    assert scalar(db, f"SELECT COUNT(*) FROM consumo_anomalias WHERE reading_id = {top + 3}") == 1
    assert scalar(db, "SELECT COUNT(*) FROM consumo_anomalias") == 3 * 35 * 24 + 2


def test_serve_answers_consumption_dashboard_queries(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "consumo.db"
    consumption_job(cli, f"sqlite:{db}", tmp_path)
    with serving(cli, db) as (port, get):
        flagged = scalar(db, "SELECT COUNT(*) FROM consumo_anomalias WHERE is_anomaly = 1")
        status, page = get("/consumption/anomalies?limit=5")
        assert status == 200 and page["total"] == flagged and len(page["items"]) == min(5, flagged)  # type: ignore[arg-type]
        top_client = scalar(db, "SELECT client_id FROM consumo_anomalias GROUP BY client_id ORDER BY SUM(is_anomaly) DESC, client_id LIMIT 1")
        status, page = get(f"/consumption/anomalies?client={top_client}&severity=cr%C3%ADtica")
        n = scalar(db, f"SELECT COUNT(*) FROM consumo_anomalias WHERE is_anomaly = 1 AND client_id = '{top_client}' AND severity = 'crítica'")
        assert status == 200 and page["total"] == n
        status, clients = get("/consumption/clients")
        assert status == 200 and clients["clients"][0]["client_id"] == top_client and len(clients["clients"]) == 6  # type: ignore[index]
        status, months = get(f"/consumption/monthly?client={top_client}")
        assert status == 200 and [m["month"] for m in months["months"]] == ["2024-01", "2024-02"]  # type: ignore[union-attr]
        status, summary = get("/consumption/summary")
        assert status == 200 and summary["anomalies"] == flagged and summary["readings"] == 6 * 40 * 24
        status, err = get("/consumption/anomalies?severity=terrible")
        assert status == 400 and err["error"]["code"] == "E002"  # type: ignore[index]
        # A fuzz run over every query route of the OpenAPI document: no 5xx.
        import sys

        st = Path(sys.executable).parent / "st"
        if st.exists():
            fuzz = subprocess.run([str(st), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks",
                                   "not_a_server_error", "--max-examples", "30", "--seed", "1"],
                                  capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)  # fmt: skip
            assert fuzz.returncode == 0, fuzz.stdout[-3000:]


def test_import_and_iforest_watch_reject_bad_input_clearly(cli: str, tmp_path: Path) -> None:
    db = f"sqlite:{tmp_path / 'bad.db'}"
    for name, text, message in [
        ("time.csv", "datetime,variable_name,value\nyesterday,VAR_01,1.0\n", 'line 2: cannot parse "yesterday"'),
        ("value.csv", "datetime,variable_name,value\n2024-03-04 00:00,VAR_01,abc\n", 'line 2, column value: cannot parse "abc"'),
        ("columns.csv", "when,variable_name,value\n2024-03-04 00:00,VAR_01,1.0\n", "datetime"),
    ]:  # fmt: skip
        (tmp_path / name).write_text(text)
        out = run(cli, "import", "--db", db, "--input", str(tmp_path / name), check=False)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    run(cli, "iforest", "simulate", "--db", db, "--batch-size", "500", "-q")
    run(cli, "iforest", "watch", "--db", db, "--model", str(tmp_path / "f.json"), "--max-iterations", "1", "-q")
    out = run(cli, "iforest", "watch", "--db", db, "--model", str(tmp_path / "f.json"), "--columns", "voltage,current",
              "--max-iterations", "1", check=False)  # fmt: skip
    assert out.returncode != 0 and "4 features, --columns names 2" in out.stderr, out.stderr


def tables(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return sorted(r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def test_consumption_watch_and_archive_use_the_named_tables(cli: str, tmp_path: Path) -> None:
    """--readings-table and --results-table are honoured (issue 15: both
    were ignored, the job read the default consumo_* tables and created
    them empty), and the flags' help describes the consumption tables."""
    db = tmp_path / "c.db"
    url = f"sqlite:{db}"
    run(cli, "consumption", "simulate", "--db", url, "--clients", "3", "--days", "35", "--seed", "4", "-q")
    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE consumo_lecturas RENAME TO lecturas_b")
        for t in tables(db):
            if t.startswith("consumo_") or t == "anomaly_job_state":
                c.execute(f"DROP TABLE {t}")
    n = int(scalar(db, "SELECT COUNT(*) FROM lecturas_b"))  # type: ignore[call-overload]
    named = ["--readings-table", "lecturas_b", "--results-table", "flags_b"]
    out = run(cli, "consumption", "watch", "--db", url, *named, "--interval", "50ms", "--max-iterations", "1")
    assert f"{n} readings flagged" in out.stderr, out.stderr
    assert scalar(db, "SELECT COUNT(*) FROM flags_b") == n
    assert not [t for t in tables(db) if t.startswith("consumo_")], tables(db)
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO lecturas_b (client_id, timestamp, kwh) VALUES ('C00001', '2024-02-04 23:30:00', 1.0)")
    out = run(cli, "consumption", "watch", "--db", url, *named, "--interval", "50ms", "--max-iterations", "1")
    assert "1 readings rejected to flags_b_rejects" in out.stderr, out.stderr
    assert scalar(db, "SELECT COUNT(*) FROM flags_b_monthly") == 3 * 2
    assert scalar(db, "SELECT job FROM anomaly_job_state") == "consumption:lecturas_b:flags_b"
    run(cli, "consumption", "archive", "--db", url, *named, "--older-than", "20d", "-q")
    run(cli, "consumption", "restore", "--db", url, *named, "--from", "2024-01-01", "--to", "2024-01-05", "-q")
    with sqlite3.connect(db) as c:
        log = c.execute("SELECT action, rows FROM lecturas_b_archive_log ORDER BY id").fetchall()
        archived = c.execute("SELECT COUNT(*) FROM lecturas_b_archive").fetchone()[0]
        live = c.execute("SELECT COUNT(*) FROM lecturas_b").fetchone()[0]
    assert [a for a, _ in log] == ["archive", "restore"] and log[1][1] == 3 * 4 * 24
    assert archived == log[0][1] - log[1][1] > 0 and live + archived == n + 1
    assert not [t for t in tables(db) if t.startswith("consumo_")], tables(db)
    for command in ("watch", "archive", "restore"):
        text = run(cli, "consumption", command, "--help").stdout
        assert "client_id, timestamp, kwh" in text and "variable_name" not in text, text
    out = run(cli, "consumption", "watch", "--db", url, "--readings-table", "select", "--max-iterations", "1", check=False)
    assert out.returncode == 2 and "reserved SQL word" in out.stderr, out.stderr


def test_consumption_job_rejects_client_ids_that_are_not_utf8(cli: str, tmp_path: Path) -> None:
    """Two different non-UTF-8 client ids at the same time: each rejected
    with its reason (issue 15: read lossily they became one key, and every
    such row was rejected as a repeat), every other reading flagged."""
    db = tmp_path / "c.db"
    url = f"sqlite:{db}"
    run(cli, "consumption", "simulate", "--db", url, "--clients", "3", "--days", "10", "--seed", "5", "-q")
    n = int(scalar(db, "SELECT COUNT(*) FROM consumo_lecturas"))  # type: ignore[call-overload]
    with sqlite3.connect(db) as c:
        for blob in ("FF02", "FE03", "FF02"):
            c.execute(f"INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES "
                      f"(CAST(X'{blob}' AS TEXT), '2024-01-05 10:00:00', 1.0)")  # fmt: skip
        c.execute("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES ('C00009', '2024-01-05 10:00:00', 1.0)")
    run(cli, "consumption", "watch", "--db", url, "--max-iterations", "1", "-q")
    with sqlite3.connect(db) as c:
        rejects = c.execute("SELECT client_id, reason FROM consumo_rechazos ORDER BY reading_id").fetchall()
    assert rejects == [(None, "client_id is not UTF-8 text")] * 3
    assert scalar(db, "SELECT COUNT(*) FROM consumo_anomalias") == n + 1


def test_forecast_job_rejects_variable_names_that_are_not_utf8(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    db, models = fresh(plant, tmp_path), plant[1]
    with sqlite3.connect(db) as c:
        for blob in ("FF02", "FE03"):
            c.execute(f"INSERT INTO datos_proceso (datetime, variable_name, value) VALUES "
                      f"('2024-03-06 10:00:00', CAST(X'{blob}' AS TEXT), 50.0)")  # fmt: skip
    readings = int(scalar(db, "SELECT COUNT(*) FROM datos_proceso"))  # type: ignore[call-overload]
    out = run(cli, "forecast", "detect", "--db", f"sqlite:{db}", "--models", str(models), "--once", "--json", "-q")
    assert f'"results":{readings - 2}' in out.stdout and '"rejects":2' in out.stdout, out.stdout
    with sqlite3.connect(db) as c:
        reasons = [r[0] for r in c.execute("SELECT reason FROM anomalies_detector_rejects ORDER BY reading_id")]
    # Read lossily, each was an unknown variable named after replacement characters.
    assert len(reasons) == 2 and all(r.startswith("variable_name is not") for r in reasons), reasons


def test_table_and_column_names_that_are_sql_words_are_refused(cli: str, plant: tuple[Path, Path], tmp_path: Path) -> None:
    """Exit 2 naming the word (issue 15: `--readings-table select` passed
    the name check, then failed printing raw SQL, exit 1); a schema-qualified
    name checks each part, and nothing is created."""
    db = tmp_path / "new.db"
    url, models = f"sqlite:{db}", str(plant[1])
    for args in [
        ["forecast", "detect", "--db", url, "--models", models, "--once", "--readings-table", "select"],
        ["forecast", "detect", "--db", url, "--models", models, "--once", "--results-table", "plant.Order"],
        ["iforest", "watch", "--db", url, "--model", str(tmp_path / "f.json"), "--table", "FROM"],
        ["iforest", "watch", "--db", url, "--model", str(tmp_path / "f.json"), "--columns", "voltage,where"],
        ["serve", "--db", url, "--results-table", "table", "--addr", "127.0.0.1:0"],
    ]:
        out = run(cli, *args, check=False)
        assert out.returncode == 2 and "is a reserved SQL word" in out.stderr, (args, out.stderr)
        assert "SELECT" not in out.stderr and not db.exists(), (args, out.stderr)


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgres://anomaly:s3cret-pw@127.0.0.1:{port}/plant"


def test_every_watch_retries_an_unreachable_database_and_a_bounded_one_exits_1(
    cli: str, plant: tuple[Path, Path], tmp_path: Path
) -> None:
    """A refused connection is transient: forecast, consumption and iforest
    watch all retry it with backoff (issue 15: iforest exited 1 at once),
    and a bounded worker counts the failed attempts as failed passes; no
    log line shows the URL's password."""
    url = closed_port_url()
    forest = tmp_path / "f.json"
    rows = "".join(f"{i},{i % 3},{i % 5},{i % 7}\n" for i in range(60))
    (tmp_path / "x.csv").write_text("voltage,current,power,temperature\n" + rows)
    run(cli, "iforest", "fit", "-i", str(tmp_path / "x.csv"), "-m", str(forest), "-q")
    for args in [
        ["forecast", "watch", "--models", str(plant[1]), "--poll-interval", "50ms"],
        ["consumption", "watch", "--interval", "50ms"],
        ["iforest", "watch", "--model", str(forest), "--interval", "50ms"],
        ["iforest", "watch", "--model", str(tmp_path / "missing.json"), "--interval", "50ms"],  # trains first
    ]:
        started = time.time()
        out = run(cli, *args, "--db", url, "--max-iterations", "2", check=False)
        assert out.returncode == 1, (args, out.returncode, out.stderr[-800:])
        assert out.stderr.count("retrying in") == 1 and "Connection refused" in out.stderr, (args, out.stderr[-800:])
        assert "s3cret-pw" not in out.stderr and "anomaly:***@" in out.stderr, (args, out.stderr[-800:])
        assert time.time() - started < 20 and not (tmp_path / "missing.json").exists()


@contextlib.contextmanager
def serving_url(cli: str, url: str) -> Iterator[Callable[[str], tuple[int, dict[str, object], float]]]:
    """`anomaly serve --db URL` until the block ends: get(path) -> (status, body, seconds)."""
    import json
    import urllib.error
    import urllib.request

    from test_credit_service import free_port

    port = free_port()
    server = subprocess.Popen([cli, "serve", "--db", url, "--addr", f"127.0.0.1:{port}", "-q"], stderr=subprocess.DEVNULL)

    def get(path: str) -> tuple[int, dict[str, object], float]:
        started = time.time()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as r:
                return r.status, json.loads(r.read()), time.time() - started
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), time.time() - started

    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                get("/health")
                break
            except OSError:
                time.sleep(0.05)
        yield get
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


QUERY_ROUTES = ["/anomalies", "/variables", "/monthly", "/summary", "/consumption/anomalies", "/consumption/clients",
                "/consumption/monthly", "/consumption/summary"]  # fmt: skip


def assert_empty(get: Callable[[str], tuple[int, dict[str, object], float]]) -> None:
    """Every dashboard route answers 200 with nothing in it."""
    for path in QUERY_ROUTES:
        status, body, _ = get(path)
        assert status == 200, (path, status, body)
        for key in ("total", "results", "readings", "anomalies", "clients"):
            if isinstance(body.get(key), int):
                assert body[key] == 0, (path, body)
        assert all(v == [] for v in body.values() if isinstance(v, list)), (path, body)


def test_serve_opens_a_sqlite_database_read_only_and_creates_nothing(cli: str, tmp_path: Path) -> None:
    """Issue 15: `serve --db sqlite:new.db` created the file with 10 tables,
    and a read-only database failed every query ("attempt to write a
    readonly database"): now a missing file is a 503 naming it, a read-only
    file is served unchanged, and a table no job has created reads as empty."""
    import hashlib
    import os

    missing = tmp_path / "new.db"
    with serving_url(cli, f"sqlite:{missing}") as get:
        status, body, seconds = get("/ready")
        assert status == 503 and "unable to open" in str(body.get("reason")) and seconds < 4, body
        status, body, _ = get("/anomalies")
        assert status == 503 and body["error"]["code"] == "E503", body  # type: ignore[index]
    assert not list(tmp_path.glob("new.db*"))

    # The consumption team's tables only, in rollback-journal mode, mode 444.
    db = tmp_path / "consumo.db"
    consumption_job(cli, f"sqlite:{db}", tmp_path)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA journal_mode = DELETE")
    before = tables(db)
    os.chmod(db, 0o444)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    try:
        with serving_url(cli, f"sqlite:{db}") as get:
            assert get("/ready")[:2] == (200, {"ready": True, "model": False, "database": True})
            status, summary, _ = get("/consumption/summary")
            assert status == 200 and summary["readings"] == 6 * 40 * 24, summary
            status, page, _ = get("/anomalies")  # the forecast results table does not exist here
            assert status == 200 and page["total"] == 0 and page["items"] == [], page
    finally:
        os.chmod(db, 0o644)
    # Not a byte written: no table created, the journal mode not switched to WAL.
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest and tables(db) == before
    assert not list(tmp_path.glob("consumo.db-*"))

    empty = tmp_path / "empty.db"
    with sqlite3.connect(empty) as c:
        c.execute("CREATE TABLE notes (x TEXT)")
    with serving_url(cli, f"sqlite:{empty}") as get:
        assert get("/ready")[0] == 200
        assert_empty(get)
    assert tables(empty) == ["notes"]


def test_serve_answers_within_bounded_time_when_a_writer_locks_the_database(cli: str, tmp_path: Path) -> None:
    """Issue 15: with a writer holding an exclusive lock (and the tables
    missing), /ready and /anomalies did not answer within 2 s; now 503
    within about 2 s, and the answers come back once the lock is released."""
    db = tmp_path / "locked.db"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("CREATE TABLE notes (x TEXT)")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO notes VALUES ('busy')")
    try:
        with serving_url(cli, f"sqlite:{db}") as get:
            for path in ["/ready", "/anomalies", "/consumption/summary"]:
                status, body, seconds = get(path)
                assert status == 503 and seconds < 3.5, (path, status, body, seconds)
            assert "locked" in str(get("/ready")[1].get("reason"))
            writer.execute("ROLLBACK")
            assert get("/ready")[0] == 200
            assert_empty(get)
    finally:
        writer.close()
    assert tables(db) == ["notes"]
