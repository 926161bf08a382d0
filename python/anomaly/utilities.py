"""``anomaly.utilities``: Prophet's model utilities (a drop-in for
``prophet.utilities``); see :mod:`anomaly.forecast_interval.utilities`."""

from anomaly.forecast_interval.utilities import regressor_coefficients, regressor_index, warm_start_params

__all__ = ["regressor_coefficients", "regressor_index", "warm_start_params"]
