"""Both dashboards in a real headless browser (Debian's chromium): the
running app is loaded, its main elements render, and a screenshot is kept
under test-artifacts/."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_credit_service import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytest.importorskip("streamlit")
if CHROMIUM is None:
    pytest.skip("chromium is not installed (scripts/test installs Debian's chromium)", allow_module_level=True)


def fill(cli: str, db: Path) -> None:
    steps = [
        ["consumption", "simulate", "--clients", "8", "--days", "40"],
        ["consumption", "watch", "--max-iterations", "1", "--interval", "10ms"],
        ["iforest", "simulate", "--batch-size", "2000"],
        ["iforest", "watch", "--model", str(db.with_name("forest.json")), "--max-iterations", "1"],
    ]
    for args in steps:
        proc = subprocess.run([cli, *args, "--db", f"sqlite:{db}", "-q"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def browse(app: str, db: Path, name: str, expected: list[str], path: str = "") -> str:
    """Loads the running app until `expected` texts render (the first load
    starts the script; imports take a few seconds), then screenshots it."""
    port = free_port()
    env = dict(os.environ, ANOMALY_DB=str(db))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "examples" / "streamlit" / app), "--server.headless",
         "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        url = base + path
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.1)
        chrome = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,1400", "--virtual-time-budget=30000", "--run-all-compositor-stages-before-draw"]  # fmt: skip
        # A deadline, not a count: the first run of an app in a fresh
        # environment compiles its imports and can take a minute on 2 cores.
        dom, deadline = "", time.monotonic() + 180
        while time.monotonic() < deadline:
            dom = subprocess.run([*chrome, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                                 check=False).stdout  # fmt: skip
            if all(text in dom for text in expected):
                break
            time.sleep(1)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{name}.png"
        # Each browser session reruns the script: a screenshot taken before
        # it finishes shows Streamlit's loading skeleton (under 15 KB).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            subprocess.run([*chrome, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=False)
            if shot.exists() and shot.stat().st_size > 20_000:
                break
        assert shot.exists() and shot.stat().st_size > 20_000, "no rendered screenshot"
        return dom
    finally:
        server.terminate()
        server.wait(20)


def test_dashboards_render_in_a_real_browser(cli: str, tmp_path: Path) -> None:
    db = tmp_path / "energy.db"
    fill(cli, db)
    expected = ["Top 10 clientes", "Clientes con críticas"]
    dom = browse("consumption_app.py", db, "consumption_app", expected)
    assert all(text in dom for text in expected), dom[-2000:]
    # The anomalies page lists episodes before readings.
    expected = ["Episodios", "episodios", "Lecturas"]
    dom = browse("consumption_app.py", db, "consumption_app_anomalias", expected, "/?page=Anomal%C3%ADas")
    assert all(text in dom for text in expected), dom[-2000:]
    assert dom.index("Episodios") < dom.index("Lecturas")
    expected = ["SmartEnergy", "Registros", "Entrenar modelo"]
    with sqlite3.connect(db) as conn:
        scores = {row[1] for row in conn.execute("PRAGMA table_info(energy_records_scores)")}
    conn.close()
    if {"top_feature", "top_share"} <= scores:  # a job that stores each flagged record's top sensor
        expected.append("Sensor principal de las anomalías")  # the grid's own headers are drawn on a canvas
    dom = browse("energy_app.py", db, "energy_app", expected)
    assert all(text in dom for text in expected), dom[-2000:]
