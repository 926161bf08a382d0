"""Issue 15, the Python front ends: times nanoseconds cannot hold, integer parameters
the core takes unsigned, client ids that are not UTF-8 text, and clock changes."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pandas as pd
import pytest

import anomaly
from anomaly import consumption
from anomaly.forecast_interval import holidays as country_holidays

NS_RANGE = "1677-09-22 to 2262-04-11"


def _history(n: int = 120, freq: str = "D") -> pd.DataFrame:
    ds = pd.date_range("2020-01-01", periods=n, freq=freq)
    return pd.DataFrame({"ds": ds, "y": 10 + np.sin(np.arange(n) / 3) + 0.05 * np.arange(n)})


@pytest.fixture(scope="module")
def fitted() -> anomaly.Prophet:
    return anomaly.Prophet(seed=0).fit(_history())


def _seconds(*dates: str) -> np.ndarray:
    return np.array(dates, dtype="datetime64[s]")


def _check_range_error(err: pytest.ExceptionInfo[Any], field: str, row: int | None) -> None:
    assert isinstance(err.value, anomaly.TimestampError)
    assert NS_RANGE in str(err.value)
    assert err.value.field == field  # type: ignore[attr-defined]
    assert err.value.row == row  # type: ignore[attr-defined]


# --- 1. times outside 1677-09-22 .. 2262-04-11 are refused, never wrapped ------------------------


@pytest.mark.parametrize(
    ("dates", "row"),
    [
        (["1600-01-01", "2024-03-04", "9999-01-01"], 0),  # the frame that returned trends on the wrong rows
        (["2024-03-04", "2500-01-01"], 1),  # year 2500 gave a wrong trend
        (["2024-03-04", "2024-03-05", "9999-01-01"], 2),
        (["1600-01-01"], 0),
    ],
)
def test_predict_refuses_datetime64_s_outside_the_ns_range(fitted: anomaly.Prophet, dates: list[str], row: int) -> None:
    with pytest.raises(anomaly.TimestampError) as err:
        fitted.predict(pd.DataFrame({"ds": _seconds(*dates)}))
    _check_range_error(err, "ds", row)
    assert "ds at row" in str(err.value)


def test_predict_refuses_text_dates_pandas_parses_beyond_2262(fitted: anomaly.Prophet) -> None:
    with pytest.raises(anomaly.TimestampError) as err:
        fitted.predict(pd.DataFrame({"ds": ["2024-03-04", "2500-01-01"]}))
    _check_range_error(err, "ds", 1)


def test_in_range_datetime64_s_predicts_as_nanoseconds_do(fitted: anomaly.Prophet) -> None:
    ds = pd.date_range("2020-02-01", periods=200, freq="D")
    in_ns = fitted.predict(pd.DataFrame({"ds": ds}))
    in_s = fitted.predict(pd.DataFrame({"ds": ds.to_numpy().astype("datetime64[s]")}))
    np.testing.assert_allclose(in_s["trend"], in_ns["trend"], rtol=1e-12)
    np.testing.assert_allclose(in_s["yhat"], in_ns["yhat"], rtol=1e-12)


@pytest.mark.parametrize("bad", ["1600-01-01", "2500-01-01", "9999-01-01"])
def test_fit_refuses_datetime64_s_outside_the_ns_range(bad: str) -> None:
    frame = pd.DataFrame({"ds": _seconds("2020-01-01", "2020-01-02", bad, "2020-01-04"), "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(anomaly.TimestampError) as err:
        anomaly.Prophet().fit(frame)
    _check_range_error(err, "ds", 2)
    # A row without y still counts among the history's dates: checked too, naming its row.
    frame.loc[2, "y"] = np.nan
    with pytest.raises(anomaly.TimestampError) as err:
        anomaly.Prophet().fit(frame)
    _check_range_error(err, "ds", 2)


def test_fit_and_predict_near_the_end_of_the_range() -> None:
    history = pd.DataFrame(
        {"ds": pd.date_range("2261-01-01", periods=400, freq="D").as_unit("s"), "y": np.arange(400.0)}
    )
    m = anomaly.Prophet(seed=0).fit(history)
    future = m.make_future_dataframe(periods=60)  # up to 2262-04-05
    forecast = m.predict(future)
    assert len(forecast) == 460 and np.isfinite(forecast["yhat"]).all()
    np.testing.assert_allclose(forecast["trend"].iloc[:400], np.arange(400.0), atol=1e-6)
    with pytest.raises(anomaly.TimestampError) as err:
        m.make_future_dataframe(periods=200)
    _check_range_error(err, "ds", None)
    assert "make_future_dataframe(periods=200" in str(err.value)


def test_make_future_dataframe_refuses_dates_past_2262_and_bad_periods(fitted: anomaly.Prophet) -> None:
    with pytest.raises(anomaly.TimestampError) as err:
        fitted.make_future_dataframe(periods=10**6)  # ~4758
    _check_range_error(err, "ds", None)
    for periods in (-1, 2**70, 2.5):
        with pytest.raises(anomaly.ParameterError) as perr:
            fitted.make_future_dataframe(periods=periods)  # type: ignore[arg-type]
        assert perr.value.field == "periods"  # type: ignore[attr-defined]


def test_holidays_and_regressor_models_are_checked_too() -> None:
    holidays = pd.DataFrame({"ds": ["2020-01-05", "2500-01-01"], "holiday": ["x", "x"]})
    with pytest.raises(anomaly.TimestampError) as err:
        anomaly.Prophet(holidays=holidays)
    _check_range_error(err, "ds", 1)
    assert "holidays ds" in str(err.value)
    with pytest.raises(anomaly.TimestampError) as err:
        country_holidays.make_holidays_df([2500], "US")
    assert err.value.field == "year_list"  # type: ignore[attr-defined]
    # The regressor's own model must not see (and wrap) the date either.
    history = _history(60).assign(x=np.sin(np.arange(60.0)))
    m = anomaly.Prophet(seed=0).add_regressor("x", regressor_predictor=True).fit(history)
    with pytest.raises(anomaly.TimestampError) as err:
        m.predict(pd.DataFrame({"ds": _seconds("2020-01-05", "2020-04-01", "2600-01-01")}))
    _check_range_error(err, "ds", 2)


def test_fourier_series_refuses_what_it_would_wrap() -> None:
    with pytest.raises(anomaly.TimestampError):
        anomaly.Prophet.fourier_series(pd.Series(_seconds("9999-01-01")), 7, 3)


def test_forecast_detector_refuses_times_outside_the_ns_range() -> None:
    history = _history(200, "h")
    detector = anomaly.ForecastDetector().fit(history)
    mixed = pd.DataFrame({"ds": _seconds("2020-01-03", "9999-01-01", "1600-01-01"), "y": [10.0, 10.0, 10.0]})
    with pytest.raises(anomaly.TimestampError) as err:
        detector.detect(mixed)
    _check_range_error(err, "ds", 1)
    with pytest.raises(anomaly.TimestampError) as err:
        detector.detect(pd.DataFrame({"when": ["2020-01-03", "2500-01-01"], "y": [10.0, 10.0]}), time_col="when")
    _check_range_error(err, "when", 1)
    with pytest.raises(anomaly.TimestampError) as err:
        anomaly.ForecastDetector().fit(pd.DataFrame({"ds": _seconds("1600-01-01", "2020-01-01"), "y": [1.0, 2.0]}))
    _check_range_error(err, "ds", 0)
    with pytest.raises(anomaly.TimestampError) as err:
        anomaly.ForecastDetector(changepoints=["2500-01-01"])
    _check_range_error(err, "changepoints", 0)


# --- 2. integer parameters the core takes unsigned -----------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uncertainty_samples": -1}, "uncertainty_samples"),
        ({"uncertainty_samples": 2**64}, "uncertainty_samples"),
        ({"uncertainty_samples": 10.5}, "uncertainty_samples"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"n_changepoints": -1}, "n_changepoints"),
        ({"n_changepoints": 2.5}, "n_changepoints"),
        ({"mcmc_samples": -1}, "mcmc_samples"),
        ({"weekly_seasonality": 2**70}, "weekly_seasonality"),
    ],
)
def test_prophet_refuses_integers_the_core_cannot_take(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(anomaly.ParameterError) as err:
        anomaly.Prophet(**kwargs).fit(_history(60))
    assert err.value.field == field  # type: ignore[attr-defined]
    assert field in str(err.value)


def test_negative_uncertainty_samples_is_a_parameter_error_not_overflow() -> None:
    history = _history(60)
    with pytest.raises(anomaly.ParameterError, match="uncertainty_samples"):
        anomaly.Prophet(uncertainty_samples=-1).fit(history).predict(history)
    # Set after construction (or read from a model file): checked where it is used.
    m = anomaly.Prophet(seed=0).fit(history)
    m.uncertainty_samples = -1
    for call in (m.predict, m.predictive_samples):
        with pytest.raises(anomaly.ParameterError, match="uncertainty_samples"):
            call(history)
    m.uncertainty_samples = 10
    m.seed = -5
    with pytest.raises(anomaly.ParameterError, match="seed"):
        m.predict(history)


def test_prophet_still_takes_what_prophet_takes() -> None:
    history = _history(60)
    for samples in (0, False, None, np.int64(50)):
        anomaly.Prophet(uncertainty_samples=samples, seed=np.uint64(3)).fit(history).predict(history)
    anomaly.Prophet(weekly_seasonality=-3, n_changepoints=0).fit(history)  # 0 or less turns it off, as in Prophet
    anomaly.Prophet(changepoint_range=0.0).fit(history)  # n_changepoints becomes 0 (Prophet: -1)


def test_fit_seed_and_fourier_orders_are_checked() -> None:
    history = _history(60)
    with pytest.raises(anomaly.ParameterError) as err:
        anomaly.Prophet().fit(history, seed=-1)
    assert err.value.field == "seed"  # type: ignore[attr-defined]
    for order in (2**70, 2.5, "3"):
        with pytest.raises(anomaly.ParameterError) as err:
            anomaly.Prophet().add_seasonality("monthly", 30.5, order)  # type: ignore[arg-type]
        assert err.value.field == "fourier_order"  # type: ignore[attr-defined]
    with pytest.raises(anomaly.ParameterError, match="Fourier Order must be > 0"):
        anomaly.Prophet().add_seasonality("monthly", 30.5, 0)
    with pytest.raises(anomaly.ParameterError) as err:
        anomaly.Prophet.fourier_series(history["ds"], 7, 2**70)
    assert err.value.field == "series_order"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"uncertainty_samples": -1}, "uncertainty_samples"),
        ({"n_changepoints": -1}, "n_changepoints"),
        ({"n_changepoints": 2**64}, "n_changepoints"),
        ({"mcmc_samples": -1}, "mcmc_samples"),
        ({"daily_seasonality": 2**70}, "daily_seasonality"),
    ],
)
def test_forecast_detector_names_the_parameter(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(anomaly.ParameterError) as err:
        anomaly.ForecastDetector(**kwargs)
    assert err.value.field == field  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5])
def test_simulate_seed_is_checked_by_the_shared_helper(seed: Any) -> None:
    with pytest.raises(anomaly.ParameterError) as err:
        consumption.simulate(clients=2, days=3, seed=seed)
    assert err.value.field == "seed"  # type: ignore[attr-defined]


def test_whole_number_helper() -> None:
    from anomaly.errors import whole_number

    assert whole_number(np.int32(5), "n") == 5 and type(whole_number(np.int32(5), "n")) is int
    assert whole_number(2**64 - 1, "n") == 2**64 - 1
    for bad in (True, 3.0, "3", -1, 2**64, None):
        with pytest.raises(anomaly.ParameterError) as err:
            whole_number(bad, "n")
        assert err.value.field == "n"  # type: ignore[attr-defined]


# --- 3. client ids that UTF-8 cannot hold ------------------------------------------------------------


def _hourly(clients: list[Any], hours: int = 24 * 10) -> pd.DataFrame:
    times = pd.date_range("2024-01-01", periods=hours, freq="h")
    n = len(clients)
    return pd.DataFrame(
        {
            "client_id": pd.Series([c for c in clients for _ in range(hours)], dtype=object),
            "timestamp": np.tile(times, n),
            "kwh": np.tile(0.5 + 0.1 * (np.arange(hours) % 24 > 7), n),
        }
    )


@pytest.mark.parametrize("function", [consumption.analyze, consumption.detect, consumption.clients])
def test_lone_surrogate_client_id_is_invalid_input_naming_column_and_row(function: Any) -> None:
    bad = os.fsdecode(b"\xff1")
    assert bad == "\udcff1"
    df = _hourly(["ok", bad])
    with pytest.raises(anomaly.InvalidInputError) as err:
        function(df)
    assert err.value.field == "client_id"  # type: ignore[attr-defined]
    assert err.value.row == 240  # type: ignore[attr-defined]
    assert "client_id at row 240" in str(err.value) and "UTF-8" in str(err.value)
    renamed = df.rename(columns={"client_id": "cliente"})
    with pytest.raises(anomaly.InvalidInputError) as err:
        function(renamed, client_col="cliente")
    assert err.value.field == "cliente"  # type: ignore[attr-defined]


def test_forecast_detector_variable_names_are_checked_too() -> None:
    history = _history(100, "h")
    bad = os.fsdecode(b"\xffx")
    long = pd.DataFrame(
        {
            "ds": list(history["ds"]) * 2,
            "variable": pd.Series(["a"] * 100 + [bad] * 100, dtype=object),
            "y": list(history["y"]) * 2,
        }
    )
    with pytest.raises(anomaly.InvalidInputError) as err:
        anomaly.ForecastDetector().fit(long, variable_col="variable")
    assert err.value.field == "variable" and err.value.row == 100  # type: ignore[attr-defined]


# --- 4. zone-aware times across a clock change ----------------------------------------------------


def _madrid(start: str, periods: int = 336, freq: str = "h") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz="Europe/Madrid")


def test_autumn_change_merges_the_repeated_hour_into_its_mean() -> None:
    times = _madrid("2024-10-20")
    kwh = 0.5 + 0.01 * np.arange(336)
    df = pd.DataFrame({"client_id": "A", "timestamp": times, "kwh": kwh})
    result = consumption.analyze(df)  # was: "timestamp at row 171 duplicates row 170"
    readings = result.readings
    assert len(readings) == 335  # one reading fewer: 02:00 local holds two real hours
    assert 171 not in readings.index and 170 in readings.index
    assert str(readings.loc[170, "timestamp"]) == "2024-10-27 02:00:00+02:00"
    assert readings.loc[170, "kwh"] == pytest.approx((kwh[170] + kwh[171]) / 2)
    np.testing.assert_array_equal(readings.drop(index=170)["kwh"], np.delete(kwh, [170, 171]))
    assert result.monthly["n_readings"].sum() == 335
    assert result.clients["n_readings"].tolist() == [335]
    assert readings["timestamp"].dtype == df["timestamp"].dtype  # the caller's zone-aware column


def test_the_merged_hour_is_not_flagged_as_a_sum_would_be() -> None:
    # 60 households through the autumn change, the same use in both real 02:00 hours.
    sim, _ = consumption.simulate(clients=60, days=45, start="2024-09-20", seed=3, anomaly_rate=0.0)
    real = pd.date_range("2024-09-20", "2024-11-03 23:00", freq="h", tz="Europe/Madrid")
    wall = real.tz_localize(None)
    frames = []
    for client, group in sim.groupby("client_id"):
        by_hour = group.set_index("timestamp")["kwh"]
        frames.append(pd.DataFrame({"client_id": client, "timestamp": real, "kwh": by_hour.reindex(wall).to_numpy()}))
    df = pd.concat(frames, ignore_index=True).dropna()
    out = consumption.detect(df)
    assert len(out) == len(df) - 60
    repeated = pd.Timestamp("2024-10-27 02:00")
    hour = out[out["timestamp"].dt.tz_localize(None) == repeated]
    assert len(hour) == 60 and not hour["is_anomaly"].any()
    # Why not the sum (the local hour's energy): at twice the usual level it flags the hour.
    naive = df.assign(timestamp=df["timestamp"].dt.tz_localize(None))
    summed = naive.groupby(["client_id", "timestamp"], as_index=False)["kwh"].sum()
    scored = consumption.detect(summed)
    assert scored.loc[scored["timestamp"] == repeated, "is_anomaly"].sum() >= 2  # 3 of 60 here


def test_spring_change_leaves_a_missing_hour() -> None:
    times = _madrid("2024-03-24")  # 2024-03-31 02:00 does not exist in Madrid
    df = pd.DataFrame({"client_id": "A", "timestamp": times, "kwh": 1.0 + 0.5 * np.sin(np.arange(336))})
    out = consumption.detect(df)
    assert len(out) == 336
    walls = out["timestamp"].dt.tz_localize(None)
    assert not (walls == pd.Timestamp("2024-03-31 02:00")).any()
    assert (walls == pd.Timestamp("2024-03-31 03:00")).sum() == 1


def test_iso_text_with_offsets_across_the_change_reads_the_same() -> None:
    df = pd.DataFrame({"client_id": "A", "timestamp": _madrid("2024-10-20"), "kwh": 0.5 + 0.01 * np.arange(336)})
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    buf.seek(0)
    text = pd.read_csv(buf)  # "+02:00" then "+01:00": pandas refuses to parse mixed offsets
    assert text["timestamp"].iloc[170].endswith("+02:00") and text["timestamp"].iloc[171].endswith("+01:00")
    from_text = consumption.detect(text)
    from_frame = consumption.detect(df)
    assert len(from_text) == 335
    np.testing.assert_array_equal(from_text["score"].to_numpy(), from_frame["score"].to_numpy())
    np.testing.assert_allclose(from_text["kwh"].to_numpy(), from_frame["kwh"].to_numpy())


def test_quarter_hours_across_the_change_aggregate_to_one_local_hour() -> None:
    df = pd.DataFrame({"client_id": "A", "timestamp": _madrid("2024-10-20", 336 * 4, "15min"), "kwh": 0.25})
    out = consumption.detect(df, interval="15min", aggregate="1h")
    assert len(out) == 335
    hour = out[out["timestamp"] == pd.Timestamp("2024-10-27 02:00")]
    assert hour["kwh"].tolist() == [1.0]


def test_errors_after_a_merge_name_the_callers_rows() -> None:
    df = pd.DataFrame({"client_id": "A", "timestamp": _madrid("2024-10-20"), "kwh": 1.0})
    late = df.copy()
    late.loc[300, "kwh"] = np.nan
    with pytest.raises(anomaly.NonFiniteError) as err:
        consumption.detect(late)
    assert err.value.row == 300 and "row 300" in str(err.value)  # type: ignore[attr-defined]
    # A bad reading in the repeated hour is not hidden by the mean.
    negative = df.copy()
    negative.loc[171, "kwh"] = -1.0
    with pytest.raises(anomaly.NegativeValueError) as err:
        consumption.detect(negative)
    assert err.value.row == 171  # type: ignore[attr-defined]
    # The same instant twice is still a duplicate.
    doubled = pd.concat([df, df.iloc[[250]]], ignore_index=True)
    with pytest.raises(anomaly.TimestampError) as err:
        consumption.detect(doubled)
    assert err.value.row == 336 and "duplicates row 250" in str(err.value)  # type: ignore[attr-defined]


def test_naive_repeated_hour_is_still_a_duplicate() -> None:
    naive = pd.DataFrame({"client_id": "A", "timestamp": _madrid("2024-10-20").tz_localize(None), "kwh": 1.0})
    with pytest.raises(anomaly.TimestampError, match="duplicates"):
        consumption.detect(naive)
