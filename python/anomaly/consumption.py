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

Methods and presets
    The default rules (``method="calibrated"``) run the five rule types with
    per-hour baselines on a log scale, outlier and spike scores calibrated on
    each client's own tail (``tail_probability`` per reading at score 0.5)
    and persistence for night use, plantations and flat meters; daily
    readings (``interval="1d"``) get no hour-of-day rules. On the ten real
    SGSC households they flag 0.80% of untouched readings (0.13% alta or
    crítica) and still catch every injected plantation and flat meter; x2.5
    spikes of ordinary size are mostly not flagged (29%), by design (the
    README has the recall curve by size). The analysts' rules as written
    above are the ``"literal"`` preset, one argument away:
    ``ConsumptionRules.preset("literal")``, ``detect(df, preset="literal")``
    or ``method="literal"``; they flag 5.7% of the same readings (2.7% alta
    or crítica). :func:`default_params` lists every parameter; the Rust docs
    of ``anomaly_core::consumption::calibrated`` give the algorithm. The
    outputs have the same columns either way.

Episodes and suspicious months
    Consecutive flags of one client and rule are one episode (:func:`episodes`).
    ``monthly`` scores each client-month from the episodes overlapping it:
    ``suspicion`` in [0, 1] (one plantation or flat episode of severity
    alta or above, or ``suspicious_month_episodes`` (5) severe outlier,
    spike or night-use episodes, make it 0.5 or more), ``suspicious``, ``rank`` among
    the clients that month (1 = most suspicious), ``n_episodes``,
    ``n_severe_episodes`` and ``rules`` (the rules of its episodes). A client
    is ``suspicious`` when one of its months is (literal preset: any
    plantation or flat reading, or ``suspicious_min_severe`` severe readings).

Time zones and clock changes
    The rules work on local wall-clock time (night use is a local hour).
    Naive timestamps are taken as local time. Zone-aware ones (a tz-aware
    column, ISO text with UTC offsets, aware datetimes) are converted to the
    wall clock they show, so a series across a daylight-saving change keeps
    its local hours:

    - in spring the skipped local hour is simply absent: a gap, which every
      rule allows (it is left out of the baselines and breaks a flat run);
    - in autumn the repeated local hour (02:00 twice in Europe/Madrid) holds
      two real hours. A client's two readings at that local time become one
      reading, the **mean** of the two (the hour's average use, in kWh per
      hour like every other reading), kept on the earlier row. The sum would
      be the energy of the local hour, but at twice the usual level it flags
      the hour: on 200 simulated households it made 10 ``outlier`` (9 of them
      also ``night_use``) at that 02:00, where the mean flags none. So
      ``monthly``'s ``total_kwh`` counts that local hour once: one hour's
      average less than the meter recorded that month.

    Two readings of a client at the same instant are still a duplicate
    (:class:`~anomaly.TimestampError`). Naive times carry no instant, so a
    repeated wall-clock hour in naive data is a duplicate too: pass the
    zone (``tz_localize(zone, ambiguous="infer")``) to have it merged.

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
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import (
    AnomalyError,
    ColumnError,
    InvalidInputError,
    NumberError,
    ParameterError,
    TimestampError,
    input_error,
    utf8_names,
    whole_number,
)

__all__ = [
    "ANOMALY_TYPES",
    "SEVERITIES",
    "ConsumptionResult",
    "ConsumptionRules",
    "analyze",
    "clients",
    "default_params",
    "detect",
    "episodes",
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


def _build(base: dict[str, Any], interval: str | int, params: dict[str, Any]) -> Any:
    """Checked native rules: ``base`` with the interval and ``params`` on top."""
    unknown = sorted(set(params) - set(_DEFAULTS) - {"interval_minutes"})
    if unknown:
        raise input_error(
            ParameterError,
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(_DEFAULTS))}",
            unknown[0],
        )
    merged = dict(base)
    merged["interval_minutes"] = _minutes(interval, "interval")
    for key, value in params.items():
        merged[key] = _band(value, key) if key in ("night_band", "peak_band") else value
    return _anomaly.ConsumptionRules(json.dumps(merged))


