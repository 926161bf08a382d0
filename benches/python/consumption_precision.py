"""Precision and recall of the Rust consumption rules on real households,
``method="calibrated"`` against ``method="literal"``.

What it measures: the installed ``anomaly.consumption`` (the Rust core), run
through the evaluation harness of consumption_calibrated_reference.py (the
real-household injection protocol of docs/consumption_calibrated.md sections
8 and 10, on the 10 SGSC households). Only the detector changes; the data,
the injections and every metric come from the harness:

* hourly readings: flag and alta+crítica rates on untouched readings (clean
  series, the test protocol, the 18 extended runs), episodes per
  client-month on the clean series, event recall (plantation and flat: an
  episode of that type with peak severity >= alta; spikes: the x2.5 spike
  reading flagged spike or outlier), suspicious client-months (the
  harness's ``client_months``, design section 5) untouched and injected;
* the spike recall curve: x2.5, x5, x10 the usual level and 1.0 / 1.5 / 2.0
  x the client's 28-day maximum, flagged (spike|outlier) and alta+;
* daily meters (``interval="1d"``): flag and alta+ rates, flat recall at
  alta+, the spike curve.

Episodes are the Rust ones (``analyze(...).episodes``, the end made
inclusive as the harness's); each run also recomputes them with the
harness's ``episodes`` from the same flags and reports any difference
(``--harness-episodes`` uses the harness's instead). A short check compares
the Rust calibrated scores with the numpy reference on the clean series.

Run:  .venv/bin/python benches/python/consumption_precision.py [--quick] [--json PATH] [--harness-episodes]

Needs ../shared/data (the SGSC file under energy/, relative to the repo
root) as the harness does. Injected series are cached in the harness's
cache directory ($CALIBRATED_CACHE, default /tmp/consumption_calibrated_cache)
and reused between runs. Prints README-ready markdown on stdout (progress on
stderr) and the wall time: about 1 minute on 2 cores (70 s with an empty
cache), the quick mode about 35 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import consumption_calibrated_reference as H  # noqa: E402

from anomaly import consumption  # noqa: E402

METHODS = ("calibrated", "literal")
HOURLY_P = H.Params()
# As the harness's main(): the daily settings (the Rust rules take daily_calibration_days themselves).
DAILY_P = H.Params(interval_minutes=1440, calibration_days=364, calibration_min_days=56)

_harness_episodes = H.episodes
_last: dict = {}            # the last detection: its flags and the Rust episodes, for the hook below
_agreement: dict = defaultdict(lambda: defaultdict(int))
USE_RUST_EPISODES = True


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the Rust detector, in the harness's format
def rust_detect(df: pd.DataFrame, method: str, interval: str, key: str) -> pd.DataFrame:
    """One analyze() call; flags as the harness's detect() returns them (client_id, timestamp,
    kwh, mask, score, sev, is_anomaly, base), Rust episodes kept for the episodes hook."""
    res = consumption.analyze(df, method=method, interval=interval)
    r = res.readings
    bits = {t: 1 << k for k, t in enumerate(H.TYPES)}
    mask_by = {ts: sum(bits[t] for t in ts) for ts in set(r["types"])}
    fl = pd.DataFrame({"client_id": r["client_id"].to_numpy(), "timestamp": pd.to_datetime(r["timestamp"]).to_numpy(),
                       "kwh": r["kwh"].to_numpy(), "mask": np.fromiter((mask_by[t] for t in r["types"]), np.int64, len(r)),
                       "score": r["score"].to_numpy(), "base": np.nan})
    fl["is_anomaly"] = fl["mask"] > 0
    fl["sev"] = r["severity"].cat.codes.to_numpy().astype(np.int64)
    fl = fl.sort_values(["client_id", "timestamp"], kind="stable").reset_index(drop=True)
    _last.clear()
    _last.update(fl=fl, ep=res.episodes, key=key, step=pd.Timedelta(interval))
    return fl


def rust_episodes_as_harness(ep: pd.DataFrame, fl: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """Rust episodes in the harness's columns; the end (exclusive in Rust) becomes the last reading's time."""
    ids = {str(c): c for c in pd.unique(fl["client_id"])}
    unit = fl["timestamp"].dtype
    return pd.DataFrame({
        "start": ep["start"].astype(unit).to_numpy(), "end": (ep["end"] - step).astype(unit).to_numpy(),
        "n": ep["n_readings"].astype(np.int64).to_numpy(), "peak_score": ep["peak_score"].to_numpy(),
        "peak_sev": ep["peak_severity"].cat.codes.astype(np.int64).to_numpy(),
        "kwh_above_baseline": ep["kwh_above_baseline"].to_numpy(),
        "client_id": ep["client"].map(ids).to_numpy(), "type": ep["type"].to_numpy(),
    })  # fmt: skip


def compare_episodes(rust: pd.DataFrame, ref: pd.DataFrame, key: str) -> None:
    """Counts episodes that differ (start, end, n, peak severity or peak score) between the two."""
    cols = ["client_id", "type", "start"]
    m = rust.merge(ref, on=cols, how="outer", suffixes=("_r", "_h"), indicator=True)
    both = m["_merge"] == "both"
    same = both & (m["end_r"] == m["end_h"]) & (m["n_r"] == m["n_h"]) & (m["peak_sev_r"] == m["peak_sev_h"]) & \
        np.isclose(m["peak_score_r"], m["peak_score_h"], rtol=0, atol=1e-12)
    a = _agreement[key]
    a["rust"] += len(rust)
    a["harness"] += len(ref)
    a["identical"] += int(same.sum())
    for t, n in m.loc[~same, "type"].value_counts().items():
        a["differing_" + t] += int(n)
    # alta+ episodes are what the metrics use
    a["rust_alta+"] += int((rust["peak_sev"] >= 3).sum())
    a["harness_alta+"] += int((ref["peak_sev"] >= 3).sum())


def episodes_hook(fl: pd.DataFrame, p: H.Params) -> pd.DataFrame:
    """Replaces the harness's `episodes` (evaluate() calls it right after each detection)."""
    ref = _harness_episodes(fl, p)
    if _last.get("fl") is not fl:
        return ref
    rust = rust_episodes_as_harness(_last["ep"], fl, _last["step"])
    compare_episodes(rust, ref, _last["key"])
    return rust if USE_RUST_EPISODES else ref


