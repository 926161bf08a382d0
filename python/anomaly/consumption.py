"""Rules that flag suspicious electricity consumption, per client.

Five rules run over hourly (or 15/30-minute) readings of each client, each
against the client's own causal baseline (only whole days *before* the
reading), so a reading's result never changes when later data arrives:

``outlier``
    more than ``zscore_threshold`` standard deviations from the client's
    usual level for that hour of day;
``spike``
    more than ``spike_increase`` (1.5 = +150%) above the median of the same
    hour over the previous ``spike_baseline_days`` days;
``night_use``
    a night reading above ``night_factor`` times the client's mean night use;
``plantation``
    ``plantation_nights`` consecutive heavy nights, heavier than the client's
    days (the signature of a grow room);
``flat``
    ``flat_hours`` of constant (or zero) readings in a meter that normally
    varies (tampering).

Each reading gets ``is_anomaly``, ``types`` (a tuple of rule names), a
``score`` in [0, 1] (0.5 is every rule's threshold) and a ``severity``
(normal < baja < media < alta < crítica, a function of the score).

Example::

    import pandas as pd
    import anomaly

    df = pd.read_csv("examples/data/consumption_sample.csv")
    flags = anomaly.consumption.detect(df)             # one row per reading
    monthly = anomaly.consumption.monthly(df)          # client x month
    clients = anomaly.consumption.clients(df)          # one row per client
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import ColumnError, NumberError, ParameterError, TimestampError, input_error

__all__ = [
    "ANOMALY_TYPES",
    "SEVERITIES",
    "ConsumptionResult",
    "ConsumptionRules",
    "analyze",
    "clients",
    "default_params",
    "detect",
    "monthly",
    "simulate",
]

#: Rule names, in the order of the bits of the raw ``types`` mask.
ANOMALY_TYPES: tuple[str, ...] = tuple(_anomaly.ANOMALY_TYPES)
#: Severities, lowest first (the categories of the ``severity`` column).
SEVERITIES: tuple[str, ...] = tuple(_anomaly.SEVERITIES)

_SEVERITY_DTYPE = pd.CategoricalDtype(list(SEVERITIES), ordered=True)
_TYPES_BY_MASK = np.empty(1 << len(ANOMALY_TYPES), dtype=object)
for _mask in range(len(_TYPES_BY_MASK)):
    _TYPES_BY_MASK[_mask] = tuple(t for bit, t in enumerate(ANOMALY_TYPES) if _mask & (1 << bit))


def default_params() -> dict[str, Any]:
    """The default value of every rule parameter."""
    return dict(json.loads(_anomaly.ConsumptionRules().params_json()))


_DEFAULTS = default_params()


def _minutes(value: str | int | pd.Timedelta, name: str) -> int:
    """Accepts ``"30min"``, ``"1h"``, ``30`` (minutes) or a Timedelta.

    Strings go through the core's one duration grammar (the CLI's too);
    Timedeltas and integers are only converted to it here.
    """
    if isinstance(value, (pd.Timedelta, datetime.timedelta, np.timedelta64)):
        text = f"{pd.Timedelta(value).total_seconds()!r}s"
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        text = str(int(value))
    elif isinstance(value, str):
        text = value
    else:
        raise input_error(ParameterError, f"parameter {name} = {value!r}: expected a duration such as '30min' or '1h'", name)
    return int(_anomaly.parse_minutes(name, text))


def _band(value: Any, name: str) -> dict[str, int]:
    """Accepts ``(0, 6)``, ``"22-6"`` or ``{"start_hour": 0, "end_hour": 6}``."""
    if isinstance(value, dict):
        return {"start_hour": int(value["start_hour"]), "end_hour": int(value["end_hour"])}
    if isinstance(value, str):
        start, end = _anomaly.parse_hour_band(name, value)
        return {"start_hour": start, "end_hour": end}
    try:
        start, end = value
        return {"start_hour": int(start), "end_hour": int(end)}
    except (TypeError, ValueError):
        raise input_error(ParameterError, f"parameter {name} = {value!r}: expected (start_hour, end_hour) or 'START-END'", name) from None


class ConsumptionRules:
    """The consumption rules with a fixed set of parameters.

    Every keyword is a rule parameter (see :func:`default_params` and the
    module docs); ``interval`` is the readings' sampling interval
    (``"1h"``, ``"30min"``, ...). Parameters are validated here: a bad one
    raises :class:`~anomaly.ParameterError` naming it. Instances pickle
    through the same versioned bytes as :meth:`to_bytes`.
    """

    def __init__(self, *, interval: str | int = "1h", **params: Any) -> None:
        unknown = sorted(set(params) - set(_DEFAULTS) - {"interval_minutes"})
        if unknown:
            raise input_error(
                ParameterError,
                f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(_DEFAULTS))}",
                unknown[0],
            )
        merged = dict(_DEFAULTS)
        merged["interval_minutes"] = _minutes(interval, "interval")
        for key, value in params.items():
            merged[key] = _band(value, key) if key in ("night_band", "peak_band") else value
        self._rules = _anomaly.ConsumptionRules(json.dumps(merged))

    @classmethod
    def _wrap(cls, rules: Any) -> ConsumptionRules:
        self = cls.__new__(cls)
        self._rules = rules
        return self

    def get_params(self) -> dict[str, Any]:
        """Every parameter's value, as accepted by the constructor's keywords."""
        params: dict[str, Any] = json.loads(self._rules.params_json())
        for key in ("night_band", "peak_band"):
            params[key] = (params[key]["start_hour"], params[key]["end_hour"])
        return params

    def to_bytes(self) -> bytes:
        """The rules as a versioned model file (JSON envelope)."""
        return bytes(self._rules.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ConsumptionRules:
        """Reads rules written by :meth:`to_bytes` or ``anomaly consumption params``."""
        return cls._wrap(_anomaly.ConsumptionRules.from_bytes(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConsumptionRules.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if _DEFAULTS.get(k) != v and k not in ("night_band", "peak_band")}
        return f"ConsumptionRules({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def analyze(
        self,
        df: pd.DataFrame,
        *,
        client_col: str = "client_id",
        time_col: str = "timestamp",
        value_col: str = "kwh",
        source_interval: str | int | None = None,
    ) -> ConsumptionResult:
        """Runs every rule once and returns readings, clients and months.

        ``source_interval`` is the sampling interval of ``df`` when it is
        finer than the rules' ``interval``: readings are then summed into
        complete buckets first (a bucket with a missing reading is dropped).
        """
        columns = (client_col, time_col, value_col)
        codes, uniques, seconds, kwh = _columns(df, columns)
        source = None if source_interval is None else _minutes(source_interval, "source_interval")
        raw = self._rules.detect(codes, [str(u) for u in uniques], seconds, kwh, columns=columns, source_interval=source)
        rows = raw["readings"]
        if source is not None and source != self.get_params()["interval_minutes"]:
            readings = pd.DataFrame(
                {
                    client_col: uniques.take(rows["client"].astype(np.intp)),
                    time_col: rows["timestamp"].astype("datetime64[s]"),
                    value_col: rows["kwh"],
                }
            )
        else:
            readings = df.copy()
        readings["is_anomaly"] = rows["is_anomaly"]
        readings["types"] = _TYPES_BY_MASK[rows["types"]]
        readings["score"] = rows["score"]
        readings["severity"] = pd.Categorical.from_codes(rows["severity"].astype(np.int8), dtype=_SEVERITY_DTYPE)
        clients_df = pd.DataFrame(raw["clients"])
        monthly_df = pd.DataFrame(raw["monthly"])
        return ConsumptionResult(readings=readings, clients=clients_df, monthly=monthly_df)

    def detect(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Flags every reading: ``df`` (same index and order) plus ``is_anomaly``, ``types``, ``score``, ``severity``."""
        return self.analyze(df, **columns).readings

    def monthly(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Per client and calendar month: totals, mean/min/max, anomaly and critical counts, night and peak means, score."""
        return self.analyze(df, **columns).monthly

    def clients(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Per client: readings, anomalies (in total and by rule), critical and severe counts, max score, ``suspicious``."""
        return self.analyze(df, **columns).clients


@dataclass(frozen=True)
class ConsumptionResult:
    """Everything one run of the rules returns."""

    #: One row per scored reading.
    readings: pd.DataFrame
    #: One row per client, in client name order.
    clients: pd.DataFrame
    #: One row per client and month.
    monthly: pd.DataFrame


def _columns(df: pd.DataFrame, columns: tuple[str, str, str]) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    """Converts the three columns to codes + names, seconds and float kWh, naming any bad row."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    for name in columns:
        if name not in df.columns:
            raise input_error(ColumnError, f"unknown column {name!r}; available: {', '.join(map(str, df.columns))}", name)
    client_col, time_col, value_col = columns

    codes, uniques = pd.factorize(df[client_col])
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise input_error(ColumnError, f"{client_col} at row {row} is missing", client_col, row)

    raw_time = df[time_col]
    if isinstance(raw_time.dtype, pd.DatetimeTZDtype):
        times = raw_time.dt.tz_localize(None)  # keep the wall clock
    elif pd.api.types.is_datetime64_any_dtype(raw_time.dtype):
        times = raw_time
    else:
        times = pd.to_datetime(raw_time, errors="coerce", format="mixed")
        if isinstance(times.dtype, pd.DatetimeTZDtype):
            times = times.dt.tz_localize(None)
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise input_error(
            TimestampError,
            f"{time_col} at row {row}: cannot parse {raw_time.iloc[row]!r} as a timestamp ({len(bad)} bad rows)",
            time_col,
            row,
        )
    seconds = times.to_numpy().astype("datetime64[s]").astype(np.int64)

    raw_value = df[value_col]
    values = pd.to_numeric(raw_value, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(values) & raw_value.notna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise input_error(NumberError, f"{value_col} at row {row}: cannot parse {raw_value.iloc[row]!r} as a number", value_col, row)
    return codes.astype(np.uint32), pd.Index(uniques), seconds, values


def analyze(
    df: pd.DataFrame,
    *,
    client_col: str = "client_id",
    time_col: str = "timestamp",
    value_col: str = "kwh",
    interval: str | int = "1h",
    aggregate: str | int | None = None,
    **params: Any,
) -> ConsumptionResult:
    """Runs the rules once; returns readings, clients and monthly frames.

    ``interval`` is the sampling interval of ``df``; ``aggregate`` (e.g.
    ``"1h"``) sums finer readings into complete buckets first. Other
    keywords are rule parameters (see :func:`default_params`).
    """
    if aggregate is not None:
        rules = ConsumptionRules(interval=aggregate, **params)
        return rules.analyze(df, client_col=client_col, time_col=time_col, value_col=value_col, source_interval=interval)
    rules = ConsumptionRules(interval=interval, **params)
    return rules.analyze(df, client_col=client_col, time_col=time_col, value_col=value_col)


def detect(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Flags every reading; see :func:`analyze` for the keywords.

    Without ``aggregate``, returns ``df`` (same index and row order) plus
    ``is_anomaly``, ``types``, ``score`` and ``severity``; with it, one row per
    aggregated reading, sorted by client and time.
    """
    return analyze(df, **kwargs).readings


def monthly(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Per client and calendar month aggregates; see :func:`analyze` for the keywords."""
    return analyze(df, **kwargs).monthly


def clients(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Per client summary with the ``suspicious`` flag; see :func:`analyze` for the keywords."""
    return analyze(df, **kwargs).clients


def simulate(
    *,
    clients: int = 50,
    days: int = 60,
    start: str = "2024-01-01",
    interval: str | int = "1h",
    anomaly_rate: float = 0.2,
    seed: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Realistic synthetic household readings with injected anomalies.

    Returns ``(readings, events)``: readings with columns ``client_id``,
    ``timestamp``, ``kwh``; events with ``client_id``, ``kind``
    (``plantation``, ``flat`` or ``spike``), ``start`` and ``end``
    (exclusive). Deterministic for a seed.
    """
    for name, value in (("clients", clients), ("days", days)):
        # Sizes the core can take (it then checks their product): not negative, not beyond 64 bits.
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value < 2**32:
            raise input_error(ParameterError, f"parameter {name} = {value!r}: expected a whole number from 1", name)
    start_s = int(pd.Timestamp(start).value // 1_000_000_000)
    raw = _anomaly.simulate_consumption(
        clients=clients,
        days=days,
        start=start_s,
        interval_minutes=_minutes(interval, "interval"),
        anomaly_rate=anomaly_rate,
        seed=seed,
    )
    names = np.array(raw["client_names"], dtype=object)
    readings = pd.DataFrame(
        {
            "client_id": names[raw["client"]],
            "timestamp": raw["timestamp"].astype("datetime64[s]"),
            "kwh": raw["kwh"],
        }
    )
    ev = raw["events"]
    events = pd.DataFrame(
        {
            "client_id": ev["client"],
            "kind": ev["kind"],
            "start": np.asarray(ev["start"], dtype=np.int64).astype("datetime64[s]"),
            "end": np.asarray(ev["end"], dtype=np.int64).astype("datetime64[s]"),
        }
    )
    return readings, events
