"""The calibrated consumption rules in numpy, and their evaluation harness:
the reference the Rust port (`anomaly_core::consumption::calibrated`) was
written from (tests/test_consumption_calibrated.py holds its figures). The
algorithm: docs/consumption_calibrated.md. Its defaults include section 10's
follow-up (flat novelty, the same-level still gate, plantation hysteresis,
flat_reference_days=4), as the Rust rules do (score for score on the real
households); with plantation_continue_min_excess, plantation_continue_floor
and flat_gate_same_level off, flat_novelty_days=0 and flat_reference_days=7
it gives the first version's figures (docs section 8).

Self-contained numpy/pandas. Causal: every per-day baseline of day d uses whole
days < d only; the run states (plantation nights, flat runs, spike previous
reading) use readings up to and including the current one.

Run:  .venv/bin/python benches/python/consumption_calibrated_reference.py [--quick] [--no-literal]
(about 6 minutes; needs ../shared/data). Figures are printed and written to
results.json in the cache directory ($CALIBRATED_CACHE).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, asdict
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view as swv

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CALIBRATED_CACHE", "/tmp/consumption_calibrated_cache"))  # injected series, reused between runs
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "energy" / "sgsc_smart_meter10_halfhourly.csv"
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
TYPES = ("outlier", "spike", "night_use", "plantation", "flat")
SEVS = ("normal", "baja", "media", "alta", "crítica")


# ----------------------------------------------------------------------------- parameters
@dataclass
class Params:
    interval_minutes: int = 60
    # per-slot (hour of day) robust baseline
    baseline_days: int = 28          # window of whole days before the reading's day
    min_history_days: int = 14       # same-slot samples needed in that window
    log_offset_kwh_per_hour: float = 0.1   # c in y = ln(x + c), scaled by the interval
    min_log_spread: float = 0.05     # floor of the slot's robust log-scale spread
    # tail calibration (outlier, spike)
    calibration_days: int = 56       # window of the client's own statistic values
    calibration_min_days: int = 14   # of which at least this many days' worth must be present
    tail_probability: float = 0.0035 # p0: tail probability at ratio 1 (score 0.5)
    min_excess_kwh_per_hour: float = 0.1   # outlier/spike must exceed their reference by this (x interval h)
    min_excess_rel: float = 0.5      # ... and by this fraction of the reference
    # night / plantation (hour-of-day rules; disabled when interval >= 1 day)
    night_start: int = 0
    night_end: int = 6
    night_min_kwh_per_hour: float = 0.4   # mean excess over the slot median, per reading
    night_high_quantile: float = 0.9      # readings above this slot quantile count as "high"
    night_high_fraction: float = 0.5      # a heavy night needs at least this fraction of high readings
    night_min_readings: int = 3           # readings of the current night before it can be heavy
    night_use_high_fraction: float = 1.0  # night_use alone: every reading of the night so far above q90
    night_use_max_ratio: float = 1.5      # night_use alone stays <= media (score 0.667)
    plantation_nights: int = 3            # ratio = heavy nights in the run / this
    plantation_max_gap_nights: int = 0    # a run survives this many consecutive non-heavy nights
    plantation_continue_min_excess: bool = True  # follow-up (docs §10): inside an active run, a reading also
                                          # counts as high when x >= m_x[R,s] + night_min (hysteresis)
    plantation_continue_floor: bool = True      # ... and a night whose every reading is >= q05_x[R,s] + night_min
                                          # (the night floor lifted by a constant load) continues it
    # flat
    flat_tolerance_kwh: float = 0.01
    flat_hours: float = 12.0             # evidence hours at ratio 1
    flat_min_readings: int = 3
    flat_max_still_fraction: float = 0.75  # off when > this fraction of the last flat_reference_days' steps are still
    flat_reference_days: int = 4         # follow-up (docs §10): was 7; 4 days stop re-flagging a long real run sooner
    # flat, follow-up (docs §10 "Closing the misses"): novelty against the client's own recent runs
    flat_novelty_days: int = 14          # completed runs ending on days d-N .. d-1 are the reference (0: off)
    flat_novelty_factor: float = 1.5     # r_nov = L*ih / max(flat_hours, factor * L_ref*ih)
    flat_gate_same_level: bool = True    # the still gate counts only still steps at the run's level (+-tol)
    # severity
    severity_media: float = 0.6
    severity_alta: float = 0.75
    severity_critica: float = 0.9
    # episodes / client-month
    episode_gap_readings: int = 2         # outlier/spike/flat: runs broken by <= 2 unflagged readings merge
    night_episode_gap_hours: float = 24.0 # night_use/plantation: next night's flag continues the episode
    month_min_severe: int = 5             # alta+ outlier/spike/night_use episodes for a suspicious month

    @property
    def ih(self) -> float:
        return self.interval_minutes / 60.0

    @property
    def slots(self) -> int:
        return 1440 // self.interval_minutes

    @property
    def hourly_rules(self) -> bool:
        return self.interval_minutes < 1440


def rule_score(r):
    r = np.nan_to_num(np.maximum(r, 0.0))
    with np.errstate(divide="ignore"):
        return np.where(r < 1.0, 0.5 * r, 1.0 - 0.5 / np.maximum(r, 1e-300))


def severity_codes(score, p: Params):
    return np.select(
        [score < 0.5, score < p.severity_media, score < p.severity_alta, score < p.severity_critica],
        [0, 1, 2, 3], 4)


# ----------------------------------------------------------------------------- helpers
def nanquantiles(A: np.ndarray, qs, axis=-1):
    """Fast NaN-ignoring quantiles (linear interpolation, numpy's default) along the last axis."""
    A = np.sort(A, axis=-1)  # NaN last
    n = np.sum(~np.isnan(A), axis=-1)
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(A, lo[..., None], -1)[..., 0]
        b = np.take_along_axis(A, hi[..., None], -1)[..., 0]
        v = a + (b - a) * (pos - lo)
        out.append(np.where(n > 0, v, np.nan))
    return out


def past_window(A: np.ndarray, W: int) -> np.ndarray:
    """(D, S) -> (D, S, W): for day d, rows d-W .. d-1 (NaN before the start)."""
    D, S = A.shape
    pad = np.vstack([np.full((W, S), np.nan), A])
    return np.moveaxis(swv(pad[:-1], W, axis=0)[:D], -1, -1)  # (D, S, W)


def tail_ratio(stat: np.ndarray, p: Params) -> np.ndarray:
    """Per-client tail calibration of a statistic laid out as (D, S).

    For day d: q95, q99 of the statistic over days d-Wc .. d-1 (all slots).
    Exponential tail through them: P(Z > z) = 0.05 * 5^(-(z - q95)/(q99 - q95)).
    ratio r = 1 + log10(p0 / P(Z > z))  (one unit of ratio per decade of rarity
    beyond p0), clipped at 0 below.  => r = log10(5)*(z-q95)/(q99-q95) + 1 + log10(p0/0.05).
    """
    D, S = stat.shape
    Wc = p.calibration_days
    win = past_window(stat, Wc).reshape(D, S * Wc) if S > 1 else past_window(stat, Wc).reshape(D, Wc)
    n = np.sum(~np.isnan(win), axis=1)
    q95, q99 = nanquantiles(win, [0.95, 0.99])
    ok = n >= p.calibration_min_days * S * 0.5
    spread = np.maximum(q99 - q95, 0.05)
    t = (stat - q95[:, None]) / spread[:, None]
    r = math.log10(5.0) * t + 1.0 + math.log10(p.tail_probability / 0.05)
    r = np.where(ok[:, None], np.maximum(r, 0.0), 0.0)
    return np.nan_to_num(r)


# ----------------------------------------------------------------------------- the rules, one client
def detect_client(ts: np.ndarray, x: np.ndarray, p: Params) -> dict:
    """ts: datetime64[ns] sorted unique, x: kWh. Returns per-reading arrays."""
    S = p.slots
    step = np.timedelta64(p.interval_minutes, "m")
    day0 = ts[0].astype("datetime64[D]")
    day = (ts.astype("datetime64[D]") - day0).astype(int)
    slot = ((ts - ts.astype("datetime64[D]")) // step).astype(int)
    D = day[-1] + 1
    G = np.full((D, S), np.nan)
    G[day, slot] = x
    c = p.log_offset_kwh_per_hour * p.ih
    Y = np.log(G + c)

    # --- per-day, per-slot robust baseline over the previous baseline_days days
    Wy = past_window(Y, p.baseline_days)          # (D, S, W)
    Wx = past_window(G, p.baseline_days)
    cnt = np.sum(~np.isnan(Wy), axis=2)
    ok = cnt >= p.min_history_days
    q25, med_y, q75 = nanquantiles(Wy, [0.25, 0.5, 0.75])
    med_x = np.exp(med_y) - c
    spread = np.maximum((q75 - q25) / 1.349, p.min_log_spread)
    qhi_x, q05_x = nanquantiles(Wx, [p.night_high_quantile, 0.05])
    flatW = Wx.reshape(D, -1)
    mean_all = np.nanmean(flatW, axis=1)
    (q25_all,) = nanquantiles(flatW, [0.25])
    okday = np.sum(~np.isnan(flatW), axis=1) >= p.min_history_days * S * 0.5
    for A in (med_y, med_x, spread, qhi_x, q05_x):
        A[~ok] = np.nan

    min_exc = lambda ref: np.maximum(p.min_excess_kwh_per_hour * p.ih, p.min_excess_rel * ref)

    # --- outlier: log ratio ln((x+c)/(m+c)) to the slot's median m, calibrated on the client's own tail
    #     (upper tail). (A robust z, dividing by the slot's log IQR, calibrated worse: 0.73% at nominal 0.5%.)
    U = Y - med_y
    r_out_grid = tail_ratio(U, p)
    r_out = r_out_grid[day, slot]
    exc = (x - med_x[day, slot]) / min_exc(np.nan_to_num(med_x[day, slot]))
    r_out = np.where(ok[day, slot], np.minimum(r_out, np.maximum(exc, 0)), 0.0)

    # --- spike: jump of ln(x+c) over ln(ref+c), ref = max(previous reading, slot median, 28-day mean)
    prev = np.full(len(x), np.nan)
    consec = np.zeros(len(x), bool)
    consec[1:] = (ts[1:] - ts[:-1]) == step
    prev[1:][consec[1:]] = x[:-1][consec[1:]]
    ref = np.fmax(np.fmax(np.nan_to_num(prev), med_x[day, slot]), mean_all[day])
    V = np.full((D, S), np.nan)
    V[day, slot] = np.log(x + c) - np.log(ref + c)
    r_sp = tail_ratio(V, p)[day, slot]
    exc = (x - ref) / min_exc(np.nan_to_num(ref))
    r_sp = np.where(ok[day, slot] & okday[day] & ~np.isnan(ref), np.minimum(r_sp, np.maximum(exc, 0)), 0.0)

    # --- night_use / plantation: persistent heavy nights, reference frozen at the run start
    r_night = np.zeros(len(x))
    r_plant = np.zeros(len(x))
    if p.hourly_rules:
        hour = slot * p.interval_minutes // 60
        in_band = (hour >= p.night_start) & (hour < p.night_end) if p.night_start < p.night_end else \
            (hour >= p.night_start) | (hour < p.night_end)
        # night key: the day the band ends on (band start may be the previous evening)
        shift = p.night_start * 60 // p.interval_minutes if p.night_start > p.night_end else 0
        nkey = ((ts - np.timedelta64(p.night_start, "h")).astype("datetime64[D]") - day0).astype(int) + (1 if shift else 0)
        band_len = (p.night_end - p.night_start) % 24 * 60 // p.interval_minutes
        run_n, run_ref = 0, -1        # completed heavy nights in the run, reference day of the run
        run_miss = 0                  # consecutive non-heavy nights inside the run
        cur_key, acc = None, None     # current night and its accumulators per reference
        idx = np.flatnonzero(in_band)

        def heavy(a, complete, cont=False):
            n, exc_sum, hi, hi_cont, floor_n = a
            if cont and p.plantation_continue_min_excess:
                hi = hi_cont   # continuing a run: high = above min(q90, median + night_min) of the frozen reference
            if n < (math.ceil(band_len / 2) if complete else p.night_min_readings):
                return False, 0.0
            m = exc_sum / n
            if cont and p.plantation_continue_floor and floor_n == n:
                return True, m
            return (m >= p.night_min_kwh_per_hour * p.ih and hi >= p.night_high_fraction * n), m

        def close_night():
            nonlocal run_n, run_ref, run_miss
            if cur_key is None:
                return
            if run_n > 0:
                h, _ = heavy(acc["run"], True, cont=True)
                if h:
                    run_n += 1
                    run_miss = 0
                    return
                if run_miss < p.plantation_max_gap_nights:
                    run_miss += 1      # tolerated: the run (and its reference) carries on, n unchanged
                    return
            h, _ = heavy(acc["own"], True)
            run_n, run_ref, run_miss = (1, acc["own_ref"], 0) if h else (0, -1, 0)

        last_key = None
        for i in idx:
            k = nkey[i]
            if k != cur_key:
                if cur_key is not None and k != cur_key + 1:
                    close_night(); run_n, run_ref, run_miss = 0, -1, 0   # a missing night breaks the run
                else:
                    close_night()
                cur_key = k
                own_ref = day[i]  # the night's first day: baseline ends before it
                acc = {"run": [0, 0.0, 0, 0, 0], "own": [0, 0.0, 0, 0, 0], "own_ref": own_ref}
            d, s = day[i], slot[i]
            for name, rd in (("run", run_ref if run_n > 0 else -1), ("own", acc["own_ref"])):
                if rd < 0 or not ok[rd, s]:
                    continue
                a = acc[name]
                a[0] += 1
                a[1] += x[i] - med_x[rd, s]
                a[2] += int(x[i] >= qhi_x[rd, s])
                a[3] += int(x[i] >= min(qhi_x[rd, s], med_x[rd, s] + p.night_min_kwh_per_hour * p.ih))
                a[4] += int(x[i] >= q05_x[rd, s] + p.night_min_kwh_per_hour * p.ih)
            # ratio of this reading: the current night so far extends the run or starts one
            n_now, m = 0, 0.0
            if run_n > 0:
                h, m = heavy(acc["run"], False, cont=True)
                if h:
                    n_now = run_n + 1
            if n_now == 0:
                h, m = heavy(acc["own"], False)
                n_now = 1 if h else 0
            if n_now:
                a = acc["run"] if (run_n > 0 and n_now > 1) else acc["own"]
                strict = a[2] >= p.night_use_high_fraction * a[0]
                r_night[i] = min(m / (p.night_min_kwh_per_hour * p.ih), p.night_use_max_ratio) if strict else 0.99 * 0.5
                r_plant[i] = n_now / p.plantation_nights
            else:
                _, m = heavy(acc["own"], False)
                r_night[i] = min(max(m, 0) / (p.night_min_kwh_per_hour * p.ih), 0.99) * 0.99
        # plantation supersedes night_use in the same reading (one group); keep both ratios

    # --- flat: run of consecutive readings with spread <= tolerance; evidence hours
    r_flat = np.zeros(len(x))
    tol = p.flat_tolerance_kwh
    # still steps (|dx| <= tol between consecutive readings) of the previous flat_reference_days days
    still = np.full((D, S), np.nan)
    dx = np.abs(np.diff(x))
    st = np.where(consec[1:], (dx <= tol).astype(float), np.nan)
    still[day[1:], slot[1:]] = st
    Ws = past_window(still, p.flat_reference_days).reshape(D, -1)
    still_frac = np.nanmean(Ws, axis=1)
    n_steps = np.sum(~np.isnan(Ws), axis=1)      # consecutive steps in the window (the gate's denominator)
    if p.flat_gate_same_level:
        # level of a still step = mean of its two readings; per day d, the sorted levels of the window's still steps
        lev = np.full((D, S), np.nan)
        stl = np.where(st == 1.0, 0.5 * (x[1:] + x[:-1]), np.nan)
        lev[day[1:], slot[1:]] = stl
        Wl = past_window(lev, p.flat_reference_days).reshape(D, -1)
        still_levels = [np.sort(w[~np.isnan(w)]) for w in Wl]
    runs = []            # completed runs: (last day, length in readings, level); only L >= flat_min_readings
    run_start = 0
    lo = hi = x[0]
    ev = 0.0
    for i in range(len(x)):
        if i == 0 or not consec[i] or max(hi, x[i]) - min(lo, x[i]) > tol:
            if i > 0 and i - run_start >= p.flat_min_readings:
                runs.append((day[i - 1], i - run_start, 0.5 * (lo + hi)))
            run_start, lo, hi, ev = i, x[i], x[i], 0.0
            # (a greedy run: a new run starts at the breaking reading)
        else:
            lo, hi = min(lo, x[i]), max(hi, x[i])
        d, s = day[i], slot[i]
        L = i - run_start + 1
        level = 0.5 * (lo + hi)
        if okday[d]:
            stuck = level > q25_all[d] + tol
            low = (not np.isnan(q05_x[d, s])) and x[i] < q05_x[d, s] - tol
            # evidence accrues for the readings of the run so far; when the run becomes "stuck" the
            # whole run counts (level is the run's, known only now), so recompute cheaply:
            ev += p.ih if low else 0.0
            evid = L * p.ih if stuck else ev
            if L < p.flat_min_readings:
                continue
            if p.flat_gate_same_level:
                sl = still_levels[d]
                n_same = np.searchsorted(sl, level + tol, "right") - np.searchsorted(sl, level - tol, "left")
                gate_frac = n_same / n_steps[d] if n_steps[d] else np.nan
            else:
                gate_frac = still_frac[d]
            if not gate_frac <= p.flat_max_still_fraction:   # (NaN: no steps in the window -> off, as before)
                continue
            r = evid / p.flat_hours
            if p.flat_novelty_days > 0:
                # novelty: the run is much longer than the client's own completed runs at its level
                # (|level_ref - level| <= tol) that ended on days d-N .. d-1
                l_ref = 0
                for (de, Lr, lv) in runs[::-1]:
                    if de < d - p.flat_novelty_days:
                        break
                    if de < d and abs(lv - level) <= tol:
                        l_ref = max(l_ref, Lr)
                r = max(r, L * p.ih / max(p.flat_hours, p.flat_novelty_factor * l_ref * p.ih))
            r_flat[i] = r
    ratios = np.vstack([r_out, r_sp, r_night, r_plant, r_flat]).T
    return {"ratios": ratios, "base": med_x[day, slot], "ref_spike": ref}


def combine(ratios: np.ndarray):
    """Groups {outlier, spike}, {night_use, plantation}, {flat}: max inside a group (the rules of
    a group measure the same thing), independent evidence across groups: 1 - prod(1 - s)."""
    s = rule_score(ratios)
    fired = ratios >= 1.0
    groups = [(0, 1), (2, 3), (4,)]
    none_left = np.ones(len(ratios))
    anyf = fired.any(axis=1)
    for g in groups:
        gs = np.where(fired[:, g], s[:, g], 0.0).max(axis=1)
        none_left *= 1.0 - gs
    below = np.where(fired, 0.0, s).max(axis=1)
    score = np.where(anyf, 1.0 - none_left, below)
    mask = (fired * (1 << np.arange(5))).sum(axis=1)
    return mask, score


def detect(df: pd.DataFrame, p: Params | None = None) -> pd.DataFrame:
    p = p or Params()
    out = []
    for cid, d in df.sort_values(["client_id", "timestamp"]).groupby("client_id", sort=True):
        ts = d["timestamp"].to_numpy()
        x = d["kwh"].to_numpy(float)
        r = detect_client(ts, x, p)
        mask, score = combine(r["ratios"])
        o = pd.DataFrame({"client_id": cid, "timestamp": ts, "kwh": x, "mask": mask, "score": score,
                          "base": r["base"]})
        for k, t in enumerate(TYPES):
            o["r_" + t] = r["ratios"][:, k]
        out.append(o)
    o = pd.concat(out, ignore_index=True)
    o["is_anomaly"] = o["mask"] > 0
    o["sev"] = severity_codes(o["score"].to_numpy(), p)
    return o


# ----------------------------------------------------------------------------- episodes and months
def episodes(fl: pd.DataFrame, p: Params) -> pd.DataFrame:
    """fl: client_id, timestamp, kwh, mask, score, sev, base. One row per (client, rule) episode."""
    rows = []
    step = pd.Timedelta(minutes=p.interval_minutes)
    for k, t in enumerate(TYPES):
        f = fl[(fl["mask"].to_numpy() & (1 << k)) > 0]
        if f.empty:
            continue
        gap = pd.Timedelta(hours=p.night_episode_gap_hours) + step if t in ("night_use", "plantation") \
            else (p.episode_gap_readings + 1) * step
        for cid, g in f.groupby("client_id", sort=False):
            tt = g["timestamp"].to_numpy()
            new = np.r_[True, np.diff(tt) > gap.to_timedelta64()]
            eid = np.cumsum(new)
            base = g["base"].fillna(0).to_numpy()
            agg = pd.DataFrame({"eid": eid, "t": tt, "score": g["score"].to_numpy(), "sev": g["sev"].to_numpy(),
                                "dk": g["kwh"].to_numpy() - base}).groupby("eid").agg(
                start=("t", "min"), end=("t", "max"), n=("t", "size"), peak_score=("score", "max"),
                peak_sev=("sev", "max"), kwh_above_baseline=("dk", "sum"))
            agg["client_id"] = cid
            agg["type"] = t
            rows.append(agg.reset_index(drop=True))
    if not rows:
        return pd.DataFrame(columns=["client_id", "type", "start", "end", "n", "peak_score", "peak_sev", "kwh_above_baseline"])
    return pd.concat(rows, ignore_index=True)


def client_months(fl: pd.DataFrame, ep: pd.DataFrame, p: Params) -> pd.DataFrame:
    """score = 1 - (1 - S_struct)(1 - S_burst);  S_struct = max peak score of plantation/flat episodes
    of peak severity >= alta overlapping the month; S_burst = rule_score(n_severe / month_min_severe), n_severe = outlier/spike/
    night_use episodes of peak severity >= alta starting in the month. suspicious = score >= 0.5."""
    months = fl.assign(month=fl["timestamp"].dt.to_period("M"))[["client_id", "month"]].drop_duplicates()
    # an episode belongs to every month it overlaps (start .. end)
    e = ep.copy()
    e["month"] = [list(pd.period_range(a.to_period("M"), b.to_period("M"), freq="M"))
                  for a, b in zip(pd.to_datetime(e["start"]), pd.to_datetime(e["end"]))] if len(e) else []
    e = e.explode("month") if len(e) else e.assign(month=pd.Series(dtype="period[M]"))
    struct = e[e["type"].isin(["plantation", "flat"]) & (e["peak_sev"] >= 3)].groupby(["client_id", "month"])["peak_score"].max().rename("s_struct")
    sev = e[~e["type"].isin(["plantation", "flat"]) & (e["peak_sev"] >= 3)].groupby(["client_id", "month"]).size().rename("n_severe")
    nep = e.groupby(["client_id", "month"]).size().rename("episodes")
    rules = e.groupby(["client_id", "month"])["type"].agg(lambda s: ";".join(sorted(set(s)))).rename("rules")
    m = months.merge(struct, on=["client_id", "month"], how="left").merge(sev, on=["client_id", "month"], how="left") \
        .merge(nep, on=["client_id", "month"], how="left").merge(rules, on=["client_id", "month"], how="left")
    m[["s_struct", "n_severe", "episodes"]] = m[["s_struct", "n_severe", "episodes"]].fillna(0)
    s_burst = rule_score(m["n_severe"].to_numpy() / p.month_min_severe)
    m["score"] = 1 - (1 - m["s_struct"]) * (1 - s_burst)
    m["suspicious"] = m["score"] >= 0.5
    m["rank"] = m.groupby("month")["score"].rank(ascending=False, method="min")
    return m


# ----------------------------------------------------------------------------- data and injection
def hourly() -> pd.DataFrame:
    cache = CACHE / "hourly.pkl"
    if cache.exists():
        return pd.read_pickle(cache)
    raw = pd.read_csv(DATA, parse_dates=["reading_datetime"])
    raw["hour"] = raw["reading_datetime"].dt.floor("h")
    g = raw.groupby(["customer_id", "hour"])["general_supply_kwh"].agg(["sum", "size"]).reset_index()
    g = g[g["size"] == 2]
    df = g.rename(columns={"customer_id": "client_id", "hour": "timestamp", "sum": "kwh"})[["client_id", "timestamp", "kwh"]]
    CACHE.mkdir(parents=True, exist_ok=True)
    df.to_pickle(cache)
    return df


def usable(s: pd.Series, start, per_day=24) -> bool:
    before = s[(s.index >= start - 28 * DAY) & (s.index < start)]
    return len(before) >= 0.8 * 28 * per_day and before.std() >= (0.1 if per_day == 24 else 0.5)


def spot(s: pd.Series, fraction: float, days: int = 10, per_day=24):
    start = (s.index[0] + (s.index[-1] - s.index[0]) * fraction).normalize()
    while not (usable(s, start, per_day) and ((s.index >= start) & (s.index < start + days * DAY)).sum() >= 0.8 * days * per_day):
        start += 7 * DAY
        if start > s.index[-1]:
            raise ValueError("no usable spot")
    return start


def usual_level(s: pd.Series, t, step=HOUR):
    """As the real-data test: max(reading, previous reading, same-hour median of the previous week, 28-day mean)."""
    if t not in s.index or t - step not in s.index or not usable(s, t.normalize(), 24 if step == HOUR else 1):
        return None
    same = [s[t - j * DAY] for j in range(1, 8) if t - j * DAY in s.index]
    if len(same) < 4:
        return None
    window = s[(s.index >= t.normalize() - 28 * DAY) & (s.index < t.normalize())]
    return float(max(s[t], s[t - step], np.median(same), window.mean()))


def inject(df, plantation=None, flat=None, spikes=None, step=HOUR):
    """plantation=(kwh_per_hour, fraction, nights); flat=(kind 'zeros'|'constant', hours, fraction);
    spikes=(mode 'usual'|'recentmax', factor, min_usual). Returns (injected df, events)."""
    out, events = [], []
    per_day = 24 if step == HOUR else 1
    for k, (client, d) in enumerate(df.groupby("client_id", sort=True)):
        s = d.set_index("timestamp")["kwh"].copy()
        if plantation:
            size, frac, nights = plantation
            p0 = spot(s, frac, per_day=per_day)
            m = (s.index >= p0) & (s.index < p0 + nights * DAY) & (s.index.hour < 6)
            s[m] += size
            events.append((client, "plantation", p0, p0 + nights * DAY, size, frac))
        if flat:
            kind, hours, frac = flat
            f0 = spot(s, frac, days=max(1, int(math.ceil(hours / 24))), per_day=per_day)
            m = (s.index >= f0) & (s.index < f0 + hours * HOUR)
            s[m] = 0.0 if kind == "zeros" else round(float(s.median()), 3)
            events.append((client, "flat", f0, f0 + hours * HOUR, f"{kind}{hours}h", frac))
        if spikes:
            mode, factor, min_usual = spikes
            t = spot(s, 0.65, per_day=per_day) + (11 * HOUR if step == HOUR else 0 * DAY)
            end = s.index[-1] - DAY
            n = 0
            n_max, gap = (20, 9 * DAY + 5 * HOUR) if step == HOUR else (8, 45 * DAY)  # daily: sparser, so the
            while t <= end and n < n_max:                                             # spikes do not fill the tail sample
                usual = usual_level(s, t, step)
                if usual is None or usual < min_usual:
                    t += step
                    continue
                if mode == "usual":
                    v = factor * usual + 0.05 * (1 if step == HOUR else 24)
                else:  # relative to the client's recent maximum: max of the 28 days before t's day
                    w = s[(s.index >= t.normalize() - 28 * DAY) & (s.index < t.normalize())]
                    v = factor * float(w.max())
                s[t] = round(v, 3)
                events.append((client, "spike", t, t + step, f"{mode}x{factor}", 0.65))
                n += 1
                t += gap
        out.append(pd.DataFrame({"client_id": client, "timestamp": s.index, "kwh": s.to_numpy()}))
    return pd.concat(out, ignore_index=True), pd.DataFrame(events, columns=["client_id", "kind", "start", "end", "variant", "pos"])


def test_protocol_inject(df):
    """The exact protocol of tests/test_consumption_real_data.py (plantation 1.5 @25%, flat 48h @50%
    zeros/constant alternating, 20 spikes x2.5 from 65%)."""
    out, events = [], []
    for k, (client, d) in enumerate(df.groupby("client_id", sort=True)):
        s = d.set_index("timestamp")["kwh"].copy()
        p0 = spot(s, 0.25)
        s[(s.index >= p0) & (s.index < p0 + 10 * DAY) & (s.index.hour < 6)] += 1.5
        events.append((client, "plantation", p0, p0 + 10 * DAY, "1.5", 0.25))
        f0 = spot(s, 0.5, days=2)
        s[(s.index >= f0) & (s.index < f0 + 2 * DAY)] = 0.0 if k % 2 == 0 else round(float(s.median()), 3)
        events.append((client, "flat", f0, f0 + 2 * DAY, "zeros48h" if k % 2 == 0 else "constant48h", 0.5))
        t = spot(s, 0.65) + 11 * HOUR
        end = s.index[-1] - DAY
        n = 0
        while t <= end and n < 20:
            usual = usual_level(s, t)
            if usual is None or usual < 0.4:
                t += HOUR
                continue
            s[t] = round(2.5 * usual + 0.05, 3)
            events.append((client, "spike", t, t + HOUR, "usualx2.5", 0.65))
            n += 1
            t += 9 * DAY + 5 * HOUR
        out.append(pd.DataFrame({"client_id": client, "timestamp": s.index, "kwh": s.to_numpy()}))
    return pd.concat(out, ignore_index=True), pd.DataFrame(events, columns=["client_id", "kind", "start", "end", "variant", "pos"])


# ----------------------------------------------------------------------------- literal rules (installed package)
def literal_detect(df, interval="1h"):
    from anomaly import consumption
    # The analysts' rules: the package's `literal` preset (its default before the calibrated rules).
    fl = consumption.ConsumptionRules.preset("literal", interval=interval).detect(df)
    bits = {t: 1 << k for k, t in enumerate(TYPES)}
    mask = fl["types"].map(lambda ts: sum(bits[t] for t in ts)).to_numpy()
    o = pd.DataFrame({"client_id": fl["client_id"].to_numpy(), "timestamp": pd.to_datetime(fl["timestamp"]).to_numpy(),
                      "kwh": fl["kwh"].to_numpy(), "mask": mask, "score": fl["score"].to_numpy(),
                      "base": np.nan})
    o["is_anomaly"] = o["mask"] > 0
    o["sev"] = fl["severity"].cat.codes.to_numpy()
    return o.sort_values(["client_id", "timestamp"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- metrics
def touched_mask(fl, events, tail_struct=28 * DAY, tail_spike=2 * DAY):
    touched = np.zeros(len(fl), bool)
    cid = fl["client_id"].to_numpy()
    t = fl["timestamp"].to_numpy()
    for ev in events.itertuples():
        tail = tail_spike if ev.kind == "spike" else tail_struct
        touched |= (cid == ev.client_id) & (t >= ev.start.normalize().to_datetime64()) & (
            t < (ev.end.normalize() + DAY + tail).to_datetime64())
    return touched


def rates(fl, sel=None, warmup_days=0):
    f = fl if sel is None else fl[sel]
    res = {"readings": int(len(f)), "flag_rate": float(f["is_anomaly"].mean()),
           "alta_critica_rate": float((f["sev"] >= 3).mean())}
    res["by_type"] = {t: float(((f["mask"].to_numpy() & (1 << k)) > 0).mean()) for k, t in enumerate(TYPES)}
    res["by_client_flag"] = {str(c): round(float(v), 4) for c, v in f.groupby("client_id")["is_anomaly"].mean().items()}
    res["by_client_alta"] = {str(c): round(float(v), 4) for c, v in (f["sev"] >= 3).groupby(f["client_id"]).mean().items()}
    res["by_client_type_max"] = {t: round(float(((f["mask"] & (1 << k)) > 0).groupby(f["client_id"]).mean().max()), 4)
                                 for k, t in enumerate(TYPES)}
    return res


def event_recall(fl, ep, events, kind):
    """plantation/flat: caught = an episode of that type overlapping the event with peak severity >= alta
    (also reported: any flag of that type). spikes: the spike reading is flagged (any type) / as spike|outlier."""
    ev = events[events.kind == kind]
    rows = []
    for e in ev.itertuples():
        if kind == "spike":
            r = fl[(fl.client_id == e.client_id) & (fl.timestamp == e.start)]
            m = int(r["mask"].iloc[0]) if len(r) else 0
            rows.append({"variant": e.variant, "caught": bool(m & 3), "any": bool(m),
                         "alta": bool(len(r) and r["sev"].iloc[0] >= 3), "pos": e.pos})
        else:
            k = TYPES.index(kind)
            hit = ep[(ep.client_id == e.client_id) & (ep.type == kind) & (ep.start < e.end) & (ep.end >= e.start)]
            rows.append({"variant": e.variant, "pos": e.pos,
                         "caught": bool((hit["peak_sev"] >= 3).any()), "any": len(hit) > 0,
                         "delay_h": float((hit["start"].min() - e.start) / HOUR) if len(hit) else np.nan})
    return pd.DataFrame(rows)


def month_figures(fl, ep, cm, events):
    """Untouched client-months: no injected reading and no structural event within 28 days before."""
    cm = cm.copy()
    cm["kind"] = "untouched"
    for e in events.itertuples():
        months = pd.period_range(e.start.to_period("M"), (e.end + (28 * DAY if e.kind != "spike" else 0 * DAY)).to_period("M"), freq="M")
        sel = (cm.client_id == e.client_id) & cm.month.isin(months)
        if e.kind in ("plantation", "flat"):
            inj = (cm.client_id == e.client_id) & cm.month.isin(pd.period_range(e.start.to_period("M"), (e.end - HOUR).to_period("M"), freq="M"))
            cm.loc[inj, "kind"] = "injected_" + e.kind
            cm.loc[sel & ~inj & (cm.kind == "untouched"), "kind"] = "after_event"
        else:
            cm.loc[sel & (cm.kind == "untouched"), "kind"] = "spike_month"
    return cm.groupby("kind").agg(n=("suspicious", "size"), suspicious=("suspicious", "mean"),
                                  episodes_per_month=("episodes", "mean")).round(4).to_dict("index")


# ----------------------------------------------------------------------------- scenarios
def extended_scenarios():
    """18 runs: flat variant j%6 (zeros/constant x 24/48/96 h) at position POS[j//6]; plantation size
    SIZES[j%3] at position POS[(j//6+1)%3] (each of the 9 plantation combos twice)."""
    POS = (0.25, 0.5, 0.8)
    SIZES = (0.8, 1.5, 3.0)
    FLATS = [(k, h) for k in ("zeros", "constant") for h in (24, 48, 96)]
    runs = []
    for j in range(18):
        fk, fh = FLATS[j % 6]
        runs.append({"plantation": (SIZES[j % 3], POS[(j // 6 + 1) % 3], 10), "flat": (fk, fh, POS[j // 6])})
    return runs


SPIKE_CURVE = [("usual", 2.5), ("usual", 5.0), ("usual", 10.0), ("recentmax", 1.0), ("recentmax", 1.5), ("recentmax", 2.0)]


def cached(name, fn):
    f = CACHE / (name + ".pkl")
    f.parent.mkdir(parents=True, exist_ok=True)
    if f.exists():
        return pd.read_pickle(f)
    v = fn()
    pd.to_pickle(v, f)
    return v


def daily(df):
    d = df.assign(day=df.timestamp.dt.normalize()).groupby(["client_id", "day"])["kwh"].agg(["sum", "size"]).reset_index()
    d = d[d["size"] == 24]
    return d.rename(columns={"day": "timestamp", "sum": "kwh"})[["client_id", "timestamp", "kwh"]]


def preexisting_flat_mask(fl, hours=24, tol=0.01):
    """Readings inside runs (spread <= tol) of >= `hours` consecutive readings in the data as given
    (real flat meters already present in the SGSC series; reported separately)."""
    m = np.zeros(len(fl), bool)
    for cid, idx in fl.groupby("client_id").indices.items():
        x = fl["kwh"].to_numpy()[idx]
        t = fl["timestamp"].to_numpy()[idx]
        start, lo, hi = 0, x[0], x[0]
        for i in range(1, len(x) + 1):
            brk = i == len(x) or t[i] - t[i - 1] != np.timedelta64(1, "h") or max(hi, x[i]) - min(lo, x[i]) > tol
            if brk:
                if i - start >= hours:
                    m[idx[start:i]] = True
                if i < len(x):
                    start, lo, hi = i, x[i], x[i]
            else:
                lo, hi = min(lo, x[i]), max(hi, x[i])
    return m


def evaluate(det, p: Params, label: str, quick=False) -> dict:
    t0 = time.time()
    clean = hourly()
    R = {"label": label}
    # 1. clean series
    fl = det(clean)
    ep = episodes(fl, p)
    cm = client_months(fl, ep, p)
    pre = preexisting_flat_mask(fl)
    R["clean_all"] = rates(fl)
    R["clean_excl_preexisting_flat_runs"] = rates(fl, ~pre)
    R["clean_preexisting_flat_readings"] = int(pre.sum())
    R["clean_episodes"] = {t: {"episodes": int((ep.type == t).sum()), "alta+": int(((ep.type == t) & (ep.peak_sev >= 3)).sum()),
                               "readings": int(ep.loc[ep.type == t, "n"].sum())} for t in TYPES}
    R["clean_episodes_per_client_month"] = float(cm["episodes"].mean())
    R["clean_episodes_per_client_month_by_type"] = {t: float((ep.type == t).sum() / len(cm)) for t in TYPES}
    R["clean_client_months"] = int(len(cm))
    R["clean_suspicious_client_months"] = float(cm["suspicious"].mean())
    R["clean_top_months"] = cm.sort_values("score", ascending=False).head(8)[["client_id", "month", "score", "rules", "n_severe", "s_struct"]].astype(str).to_dict("records")
    # 2. the test's protocol
    inj, ev = cached("test_protocol", lambda: test_protocol_inject(clean))
    fl = det(inj)
    ep = episodes(fl, p)
    unt = ~touched_mask(fl, ev)
    R["test_protocol_untouched"] = {k: v for k, v in rates(fl, unt).items() if k in ("readings", "flag_rate", "alta_critica_rate", "by_type")}
    rec = {}
    for kind in ("plantation", "flat", "spike"):
        r = event_recall(fl, ep, ev, kind)
        rec[kind] = {"n": len(r), "caught(alta+ episode / spike|outlier)": float(r.caught.mean()), "any_flag": float(r["any"].mean())}
    R["test_protocol_recall"] = rec
    # 3. extended plantation/flat protocol
    recs, unts, cms = [], [], []
    for j, sc in enumerate(extended_scenarios()):
        if quick and j % 3:
            continue
        inj, ev = cached(f"ext{j}", lambda sc=sc: inject(clean, plantation=sc["plantation"], flat=sc["flat"]))
        fl = det(inj)
        ep = episodes(fl, p)
        for kind in ("plantation", "flat"):
            r = event_recall(fl, ep, ev, kind)
            r["kind"] = kind
            r["client_id"] = ev[ev.kind == kind].client_id.to_numpy()
            recs.append(r)
        unt = ~touched_mask(fl, ev)
        unts.append(fl[unt])
        cm = client_months(fl, ep, p)
        mf = month_figures(fl, ep, cm, ev)
        cms.append(mf)
    rec = pd.concat(recs, ignore_index=True)
    R["extended_recall_by_kind"] = rec.groupby("kind")[["caught", "any"]].mean().round(4).to_dict("index")
    R["extended_recall_by_variant"] = rec.groupby(["kind", "variant"])[["caught", "any"]].mean().round(3).reset_index().astype(str).to_dict("records")
    R["extended_recall_by_position"] = rec.groupby(["kind", "pos"])[["caught", "any"]].mean().round(3).reset_index().astype(str).to_dict("records")
    R["extended_plantation_detection_delay_h_median"] = float(rec.loc[rec.kind == "plantation", "delay_h"].median())
    R["extended_missed"] = rec[~rec.caught][["kind", "variant", "pos", "client_id", "any"]].astype(str).to_dict("records")
    U = pd.concat(unts, ignore_index=True)
    R["extended_untouched"] = {k: v for k, v in rates(U).items() if k in ("readings", "flag_rate", "alta_critica_rate", "by_type", "by_client_flag", "by_client_alta")}
    agg = {}
    for mf in cms:
        for k, v in mf.items():
            a = agg.setdefault(k, [0, 0.0, 0.0])
            a[0] += v["n"]; a[1] += v["suspicious"] * v["n"]; a[2] += v["episodes_per_month"] * v["n"]
    R["extended_client_months"] = {k: {"n": a[0], "suspicious": round(a[1] / a[0], 4), "episodes_per_month": round(a[2] / a[0], 3)} for k, a in agg.items()}
    # 4. spike recall curve
    curve = {}
    for mode, f in SPIKE_CURVE:
        for mu in (0.4, 0.0):
            inj, ev = cached(f"spike_{mode}_{f}_{mu}", lambda: inject(clean, spikes=(mode, f, mu)))
            fl = det(inj)
            r = event_recall(fl, None, ev, "spike")
            curve[f"{mode}x{f} (usual>={mu})"] = {"n": len(r), "spike|outlier": round(float(r.caught.mean()), 3),
                                                   "any": round(float(r["any"].mean()), 3), "alta+": round(float(r.alta.mean()), 3)}
    R["spike_curve"] = curve
    R["seconds"] = round(time.time() - t0, 1)
    return R


def evaluate_daily(det, p: Params, label: str) -> dict:
    clean = daily(hourly())
    R = {"label": label}
    fl = det(clean)
    ep = episodes(fl, p)
    R["clean"] = {k: v for k, v in rates(fl).items() if k in ("readings", "flag_rate", "alta_critica_rate", "by_type", "by_client_flag")}
    cm = client_months(fl, ep, p)
    R["clean_episodes_per_client_month"] = float(cm["episodes"].mean())
    R["clean_suspicious_client_months"] = float(cm["suspicious"].mean())
    res = {}
    for kind, h in (("zeros", 72), ("constant", 72), ("zeros", 168), ("constant", 168)):
        for pos in (0.25, 0.5, 0.8):
            inj, ev = cached(f"daily_flat_{kind}{h}_{pos}", lambda: inject(clean, flat=(kind, h, pos), step=DAY))
            fl = det(inj)
            r = event_recall(fl, episodes(fl, p), ev, "flat")
            a = res.setdefault(f"flat {kind} {h // 24} days", [0, 0, 0])
            a[0] += len(r); a[1] += int(r.caught.sum()); a[2] += int(r["any"].sum())
    R["flat_recall"] = {k: {"n": a[0], "alta+": round(a[1] / a[0], 3), "any": round(a[2] / a[0], 3)} for k, a in res.items()}
    curve = {}
    for mode, f in SPIKE_CURVE:
        inj, ev = cached(f"daily_spike2_{mode}_{f}", lambda: inject(clean, spikes=(mode, f, 0.0), step=DAY))
        fl = det(inj)
        r = event_recall(fl, None, ev, "spike")
        curve[f"{mode}x{f}"] = {"n": len(r), "spike|outlier": round(float(r.caught.mean()), 3), "any": round(float(r["any"].mean()), 3)}
    R["spike_curve"] = curve
    return R


def main():
    quick = "--quick" in sys.argv
    p = Params()
    out = {"params": asdict(p)}
    out["proposed"] = evaluate(lambda d: detect(d, p), p, "proposed", quick)
    print(json.dumps(out["proposed"], indent=1, default=str, ensure_ascii=False), flush=True)
    pd_ = Params(interval_minutes=1440, calibration_days=364, calibration_min_days=56)
    out["proposed_daily"] = evaluate_daily(lambda d: detect(d, pd_), pd_, "proposed daily")
    print(json.dumps(out["proposed_daily"], indent=1, default=str, ensure_ascii=False), flush=True)
    if "--no-literal" not in sys.argv:
        out["literal"] = evaluate(literal_detect, p, "literal (installed anomaly.consumption.detect)", quick)
        print(json.dumps(out["literal"], indent=1, default=str, ensure_ascii=False), flush=True)
        out["literal_daily"] = evaluate_daily(lambda d: literal_detect(d, "1d"), pd_, "literal daily")
        print(json.dumps(out["literal_daily"], indent=1, default=str, ensure_ascii=False), flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ("results_quick.json" if quick else "results.json")).write_text(json.dumps(out, indent=1, default=str, ensure_ascii=False))


if __name__ == "__main__":
    main()
