"""Country holidays as Prophet builds them from the ``holidays`` package.

``make_holidays_df(year_list, country)`` gives the frame Prophet 1.5 gives
(``ds``, ``holiday``; English names; one row per holiday and date) and
``get_holiday_names(country)`` every name the country uses in 1995-2044.
Both are cached: building a country's calendar costs 20-150 ms, and a
model asks for the same years on every fit and predict (cross-validation
fits dozens of models).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from anomaly.errors import ParameterError, TimestampError, input_error

__all__ = ["get_country_holidays_class", "get_holiday_names", "make_holidays_df"]

# The days nanosecond timestamps can hold (pandas' datetime64[ns]); see _features.NS_RANGE.
_FIRST_DAY, _LAST_DAY = np.datetime64("1677-09-22", "D"), np.datetime64("2262-04-11", "D")

# Prophet's alias: Turkey was "TU" before the holidays package used "TR".
_ALIASES = {"TU": "TR"}


def get_country_holidays_class(country: str) -> Any:
    """The ``holidays`` class for a country code or name (``"US"``, ``"UnitedStates"``)."""
    try:
        import holidays
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("country holidays need the holidays package: pip install holidays") from err
    code = _ALIASES.get(country, country)
    if not isinstance(code, str) or not hasattr(holidays, code):
        # Prophet raises AttributeError with this message; ours is a ParameterError naming the argument.
        raise input_error(ParameterError, f"Holidays in {country} are not currently supported!", "country_name")
    return getattr(holidays, code)


@lru_cache(maxsize=64)
def _names(country: str) -> frozenset[str]:
    calendar = get_country_holidays_class(country)(language="en_US", years=np.arange(1995, 2045))
    return frozenset(calendar.values())


def get_holiday_names(country: str) -> set[str]:
    """Every holiday name of ``country`` (1995-2044), as Prophet's ``get_holiday_names``."""
    return set(_names(country))


@lru_cache(maxsize=256)
def _table(country: str, years: tuple[int, ...], province: str | None) -> tuple[np.ndarray, np.ndarray]:
    calendar = get_country_holidays_class(country)(expand=False, language="en_US", subdiv=province, years=list(years))
    days: list[Any] = []
    names: list[str] = []
    for day in calendar:
        # A date can carry several holidays: one row each, as Prophet's explode.
        for name in calendar.get_list(day):
            days.append(day)
            names.append(name)
    day_array = np.array(days, dtype="datetime64[D]")
    # Days nanoseconds cannot hold (New Year 1677, Christmas 2262) would wrap into another
    # century; no timestamp can fall on them, so they are left out.
    inside = (day_array >= _FIRST_DAY) & (day_array <= _LAST_DAY)
    ns = day_array[inside].astype("datetime64[ns]").astype(np.int64)
    out_names = np.array(names, dtype=object)[inside]
    ns.flags.writeable = False
    out_names.flags.writeable = False
    return ns, out_names


def holiday_table(country: str, years: Any, province: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(ds as int64 ns, names)`` of a country's holidays in ``years`` (read-only, cached)."""
    return _table(country, tuple(int(y) for y in years), province)


def make_holidays_df(year_list: Any, country: str, province: str | None = None, state: str | None = None) -> pd.DataFrame:
    """Prophet's holidays frame (``ds``, ``holiday``) for ``country`` in ``year_list``; a year
    outside 1677-2262 (which nanosecond timestamps cannot hold) is a TimestampError."""
    years = [int(y) for y in year_list]
    outside = [y for y in years if not 1677 <= y <= 2262]
    if outside:
        message = f"year_list: {outside[0]} is outside the supported range 1677-09-22 to 2262-04-11"
        raise input_error(TimestampError, message, "year_list")
    ns, names = holiday_table(country, years, province)
    return pd.DataFrame({"ds": ns.view("datetime64[ns]").copy(), "holiday": names.copy()})
