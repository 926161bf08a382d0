"""Scale-out on an existing engine: a Dask LocalCluster with 2 worker
processes fits and scores one forecasting detector per household
(groupby-apply over the 10 real SGSC households in ../shared/data/energy/,
or simulated ones where that folder is absent); the results equal a serial
pandas run's, and fitted models travel between processes by pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import anomaly
from conftest import SHARED_DATA

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")


# The grouping key is a copy of client_id: pandas 3 leaves the key itself
# out of each group.
COLUMNS = ["client_id", "ds", "y"]


def households() -> pd.DataFrame:
    """Hourly kWh per household, two months each."""
    path = SHARED_DATA / "energy" / "sgsc_smart_meter10_halfhourly.csv"
    if path.exists():
        raw = pd.read_csv(path, parse_dates=["reading_datetime"])
        raw["hour"] = raw["reading_datetime"].dt.floor("h")
        hourly = raw.groupby(["customer_id", "hour"], as_index=False)["general_supply_kwh"].sum()
        hourly.columns = ["client_id", "ds", "y"]
        hourly["client_id"] = hourly["client_id"].astype(str)
    else:
        readings, _ = anomaly.consumption.simulate(clients=10, days=60, seed=4)
        hourly = readings.rename(columns={"timestamp": "ds", "kwh": "y"})
        hourly["ds"] = pd.to_datetime(hourly["ds"])
    first = hourly.groupby("client_id")["ds"].transform("min")
    return hourly[hourly["ds"] < first + pd.Timedelta(days=60)].reset_index(drop=True)


def detect_household(group: pd.DataFrame) -> pd.DataFrame:
    """Fit on the first six weeks, flag the whole two months (the plant rule)."""
    group = group.sort_values("ds")
    train = group[group["ds"] < group["ds"].min() + pd.Timedelta(days=42)]
    detector = anomaly.ForecastDetector(k_sigma=3.0, seasonality_mode="additive").fit(train[["ds", "y"]])
    detector = pickle.loads(pickle.dumps(detector))  # what a worker hands back or on
    out = detector.detect(group[["ds", "y"]])
    out.insert(0, "client_id", group["client_id"].iloc[0])
    return out.reset_index(drop=True)


def test_dask_cluster_matches_a_serial_run() -> None:
    data = households()
    assert data["client_id"].nunique() == 10
    serial = (
        data.assign(key=data["client_id"]).groupby("key", group_keys=False)[COLUMNS].apply(detect_household)
        .sort_values(["client_id", "ds"]).reset_index(drop=True)
    )  # fmt: skip
    meta = serial.iloc[:0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            ddf = dd.from_pandas(data.assign(key=data["client_id"]), npartitions=4)
            parallel = (
                ddf.groupby("key", group_keys=False)[COLUMNS].apply(detect_household, meta=meta).compute()
                .sort_values(["client_id", "ds"]).reset_index(drop=True)
            )  # fmt: skip
    pd.testing.assert_frame_equal(parallel, serial, check_dtype=False)
    assert serial["is_anomaly"].sum() > 0
    assert np.all((serial["anomaly_score"] >= 0) & (serial["anomaly_score"] <= 100))
