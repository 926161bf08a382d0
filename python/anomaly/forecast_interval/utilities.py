"""Prophet's model utilities (a drop-in for ``prophet.utilities``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anomaly.errors import ParameterError, input_error

__all__ = ["regressor_coefficients", "regressor_index", "warm_start_params"]


def regressor_index(m: Any, name: str) -> Any:
    """The column of regressor ``name`` in ``m.params['beta']``."""
    cols = m.train_component_cols
    if cols is None or name not in cols:
        raise input_error(ParameterError, f"Regressor {name!r} is not in the fitted model", name)
    return cols.index[cols[name].to_numpy() == 1][0]


def regressor_coefficients(m: Any) -> pd.DataFrame:
    """The extra regressors' coefficients on the scale of the data.

    One row per regressor: ``regressor, regressor_mode, center`` (the mean
    subtracted when standardized, else 0), ``coef_lower, coef, coef_upper``.
    An additive coefficient is the change in ``y`` per unit of the regressor;
    a multiplicative one is that change relative to the trend. With a MAP fit
    the bounds equal ``coef``; with samples they are the ``interval_width``
    quantiles.
    """
    if not m.extra_regressors:
        raise input_error(ParameterError, "No extra regressors found.", "extra_regressors")
    q = [(1 - m.interval_width) / 2, 1 - (1 - m.interval_width) / 2]
    rows = []
    for name, props in m.extra_regressors.items():
        beta = m.params["beta"][:, regressor_index(m, name)]
        # Additive terms are fitted on y / y_scale; multiplicative ones are relative already.
        coef = beta / props["std"] * (m.y_scale if props["mode"] == "additive" else 1.0)
        lower, upper = np.quantile(coef, q)
        rows.append(
            {"regressor": name, "regressor_mode": props["mode"], "center": props["mu"],
             "coef_lower": lower, "coef": np.mean(coef), "coef_upper": upper}
        )  # fmt: skip
    return pd.DataFrame(rows)


def warm_start_params(m: Any) -> dict[str, Any]:
    """The fitted parameters as ``fit(..., init=...)`` takes them (the sample
    means when sampled). The new model needs the same changepoint count,
    seasonality features and regressors."""
    sampled = m.mcmc_samples != 0
    res: dict[str, Any] = {}
    for name in ("k", "m", "sigma_obs"):
        res[name] = np.mean(m.params[name]) if sampled else m.params[name][0][0]
    for name in ("delta", "beta"):
        res[name] = np.mean(m.params[name], axis=0) if sampled else m.params[name][0]
    return res