class ConsumptionRules:
    """The consumption rules with a fixed set of parameters.

    Every keyword is a rule parameter (see :func:`default_params` and the
    module docs); ``interval`` is the readings' sampling interval
    (``"1h"``, ``"30min"``, ...). Parameters are validated here: a bad one
    raises :class:`~anomaly.ParameterError` naming it. Instances pickle
    through the same versioned bytes as :meth:`to_bytes`.
    """

    def __init__(self, *, interval: str | int = "1h", **params: Any) -> None:
        self._rules = _build(_DEFAULTS, interval, params)

    @classmethod
    def preset(cls, name: str, *, interval: str | int = "1h", **params: Any) -> ConsumptionRules:
        """A named parameter set, with any parameter changed on top.

        ``"calibrated"`` is the defaults; ``"literal"`` is the analysts'
        rules as written (the defaults before the calibrated rules), with
        their measured rates in the module docs.
        """
        base = json.loads(_anomaly.ConsumptionRules.preset(name).params_json())
        return cls._wrap(_build(base, interval, params))

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

        Zone-aware times are read as local wall-clock time (see "Time zones
        and clock changes" in the module docs): across an autumn clock
        change, the two readings of a client's repeated local hour become
        one row (the earlier one, its value the mean of both), so
        ``readings`` then has fewer rows than ``df``; a spring change leaves
        a missing hour. A client id that UTF-8 cannot hold (a lone surrogate)
        is an InvalidInputError naming ``client_col`` and the row.
        """
        columns = (client_col, time_col, value_col)
        cols = _columns(df, columns)
        codes, uniques, seconds, kwh, keep = cols.codes, cols.uniques, cols.seconds, cols.kwh, cols.keep
        source = None if source_interval is None else _minutes(source_interval, "source_interval")
        try:
            raw = self._rules.detect(codes, cols.names, seconds, kwh, columns=columns, source_interval=source)
        except InvalidInputError as err:
            if keep is None:
                raise
            raise _at_input_rows(err, keep) from None
        rows = raw["readings"]
        if source is not None and source != self.get_params()["interval_minutes"]:
            readings = pd.DataFrame(
                {
                    client_col: uniques.take(rows["client"].astype(np.intp)),
                    time_col: rows["timestamp"].astype("datetime64[s]"),
                    value_col: rows["kwh"],
                }
            )
        elif keep is not None:
            # An autumn clock change's repeated local hour: one row (the earlier), the mean of both.
            readings = df.iloc[keep].copy()
            readings[value_col] = kwh
        else:
            readings = df.copy()
        readings["is_anomaly"] = rows["is_anomaly"]
        readings["types"] = _TYPES_BY_MASK[rows["types"]]
        readings["score"] = rows["score"]
        readings["severity"] = pd.Categorical.from_codes(rows["severity"].astype(np.int8), dtype=_SEVERITY_DTYPE)
        clients_df = pd.DataFrame(raw["clients"])
        monthly_df = pd.DataFrame(raw["monthly"])
        monthly_df["rules"] = _TYPES_BY_MASK[monthly_df["rules"].to_numpy(dtype=np.intp)]
        ep = raw["episodes"]
        episodes_df = pd.DataFrame({
            "client": ep["client"], "type": ep["type"],
            "start": ep["start"].astype("datetime64[s]"), "end": ep["end"].astype("datetime64[s]"),
            "n_readings": ep["n_readings"], "peak_score": ep["peak_score"],
            "peak_severity": pd.Categorical.from_codes(ep["peak_severity"].astype(np.int8), dtype=_SEVERITY_DTYPE),
            "kwh_above_baseline": ep["kwh_above_baseline"],
        })  # fmt: skip
        return ConsumptionResult(readings=readings, clients=clients_df, monthly=monthly_df, episodes=episodes_df)

    def detect(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Flags every reading: ``df`` (same index and order) plus ``is_anomaly``, ``types``, ``score``, ``severity``."""
        return self.analyze(df, **columns).readings

    def monthly(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Per client and calendar month: totals, mean/min/max, anomaly and critical counts, night and peak means,
        score; and the month's ``suspicion``, ``suspicious``, ``rank``, episode counts and ``rules`` (module docs)."""
        return self.analyze(df, **columns).monthly

    def clients(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Per client: readings, anomalies (in total and by rule), critical and severe counts, max score, ``suspicious``."""
        return self.analyze(df, **columns).clients

    def episodes(self, df: pd.DataFrame, **columns: Any) -> pd.DataFrame:
        """Alerts: runs of one rule's flags per client (see :func:`episodes`)."""
        return self.analyze(df, **columns).episodes


@dataclass(frozen=True)
class ConsumptionResult:
    """Everything one run of the rules returns."""

    #: One row per scored reading.
    readings: pd.DataFrame
    #: One row per client, in client name order.
    clients: pd.DataFrame
    #: One row per client and month.
    monthly: pd.DataFrame
    #: One row per episode (a run of one rule's flags for one client):
    #: ``client``, ``type``, ``start``, ``end`` (exclusive), ``n_readings``,
    #: ``peak_score``, ``peak_severity``, ``kwh_above_baseline``.
    episodes: pd.DataFrame


@dataclass(frozen=True)
class _Columns:
    """The three columns as the core takes them."""

    codes: np.ndarray  # uint32 client codes into ``uniques``, one per row of df
    uniques: pd.Index  # the distinct clients, as given
    names: list[str]  # their text, for the core
    seconds: np.ndarray  # int64 local wall-clock seconds
    kwh: np.ndarray  # float64
    keep: np.ndarray | None  # rows of df left after merging repeated local hours (None: all)


# The core's largest reading (anomaly_core::consumption::MAX_KWH).
_MAX_KWH = 1e12

# A UTC offset ending ISO text, after the time of day ("...02:00:00+01:00", "...Z").
_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$")


def _wall_clock(value: Any) -> Any:
    """A time without its zone: the local wall clock it shows."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        return _OFFSET.sub(r"\1", value.strip())
    return value


def _times(raw_time: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """``(local wall-clock times, instants or None)``. Instants exist for zone-aware input
    (a tz-aware column, text with UTC offsets, aware datetimes): they tell the hour an
    autumn clock change repeats from a duplicated reading."""
    if isinstance(raw_time.dtype, pd.DatetimeTZDtype):
        return raw_time.dt.tz_localize(None), raw_time
    if pd.api.types.is_datetime64_any_dtype(raw_time.dtype):
        return raw_time, None
    try:
        times = pd.to_datetime(raw_time, errors="coerce", format="mixed")
    except ValueError:
        # Offsets that differ between rows: ISO text written across a DST change
        # ("+02:00" in summer, "+01:00" in winter), or datetimes in several zones.
        instants = pd.to_datetime(raw_time, errors="coerce", format="mixed", utc=True)
        walls = pd.to_datetime(raw_time.map(_wall_clock), errors="coerce", format="mixed")
        return walls, instants
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return times.dt.tz_localize(None), times
    return times, None


def _merge_repeated_hours(
    codes: np.ndarray, local: np.ndarray, instants: np.ndarray, kwh: np.ndarray, time_col: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rows of df kept, their kWh)`` once the readings of a client at the same local time but
    different instants (the hour an autumn clock change repeats) are merged; None without any.

    The kept row is the earliest of its group and holds the group's mean. A reading the core
    refuses (NaN, negative, above its maximum) is kept as it is instead, so the core names it.
    """
    repeated = pd.DataFrame({"c": codes, "t": local}).duplicated(keep=False).to_numpy()
    if not repeated.any():
        return None
    same_instant = pd.DataFrame({"c": codes, "u": instants}).duplicated().to_numpy()
    if same_instant.any():
        # The same instant twice is a duplicate, as in naive data.
        row = int(np.flatnonzero(same_instant)[0])
        first = int(np.flatnonzero((codes == codes[row]) & (instants == instants[row]))[0])
        raise input_error(TimestampError, f"{time_col} at row {row} duplicates row {first}", time_col, row)
    rows = np.flatnonzero(repeated)
    rows = rows[np.lexsort((instants[rows], local[rows], codes[rows]))]
    c, t = codes[rows], local[rows]
    starts = np.r_[True, (c[1:] != c[:-1]) | (t[1:] != t[:-1])]
    group = np.cumsum(starts) - 1
    values = kwh[rows]
    merged = np.bincount(group, weights=values) / np.bincount(group)  # NaN stays NaN
    kept = rows[starts]
    unusable = ~((values >= 0) & (values <= _MAX_KWH))
    if unusable.any():
        bad_groups, first_bad = np.unique(group[unusable], return_index=True)
        kept[bad_groups] = rows[unusable][first_bad]
        merged[bad_groups] = values[unusable][first_bad]
    out = kwh.copy()
    out[kept] = merged
    drop = np.zeros(len(kwh), dtype=bool)
    drop[rows] = True
    drop[kept] = False
    keep = np.flatnonzero(~drop)
    return keep, out[keep]


def _at_input_rows(err: AnomalyError, keep: np.ndarray) -> AnomalyError:
    """A core error about the merged readings, its rows renumbered as df's rows."""

    def renumber(match: re.Match[str]) -> str:
        position = int(match.group(1))
        return f"row {int(keep[position])}" if position < len(keep) else match.group(0)

    row = getattr(err, "row", None)
    row = int(keep[row]) if row is not None and row < len(keep) else row
    return input_error(type(err), re.sub(r"\brow (\d+)", renumber, str(err)), getattr(err, "field", None), row)


def _columns(df: pd.DataFrame, columns: tuple[str, str, str]) -> _Columns:
    """The three columns as the core takes them, naming any bad row; zone-aware times become
    local wall-clock times, with an autumn change's repeated hour merged (module docs)."""
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
    names = utf8_names(uniques, codes, client_col)

    raw_time = df[time_col]
    times, instants = _times(raw_time)
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
    codes = codes.astype(np.uint32)
    keep = None
    if instants is not None:
        utc = instants.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
        merged = _merge_repeated_hours(codes, seconds, utc, values, time_col)
        if merged is not None:
            keep, values = merged
            codes, seconds = codes[keep], seconds[keep]
    return _Columns(codes, pd.Index(uniques), names, seconds, values, keep)


def analyze(
    df: pd.DataFrame,
    *,
    client_col: str = "client_id",
    time_col: str = "timestamp",
    value_col: str = "kwh",
    interval: str | int = "1h",
    aggregate: str | int | None = None,
    preset: str | None = None,
    **params: Any,
) -> ConsumptionResult:
    """Runs the rules once; returns readings, clients, monthly and episodes frames.

    ``interval`` is the sampling interval of ``df``; ``aggregate`` (e.g.
    ``"1h"``) sums finer readings into complete buckets first. ``preset``
    (``"literal"`` or ``"calibrated"``, the default) picks a named
    parameter set; other keywords are rule parameters changed on top of it
    (see :func:`default_params`).

    Times are local wall-clock times. Zone-aware ones (a tz-aware column,
    text with UTC offsets, aware datetimes) are converted to the wall clock
    they show. Where an autumn clock change repeats a local hour, a client's
    two readings of that hour become one, the mean of both, on the earlier
    row: ``readings`` has one row fewer per client and change, and
    ``total_kwh`` counts that hour once. A spring change leaves a missing
    hour, which the rules allow. "Time zones and clock changes" in the
    module docs says why the mean and not the sum. A client id that UTF-8
    cannot hold (a lone surrogate from ``os.fsdecode``) is an
    InvalidInputError naming ``client_col`` and the row.
    """
    rules = ConsumptionRules.preset(preset or "calibrated", interval=interval if aggregate is None else aggregate, **params)
    source = None if aggregate is None else interval
    return rules.analyze(df, client_col=client_col, time_col=time_col, value_col=value_col, source_interval=source)


def detect(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Flags every reading; see :func:`analyze` for the keywords.

    Without ``aggregate``, returns ``df`` (same index and row order) plus
    ``is_anomaly``, ``types``, ``score`` and ``severity``, less the later
    reading of each local hour an autumn clock change repeats in zone-aware
    times (the earlier row then holds the mean of the two); with it, one row
    per aggregated reading, sorted by client and time.
    """
    return analyze(df, **kwargs).readings


def monthly(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Per client and calendar month aggregates; see :func:`analyze` for the keywords."""
    return analyze(df, **kwargs).monthly


def clients(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Per client summary with the ``suspicious`` flag; see :func:`analyze` for the keywords."""
    return analyze(df, **kwargs).clients


def episodes(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Alerts an analyst acts on; see :func:`analyze` for the keywords.

    Consecutive flagged readings of one client and one rule are one
    episode: a run continues across at most ``episode_gap`` (2) unflagged
    readings, and night use and plantations continue from night to night.
    Columns: ``client``, ``type``, ``start``, ``end`` (the end of the last
    flagged reading), ``n_readings``, ``peak_score``, ``peak_severity`` and
    ``kwh_above_baseline`` (the readings less the rules' usual level for
    each: the hour's mean for the literal rules, the slot median for the
    calibrated ones; negative for a meter reading too little). Sorted by
    client, then start.
    """
    return analyze(df, **kwargs).episodes


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
    # Sizes the core can take (it then checks their product) and a 64-bit seed.
    clients = whole_number(clients, "clients", low=1, high=2**32 - 1)
    days = whole_number(days, "days", low=1, high=2**32 - 1)
    seed = whole_number(seed, "seed")
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