H.episodes = episodes_hook


# ----------------------------------------------------------------------------- consistency checks
def reference_check() -> dict:
    """Rust calibrated vs the numpy reference, and this adapter vs the harness's literal_detect, on the clean series."""
    out = {}
    clean = H.hourly()
    for name, df, p, interval in (("hourly", clean, HOURLY_P, "1h"), ("daily", H.daily(clean), DAILY_P, "1d")):
        ref = H.detect(df, p)
        rs = rust_detect(df, "calibrated", interval, "check")
        out[f"calibrated_vs_reference_{name}"] = {
            "readings": len(rs), "mask_differs": int((ref["mask"].to_numpy() != rs["mask"].to_numpy()).sum()),
            "sev_differs": int((ref["sev"].to_numpy() != rs["sev"].to_numpy()).sum()),
            "max_abs_score_diff": float(np.max(np.abs(ref["score"].to_numpy() - rs["score"].to_numpy())))}
        lit = H.literal_detect(df, interval)
        rl = rust_detect(df, "literal", interval, "check")
        out[f"literal_vs_harness_literal_detect_{name}"] = {
            "mask_differs": int((lit["mask"].to_numpy() != rl["mask"].to_numpy()).sum()),
            "max_abs_score_diff": float(np.max(np.abs(lit["score"].to_numpy() - rl["score"].to_numpy())))}
    _last.clear()
    return out


def extended_event_counts(quick: bool) -> dict:
    """Events per kind in the extended runs evaluated (read back from the harness's cache)."""
    n = defaultdict(int)
    clean = H.hourly()
    for j, sc in enumerate(H.extended_scenarios()):
        if quick and j % 3:
            continue
        _, ev = H.cached(f"ext{j}", lambda sc=sc: H.inject(clean, plantation=sc["plantation"], flat=sc["flat"]))
        for k, v in ev["kind"].value_counts().items():
            n[k] += int(v)
    return dict(n)


# ----------------------------------------------------------------------------- markdown
def pct(x: float, d: int = 2) -> str:
    return f"{100 * x:.{d}f} %"


