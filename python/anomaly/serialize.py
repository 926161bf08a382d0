"""``anomaly.serialize``: save and load fitted Prophet models (a drop-in for
``prophet.serialize``); see :mod:`anomaly.forecast_interval.serialize`."""

from anomaly.forecast_interval.serialize import (
    NP_ARRAY,
    ORDEREDDICT,
    PD_DATAFRAME,
    PD_SERIES,
    PD_TIMEDELTA,
    PD_TIMESTAMP,
    SIMPLE_ATTRIBUTES,
    model_from_dict,
    model_from_json,
    model_to_dict,
    model_to_json,
)

__all__ = [
    "NP_ARRAY",
    "ORDEREDDICT",
    "PD_DATAFRAME",
    "PD_SERIES",
    "PD_TIMEDELTA",
    "PD_TIMESTAMP",
    "SIMPLE_ATTRIBUTES",
    "model_from_dict",
    "model_from_json",
    "model_to_dict",
    "model_to_json",
]
