"""anomaly.Prophet against the real Prophet, on synthetic and NAB series.

Both minimise the same objective (checked: our objective evaluated at
Prophet's parameters). We solve it exactly (coordinate descent with
active sets for additive models, proximal Gauss-Newton for multiplicative
ones); Stan's L-BFGS stops short of the optimum on flat ridges and at the
Laplace prior's kinks, so our objective is lower on every series here (by
0.02 to 1.6 log-posterior units) and forecasts differ from Prophet's by
Prophet's optimisation error. Asking Stan to converge further
(`TIGHT_STAN`) shrinks that error but does not remove it (it still stops
0.02-0.2 units short).

What is asserted, in both modes, against Prophet run to its optimum
(`TIGHT_STAN` on the synthetic plant series; Stan's Newton optimiser on the
NAB series, where L-BFGS stalls even when tightened): yhat and trend within
1e-3 sd over the history and 1e-2 sd a week ahead, flags Jaccard >= 0.98,
widths within 2% over the history (5% a week ahead, where Prophet's
unseeded Monte Carlo band itself moves by a few %). Against Prophet's defaults: our optimum at least as good,
yhat within 1e-3 sd on the plant series and 1.5e-2 sd on NAB (where Stan
stops 0.5-1.6 units short), Jaccard >= 0.96.
"""

from __future__ import annotations

import logging
import pickle
from copy import deepcopy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import anomaly
from anomaly import Prophet
from anomaly.forecast_interval import ModelStateError

prophet = pytest.importorskip("prophet")
logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
logging.getLogger("prophet").setLevel(logging.WARNING)

# Stan's L-BFGS pushed further than Prophet's defaults (relative tests off,
# absolute ones tiny): the same optimiser, nearer the optimum.
TIGHT_STAN = dict(tol_obj=1e-16, tol_rel_obj=1, tol_grad=1e-12, tol_rel_grad=1, tol_param=1e-12, history_size=20)

SETTINGS = dict(
    interval_width=0.95,
    changepoint_prior_scale=0.05,
    daily_seasonality=True,
    weekly_seasonality=True,
    yearly_seasonality=False,
)


