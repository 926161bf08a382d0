"""Shared fixtures: synthetic readings, the CLI binary and the real data folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import anomaly

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def readings() -> pd.DataFrame:
    df, _ = anomaly.consumption.simulate(clients=12, days=45, seed=3)
    return df


@pytest.fixture(scope="session")
def cli() -> str:
    """Path of the `anomaly` binary (built by the test command)."""
    path = os.environ.get("ANOMALY_CLI") or shutil.which("anomaly")
    if not path or not Path(path).exists():
        candidate = ROOT / "target" / "release" / "anomaly"
        if not candidate.exists():
            pytest.skip("the anomaly CLI is not built; run scripts/test")
        path = str(candidate)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA
