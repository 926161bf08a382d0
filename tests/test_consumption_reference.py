"""The Rust rules agree with an independent Python implementation of their
documented definitions (benches/python/consumption_reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly import consumption

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches" / "python"))
import consumption_reference as reference  # noqa: E402


def patterned_readings(seed: int) -> pd.DataFrame:
    """Continuous random values (no ties at thresholds), gaps, and every pattern."""
    rng = np.random.default_rng(seed)
    frames = []
    for c in range(4):
        t = pd.date_range("2023-05-01", periods=45 * 24, freq="h")
        hour = t.hour.to_numpy()
        level = np.where(hour < 6, 0.25, 0.9) + 0.6 * np.exp(-0.5 * ((hour - 19) / 1.5) ** 2)
        kwh = level * rng.lognormal(0, 0.35, len(t))
        if c == 1:  # plantation on days 30-37
            kwh[30 * 24 : 38 * 24] += np.where(hour[30 * 24 : 38 * 24] < 6, 1.7, 0.0)
        if c == 2:  # flat meter on days 33-35
            kwh[33 * 24 : 36 * 24] = 0.0
        if c == 3:  # spikes
            kwh[[25 * 24 + 13, 31 * 24 + 9, 40 * 24 + 15]] *= 6
        df = pd.DataFrame({"client_id": f"c{c}", "timestamp": t, "kwh": kwh})
        keep = rng.random(len(df)) > 0.02  # 2% missing readings
        frames.append(df[keep])
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rust_matches_the_python_reference(seed: int) -> None:
    df = patterned_readings(seed)
    # The plain-Python reference implements the analysts' literal rules.
    params = consumption.ConsumptionRules.preset("literal").get_params()
    expected = reference.detect(df, params)
    got = consumption.detect(df, preset="literal")
    assert got["types"].tolist() == expected["types"].tolist()
    np.testing.assert_allclose(got["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-9, atol=1e-12)
    kinds = {t for ts in got["types"] for t in ts}
    assert {"outlier", "spike", "night_use", "plantation", "flat"} <= kinds