def plant_series(seed: int = 0, n: int = 4032) -> pd.DataFrame:
    """Two weeks of 5-minute readings: trend, daily and weekly cycles, noise, 10 spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + 0.002 * t + 5 * np.sin(2 * np.pi * t / 288) + 2 * np.sin(2 * np.pi * t / 2016) + rng.normal(0, 1, n)
    spikes = rng.choice(n, 10, replace=False)
    y[spikes] += rng.choice([-1, 1], 10) * rng.uniform(8, 15, 10)
    return pd.DataFrame({"ds": pd.date_range("2024-03-04", periods=n, freq="5min"), "y": y})


def compare(df: pd.DataFrame, mode: str, periods: int, freq: str, **stan: float) -> dict[str, float]:
    ours = Prophet(seasonality_mode=mode, seed=0, **SETTINGS).fit(df)
    theirs = prophet.Prophet(seasonality_mode=mode, **SETTINGS).fit(df, **stan)
    future = theirs.make_future_dataframe(periods=periods, freq=freq)
    pd.testing.assert_frame_equal(ours.make_future_dataframe(periods=periods, freq=freq), future)
    # Prophet draws its future trend changes from numpy's global generator,
    # unseeded: its band a week ahead moved by up to 5% between runs. Seeded,
    # the comparison is the same every run.
    np.random.seed(0)
    a, b = ours.predict(future), theirs.predict(future)
    assert list(a.columns) == list(b.columns)
    sd = df["y"].std()
    hist = len(df)
    residual_a = df["y"].to_numpy() - a["yhat"].to_numpy()[:hist]
    residual_b = df["y"].to_numpy() - b["yhat"].to_numpy()[:hist]
    flags_a = set(np.flatnonzero(np.abs(residual_a) > 2 * residual_a.std()))
    flags_b = set(np.flatnonzero(np.abs(residual_b) > 2 * residual_b.std()))
    return {
        "yhat_history": float(np.mean(np.abs(a["yhat"][:hist] - b["yhat"][:hist])) / sd),
        "trend_history": float(np.mean(np.abs(a["trend"][:hist] - b["trend"][:hist])) / sd),
        "yhat_ahead": float(np.mean(np.abs(a["yhat"][hist:] - b["yhat"][hist:])) / sd),
        # Over the history, where both bands are noise quantiles; a week
        # ahead Prophet's own band moves by a few % between predicts (its
        # Monte Carlo trend changes are unseeded).
        "width_ratio": width(a, b, slice(0, hist)),
        "width_ratio_ahead": width(a, b, slice(hist, None)),
        "jaccard": len(flags_a & flags_b) / max(1, len(flags_a | flags_b)),
        "objective_gap": float(-log_posterior(ours, ours.params) - objective_of(ours, theirs, df)),
    }


def width(a: pd.DataFrame, b: pd.DataFrame, rows: slice) -> float:
    wa = (a["yhat_upper"] - a["yhat_lower"]).to_numpy()[rows]
    wb = (b["yhat_upper"] - b["yhat_lower"]).to_numpy()[rows]
    return float(np.mean(wa) / np.mean(wb))


def objective_of(ours: Prophet, theirs: object, df: pd.DataFrame) -> float:
    """Our objective (Prophet's negative log posterior, up to a constant) at Prophet's fitted parameters."""
    return -log_posterior(ours, theirs.params)  # type: ignore[attr-defined]


def log_posterior(m: Prophet, params: dict[str, np.ndarray]) -> float:
    """Prophet's Stan model's log density (MAP: no Jacobian, constants dropped) on ``m``'s history."""
    h = m.history
    x, priors, cols, _ = m.make_all_seasonality_features(h)
    x, sigmas = x.to_numpy(), np.asarray(priors)
    k, base, sigma = (float(np.ravel(params[n])[0]) for n in ("k", "m", "sigma_obs"))
    delta, beta = np.ravel(params["delta"]), np.ravel(params["beta"])
    t, y = h["t"].to_numpy(), h["y_scaled"].to_numpy()
    if m.growth == "logistic":
        trend = m.piecewise_logistic(t, h["cap_scaled"].to_numpy(), delta, k, base, m.changepoints_t)
    else:
        trend = m.piecewise_linear(t, delta, k, base, m.changepoints_t)
    mu = trend * (1 + x @ (beta * cols["multiplicative_terms"].to_numpy())) + x @ (beta * cols["additive_terms"].to_numpy())
    prior = -(k**2 + base**2) / 50 - np.abs(delta).sum() / m.changepoint_prior_scale - 2 * sigma**2 - 0.5 * np.sum((beta / sigmas) ** 2)
    return float(prior - len(y) * np.log(sigma) - 0.5 * np.sum((y - mu) ** 2) / sigma**2)


def check(m: dict[str, float], history: float, jaccard: float = 0.98, width: float | None = 0.02) -> None:
    print(m)
    assert m["objective_gap"] <= 1e-6  # our optimum is at least as good as Stan's
    assert m["yhat_history"] < history
    assert m["jaccard"] >= jaccard
    if width is not None:
        assert abs(m["width_ratio"] - 1) < width
        assert abs(m["width_ratio_ahead"] - 1) < 2.5 * width


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_plant_series_matches_prophet(mode: str) -> None:
    # Measured: yhat 2e-4-3.5e-4 sd, trend 4e-4-8e-4, a week ahead 4e-4-5e-3.
    m = compare(plant_series(1), mode, periods=7 * 288, freq="5min", **TIGHT_STAN)
    check(m, history=1e-3)
    assert m["trend_history"] < 1e-3
    assert m["yhat_ahead"] < 1e-2
    # Prophet's defaults stop further from the optimum: yhat 3e-4-4e-4 sd.
    check(compare(plant_series(1), mode, periods=7 * 288, freq="5min"), history=1e-3)


@pytest.mark.parametrize(
    ("name", "rows", "freq", "ahead"),
    [("ec2_request_latency_system_failure", 4032, "5min", 7 * 288), ("ambient_temperature_system_failure", 2000, "h", 7 * 24)],
)
def test_nab_series_match_prophet(shared_data: Path, name: str, rows: int, freq: str, ahead: int) -> None:
    raw = pd.read_csv(shared_data / "nab" / "realKnownCause" / f"{name}.csv", parse_dates=["timestamp"])
    df = raw.rename(columns={"timestamp": "ds", "value": "y"}).iloc[:rows]
    for mode in ("additive", "multiplicative"):
        # Stan's Newton optimiser (Prophet's own alternative to L-BFGS) gets
        # within 0.01 log-posterior units of our optimum; then the issue's
        # tolerances hold. Measured: yhat 9e-5-3e-4 sd, trend 9e-5-8e-4,
        # a week ahead 7e-6-1.9e-3, Jaccard 1.0, widths within 1.5%.
        m = compare(df, mode, periods=ahead, freq=freq, algorithm="Newton", iter=100000)
        check(m, history=1e-3)
        assert m["trend_history"] < 1e-3
        assert m["yhat_ahead"] < 1e-2
        # With its default L-BFGS, Stan stops 0.5-1.6 units short of the
        # optimum on these real series, and the forecasts differ by that:
        # measured up to 1.1e-2 sd over the history, Jaccard 0.964-1.0. The
        # future band scales with mean |delta|, which differs with the trend
        # (ec2: widths 1.5-3% apart), so widths are compared above only.
        check(compare(df, mode, periods=ahead, freq=freq), history=1.5e-2, jaccard=0.96, width=None)


def test_regressors_and_custom_seasonality_follow_prophet() -> None:
    df = plant_series(2, n=2000)
    df["load"] = np.sin(np.arange(len(df)) / 50.0) + np.random.default_rng(0).normal(0, 0.1, len(df))
    df["y"] += 3 * df["load"]
    ours = Prophet(seed=0, **SETTINGS).add_regressor("load").add_seasonality("hourly", period=1 / 24, fourier_order=2)
    theirs = prophet.Prophet(**SETTINGS).add_regressor("load").add_seasonality("hourly", period=1 / 24, fourier_order=2)
    ours.fit(df)
    theirs.fit(df)
    a, b = ours.predict(df), theirs.predict(df)
    assert list(a.columns) == list(b.columns)
    sd = df["y"].std()
    assert np.mean(np.abs(a["yhat"] - b["yhat"])) / sd < 1e-3
    assert np.mean(np.abs(a["load"] - b["load"])) / sd < 1e-2


def test_seeded_intervals_and_pickle() -> None:
    df = plant_series(3, n=1500)
    m = Prophet(seed=42, **SETTINGS).fit(df)
    future = m.make_future_dataframe(periods=100, freq="5min")
    first = m.predict(future)
    pd.testing.assert_frame_equal(first, m.predict(future))
    again = pickle.loads(pickle.dumps(m))
    pd.testing.assert_frame_equal(again.predict(future), first)
    analytic = Prophet(interval_method="analytic", **SETTINGS).fit(df).predict(future)
    width_mc = (first["yhat_upper"] - first["yhat_lower"]).mean()
    width_an = (analytic["yhat_upper"] - analytic["yhat_lower"]).mean()
    assert abs(width_an / width_mc - 1) < 0.05


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (pd.DataFrame({"ds": ["2024-01-01"], "y": [1.0]}), ValueError, "less than 2 non-NaN rows|at least 2 non-NaN"),
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "2024-01-03"], "y": [1.0, np.nan, np.nan]}), ValueError, "non-NaN"),
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02"], "y": [1.0, np.inf]}), anomaly.NonFiniteError, "infinity"),
        (
            pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=3, tz="UTC"), "y": [1.0, 2.0, 3.0]}),
            anomaly.TimestampError,
            "timezone",
        ),
        (pd.DataFrame({"y": [1.0, 2.0]}), ValueError, '"ds" and "y"'),
    ],
    ids=["one-row", "all-nan", "infinite", "timezone", "no-ds"],
)
def test_bad_input(frame: pd.DataFrame, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Prophet().fit(frame)


@pytest.mark.parametrize(
    ("frame", "error", "field", "row"),
    [
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "2024-01-03"], "y": [1.0, 2.0, np.inf]}), anomaly.NonFiniteError, "y", 2),
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "2024-01-03"], "y": [1.0, "n/d", 2.0]}), anomaly.NumberError, "y", 1),
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "ayer"], "y": [1.0, 2.0, 3.0]}), anomaly.TimestampError, "ds", 2),
        (pd.DataFrame({"ds": ["2024-01-01", None, "2024-01-03"], "y": [1.0, 2.0, 3.0]}), anomaly.TimestampError, "ds", 1),
        (pd.DataFrame({"ds": ["2024-01-01", "2024-01-02"]}), anomaly.ColumnError, "y", None),
    ],
    ids=["infinite", "text", "unparsable-date", "missing-date", "no-y"],
)
def test_bad_input_is_typed_and_names_field_and_row(frame: pd.DataFrame, error: type, field: str, row: int | None) -> None:
    with pytest.raises(error) as err:
        Prophet().fit(frame)
    assert isinstance(err.value, ValueError) and (err.value.field, err.value.row) == (field, row)


