"""anomaly.consumption: pandas API, errors, persistence, CLI parity, properties."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anomaly
from anomaly import consumption

SEVERITY_ORDER = ["normal", "baja", "media", "alta", "crítica"]


def test_detect_keeps_rows_index_and_extra_columns(readings: pd.DataFrame) -> None:
    df = readings.sample(frac=1.0, random_state=1).set_index(pd.RangeIndex(1000, 1000 + len(readings)))
    df["site"] = "north"
    out = consumption.detect(df)
    assert out.index.equals(df.index)
    assert list(out.columns) == [*df.columns, "is_anomaly", "types", "score", "severity"]
    assert (out["site"] == "north").all()
    assert out["severity"].dtype == pd.CategoricalDtype(SEVERITY_ORDER, ordered=True)
    assert out["is_anomaly"].dtype == bool
    assert out["types"].map(lambda t: isinstance(t, tuple)).all()
    # Shuffling rows changes nothing but their order.
    ref = consumption.detect(readings)
    back = out.sort_values(["client_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back.drop(columns="site"), ref, check_like=False)


def test_flags_are_consistent(readings: pd.DataFrame) -> None:
    out = consumption.detect(readings)
    assert out["score"].between(0, 1).all()
    assert (out["is_anomaly"] == (out["score"] >= 0.5)).all()
    assert (out["is_anomaly"] == out["types"].map(len).gt(0)).all()
    assert (out.loc[out["is_anomaly"], "severity"] != "normal").all()
    assert set(t for ts in out["types"] for t in ts) <= set(consumption.ANOMALY_TYPES)


@pytest.mark.parametrize("preset", ["literal", "calibrated"])
def test_injected_events_are_found(readings: pd.DataFrame, preset: str) -> None:
    df, events = consumption.simulate(clients=40, days=60, seed=11, anomaly_rate=0.5)
    flags = consumption.detect(df, preset=preset)
    if preset == "calibrated":
        # Calibrated on each client's own tail, a 3-5x spike of an ordinary
        # household is mostly not flagged (by design: README's recall curve);
        # plantations and flat meters all are.
        events = events[events.kind != "spike"]
    found = 0
    for ev in events.itertuples():
        window = flags[(flags.client_id == ev.client_id) & (flags.timestamp >= ev.start) & (flags.timestamp < ev.end)]
        if ev.kind == "spike":
            # A simulated spike is 3-5x the usual level: flagged, though at
            # night or after a high reading the rule that fires may be
            # outlier or night_use rather than a "jump".
            found += bool(window["is_anomaly"].any())
        else:
            found += bool(window["types"].map(lambda t, k=ev.kind: k in t).any())
    assert len(events) > 10
    assert found == len(events)


def test_clients_and_monthly_frames(readings: pd.DataFrame) -> None:
    result = consumption.analyze(readings)
    clients, monthly = result.clients, result.monthly
    assert list(clients["client"]) == sorted(readings["client_id"].unique())
    assert clients["n_readings"].sum() == len(readings)
    assert clients["n_anomalies"].sum() == result.readings["is_anomaly"].sum()
    assert {"suspicious", "n_plantation", "n_flat", "n_critical", "max_score"} <= set(clients.columns)
    # Monthly totals agree with pandas on the same readings.
    r = readings.assign(year=readings.timestamp.dt.year, month=readings.timestamp.dt.month)
    expected = r.groupby(["client_id", "year", "month"])["kwh"].agg(["sum", "mean", "min", "max", "size"]).reset_index()
    got = monthly.rename(columns={"client": "client_id"})
    merged = expected.merge(got, on=["client_id", "year", "month"])
    assert len(merged) == len(expected) == len(monthly)
    np.testing.assert_allclose(merged["sum"], merged["total_kwh"], rtol=1e-12)
    np.testing.assert_allclose(merged["mean"], merged["mean_kwh"], rtol=1e-12)
    assert (merged["min"] == merged["min_kwh"]).all() and (merged["max"] == merged["max_kwh"]).all()
    assert (merged["size"] == merged["n_readings"]).all()
    night = r[r.timestamp.dt.hour < 6].groupby(["client_id", "year", "month"])["kwh"].mean().rename("night").reset_index()
    merged = merged.merge(night, on=["client_id", "year", "month"])
    np.testing.assert_allclose(merged["night"], merged["night_mean_kwh"], rtol=1e-12)
    assert monthly["score"].between(0, 1).all()


def test_custom_column_names_and_datetime_strings(readings: pd.DataFrame) -> None:
    df = readings.rename(columns={"client_id": "cliente", "timestamp": "fecha", "kwh": "consumo"})
    df["fecha"] = df["fecha"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    out = consumption.detect(df, client_col="cliente", time_col="fecha", value_col="consumo")
    ref = consumption.detect(readings)
    np.testing.assert_array_equal(out["score"].to_numpy(), ref["score"].to_numpy())


def test_integer_client_ids_and_tz_aware_times(readings: pd.DataFrame) -> None:
    df = readings.copy()
    df["client_id"] = df["client_id"].str[1:].astype(int)
    df["timestamp"] = df["timestamp"].dt.tz_localize("Australia/Sydney", ambiguous="NaT", nonexistent="NaT")
    df = df.dropna(subset=["timestamp"])
    out = consumption.analyze(df)
    assert out.readings["client_id"].dtype == df["client_id"].dtype
    assert out.clients["client"].tolist() == sorted(str(c) for c in df["client_id"].unique())


def test_half_hourly_aggregation_matches_pandas() -> None:
    df, _ = consumption.simulate(clients=3, days=20, interval="30min", seed=5)
    df = df.drop(index=[7, 100])  # two missing half-hours: their hours are dropped
    out = consumption.detect(df, interval="30min", aggregate="1h")
    hours = df.assign(hour=df.timestamp.dt.floor("h")).groupby(["client_id", "hour"])["kwh"].agg(["sum", "size"])
    hours = hours[hours["size"] == 2].reset_index()
    assert len(out) == len(hours)
    np.testing.assert_allclose(out["kwh"].to_numpy(), hours["sum"].to_numpy(), rtol=1e-12)
    assert (out["timestamp"].to_numpy() == hours["hour"].to_numpy()).all()
    native = consumption.detect(df, interval="30min")
    assert len(native) == len(df)


# --- bad input: every path gets a typed error naming the field and row -------------------------


def _one_client(n: int = 48) -> pd.DataFrame:
    return pd.DataFrame(
        {"client_id": "a", "timestamp": pd.date_range("2024-01-01", periods=n, freq="h"), "kwh": np.linspace(0.1, 1, n)}
    )


@pytest.mark.parametrize(
    ("mutate", "error", "field", "row"),
    [
        (lambda d: d.assign(kwh=d.kwh.where(d.index != 5, np.nan)), anomaly.NonFiniteError, "kwh", 5),
        (lambda d: d.assign(kwh=d.kwh.where(d.index != 6, np.inf)), anomaly.NonFiniteError, "kwh", 6),
        (lambda d: d.assign(kwh=d.kwh.where(d.index != 7, -0.5)), anomaly.NegativeValueError, "kwh", 7),
        (lambda d: d.assign(kwh=d.kwh.astype(object).where(d.index != 8, "n/a")), anomaly.NumberError, "kwh", 8),
        (lambda d: d.assign(timestamp=d.timestamp.astype(str).where(d.index != 9, "yesterday")), anomaly.TimestampError, "timestamp", 9),
        (lambda d: pd.concat([d, d.iloc[[3]]], ignore_index=True), anomaly.TimestampError, "timestamp", 48),
        (lambda d: d.assign(timestamp=d.timestamp + pd.to_timedelta((d.index == 10).astype(int) * 30, unit="min")), anomaly.TimestampError, "timestamp", 10),
        (lambda d: d.assign(client_id=d.client_id.where(d.index != 4, None)), anomaly.ColumnError, "client_id", 4),
        (lambda d: d.drop(columns="kwh"), anomaly.ColumnError, "kwh", None),
        (lambda d: d.iloc[:0], anomaly.EmptyInputError, "readings", None),
    ],
    ids=["nan", "inf", "negative", "not-a-number", "bad-timestamp", "duplicate", "off-grid", "missing-client", "no-column", "empty"],
)
def test_bad_input_names_field_and_row(mutate, error, field, row) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        consumption.detect(mutate(_one_client()))
    assert isinstance(info.value, ValueError) and isinstance(info.value, anomaly.AnomalyError)
    assert info.value.field == field
    assert info.value.row == row
    if row is not None:
        assert f"row {row}" in str(info.value)


def test_unsorted_input_is_fine_but_duplicates_name_both_rows() -> None:
    df = _one_client().iloc[::-1].reset_index(drop=True)
    assert len(consumption.detect(df)) == 48
    dup = pd.concat([df, df.iloc[[10]]], ignore_index=True)
    with pytest.raises(anomaly.TimestampError, match="row 48 duplicates row 10"):
        consumption.detect(dup)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zscore_threshold": -1}, "zscore_threshold"),
        ({"night_band": (5, 5)}, "night_band"),
        ({"severity_alta": 0.55}, "severity_alta"),
        ({"interval": "7min"}, "interval_minutes"),
        ({"interval": "soon"}, "interval"),
        ({"zscore": 3}, "zscore"),
    ],
)
def test_bad_parameters_name_the_parameter(params, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(anomaly.ParameterError) as info:
        consumption.ConsumptionRules(**params)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"interval": "10x"}, "interval", "'10x'"),
        ({"interval": "99999999999999999999d"}, "interval", "too large"),
        ({"interval": "99999999h"}, "interval", "too large"),
        ({"interval": "90s"}, "interval", "whole number of minutes"),
        ({"interval": 0}, "interval", "whole number of minutes"),
        ({"interval": 1.5}, "interval", "expected a duration"),
        ({"night_band": "22"}, "night_band", "START-END"),
        ({"night_band": "x-6"}, "night_band", "START-END"),
        ({"peak_band": "0-24"}, "peak_band", "whole day"),
    ],
)
def test_interval_and_band_errors_come_from_the_core(params, field, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(anomaly.ParameterError) as info:
        consumption.ConsumptionRules(**params)
    assert isinstance(info.value, anomaly.AnomalyError)
    assert info.value.field == field
    message = str(info.value).replace('"', "'")
    assert field in message and fragment in message, message


@pytest.mark.parametrize(
    ("interval", "minutes"),
    [("30m", 30), ("30min", 30), ("1h", 60), ("1h30m", 90), (45, 45), ("15", 15), (pd.Timedelta("2h"), 120)],
)
def test_interval_forms(interval, minutes) -> None:  # type: ignore[no-untyped-def]
    assert anomaly._anomaly.parse_minutes("interval", str(minutes)) == minutes
    assert consumption._minutes(interval, "interval") == minutes
    assert consumption.ConsumptionRules(interval="30m").get_params()["interval_minutes"] == 30


def test_band_string_goes_through_the_core() -> None:
    rules = consumption.ConsumptionRules(night_band=" 22 - 6 ", peak_band="18-22")
    assert rules.get_params()["night_band"] == (22, 6)
    assert anomaly._anomaly.parse_hour_band("night_band", "0-6") == (0, 6)


def test_not_a_dataframe() -> None:
    with pytest.raises(TypeError):
        consumption.detect([1, 2, 3])  # type: ignore[arg-type]


# --- persistence --------------------------------------------------------------------------------


def test_rules_pickle_and_bytes_round_trip(readings: pd.DataFrame) -> None:
    rules = consumption.ConsumptionRules(zscore_threshold=3.5, night_band="22-6", interval="1h")
    again = pickle.loads(pickle.dumps(rules))
    assert again.get_params() == rules.get_params()
    assert again.get_params()["night_band"] == (22, 6)
    pd.testing.assert_frame_equal(again.detect(readings), rules.detect(readings))
    blob = rules.to_bytes()
    header = json.loads(blob)
    assert header["format"] == "anomaly-model" and header["kind"] == "consumption_rules"
    assert header["version"] == anomaly._anomaly.MODEL_FORMAT_VERSION
    assert consumption.ConsumptionRules.from_bytes(blob).get_params() == rules.get_params()


@pytest.mark.parametrize(
    "blob",
    [
        b"not json",
        b'{"format":"anomaly-model","version":99,"kind":"consumption_rules","model":{}}',
        b'{"format":"anomaly-model","version":1,"kind":"isolation_forest","model":{}}',
        b'{"format":"anomaly-model","version":1,"kind":"consumption_rules","model":{"zscore_threshold":-3}}',
    ],
    ids=["garbage", "newer", "other-kind", "invalid-params"],
)
def test_corrupt_model_files_raise_typed_errors(blob: bytes) -> None:
    with pytest.raises(anomaly.AnomalyError):
        consumption.ConsumptionRules.from_bytes(blob)


# --- the CLI gives the same answers as Python ---------------------------------------------------


def test_cli_matches_python(tmp_path, cli, readings: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "readings.csv"
    readings.to_csv(src, index=False)
    flags, monthly, clients = tmp_path / "flags.csv", tmp_path / "monthly.csv", tmp_path / "clients.csv"
    proc = subprocess.run(
        [cli, "consumption", "detect", "-i", src, "-o", flags, "--monthly", monthly, "--clients", clients, "--json", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(proc.stdout)
    py = consumption.analyze(pd.read_csv(src))
    got = pd.read_csv(flags, keep_default_na=False)
    assert summary["readings"] == len(readings) and summary["anomalies"] == int(py.readings["is_anomaly"].sum())
    np.testing.assert_array_equal(got["score"].to_numpy(), py.readings["score"].to_numpy())
    np.testing.assert_array_equal(got["is_anomaly"].to_numpy(), py.readings["is_anomaly"].to_numpy())
    assert got["types"].tolist() == [";".join(t) for t in py.readings["types"]]
    assert got["severity"].tolist() == py.readings["severity"].astype(str).tolist()
    cli_monthly = pd.read_csv(monthly)
    np.testing.assert_array_equal(cli_monthly["score"].to_numpy(), py.monthly["score"].to_numpy())
    np.testing.assert_array_equal(cli_monthly["total_kwh"].to_numpy(), py.monthly["total_kwh"].to_numpy())
    for column in ("suspicion", "suspicious", "rank", "n_episodes", "n_severe_episodes"):
        np.testing.assert_array_equal(cli_monthly[column].to_numpy(), py.monthly[column].to_numpy())
    assert cli_monthly["rules"].fillna("").tolist() == [";".join(r) for r in py.monthly["rules"]]
    cli_clients = pd.read_csv(clients)
    assert cli_clients["suspicious"].tolist() == py.clients["suspicious"].tolist()


def test_cli_bad_input_exits_2_naming_the_line(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "bad.csv"
    src.write_text("client_id,timestamp,kwh\na,2024-01-01 00:00:00,1.0\na,2024-01-01 01:00:00,-3\n")
    proc = subprocess.run([cli, "consumption", "detect", "-i", src, "-o", tmp_path / "o.csv"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "kwh at row 1 is negative" in proc.stderr and "line 3" in proc.stderr


def test_cli_presets(tmp_path, cli, readings: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """`--preset literal` is the literal rules, `params --preset` writes them,
    and an unknown preset (or one beside --params) is bad input, exit 2."""
    src = tmp_path / "readings.csv"
    readings.to_csv(src, index=False)
    out = subprocess.run([cli, "consumption", "params", "--preset", "literal"], capture_output=True, text=True, check=True)
    (tmp_path / "literal.json").write_text(out.stdout)
    assert json.loads(out.stdout)["model"]["method"] == "literal"
    for flags in (["--preset", "literal"], ["--params", str(tmp_path / "literal.json")]):
        subprocess.run([cli, "consumption", "detect", "-i", src, "-o", tmp_path / "f.csv", "-q", *flags], check=True)
        got = pd.read_csv(tmp_path / "f.csv", keep_default_na=False)
        np.testing.assert_array_equal(got["score"].to_numpy(), consumption.detect(readings, preset="literal")["score"].to_numpy())
    for flags in (["--preset", "strict"], ["--preset", "literal", "--params", str(tmp_path / "literal.json")]):
        proc = subprocess.run([cli, "consumption", "detect", "-i", src, "-o", tmp_path / "f.csv", *flags],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 2 and "preset" in proc.stderr, proc.stderr


def test_cli_non_utf8_client_ids_are_bad_input_not_one_merged_client(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    # Issue 15: read lossily, every non-UTF-8 id became "" and their readings merged.
    src = tmp_path / "latin1.csv"
    src.write_bytes("client_id,timestamp,kwh\nJosé,2024-01-01 00:00:00,1.0\nMaría,2024-01-01 00:00:00,2.0\n".encode("latin-1"))
    proc = subprocess.run([cli, "consumption", "detect", "-i", src, "-o", tmp_path / "o.csv"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "client_id at row 0" in proc.stderr and "not UTF-8" in proc.stderr


# --- the GIL is released during the Rust work ---------------------------------------------------


def test_gil_is_released_while_detecting() -> None:
    df, _ = consumption.simulate(clients=2000, days=30, seed=1)
    rules = consumption.ConsumptionRules()
    ticks = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    codes, uniques = pd.factorize(df["client_id"])
    seconds = df["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)
    kwh = df["kwh"].to_numpy()
    names = [str(u) for u in uniques]
    thread = threading.Thread(target=ticker)
    thread.start()
    start = time.perf_counter()
    rules._rules.detect(codes.astype(np.uint32), names, seconds, kwh)
    end = time.perf_counter()
    done.set()
    thread.join()
    inside = [t for t in ticks if start < t < end]
    # With the GIL held the ticker could not run at all during the call.
    assert len(inside) >= 3, f"{len(inside)} ticks during {end - start:.3f}s"


# --- properties ----------------------------------------------------------------------------------


@st.composite
def small_readings(draw: st.DrawFn) -> pd.DataFrame:
    n_clients = draw(st.integers(1, 3))
    days = draw(st.integers(8, 12))
    frames = []
    for c in range(n_clients):
        values = draw(
            st.lists(st.floats(0, 5, allow_nan=False, allow_infinity=False), min_size=days * 24, max_size=days * 24)
        )
        frames.append(
            pd.DataFrame(
                {"client_id": f"c{c}", "timestamp": pd.date_range("2024-03-01", periods=days * 24, freq="h"), "kwh": values}
            )
        )
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(df=small_readings(), seed=st.integers(0, 1000))
def test_properties_hold_for_any_readings(df: pd.DataFrame, seed: int) -> None:
    out = consumption.detect(df)
    assert out["score"].between(0, 1).all()
    ranked = out.sort_values("score")
    assert ranked["severity"].cat.codes.is_monotonic_increasing
    shuffled = df.sample(frac=1.0, random_state=seed)
    again = consumption.detect(shuffled).loc[df.index]
    np.testing.assert_array_equal(again["score"].to_numpy(), out["score"].to_numpy())
    # Appending later readings never changes earlier results.
    first, last = df["timestamp"].min(), df["timestamp"].max()
    cut = (first + (last - first) * 2 / 3).floor("h")
    early = consumption.detect(df[df["timestamp"] < cut])
    np.testing.assert_array_equal(early["score"].to_numpy(), out.loc[early.index, "score"].to_numpy())


def test_readme_style_csv_round_trip(readings: pd.DataFrame) -> None:
    buf = io.StringIO()
    readings.to_csv(buf, index=False)
    buf.seek(0)
    from_csv = consumption.detect(pd.read_csv(buf))
    np.testing.assert_array_equal(from_csv["score"].to_numpy(), consumption.detect(readings)["score"].to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"clients": 10**12}, "clients"), ({"clients": -1}, "clients"), ({"days": 10**9}, "clients"),
     ({"clients": 2**70}, "clients"), ({"days": 0}, "days"), ({"clients": 2.5}, "clients")],  # fmt: skip
)
def test_simulate_refuses_sizes_it_cannot_hold_before_allocating(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(anomaly.ParameterError) as err:
        consumption.simulate(**{"clients": 3, "days": 10, **kwargs})
    assert err.value.field == field  # type: ignore[attr-defined]
