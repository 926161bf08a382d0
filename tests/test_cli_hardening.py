"""Issue 15 regressions at the command line: hostile files and parameters
exit 2 at once with a message, never a panic (101), an abort (134), a hang
or unbounded memory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import anomaly


def anomaly_cli(cli: str, *args: object, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # A bounded address space turns "unbounded allocation" into a failure
    # of the test instead of a machine out of memory.
    limit = "ulimit -v 4000000; exec \"$@\""
    return subprocess.run(["bash", "-c", limit, "anomaly", cli, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def assert_bad_input(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "panicked" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr[-2000:]


@pytest.fixture
def sensors(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "sensors.csv"
    pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"]).to_csv(path, index=False)
    return path


def test_model_and_params_paths_that_are_not_files(cli: str, sensors: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    for path in [fifo, zero]:
        # A FIFO with no writer blocked; /dev/zero filled memory.
        assert_bad_input(anomaly_cli(cli, "iforest", "score", "-i", sensors, "-m", path, "-o", tmp_path / "o.csv"),
                         "not a regular file")  # fmt: skip
        assert_bad_input(anomaly_cli(cli, "consumption", "detect", "-i", sensors, "-o", tmp_path / "o.csv",
                                     "--params", path), "not a regular file")  # fmt: skip


def test_csv_input_without_line_ends_is_refused(cli: str, tmp_path: Path) -> None:
    # The CSV reader grew its record buffer without bound (9 GB in 10 s).
    proc = anomaly_cli(cli, "consumption", "detect", "-i", "/dev/zero", "-o", tmp_path / "o.csv")
    assert_bad_input(proc, "longer than")
    proc = anomaly_cli(cli, "iforest", "fit", "-i", "/dev/zero", "-m", tmp_path / "m.json")
    assert_bad_input(proc, "longer than")


def test_sizes_and_durations_are_bounded(cli: str, sensors: Path, tmp_path: Path) -> None:
    proc = anomaly_cli(cli, "iforest", "fit", "-i", sensors, "-m", tmp_path / "m.json", "--n-estimators", 10**12)
    assert_bad_input(proc, "n_estimators")
    with pytest.raises(anomaly.ParameterError, match="n_estimators"):
        anomaly.IsolationForest(n_estimators=10**12).fit(np.zeros((10, 2)))
    db = f"sqlite:{tmp_path / 'c.db'}"
    for interval in ["18446744073709551615s", "9223372036854775807s"]:
        # Instant + duration panicked ("overflow when adding duration to instant").
        proc = anomaly_cli(cli, "consumption", "watch", "--db", db, "--interval", interval, "--max-iterations", 2)
        assert_bad_input(proc, "100 years")
    anomaly_cli(cli, "consumption", "simulate", "--db", db, "--clients", 2, "--days", 3)
    # now - 2^64 s wrapped around and archived every reading.
    proc = anomaly_cli(cli, "consumption", "archive", "--db", db, "--older-than", "18446744073709551615s")
    assert_bad_input(proc, "100 years")


def test_corrupt_forecast_models_exit_2(cli: str, tmp_path: Path) -> None:
    ds = pd.date_range("2026-01-01", periods=24 * 5, freq="h")
    df = pd.DataFrame({"ds": ds, "variable": "T", "y": 10 + np.sin(np.arange(len(ds)) / 24 * 2 * np.pi)})
    models = tmp_path / "models"
    anomaly.ForecastDetector().fit(df, variable_col="variable").save(models)
    df.rename(columns={"ds": "datetime", "variable": "variable_name", "y": "value"}).to_csv(tmp_path / "in.csv", index=False)
    (file,) = [p for p in models.iterdir() if p.name != "detector.json"]
    good = json.loads(file.read_text())
    for edit, word in [(lambda m: m["params"].update(beta=m["params"]["beta"][:3]), "beta has 3 values"),
                       (lambda m: m["seasonalities"][0].update(fourier_order=10**9), "feature columns")]:  # fmt: skip
        doc = json.loads(json.dumps(good))
        edit(doc["model"]["model"])
        file.write_text(json.dumps(doc))
        # A short beta panicked (exit 101); a huge Fourier order aborted on a 48 GB allocation.
        proc = anomaly_cli(cli, "forecast", "detect", "-m", models, "-i", tmp_path / "in.csv", "-o", tmp_path / "o.csv")
        assert_bad_input(proc, word)
        with pytest.raises(anomaly.ModelFileError, match=word):
            anomaly.ForecastDetector.load(models)


def test_an_out_of_range_time_names_the_callers_row(cli: str, tmp_path: Path) -> None:
    # The error named row 0 of one variable's sorted readings, not the input's row.
    ds = pd.date_range("2026-01-01", periods=24 * 5, freq="h")
    df = pd.DataFrame({"ds": ds, "variable": "T", "y": 10 + np.sin(np.arange(len(ds)) / 24 * 2 * np.pi)})
    models = tmp_path / "models"
    anomaly.ForecastDetector().fit(df, variable_col="variable").save(models)
    rows = "datetime,variable_name,value\n2026-01-06 00:00:00,T,10\n2026-01-06 01:00:00,T,11\n1600-01-01 00:00:00,T,5\n"
    (tmp_path / "in.csv").write_text(rows)
    proc = anomaly_cli(cli, "forecast", "detect", "-m", models, "-i", tmp_path / "in.csv", "-o", tmp_path / "o.csv")
    assert_bad_input(proc, "datetime at row 2", "1677-09-22 to 2262-04-11")