def test_regressor_errors_name_the_regressor() -> None:
    df = plant_series(5, n=300).assign(load=1.0).astype({"load": object})
    df.loc[4, "load"] = "x"
    with pytest.raises(anomaly.NumberError, match="load at row 4") as err:
        Prophet().add_regressor("load").fit(df)
    assert err.value.field == "load"
    df.loc[4, "load"] = np.nan
    with pytest.raises(anomaly.NonFiniteError, match="'load'") as err:
        Prophet().add_regressor("load").fit(df)
    assert (err.value.field, err.value.row) == ("load", 4)


def test_options_prophet_has_and_misuse() -> None:
    # Logistic growth, holidays and minmax scaling are Prophet's and ours; MCMC is refused, naming the alternative.
    Prophet(growth="logistic")
    Prophet(holidays=pd.DataFrame({"ds": ["2024-01-01"], "holiday": ["new_year"]}))
    Prophet(scaling="minmax")
    with pytest.raises(anomaly.ParameterError, match="uncertainty_samples") as err:
        Prophet(mcmc_samples=100)
    assert err.value.field == "mcmc_samples"
    with pytest.raises(anomaly.ParameterError, match='Parameter "growth" should be "linear", "logistic" or "flat".'):
        Prophet(growth="exponential")
    with pytest.raises(Exception, match="has not been fit"):
        Prophet().predict(pd.DataFrame({"ds": ["2024-01-01"]}))
    df = plant_series(4, n=500)
    constant = df.assign(y=3.0)
    forecast = Prophet(**SETTINGS).fit(constant).predict()
    np.testing.assert_allclose(forecast["yhat"], 3.0, atol=1e-9)
    m = Prophet(**SETTINGS).fit(df)
    with pytest.raises(anomaly.AnomalyError, match="only be fit once"):
        m.fit(df)


