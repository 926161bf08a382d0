"""The Streamlit example apps render every page without an exception, with
Streamlit's AppTest, on a database filled by the real CLI; the SmartEnergy
dashboard's top-sensor columns on databases written with SQL in the store's
schema, with and without those columns."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

testing = pytest.importorskip("streamlit.testing.v1")
st = pytest.importorskip("streamlit")
APPS = Path(__file__).resolve().parents[1] / "examples" / "streamlit"


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    """The apps' `st.cache_data` functions keep their results across AppTests
    of one process (keyed by the function, not by ANOMALY_DB)."""
    st.cache_data.clear()


@pytest.fixture(scope="module")
def energy_db(cli: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("apps") / "energy.db"
    for args in (["consumption", "simulate", "--clients", "8", "--days", "40"],
                 ["consumption", "watch", "--max-iterations", "1", "--interval", "10ms"]):  # fmt: skip
        proc = subprocess.run([cli, *args, "--db", f"sqlite:{db}", "-q"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
    return db


def test_consumption_app_renders_every_page(energy_db: Path, cli: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_DB", str(energy_db))
    monkeypatch.setenv("ANOMALY_CLI", cli)
    at = testing.AppTest.from_file(str(APPS / "consumption_app.py"), default_timeout=60).run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["Clientes", "Lecturas", "Anomalías", "Clientes con críticas"]
    assert at.metric[0].value == "8"
    for page in ["Cliente", "Mensual", "Anomalías", "Mapas de calor", "Resumen"]:
        at.sidebar.radio[0].set_value(page).run()
        assert not at.exception, (page, at.exception)
        assert at.header[0].value
        if page == "Anomalías":  # episodes first, then the readings
            assert [h.value for h in at.subheader] == ["Episodios", "Lecturas"]
            with sqlite3.connect(energy_db) as c:
                severe = c.execute("SELECT COUNT(*) FROM consumo_episodios WHERE peak_severity IN ('crítica', 'alta')").fetchone()[0]
            assert at.caption[0].value == f"{severe} episodios" and severe > 0
    at.button[0].click().run()  # recompute: nothing new, no error
    assert not at.exception and not at.error


def test_energy_app_renders_trains_and_recomputes(cli: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "energy.db"
    for args in (["iforest", "simulate", "--batch-size", "3000"],
                 ["iforest", "watch", "--model", str(tmp_path / "forest.json"), "--max-iterations", "1"]):  # fmt: skip
        proc = subprocess.run([cli, *args, "--db", f"sqlite:{db}", "-q"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("ANOMALY_DB", str(db))
    monkeypatch.setenv("ANOMALY_MODEL", str(tmp_path / "forest.json"))
    monkeypatch.setenv("ANOMALY_CLI", cli)
    at = testing.AppTest.from_file(str(APPS / "energy_app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["Registros", "Puntuados", "Anomalías", "Estado"] and at.metric[0].value == "3,000"
    assert at.metric[3].value in {"Normal", "Precaución", "Crítico"}
    at.button[0].click().run()  # train a fresh model, score (nothing new)
    assert not at.exception and not at.error
    at.button[1].click().run()
    assert not at.exception and not at.error


# The isolation-forest store's tables (anomaly-cli/src/store/records.rs,
# SQLite dialect); `explained` adds the columns newer jobs write for each
# flagged record: the sensor that pushed it most toward anomalous and that
# push's share.
ENERGY_SCHEMA = """
CREATE TABLE energy_records (id INTEGER PRIMARY KEY AUTOINCREMENT, datetime TEXT NOT NULL, voltage REAL,
    current REAL, power REAL, temperature REAL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE energy_records_scores (record_id INTEGER PRIMARY KEY, score REAL NOT NULL, decision REAL NOT NULL,
    is_anomaly INTEGER NOT NULL, scored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP{explained});
CREATE INDEX idx_energy_records_scores_anomaly ON energy_records_scores(is_anomaly);
CREATE TABLE energy_records_rejects (record_id INTEGER PRIMARY KEY, reason TEXT NOT NULL,
    rejected_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE energy_records_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT,
    computed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, total INTEGER NOT NULL, anomalies INTEGER NOT NULL,
    percent REAL NOT NULL, state TEXT NOT NULL, first_record_id INTEGER NOT NULL, last_record_id INTEGER NOT NULL);
"""
# Flagged record id -> (top_feature, top_share); record 100 is flagged but
# was scored before the job stored explanations (both NULL).
TOP = {10: ("temperature", 0.8), 20: ("temperature", 0.55), 30: ("voltage", 0.625), 40: ("temperature", 0.9),
       50: ("current", 0.4), 60: ("voltage", 1.0), 70: ("temperature", 0.7), 100: (None, None)}  # fmt: skip


def energy_schema_db(path: Path, explained: bool) -> Path:
    """200 records, all scored, the ids of TOP flagged, one metrics row."""
    with sqlite3.connect(path) as conn:
        conn.executescript(ENERGY_SCHEMA.format(explained=", top_feature TEXT, top_share REAL" if explained else ""))
        conn.executemany(
            "INSERT INTO energy_records (id, datetime, voltage, current, power, temperature) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, f"2024-03-04 10:{i // 60:02d}:{i % 60:02d}", 220.0 + i % 7, 10.0 + i % 3, 2000.0 + i, 35.0 + i % 5)
             for i in range(1, 201)],
        )  # fmt: skip
        rows = [(i, -0.7 if i in TOP else -0.4, -0.1 if i in TOP else 0.2, int(i in TOP)) for i in range(1, 201)]
        if explained:
            conn.executemany(
                "INSERT INTO energy_records_scores (record_id, score, decision, is_anomaly, top_feature, top_share) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, *TOP.get(row[0], (None, None))) for row in rows],
            )
        else:
            conn.executemany(
                "INSERT INTO energy_records_scores (record_id, score, decision, is_anomaly) VALUES (?, ?, ?, ?)", rows
            )
        conn.execute(
            "INSERT INTO energy_records_metrics (total, anomalies, percent, state, first_record_id, last_record_id) "
            "VALUES (200, ?, ?, 'Normal', 1, 200)",
            (len(TOP), 100 * len(TOP) / 200),
        )
    conn.close()
    return path


def energy_app(db: Path, monkeypatch: pytest.MonkeyPatch) -> testing.AppTest:
    monkeypatch.setenv("ANOMALY_DB", str(db))
    monkeypatch.setenv("ANOMALY_MODEL", str(db.with_name("forest.json")))
    at = testing.AppTest.from_file(str(APPS / "energy_app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["Registros", "Puntuados", "Anomalías", "Estado"]
    assert at.metric[0].value == "200" and at.metric[2].value == str(len(TOP))
    return at


def test_energy_app_shows_the_top_sensor_of_flagged_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = energy_app(energy_schema_db(tmp_path / "energy.db", explained=True), monkeypatch)
    table = next(d for d in at.dataframe if "is_anomaly" in d.value)
    flagged = table.value.set_index("id")
    assert sorted(flagged.index) == sorted(TOP)
    assert flagged.loc[30, "top_feature"] == "voltage" and flagged.loc[30, "top_share"] == pytest.approx(0.625)
    assert flagged.loc[50, "top_feature"] == "current" and flagged.loc[50, "top_share"] == pytest.approx(0.4)
    assert flagged.loc[100, ["top_feature", "top_share"]].isna().all()  # scored before the job explained
    config = json.loads(table.proto.columns)
    assert config["top_feature"]["label"] == "sensor principal"
    assert config["top_share"]["label"] == "aporte" and config["top_share"]["type_config"]["format"] == "percent"
    assert [s.value for s in at.subheader] == ["Sensor principal de las anomalías"]
    drivers = next(d for d in at.dataframe if "sensor" in d.value).value
    assert drivers["sensor"].tolist() == ["temperature", "voltage", "current"]
    assert drivers["anomalías"].tolist() == [4, 2, 1]
    assert drivers["% anomalías"].tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert json.loads(next(d for d in at.dataframe if "sensor" in d.value).proto.columns)["% anomalías"][
        "type_config"]["format"] == "percent"  # fmt: skip
    assert any("sin sensor principal" in c.value and c.value.endswith(": 1") for c in at.caption)


def test_energy_app_renders_a_database_without_top_sensor_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = energy_app(energy_schema_db(tmp_path / "energy.db", explained=False), monkeypatch)
    assert len(at.dataframe) == 1  # the flagged records only, no summary
    flagged = at.dataframe[0].value
    assert sorted(flagged["id"]) == sorted(TOP) and "top_feature" not in flagged and "top_share" not in flagged
    assert not at.subheader and not at.caption and not at.error
