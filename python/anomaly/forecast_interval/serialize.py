"""Saving fitted :class:`~anomaly.Prophet` models as JSON (a drop-in for
``prophet.serialize``)::

    from anomaly.serialize import model_from_json, model_to_json

    with open("model.json", "w") as f:
        f.write(model_to_json(m))
    with open("model.json") as f:
        m = model_from_json(f.read())

The file is the project's one versioned envelope (``anomaly-core``'s
``persist.rs``)::

    {"format": "anomaly-model", "version": 3, "kind": "prophet", "model": {...}}

``model`` holds the attributes Prophet saves, encoded exactly: floats as
JSON numbers (shortest round-trip repr), arrays and frames with their dtypes,
timestamps in integer nanoseconds with their unit. A loaded model predicts
exactly what the saved one did (with the same seed). A file of another format
or kind, or of a newer version, raises :class:`anomaly.ModelFileError`.

Files written by ``prophet.serialize.model_to_json`` (prophet 0.6 to 1.5)
load too. As in Prophet, a regressor's fitted predictor model
(``add_regressor(..., regressor_predictor=True)``) is not saved: after loading,
``predict`` needs that regressor's future values.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from io import StringIO
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import ModelFileError, ParameterError, input_error

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

# The core's envelope: one format tag and version for every model file.
FORMAT = _anomaly.MODEL_FORMAT
VERSION = _anomaly.MODEL_FORMAT_VERSION
KIND = "prophet"

# The attributes Prophet saves, grouped by type as prophet.serialize names them.
SIMPLE_ATTRIBUTES = [
    "growth", "n_changepoints", "specified_changepoints", "changepoint_range",
    "yearly_seasonality", "weekly_seasonality", "daily_seasonality",
    "seasonality_mode", "seasonality_prior_scale", "changepoint_prior_scale",
    "holidays_prior_scale", "mcmc_samples", "interval_width", "uncertainty_samples",
    "y_scale", "y_min", "scaling", "logistic_floor", "country_holidays", "component_modes",
    "holidays_mode",
]  # fmt: skip
PD_SERIES = ["changepoints", "history_dates", "train_holiday_names"]
PD_TIMESTAMP = ["start"]
PD_TIMEDELTA = ["t_scale"]
PD_DATAFRAME = ["holidays", "history", "train_component_cols"]
NP_ARRAY = ["changepoints_t"]
ORDEREDDICT = ["seasonalities", "extra_regressors"]
# anomaly.Prophet's own settings and results, saved when the model has them.
ANOMALY_ATTRIBUTES = ["seed", "interval_method", "objective_"]
ATTRIBUTES = [
    *SIMPLE_ATTRIBUTES, *PD_SERIES, *PD_TIMESTAMP, *PD_TIMEDELTA, *PD_DATAFRAME, *NP_ARRAY, *ORDEREDDICT,
    "fit_kwargs", "params", *ANOMALY_ATTRIBUTES,
]  # fmt: skip
# Not saved (as in Prophet): Stan's objects; restored as None.
SKIPPED = ["stan_fit", "stan_backend"]


def model_to_dict(model: Any) -> dict[str, Any]:
    """The fitted model as a JSON-ready envelope dict (reversed by :func:`model_from_dict`)."""
    if getattr(model, "history", None) is None:
        raise input_error(ParameterError, "This can only be used to serialize models that have already been fit.", "model")
    attributes: dict[str, Any] = {}
    for name in ATTRIBUTES:
        if name not in model.__dict__:
            continue
        value = model.__dict__[name]
        if name == "extra_regressors":
            # The fitted predictor models are not saved, as in Prophet.
            value = type(value)((k, {**props, "predictor": None} if "predictor" in props else props) for k, props in value.items())
        try:
            attributes[name] = _encode(value)
        except TypeError as err:
            raise ModelFileError(f"cannot save Prophet attribute {name!r}: {err}") from None
    return {"format": FORMAT, "version": VERSION, "kind": KIND, "model": attributes}


def model_to_json(model: Any) -> str:
    """The fitted model as a JSON string (reversed by :func:`model_from_json`)."""
    return json.dumps(model_to_dict(model))


def model_from_dict(model_dict: dict[str, Any]) -> Any:
    """The model saved by :func:`model_to_dict` (or by ``prophet.serialize.model_to_dict``)."""
    from anomaly.forecast_interval import Prophet  # late: the Prophet module may import this one

    if not isinstance(model_dict, dict):
        raise ModelFileError(f"model file is corrupt: expected a JSON object, got {type(model_dict).__name__}")
    if "format" not in model_dict and any(k in model_dict for k in ("__prophet_version", "__fbprophet_version")):
        attributes = _from_prophet(dict(model_dict))
    else:
        attributes = _open_envelope(model_dict)
    model = Prophet()
    try:
        for name, value in attributes.items():
            setattr(model, name, value)
    except (TypeError, ValueError, AttributeError) as err:
        raise ModelFileError(f"model file is corrupt: {err}") from None
    for name in SKIPPED:
        if name in model.__dict__:
            setattr(model, name, None)
    return model


def model_from_json(model_json: str) -> Any:
    """The model saved by :func:`model_to_json` (or by ``prophet.serialize.model_to_json``)."""
    try:
        model_dict = json.loads(model_json)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"model file is corrupt: not an anomaly model file ({err})") from None
    return model_from_dict(model_dict)


def _open_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """The decoded attributes of an envelope, after the checks persist.rs makes."""
    if envelope.get("format") != FORMAT:
        raise ModelFileError(f"model file is corrupt: format is {envelope.get('format')!r}, expected {FORMAT!r}")
    version = envelope.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"model file is corrupt: version is {version!r}, expected an integer")
    if version > VERSION:
        raise ModelFileError(
            f"model file format version {version} is newer than this build supports ({VERSION}); upgrade anomaly"
        )
    if envelope.get("kind") != KIND:
        raise ModelFileError(f"model file holds a {envelope.get('kind')!r} model, expected {KIND!r}")
    model = envelope.get("model")
    if not isinstance(model, dict) or "params" not in model or "history" not in model:
        raise ModelFileError("model file is corrupt: prophet model: missing model, params or history")
    try:
        return {name: _decode(value) for name, value in model.items() if name in ATTRIBUTES}
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"model file is corrupt: prophet model: {err}") from None


# -- exact, typed JSON encoding ---------------------------------------------------------------------
# JSON numbers carry floats exactly (Python writes the shortest repr that reads back the same
# float); everything else is tagged with its type so that it comes back with the same dtype.


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if value is pd.NaT or value is pd.NA:
        return {"__missing__": "NaT" if value is pd.NaT else "NA"}
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind in "biuf" else _encode(pd.Timestamp(value) if value.dtype.kind == "M" else pd.Timedelta(value))
    if isinstance(value, pd.Timestamp):
        if value.tz is not None:
            raise TypeError("timezone-aware timestamps are not supported")
        return {"__timestamp__": int(value.value), "unit": value.unit}
    if isinstance(value, pd.Timedelta):
        return {"__timedelta__": int(value.value), "unit": value.unit}
    if isinstance(value, pd.DataFrame):
        return {
            "__frame__": [_encode(c) for c in value.columns],
            "columns_name": _encode(value.columns.name),
            "data": [_encode_array(value.iloc[:, i]) for i in range(value.shape[1])],
            "index": _encode_index(value.index),
        }
    if isinstance(value, pd.Series):
        return {"__series__": _encode(value.name), "data": _encode_array(value), "index": _encode_index(value.index)}
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if isinstance(value, dict):
        tag = "__odict__" if isinstance(value, OrderedDict) else "__dict__"
        return {tag: [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    raise TypeError(f"values of type {type(value).__name__} cannot be saved")


def _encode_array(values: Any) -> dict[str, Any]:
    """A numpy array, or a pandas column with its (possibly extension) dtype."""
    dtype = values.dtype
    extension = not isinstance(dtype, np.dtype)
    array = values.to_numpy(dtype=object) if extension else np.asarray(values)
    shape = list(array.shape)
    if array.dtype.kind in "Mm":
        data: Any = array.view(np.int64).ravel().tolist()
        nat = np.isnat(array.ravel())
        data = [None if missing else v for v, missing in zip(data, nat)] if nat.any() else data
    elif array.dtype.kind in "biuf":
        data = array.ravel().tolist()
    else:
        data = [_encode(v) for v in array.ravel()]
    encoded = {"__array__": str(dtype), "shape": shape, "data": data}
    return {**encoded, "pandas": True} if extension else encoded


def _encode_index(index: pd.Index) -> Any:
    if isinstance(index, pd.RangeIndex):
        return {"__range__": [index.start, index.stop, index.step], "name": _encode(index.name)}
    return {"__index__": _encode_array(index), "name": _encode(index.name)}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__missing__" in value:
        return pd.NaT if value["__missing__"] == "NaT" else pd.NA
    if "__timestamp__" in value:
        return pd.Timestamp(value["__timestamp__"], unit="ns").as_unit(value["unit"])
    if "__timedelta__" in value:
        return pd.Timedelta(value["__timedelta__"], unit="ns").as_unit(value["unit"])
    if "__frame__" in value:
        columns = [_decode(c) for c in value["__frame__"]]
        frame = pd.DataFrame(
            {i: _decode_array(data) for i, data in enumerate(value["data"])}, index=_decode_index(value["index"])
        )
        frame.columns = pd.Index(columns, name=_decode(value["columns_name"]), dtype=object if not columns else None)
        return frame
    if "__series__" in value:
        return pd.Series(_decode_array(value["data"]), index=_decode_index(value["index"]), name=_decode(value["__series__"]))
    if "__array__" in value:
        return _decode_array(value)
    if "__odict__" in value:
        return OrderedDict((_decode(k), _decode(v)) for k, v in value["__odict__"])
    if "__dict__" in value:
        return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    raise ValueError(f"unknown encoded value with keys {sorted(value)}")


def _decode_array(value: dict[str, Any]) -> Any:
    dtype_name, shape, data = value["__array__"], value["shape"], value["data"]
    if value.get("pandas"):  # a pandas extension dtype (str, category, Int64, ...)
        return pd.array([_decode(v) for v in data], dtype=object).astype(dtype_name)
    dtype = np.dtype(dtype_name)
    if dtype.kind in "Mm":
        ints = np.array([np.iinfo(np.int64).min if v is None else v for v in data], dtype=np.int64)
        return ints.view(dtype).reshape(shape)
    if dtype.kind in "biuf":
        return np.array(data, dtype=dtype).reshape(shape)
    array = np.empty(len(data), dtype=object)
    array[:] = [_decode(v) for v in data]
    return array.reshape(shape) if dtype.kind == "O" else array.reshape(shape).astype(dtype)


def _decode_index(value: dict[str, Any]) -> pd.Index:
    name = _decode(value["name"])
    if "__range__" in value:
        return pd.RangeIndex(*value["__range__"], name=name)
    return pd.Index(_decode_array(value["__index__"]), name=name)


# -- prophet.serialize's own files ------------------------------------------------------------------


def _from_prophet(d: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a dict written by ``prophet.serialize.model_to_dict`` (pandas JSON inside)."""
    # Files older than prophet 1.1.5 predate these settings.
    d.setdefault("scaling", "absmax")
    d.setdefault("y_min", 0.0)
    d.setdefault("holidays_mode", d.get("seasonality_mode"))
    try:
        out: dict[str, Any] = {name: d[name] for name in SIMPLE_ATTRIBUTES}
        for name in PD_SERIES:
            out[name] = None if d[name] is None else _prophet_series(d[name])
        out["start"] = pd.Timestamp.fromtimestamp(d["start"], tz="UTC").tz_localize(None)
        out["t_scale"] = pd.Timedelta(seconds=d["t_scale"])
        for name in PD_DATAFRAME:
            out[name] = None if d[name] is None else _prophet_frame(d[name])
        if out["train_component_cols"] is not None:
            out["train_component_cols"].columns.name = "component"
            out["train_component_cols"].index.name = "col"
        out["changepoints_t"] = np.array(d["changepoints_t"])
        for name in ORDEREDDICT:
            keys, values = d[name]
            out[name] = OrderedDict((k, values[k]) for k in keys)
        for props in out["extra_regressors"].values():
            props.setdefault("predictor_spec", None)
            props.setdefault("predictor", None)
        out["fit_kwargs"] = d["fit_kwargs"]
        out["params"] = {k: np.array(v) for k, v in d["params"].items()}
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"model file is corrupt: prophet model file: {err!r}") from None
    return out


def _prophet_series(text: str) -> pd.Series:
    s = pd.read_json(StringIO(text), typ="series", orient="split")
    if s.name == "ds":
        s = pd.to_datetime(s) if len(s) == 0 else s
        s = s.dt.tz_localize(None)
    return s


def _prophet_frame(text: str) -> pd.DataFrame:
    frame = pd.read_json(StringIO(text), typ="frame", orient="table")
    if "ds" in frame and not pd.api.types.is_datetime64_dtype(frame["ds"]):
        frame["ds"] = pd.to_datetime(frame["ds"]).dt.tz_localize(None)  # older pandas wrote ISO text
    return frame