def prophet_daily() -> pd.DataFrame:
    """Prophet's own test series (510 daily rows, 2012-2014)."""
    return pd.read_csv(Path(prophet.__file__).parent / "tests" / "data.csv", parse_dates=["ds"])


@pytest.mark.parametrize(
    ("kwargs", "extra", "close"),
    [
        ({"growth": "logistic"}, {"cap": 90.0}, True),
        ({"growth": "logistic", "scaling": "minmax"}, {"cap": 90.0, "floor": 5.0}, False),
        ({"scaling": "minmax", "seasonality_mode": "multiplicative"}, {}, True),
        ({"growth": "flat"}, {}, True),
    ],
    ids=["logistic", "logistic-floor-minmax", "minmax-multiplicative", "flat"],
)
def test_holidays_logistic_minmax_follow_prophet(kwargs: dict, extra: dict, close: bool) -> None:
    """Same prepared data, design, components and columns as Prophet and an optimum at least as
    good as Stan's Newton. Forecasts agree where Newton gets near the optimum; with a floor and
    minmax scaling Newton stops in a worse local optimum of the logistic fit (measured: log
    posterior 1207.8 against our 1296.9), so there only the objectives are compared."""
    df = prophet_daily().assign(**extra)
    holidays = pd.DataFrame(
        {"ds": pd.to_datetime(["2012-12-25", "2013-12-25"]), "holiday": "xmas", "lower_window": -1, "upper_window": 1}
    )
    ours = Prophet(holidays=holidays, seed=0, **kwargs).add_country_holidays("US")
    theirs = prophet.Prophet(holidays=holidays, **kwargs).add_country_holidays("US")
    ours.fit(df)
    theirs.fit(df, algorithm="Newton", iter=100000)
    pd.testing.assert_frame_equal(ours.history, theirs.history)
    pd.testing.assert_frame_equal(ours.train_component_cols, theirs.train_component_cols, check_index_type=False)
    assert ours.component_modes == theirs.component_modes and ours.seasonalities == theirs.seasonalities
    features, theirs_features = ours.make_all_seasonality_features(ours.history), theirs.make_all_seasonality_features(theirs.history)
    pd.testing.assert_frame_equal(features[0], theirs_features[0], atol=1e-9)
    assert features[1] == theirs_features[1]
    assert log_posterior(ours, ours.params) >= log_posterior(ours, theirs.params) - 1e-6
    future = theirs.make_future_dataframe(60).assign(**extra)
    # Prophet draws its future trend changes from numpy's global generator,
    # unseeded: its band a week ahead moved by up to 5% between runs. Seeded,
    # the comparison is the same every run.
    np.random.seed(0)
    a, b = ours.predict(future), theirs.predict(future)
    assert list(a.columns) == list(b.columns) and (a.dtypes.values == b.dtypes.values).all()
    if close:
        # Measured: yhat 2e-4 to 5e-3 sd apart; history band widths within 1% (Monte Carlo).
        assert np.mean(np.abs(a["yhat"] - b["yhat"])) / df["y"].std() < 2e-2
        assert abs(width(a, b, slice(0, len(df))) - 1) < 0.05