def frac(x: float, n: int | None = None) -> str:
    return f"{x:.3f}" + (f" ({int(round(x * n))}/{n})" if n else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def markdown(res: dict, quick: bool, counts: dict) -> str:
    hr, dr = res["hourly"], res["daily"]
    out = []
    mode = "quick mode: 6 of the 18 extended runs" if quick else "18 extended runs"
    out.append(f"### Hourly readings (10 SGSC households, {mode})\n")
    out.append("Untouched = the extended runs' readings outside every injection and its 28-day tail (2-day tail for spikes). "
               "Recall: plantation and flat = an episode of that type at alta+ overlapping the event; spike = the x2.5 "
               "reading (usual >= 0.4 kWh) flagged spike or outlier. Client-months: the §5 score, suspicious at >= 0.5.\n")
    rows = []
    for m in METHODS:
        R = hr[m]
        u = R["extended_untouched"]
        cm = R["extended_client_months"]
        rk = R["extended_recall_by_kind"]
        inj = [cm.get(k, {"suspicious": float("nan"), "n": 0}) for k in ("injected_flat", "injected_plantation")]
        n_inj = sum(c["n"] for c in inj)
        s_inj = sum(c["suspicious"] * c["n"] for c in inj) / n_inj if n_inj else float("nan")
        sp = R["spike_curve"]["usualx2.5 (usual>=0.4)"]
        rows.append([m, pct(u["flag_rate"]), pct(u["alta_critica_rate"], 3), f"{R['clean_episodes_per_client_month']:.2f}",
                     frac(rk["plantation"]["caught"], counts.get("plantation")), frac(rk["flat"]["caught"], counts.get("flat")),
                     frac(sp["spike|outlier"], sp["n"]),
                     pct(cm["untouched"]["suspicious"], 1) + f" (of {cm['untouched']['n']})",
                     pct(s_inj, 1) + f" (of {n_inj}; flat {pct(inj[0]['suspicious'], 1)}, plantation {pct(inj[1]['suspicious'], 1)})"])
    out.append(table(["method", "flagged, untouched", "alta+crít, untouched", "episodes / client-month (clean)",
                      "plantation recall", "flat recall", "spike x2.5 recall", "suspicious untouched months",
                      "suspicious injected months"], rows))
    out.append("\nFlag and alta+crítica rates on every untouched set:\n")
    rows = []
    for label, key, ncol in (("clean series, all readings", "clean_all", None),
                             ("clean, excluding pre-existing flat runs >= 24 h", "clean_excl_preexisting_flat_runs", None),
                             ("test protocol, untouched", "test_protocol_untouched", None),
                             ("extended runs, untouched", "extended_untouched", None)):
        cells = [label, f"{hr['calibrated'][key]['readings']:,}"]
        for m in METHODS:
            s = hr[m][key]
            cells += [pct(s["flag_rate"]), pct(s["alta_critica_rate"], 3)]
        rows.append(cells)
    out.append(table(["set", "readings", "calibrated flagged", "calibrated alta+", "literal flagged", "literal alta+"], rows))
    out.append("\nBy rule on the clean series (share of readings; episodes per client-month):\n")
    rows = []
    for t in H.TYPES:
        rows.append([t] + [f"{pct(hr[m]['clean_all']['by_type'][t], 3)}; {hr[m]['clean_episodes_per_client_month_by_type'][t]:.3f}"
                           for m in METHODS])
    rows.append(["suspicious client-months (clean)"] + [pct(hr[m]["clean_suspicious_client_months"], 1) for m in METHODS])
    out.append(table(["rule", "calibrated", "literal"], rows))
    out.append("\nExtended runs, recall by variant (alta+ episode; any flag of that type):\n")
    var = {m: {(r["kind"], r["variant"]): r for r in hr[m]["extended_recall_by_variant"]} for m in METHODS}
    rows = []
    for k in sorted(var["calibrated"]):
        rows.append([f"{k[0]} {k[1]}"] + [f"{float(var[m][k]['caught']):.3f}; {float(var[m][k]['any']):.3f}" for m in METHODS])
    tp = {m: hr[m]["test_protocol_recall"] for m in METHODS}
    for kind in ("plantation", "flat", "spike"):
        rows.append([f"test protocol {kind} (n={tp['calibrated'][kind]['n']})"] +
                    [f"{tp[m][kind]['caught(alta+ episode / spike|outlier)']:.3f}; {tp[m][kind]['any_flag']:.3f}" for m in METHODS])
    out.append(table(["variant", "calibrated", "literal"], rows))
    out.append("\n### Spike recall by size (hourly)\n")
    out.append("Flagged = the spike reading flagged spike or outlier; alta+ = its severity. usual = max(reading, previous, "
               "same-hour median of the week before, 28-day mean); recent max = the largest reading of the 28 days before.\n")
    rows = []
    for mode, f in H.SPIKE_CURVE:
        name = f"{f:g} x usual + 0.05" if mode == "usual" else f"{f:g} x recent max"
        cells = [name]
        for mu in (0.4, 0.0):
            for m in METHODS:
                c = hr[m]["spike_curve"][f"{mode}x{f} (usual>={mu})"]
                cells.append(f"{c['spike|outlier']:.3f} / {c['alta+']:.3f}")
        cells.append(str(hr["calibrated"]["spike_curve"][f"{mode}x{f} (usual>=0.4)"]["n"]))
        rows.append(cells)
    out.append(table(["injected size", "calibrated (usual >= 0.4)", "literal (usual >= 0.4)", "calibrated (all hours)",
                      "literal (all hours)", "n (usual >= 0.4)"], rows))
    out.append("\n(each cell: flagged / alta+)\n")
    out.append("### Daily meters (interval=\"1d\": hourly sums of complete days)\n")
    rows = []
    for m in METHODS:
        R = dr[m]
        fr = R["flat_recall"]
        rows.append([m, f"{R['clean']['readings']:,}", pct(R["clean"]["flag_rate"]), pct(R["clean"]["alta_critica_rate"], 3),
                     pct(R["clean_suspicious_client_months"], 1)] +
                    [f"{fr[k]['alta+']:.3f}" for k in ("flat zeros 3 days", "flat constant 3 days", "flat zeros 7 days", "flat constant 7 days")])
    out.append(table(["method", "readings", "flagged", "alta+crít", "suspicious client-months",
                      "flat zeros 3 d", "flat constant 3 d", "flat zeros 7 d", "flat constant 7 d"], rows))
    n_flat = dr["calibrated"]["flat_recall"]["flat zeros 3 days"]["n"]
    out.append(f"\n(flat recall: an alta+ flat episode overlapping the event; n = {n_flat} per variant)\n")
    rows = []
    for mode, f in H.SPIKE_CURVE:
        name = f"{f:g} x usual" if mode == "usual" else f"{f:g} x recent max"
        rows.append([name] + [f"{dr[m]['spike_curve'][f'{mode}x{f}']['spike|outlier']:.3f}" for m in METHODS] +
                    [str(dr["calibrated"]["spike_curve"][f"{mode}x{f}"]["n"])])
    out.append("Daily spike recall (flagged spike or outlier):\n")
    out.append(table(["injected size", "calibrated", "literal", "n"], rows))
    return "\n".join(out)


def main() -> None:
    global USE_RUST_EPISODES
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the harness's quick mode (6 of the 18 extended runs)")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    ap.add_argument("--harness-episodes", action="store_true", help="score with the harness's episodes, not the Rust ones")
    a = ap.parse_args()
    USE_RUST_EPISODES = not a.harness_episodes
    t0 = time.time()
    if not H.DATA.exists() and not (H.CACHE / "hourly.pkl").exists():
        sys.exit(f"needs the SGSC data: {H.DATA} (../shared/data relative to the repository root)")
    res: dict = {"quick": a.quick, "episodes": "rust" if USE_RUST_EPISODES else "harness", "hourly": {}, "daily": {}}
    log("checking Rust calibrated against the numpy reference (clean series) ...")
    res["consistency"] = reference_check()
    timing = {}
    for m in METHODS:
        t = time.time()
        log(f"hourly, method={m} ...")
        res["hourly"][m] = H.evaluate(lambda d, m=m: rust_detect(d, m, "1h", f"hourly {m}"), HOURLY_P, m, a.quick)
        timing[f"hourly {m}"] = round(time.time() - t, 1)
        t = time.time()
        log(f"daily, method={m} ...")
        res["daily"][m] = H.evaluate_daily(lambda d, m=m: rust_detect(d, m, "1d", f"daily {m}"), DAILY_P, m)
        timing[f"daily {m}"] = round(time.time() - t, 1)
    counts = extended_event_counts(a.quick)
    res["extended_event_counts"] = counts
    res["episode_agreement"] = {k: dict(v) for k, v in _agreement.items()}
    res["seconds"] = timing
    wall = time.time() - t0
    res["wall_seconds"] = round(wall, 1)

    print(markdown(res, a.quick, counts))
    print("\n### Checks\n")
    for k, v in res["consistency"].items():
        print(f"- {k}: {json.dumps(v)}")
    print(f"- episodes used: {res['episodes']}; Rust vs harness episodes from the same flags "
          "(differing = not identical in start, end, readings, peak severity or score):")
    for k, v in res["episode_agreement"].items():
        print(f"  - {k}: {json.dumps(v)}")
    print(f"\nWall time: {wall:.0f} s ({', '.join(f'{k} {v} s' for k, v in timing.items())})")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=str, ensure_ascii=False))
        print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
