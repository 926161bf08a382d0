"""anomaly.Prophet against prophet.Prophet 1.5 at Stan's converged Newton optimum, on real NAB series.

Each case fits both models with the same options on a real series from
../shared/data/nab (resampled to hourly or daily means): logistic growth
(cap 1.2 x max, floor 0.8 x min), a custom holidays frame (windows and a
prior scale), US country holidays, minmax scaling, an extra regressor (a
second NAB series aligned in time) and multiplicative holidays.

Objectives are Prophet's log posterior (`log_posterior` from
test_forecast_interval; our fit stores its negative as `objective_`).

`test_stan_cannot_improve_our_optimum`, every case: our objective is at
least Stan's Newton's, and Stan's Newton started AT our optimum neither
raises the log posterior nor moves yhat by 1e-3 sd. That is the parity
that holds: both optimisers agree on where the optimum is.

`test_yhat_matches_stan_newton` (yhat over the history within 1e-3 sd of
Stan's Newton from Prophet's own start, max |diff| / y.std()) holds only
where that Newton reaches the optimum. Stan's Newton ignores the Laplace
prior's kinks: it stalls with changepoint deltas near 1e-10 instead of 0,
0.005-0.19 log-posterior units short (restarting it from its own answer
gains < 1e-6 while the objective rises linearly along the segment from its
answer to ours), and yhat then differs by up to 6e-2 sd. On logistic fits
it can also stop in a worse local optimum. There the comparison is with
Stan's Newton restarted at our optimum, which must stay there.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import anomaly

prophet = pytest.importorskip("prophet")
from prophet.utilities import warm_start_params  # noqa: E402
from test_forecast_interval import log_posterior  # noqa: E402

logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
logging.getLogger("prophet").setLevel(logging.WARNING)

NEWTON = dict(algorithm="Newton", iter=100000)
AMBIENT, RDS = "realKnownCause/ambient_temperature_system_failure", "realAWSCloudwatch/rds_cpu_utilization_cc0c53"


def nab_series(nab: Path, name: str, freq: str) -> pd.DataFrame:
    """A NAB series as Prophet's (ds, y), resampled to `freq` means; empty periods (ambient's gaps) dropped."""
    raw = pd.read_csv(nab / f"{name}.csv", parse_dates=["timestamp"]).set_index("timestamp")["value"]
    return raw.resample(freq).mean().dropna().rename_axis("ds").rename("y").reset_index()


def limits(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(cap=1.2 * df["y"].max(), floor=0.8 * df["y"].min())


def windows(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["holiday", "ds", "lower_window", "upper_window", "prior_scale"]).astype({"ds": "datetime64[ns]"})


def case(nab: Path, name: str) -> tuple[pd.DataFrame, dict[str, Any], list[tuple[str, tuple[Any, ...]]]]:
    """(frame, constructor options, method calls) for one case; both models get the same."""
    if name == "logistic":
        return limits(nab_series(nab, RDS, "h")), {"growth": "logistic"}, []
    if name == "logistic-ambient":
        return limits(nab_series(nab, AMBIENT, "D")), {"growth": "logistic"}, []
    if name == "logistic-grok":
        return limits(nab_series(nab, "realAWSCloudwatch/grok_asg_anomaly", "h")), {"growth": "logistic"}, []
    if name == "holidays":
        frame = windows(
            [("thanksgiving", "2013-11-28", -1, 1, 5.0), ("thanksgiving", "2014-11-27", -1, 1, 5.0), ("xmas", "2013-12-25", -2, 1, 2.0)]
        )
        return nab_series(nab, AMBIENT, "D"), {"holidays": frame}, []
    if name == "country-holidays":
        return nab_series(nab, AMBIENT, "D"), {}, [("add_country_holidays", ("US",))]
    if name == "minmax":
        return nab_series(nab, "realAWSCloudwatch/ec2_cpu_utilization_825cc2", "h"), {"scaling": "minmax"}, []
    if name == "regressor":
        # The office's ambient temperature as a covariate of a database's CPU load, same hours.
        temperature = nab_series(nab, AMBIENT, "h").rename(columns={"y": "temperature"})
        return nab_series(nab, RDS, "h").merge(temperature, on="ds"), {}, [("add_regressor", ("temperature",))]
    if name == "multiplicative-holidays":
        frame = windows([("memorial_day", "2014-05-26", -1, 0, 3.0), ("independence_day", "2014-07-04", 0, 1, 3.0)])
        asg = nab_series(nab, "realKnownCause/cpu_utilization_asg_misconfiguration", "h").iloc[:800]
        return asg, {"holidays": frame, "holidays_mode": "multiplicative"}, []
    raise KeyError(name)


@functools.cache
def fits(nab: Path, name: str) -> dict[str, Any]:
    """Ours, Stan's Newton from Prophet's start, and Stan's Newton from our optimum (fitted once per case)."""
    df, options, calls = case(nab, name)

    def model(cls: type) -> Any:
        m = cls(**options)
        for method, args in calls:
            getattr(m, method)(*args)
        return m

    ours = model(anomaly.Prophet).fit(df)
    return {
        "df": df,
        "ours": ours,
        "stan": model(prophet.Prophet).fit(df, **NEWTON),
        "stan_from_ours": model(prophet.Prophet).fit(df, init=warm_start_params(ours), **NEWTON),
    }


def yhat_gap(f: dict[str, Any], other: str) -> float:
    """max |yhat(ours) - yhat(other)| over the history, in standard deviations of y."""
    diff = f["ours"].predict()["yhat"].to_numpy() - f[other].predict()["yhat"].to_numpy()
    return float(np.max(np.abs(diff)) / f["df"]["y"].std())


@pytest.fixture(scope="module")
def nab(shared_data: Path) -> Path:
    folder = shared_data / "nab"
    if not folder.is_dir():
        pytest.skip(f"NAB series not found at {folder} (../shared/data/nab beside the repo)")
    return folder


CASES = ["logistic", "logistic-ambient", "logistic-grok", "holidays", "country-holidays", "minmax", "regressor", "multiplicative-holidays"]


@pytest.mark.parametrize("name", CASES)
def test_stan_cannot_improve_our_optimum(nab: Path, name: str) -> None:
    f = fits(nab, name)
    ours = f["ours"]
    lp = log_posterior(ours, ours.params)
    assert ours.objective_ == pytest.approx(-lp, abs=1e-6)
    assert lp >= log_posterior(ours, f["stan"].params) - 1e-6
    assert log_posterior(ours, f["stan_from_ours"].params) <= lp + 1e-6
    assert yhat_gap(f, "stan_from_ours") < 1e-3


@pytest.mark.parametrize("name", CASES)
def test_yhat_matches_stan_newton_where_it_converges(nab: Path, name: str) -> None:
    """Within 1e-3 sd of Stan's Newton from Prophet's own start wherever that
    Newton reaches the optimum (log posterior within 1e-3 of ours); where it
    stops short (measured: 0.005-0.19 units at the Laplace kinks, 19.9 in a
    worse logistic optimum on ambient), Stan's Newton restarted at ours must
    stay there (the test above) and the shortfall is printed."""
    f = fits(nab, name)
    ours = f["ours"]
    shortfall = log_posterior(ours, ours.params) - log_posterior(ours, f["stan"].params)
    if shortfall < 1e-3:
        assert yhat_gap(f, "stan") < 1e-3
    else:
        print(f"{name}: Stan's Newton stops {shortfall:.4f} log-posterior units short; yhat {yhat_gap(f, 'stan'):.1e} sd apart")
        assert yhat_gap(f, "stan_from_ours") < 1e-3
