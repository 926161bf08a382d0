"""The Streamlit example apps render every page without an exception, with
Streamlit's AppTest, on a database filled by the real CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

testing = pytest.importorskip("streamlit.testing.v1")
APPS = Path(__file__).resolve().parents[1] / "examples" / "streamlit"


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