def test_prophet_helpers_run_on_our_model() -> None:
    """prophet.diagnostics and prophet.utilities read our model as they read Prophet's."""
    from prophet import diagnostics, utilities

    df = prophet_daily().assign(load=lambda d: np.sin(np.arange(len(d)) / 9.0))
    m = Prophet(seed=1).add_regressor("load").add_country_holidays("US").fit(df)
    cv = diagnostics.cross_validation(m, horizon="30 days", period="90 days", initial="400 days", disable_tqdm=True)
    assert list(cv.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "y", "cutoff"] and len(cv) > 0
    coefficients = utilities.regressor_coefficients(m)
    assert list(coefficients["regressor"]) == ["load"]
    again = Prophet().fit(df.iloc[:500], init=utilities.warm_start_params(m))
    assert again.params["delta"].shape == (1, 25) and again.fit_kwargs.keys() == {"init"}
    future = m.make_future_dataframe(10).assign(load=0.5)
    forecast = m.predict(future)
    for copy in (pickle.loads(pickle.dumps(m)), deepcopy(m)):
        pd.testing.assert_frame_equal(copy.predict(future), forecast)
    samples = m.predictive_samples(future)
    assert samples["yhat"].shape == (len(future), 1000)


def test_prophet_errors_are_typed_with_prophets_messages() -> None:
    df = prophet_daily().iloc[:100]
    with pytest.raises(anomaly.ColumnError, match="Regressor 'load' missing from dataframe"):
        Prophet().add_regressor("load").fit(df)
    with pytest.raises(anomaly.ColumnError, match='Capacities must be supplied for logistic growth in column "cap"'):
        Prophet(growth="logistic").fit(df)
    with pytest.raises(anomaly.InvalidInputError, match="cap must be greater than floor") as err:
        Prophet(growth="logistic").fit(df.assign(cap=np.where(np.arange(100) == 7, 0.0, 100.0)))
    assert (err.value.field, err.value.row) == ("cap", 7)
    with pytest.raises(anomaly.ColumnError, match='holidays must be a DataFrame with "ds" and "holiday" columns.'):
        Prophet(holidays=pd.DataFrame({"ds": ["2013-01-01"]}))
    with pytest.raises(anomaly.ParameterError, match="Holidays in Atlantis are not currently supported!"):
        Prophet().add_country_holidays("Atlantis")
    m = Prophet().add_seasonality("cond", period=7, fourier_order=2, condition_name="on")
    with pytest.raises(anomaly.ColumnError, match="Condition 'on' missing from dataframe"):
        m.fit(df)
    with pytest.raises(anomaly.InvalidInputError, match="Found non-boolean in column 'on'") as err:
        m.fit(df.assign(on=np.where(np.arange(100) == 3, 2, 1)))
    assert err.value.row == 3
    with pytest.raises(anomaly.ParameterError, match="Name 'xmas' already used for a holiday."):
        Prophet(holidays=pd.DataFrame({"ds": ["2013-12-25"], "holiday": ["xmas"]})).add_seasonality("xmas", 30, 3)
    with pytest.raises(anomaly.ParameterError, match="Name 'trend' is reserved."):
        Prophet().add_regressor("trend")
    with pytest.raises(anomaly.ParameterError, match="Fourier Order must be > 0"):
        Prophet().add_seasonality("monthly", 30.5, 0)
    with pytest.raises(anomaly.ParameterError, match=r'Parameter "changepoint_range" must be in \[0, 1\]'):
        Prophet(changepoint_range=1.5)
    fitted = Prophet().fit(df)
    with pytest.raises(ModelStateError, match="Prophet object can only be fit once"):
        fitted.fit(df)
    with pytest.raises(ModelStateError, match="Regressors must be added prior to model fitting."):
        fitted.add_regressor("load")


