"""Episodes (issue 17, item 3): runs of one rule's flags per client, the
alerts an analyst acts on. Each flagged reading belongs to exactly one
episode of each rule that flagged it; on the real households, every
injected plantation is one episode of severity alta or crítica under the
calibrated rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_consumption_real_data import hourly, inject

from anomaly import consumption
from anomaly.errors import ParameterError


@pytest.mark.parametrize("method", ["literal", "calibrated"])
def test_every_flag_is_in_one_episode_of_its_rule(readings: pd.DataFrame, method: str) -> None:
    result = consumption.analyze(readings, method=method)
    flags, episodes = result.readings, result.episodes
    assert list(episodes.columns) == [
        "client", "type", "start", "end", "n_readings", "peak_score", "peak_severity", "kwh_above_baseline",
    ]  # fmt: skip
    assert len(episodes) > 0
    for kind in consumption.ANOMALY_TYPES:
        flagged = flags[flags["types"].map(lambda t, k=kind: k in t)]
        mine = episodes[episodes["type"] == kind]
        assert mine["n_readings"].sum() == len(flagged), kind
        for ep in mine.itertuples():
            inside = flagged[(flagged.client_id.astype(str) == ep.client) & (flagged.timestamp >= ep.start)
                             & (flagged.timestamp < ep.end)]  # fmt: skip
            assert len(inside) == ep.n_readings
            assert inside["score"].max() == ep.peak_score
    assert (episodes["end"] > episodes["start"]).all()
    assert (episodes["peak_score"] >= 0.5).all()
    # Fewer alerts than flagged readings: that is the point.
    assert len(episodes) < flags["is_anomaly"].sum()


def test_episodes_follow_the_gap_parameter(readings: pd.DataFrame) -> None:
    tight = consumption.episodes(readings, episode_gap=0)
    loose = consumption.episodes(readings, episode_gap=6)
    day = tight[~tight["type"].isin(["night_use", "plantation"])]
    day_loose = loose[~loose["type"].isin(["night_use", "plantation"])]
    assert len(day_loose) < len(day)
    assert day["n_readings"].sum() == day_loose["n_readings"].sum()
    with pytest.raises(ParameterError, match="episode_gap"):
        consumption.episodes(readings, episode_gap=10**6)


def test_real_households_episodes(shared_data: Path) -> None:
    clean = hourly(shared_data)
    injected, events = inject(clean)
    result = consumption.analyze(injected, method="calibrated")
    episodes = result.episodes
    episodes = episodes.assign(client=episodes["client"].astype(np.int64))
    severe = episodes[episodes["peak_severity"].isin(["alta", "crítica"])]
    caught = {}
    for kind in ["plantation", "flat"]:
        evs = events[events["kind"] == kind]
        hits = 0
        for ev in evs.itertuples():
            mine = severe[(severe["client"] == ev.client_id) & (severe["type"] == kind)
                          & (severe["start"] < ev.end) & (severe["end"] > ev.start)]  # fmt: skip
            hits += len(mine) > 0
        caught[kind] = hits / len(evs)
    months = injected.assign(month=injected.timestamp.dt.to_period("M")).groupby(["client_id", "month"]).ngroups
    per_client_month = len(episodes) / months
    print({"caught_as_severe_episode": caught, "episodes_per_client_month": round(per_client_month, 2),
           "episodes": len(episodes)})  # fmt: skip
    assert caught["plantation"] == 1.0
    assert caught["flat"] == 1.0
    # The literal rules' alert stream was ~33 per client-month (docs/consumption_calibrated.md).
    assert per_client_month < 6


@pytest.mark.parametrize("method", ["literal", "calibrated"])
def test_cli_episodes_match_python(tmp_path: Path, cli: str, readings: pd.DataFrame, method: str) -> None:
    import subprocess

    src = tmp_path / "readings.csv"
    readings.to_csv(src, index=False)
    out = tmp_path / "episodes.csv"
    subprocess.run(
        [cli, "consumption", "detect", "-i", str(src), "-o", str(tmp_path / "flags.csv"), "--episodes", str(out),
         "--method", method, "-q"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = pd.read_csv(out, parse_dates=["start", "end"], dtype={"client": str})
    py = consumption.episodes(pd.read_csv(src), method=method)
    assert len(got) == len(py) > 0
    assert got["client"].tolist() == py["client"].tolist() and got["type"].tolist() == py["type"].tolist()
    assert (got["start"].to_numpy() == py["start"].to_numpy()).all() and (got["end"].to_numpy() == py["end"].to_numpy()).all()
    np.testing.assert_array_equal(got["n_readings"], py["n_readings"])
    np.testing.assert_array_equal(got["peak_score"], py["peak_score"])
    np.testing.assert_array_equal(got["kwh_above_baseline"], py["kwh_above_baseline"])
    assert got["peak_severity"].tolist() == py["peak_severity"].astype(str).tolist()
