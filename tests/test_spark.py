"""Scale-out on Spark: PySpark in local mode (local[2]) fits and scores one
forecasting detector per household with groupBy(...).applyInPandas over the
10 real SGSC households in ../shared/data/energy/ (hourly kWh, each
household's first two months: 13,929 rows); the flags and scores equal a
serial pandas run's, and fitted models come back to the driver pickled in a
binary column and score the same. `detect_household`, `fit_household` and
their schemas are the Spark recipe of README.md and docs/guide.md, word
for word (checked below, without Spark).

Needs Java (scripts/test installs Debian's openjdk-17-jre-headless) and
pyspark (requirements-dev.txt); skipped with a message without either."""

from __future__ import annotations

import inspect
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

import anomaly
from conftest import ROOT, SHARED_DATA

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# The Spark recipe of README.md and docs/guide.md starts here.
SCHEMA = (
    "client_id string, ds timestamp_ntz, y double, yhat double, yhat_lower double, yhat_upper double, "
    "residual double, is_anomaly boolean, anomaly_score double"
)
MODEL_SCHEMA = "client_id string, model binary"


def detect_household(group: pd.DataFrame) -> pd.DataFrame:
    """Fit on the first six weeks, flag the whole two months (pandas in, pandas out)."""
    group = group.sort_values("ds")
    train = group[group["ds"] < group["ds"].min() + pd.Timedelta(days=42)]
    detector = anomaly.ForecastDetector(k_sigma=3.0, seasonality_mode="additive").fit(train[["ds", "y"]])
    return detector.detect(group[["ds", "y"]]).assign(client_id=group["client_id"].iloc[0])


def fit_household(group: pd.DataFrame) -> pd.DataFrame:
    """The same fit, the model kept: pickled into a binary column."""
    group = group.sort_values("ds")
    train = group[group["ds"] < group["ds"].min() + pd.Timedelta(days=42)]
    detector = anomaly.ForecastDetector(k_sigma=3.0, seasonality_mode="additive").fit(train[["ds", "y"]])
    return pd.DataFrame({"client_id": [group["client_id"].iloc[0]], "model": [pickle.dumps(detector)]})
# The Spark recipe of README.md and docs/guide.md ends here.


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Hourly kWh per household, each one's first two months."""
    path = SHARED_DATA / "energy" / "sgsc_smart_meter10_halfhourly.csv"
    if not path.exists():
        pytest.skip(f"the real SGSC households are not at {path} (../shared/data beside the repo)")
    raw = pd.read_csv(path, parse_dates=["reading_datetime"])
    raw["hour"] = raw["reading_datetime"].dt.floor("h")
    hourly = raw.groupby(["customer_id", "hour"], as_index=False)["general_supply_kwh"].sum()
    hourly.columns = ["client_id", "ds", "y"]
    hourly["client_id"] = hourly["client_id"].astype(str)
    first = hourly.groupby("client_id")["ds"].transform("min")
    return hourly[hourly["ds"] < first + pd.Timedelta(days=60)].reset_index(drop=True)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (requirements-dev.txt has it)")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Java is not installed (scripts/test installs Debian's openjdk-17-jre-headless)")
    from pyspark import cloudpickle
    from pyspark.sql import SparkSession

    # The functions above live in this test module, which Spark's Python
    # workers cannot import: send them by value (a notebook's or script's
    # functions are sent so anyway).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # The workers run this environment's Python, which has anomaly installed.
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]").appName("anomaly-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        if saved is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = saved
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["client_id", "ds", "y", "yhat", "yhat_lower", "yhat_upper", "residual", "is_anomaly", "anomaly_score"]
    return frame[columns].sort_values(["client_id", "ds"]).reset_index(drop=True)


# PySpark 4.0's Arrow conversion still passes pandas 3 the deprecated copy=False.
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning")
def test_spark_applyinpandas_matches_a_serial_run(data: pd.DataFrame, spark: SparkSession) -> None:
    assert data["client_id"].nunique() == 10
    serial = ordered(pd.concat([detect_household(group) for _, group in data.groupby("client_id")]))

    sdf = spark.createDataFrame(data, schema="client_id string, ds timestamp_ntz, y double").repartition(4)
    flags = sdf.groupBy("client_id").applyInPandas(detect_household, schema=SCHEMA)
    parallel = ordered(flags.toPandas())
    pd.testing.assert_frame_equal(parallel, serial, check_dtype=False, check_exact=True)
    assert len(serial) == len(data)
    assert serial["is_anomaly"].sum() > 0
    assert np.all((serial["anomaly_score"] >= 0) & (serial["anomaly_score"] <= 100))

    # The models, fitted on the workers, pickled back to the driver.
    models = sdf.groupBy("client_id").applyInPandas(fit_household, schema=MODEL_SCHEMA).toPandas()
    assert sorted(models["client_id"]) == sorted(data["client_id"].unique())
    rescored = []
    for client_id, blob in zip(models["client_id"], models["model"]):
        detector = pickle.loads(blob)
        assert isinstance(detector, anomaly.ForecastDetector)
        group = data[data["client_id"] == client_id].sort_values("ds")
        rescored.append(detector.detect(group[["ds", "y"]]).assign(client_id=client_id))
    pd.testing.assert_frame_equal(ordered(pd.concat(rescored)), serial, check_dtype=False, check_exact=True)


@pytest.mark.parametrize("doc", ["README.md", "docs/guide.md"])
def test_the_spark_recipe_is_this_test(doc: str) -> None:
    text = (ROOT / doc).read_text()
    source = inspect.getsource(sys.modules[__name__])
    recipe = source.split("# The Spark recipe of README.md and docs/guide.md starts here.\n")[1].split("# The Spark recipe of README.md and docs/guide.md ends here.")[0]
    assert recipe.strip() in text, f"{doc}'s Spark recipe must be tests/test_spark.py's code"
    assert "tests/test_spark.py" in text