def test_repeated_timestamps_are_kept_as_prophet_keeps_them() -> None:
    df = plant_series(5, n=600)
    doubled = pd.concat([df, df.iloc[[100]]]).reset_index(drop=True)
    forecast = Prophet(**SETTINGS).fit(doubled).predict()
    assert len(forecast) == len(doubled)
    unsorted = df.iloc[::-1]
    a = Prophet(seed=1, **SETTINGS).fit(unsorted).predict()
    b = Prophet(seed=1, **SETTINGS).fit(df).predict()
    pd.testing.assert_frame_equal(a, b)


def long_frame(n_vars: int = 4, n: int = 2016, seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    rng = np.random.default_rng(seed)
    frames, spikes = [], []
    for v in range(n_vars):
        s = plant_series(seed + v, n=n).rename(columns={"ds": "datetime", "y": "value"})
        s["value"] += 10 * v
        s["variable_name"] = f"var{v}"
        frames.append(s)
    df = pd.concat(frames, ignore_index=True)
    for _ in range(6):
        row = int(rng.integers(len(df)))
        df.loc[row, "value"] += 25
        spikes.append(row)
    return df, spikes


def test_forecast_detector_flags_spikes_and_round_trips(tmp_path: Path) -> None:
    df, spikes = long_frame()
    det = anomaly.ForecastDetector().fit(df, time_col="datetime", value_col="value", variable_col="variable_name")
    out = det.detect(df, time_col="datetime", value_col="value", variable_col="variable_name")
    assert list(out.columns) == [*df.columns, "yhat", "yhat_lower", "yhat_upper", "residual", "is_anomaly", "anomaly_score"]
    assert out.loc[spikes, "is_anomaly"].all()
    assert out["anomaly_score"].between(0, 100).all()
    assert out.loc[spikes, "anomaly_score"].min() > 50
    np.testing.assert_allclose(out["residual"], out["value"] - out["yhat"])
    stats = det.stats_
    assert list(stats.index) == ["var0", "var1", "var2", "var3"] and (stats["count"] == 2016).all()
    det.save(tmp_path / "models")
    again = anomaly.ForecastDetector.load(tmp_path / "models")
    pd.testing.assert_frame_equal(again.detect(df, time_col="datetime", value_col="value", variable_col="variable_name"), out)
    pickled = pickle.loads(pickle.dumps(det))
    pd.testing.assert_frame_equal(pickled.detect(df, time_col="datetime", value_col="value", variable_col="variable_name"), out)


def test_forecast_detector_reproduces_the_plant_rule_with_prophet_itself() -> None:
    """The rule and score on Prophet's own forecast: same flags as computing them by hand."""
    df = plant_series(7, n=2016)
    det = anomaly.ForecastDetector(seasonality_mode="additive").fit(df)
    out = det.detect(df)
    residual_std = det.stats_.loc["y", "residual_std"]
    res = out["y"] - out["yhat"]
    expected = (out["y"] > out["yhat_upper"]) | (out["y"] < out["yhat_lower"]) | (res.abs() > 2 * residual_std)
    assert (out["is_anomaly"] == expected).all()
    above = (out["y"] - out["yhat_upper"]) / (out["yhat_upper"] - out["yhat"]) * 50
    below = (out["yhat_lower"] - out["y"]) / (out["yhat"] - out["yhat_lower"]) * 50
    band = np.where(out["y"] > out["yhat_upper"], above, np.where(out["y"] < out["yhat_lower"], below, 0.0))
    score = np.clip(np.maximum(band, res.abs() / residual_std * 20), 0, 100)
    np.testing.assert_allclose(out["anomaly_score"], score, rtol=1e-12, atol=1e-9)


def test_forecast_detector_bad_input() -> None:
    df, _ = long_frame(n_vars=1, n=300)
    det = anomaly.ForecastDetector()
    with pytest.raises(anomaly.ColumnError, match="sensor"):
        det.fit(df, time_col="datetime", value_col="value", variable_col="sensor")
    dup = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    with pytest.raises(anomaly.TimestampError, match="duplicates"):
        det.fit(dup, time_col="datetime", value_col="value", variable_col="variable_name")
    with pytest.raises(Exception, match="not been fit"):
        anomaly.ForecastDetector().detect(df, time_col="datetime", value_col="value", variable_col="variable_name")
    with pytest.raises(anomaly.ParameterError):
        anomaly.ForecastDetector(k_sigma=-1).fit(df, time_col="datetime", value_col="value", variable_col="variable_name")


def test_forecast_detector_errors_name_the_callers_columns() -> None:
    df, _ = long_frame(n_vars=2, n=300)
    mine = df.rename(columns={"datetime": "fecha", "value": "lectura", "variable_name": "tag"})
    cols = {"time_col": "fecha", "value_col": "lectura", "variable_col": "tag"}
    inf = mine.copy()
    inf.loc[7, "lectura"] = np.inf
    with pytest.raises(anomaly.NonFiniteError, match="^lectura at row 7") as err:
        anomaly.ForecastDetector().fit(inf, **cols)
    assert (err.value.field, err.value.row) == ("lectura", 7)
    dup = pd.concat([mine, mine.iloc[[5]]], ignore_index=True)
    with pytest.raises(anomaly.TimestampError, match="^fecha at row 600 duplicates row 5") as err:
        anomaly.ForecastDetector().fit(dup, **cols)
    assert err.value.field == "fecha"
    text = mine.astype({"lectura": object})
    text.loc[3, "lectura"] = "n/d"
    with pytest.raises(anomaly.NumberError, match="'n/d' is not a number") as err:
        anomaly.ForecastDetector().fit(text, **cols)
    assert (err.value.field, err.value.row) == ("lectura", 3)
    missing = mine.copy()
    missing.loc[3, "lectura"] = None  # a missing reading is not an error
    detector = anomaly.ForecastDetector().fit(missing, **cols)
    with pytest.raises(anomaly.NonFiniteError, match="^lectura at row 0") as err:
        detector.detect(inf.iloc[7:9], **cols)
