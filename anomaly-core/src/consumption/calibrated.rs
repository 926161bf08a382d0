//! The calibrated consumption rules (`method = "calibrated"`, issue 17).
//!
//! The literal rules test every reading at 3 sigma or +150%. Household load
//! is bursty and heavy-tailed, so on real households they flag about 5.6% of
//! ordinary readings. The calibrated rules keep the five rule types, the
//! ratio -> score map, the severity cuts and every output. They change the
//! statistics: each client is measured against its own tail, and the
//! structural rules (plantation, flat) rely on persistence.
//!
//! # Baselines (per client; `S` slots a day: 24 hourly, 1 for daily meters)
//! A reading `x` on day `d` in slot `s` is read on the log scale
//! `y = ln(x + c)`, with `c = log_offset_kwh_per_hour` times the interval in
//! hours. The slot baseline of `(d, s)` is the values of slot `s` on days
//! `d - baseline_days .. d - 1`, valid with at least `slot_min_history_days`
//! of them: the median `m_y` of `y` (`m_x = exp(m_y) - c` in kWh), the 90%
//! (`night_high_quantile`) and 5% quantiles of `x`. Over all slots of the same
//! days: the mean and the 25% quantile of `x`, valid with at least
//! `slot_min_history_days * S / 2` values. Quantiles interpolate linearly.
//!
//! # Tail calibration (outlier, spike)
//! A statistic `z` per reading is compared with the 95% and 99% quantiles of
//! the client's own values of `z` on the previous `calibration_days` days
//! (at least `calibration_min_days * S / 2` of them). An exponential tail
//! through them, `P(Z > z) = 0.05 * 5^(-(z - q95) / (q99 - q95))`, gives the
//! ratio `r = max(0, 1 + log10(tail_probability / P(Z > z)))`: ratio 1 (score
//! 0.5) is a tail probability of `tail_probability`, and each unit of ratio
//! is a decade rarer. So a score means the same rarity for every client: on
//! the ten SGSC households each of outlier and spike flags 0.3% of ordinary
//! readings (at most about 0.5% of any client). A robust z (log ratio over
//! the slot's IQR) calibrated worse, hence the plain log ratio.
//!
//! # Rules (a rule fires at ratio >= 1)
//! - **outlier** (upper tail): `z = ln((x + c) / (m_x + c))`,
//!   `r = min(tail(z), (x - m_x) / e(m_x))`, with the minimum effect
//!   `e(ref) = max(min_excess_kwh_per_hour * h, min_excess_rel * ref)`.
//! - **spike**: `ref` is the largest of the previous reading (if exactly one
//!   interval before), `m_x` and the all-slot mean; `z = ln((x + c) / (ref + c))`,
//!   `r = min(tail(z), (x - ref) / e(ref))`, with its own calibration.
//! - **night_use / plantation** (readings in `night_band`; off for daily
//!   meters): a night so far is *heavy* against a reference day `R` when it
//!   has `night_min_readings` readings (a completed night half its band), a
//!   mean excess over `m_x[R, s]` of `night_min_kwh_per_hour` and at least
//!   `night_high_fraction` of its readings at or above the 90% quantile of
//!   day `R`. Heavy nights in a row form a run whose reference stays frozen at
//!   the run's first night, so the pattern never raises its own reference; a
//!   night without readings breaks it (`plantation_max_gap_nights` non-heavy
//!   nights are tolerated). Continuing a run is easier than starting one
//!   (hysteresis): against the frozen reference a reading is also high at
//!   `min(q90, m_x + e)` (`plantation_continue_min_excess`, `e =
//!   night_min_kwh_per_hour * h`), and a night whose every reading is at
//!   least the slot's 5% quantile plus `e` continues the run whatever its
//!   mean (`plantation_continue_floor`). plantation: `r = nights in the run
//!   (including this one) / plantation_nights`, so persistence is the evidence.
//!   night_use: `r = min(mean excess / night_min_kwh_per_hour, night_use_max_ratio)`
//!   when the night is heavy and `night_use_high_fraction` of it is high.
//! - **flat**: a greedy run of consecutive readings whose spread stays within
//!   `flat_tolerance_kwh`, of at least `flat_min_readings`. If its level is
//!   above the all-slot 25% quantile, the meter is stuck and every hour of the
//!   run is evidence; otherwise only readings below their slot's 5% quantile
//!   are. Novelty (`flat_novelty_days > 0`): with `L_ref` the longest
//!   completed run (of at least `flat_min_readings`) at the same level
//!   (within the tolerance) that ended on days `d - flat_novelty_days ..
//!   d - 1`, `r = max(evidence hours / flat_evidence_hours,
//!   L h / max(flat_evidence_hours, flat_novelty_factor * L_ref h))`: a run
//!   much longer than the client's own recent runs at its level is evidence.
//!   Off when more than `flat_max_still_fraction` of the steps of the
//!   previous `flat_reference_days` days were still (a meter that does not
//!   vary); with `flat_gate_same_level`, only still steps (level: the mean of
//!   their two readings) within the tolerance of the run's level count, so a
//!   meter stuck at another level does not close the gate.
//!
//! # Combination
//! Rules are grouped: {outlier, spike}, {night_use, plantation}, {flat}. A
//! group scores the highest of its fired rules, and fired groups combine as
//! `1 - prod(1 - s)`, so correlated rules do not double-count. With none
//! fired, the score is the highest sub-threshold score: `is_anomaly ==
//! (score >= 0.5)` still holds.
//!
//! # Causality and cost
//! Day `d`'s statistics use whole days before `d`; the run states use the
//! readings so far. A reading's result never changes when later data
//! arrives. Slot windows are sorted vectors updated once a day (O(W) per
//! reading, W = 28); the all-slot 25% quantile is updated only on the days
//! that need it; the tail quantiles come from a histogram of the
//! calibration window that narrows each rank to one bin, once a day.

use std::collections::VecDeque;

use super::params::ConsumptionParams;
use super::report::{AnomalyType, AnomalyTypes};
use super::rules::rule_score;
use super::tail::Tail;
use crate::time::{day_of, second_of_day, SECONDS_PER_DAY};

/// Quantile with linear interpolation (numpy's default) of a sorted,
/// non-empty slice, after mapping values by `f` (monotone).
fn quantile_by<T: Copy>(a: &[T], q: f64, f: impl Fn(T) -> f64) -> f64 {
    let pos = q * (a.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(a.len() - 1);
    let (va, vb) = (f(a[lo]), f(a[hi]));
    va + (vb - va) * (pos - lo as f64)
}

/// A reading and its `ln(x + c)`, computed once: slot windows keep both,
/// sorted by the reading (so by the log too).
type Logged = (f64, f64);

/// Where `x` goes in a sorted window. Counted, not searched: on a slot
/// window (`baseline_days` values) that has no branch to mispredict.
fn below(v: &[Logged], x: f64) -> usize {
    v.iter().map(|&(a, _)| usize::from(a < x)).sum()
}

fn insert_sorted(v: &mut Vec<Logged>, e: Logged) {
    v.insert(below(v, e.0), e);
}

fn remove_sorted(v: &mut Vec<Logged>, x: f64) {
    let i = below(v, x);
    if i < v.len() && v[i].0 == x {
        v.remove(i);
    }
}

/// `remove_sorted(old)` (present) then `insert_sorted(new)` in one shift of
/// the values between them.
fn replace_sorted(v: &mut [Logged], old: f64, new: Logged) {
    let (i, j) = (below(v, old), below(v, new.0));
    if j <= i {
        v.copy_within(j..i, j + 1);
        v[j] = new;
    } else {
        // `old` itself is below `new`.
        v.copy_within(i + 1..j, i);
        v[j - 1] = new;
    }
}

/// The per-day baselines of one client (cells are `day * S + slot`).
struct Baselines {
    /// Slot median in kWh, NaN when the slot baseline is invalid.
    med_x: Vec<f64>,
    /// Slot median of `ln(x + c)`.
    med_y: Vec<f64>,
    /// Slot `night_high_quantile` of `x`.
    high_x: Vec<f64>,
    /// Slot 5% quantile of `x`.
    low_x: Vec<f64>,
    /// Per day: mean of all slots (NaN without values).
    mean_all: Vec<f64>,
    /// Per day: enough values for the all-slot statistics.
    ok_day: Vec<bool>,
    /// Each day's values, sorted, at `by_day[day_start[d]..day_start[d + 1]]`
    /// (for the all-slot 25% quantile, see [`AllSlots`]).
    by_day: Vec<f64>,
    day_start: Vec<usize>,
    window: usize,
}

impl Baselines {
    /// `lgrid`: `ln(x + c)` of the `grid` readings.
    fn new(p: &ConsumptionParams, grid: &[f64], lgrid: &[f64], days: usize, per_day: usize, c: f64) -> Self {
        let cells = days * per_day;
        let mut b = Baselines {
            med_x: vec![f64::NAN; cells],
            med_y: vec![f64::NAN; cells],
            high_x: vec![f64::NAN; cells],
            low_x: vec![f64::NAN; cells],
            mean_all: vec![f64::NAN; days],
            ok_day: vec![false; days],
            by_day: Vec::with_capacity(grid.len()),
            day_start: vec![0; days + 1],
            window: p.baseline_days as usize,
        };
        let window = b.window;
        let min_slot = p.slot_min_history_days as usize;
        let min_all = f64::from(p.slot_min_history_days) * per_day as f64 * 0.5;
        let mut slots: Vec<Vec<Logged>> = vec![Vec::with_capacity(window + 1); per_day];
        let mut day_sum = vec![0.0; days];
        for d in 0..days {
            for (s, w) in slots.iter().enumerate() {
                if w.len() >= min_slot {
                    let cell = d * per_day + s;
                    let my = quantile_by(w, 0.5, |(_, y)| y);
                    b.med_y[cell] = my;
                    b.med_x[cell] = my.exp() - c;
                    b.high_x[cell] = quantile_by(w, p.night_high_quantile, |(x, _)| x);
                    b.low_x[cell] = quantile_by(w, 0.05, |(x, _)| x);
                }
            }
            let n_all = b.day_start[d] - b.day_start[d.saturating_sub(window)];
            if n_all > 0 {
                let sum: f64 = day_sum[d.saturating_sub(window)..d].iter().sum();
                b.mean_all[d] = sum / n_all as f64;
            }
            b.ok_day[d] = n_all as f64 >= min_all;
            let first = b.by_day.len();
            for (s, w) in slots.iter_mut().enumerate() {
                let (v, y) = (grid[d * per_day + s], lgrid[d * per_day + s]);
                let old = if d >= window { grid[(d - window) * per_day + s] } else { f64::NAN };
                match (v.is_nan(), old.is_nan()) {
                    (false, false) => replace_sorted(w, old, (v, y)),
                    (false, true) => insert_sorted(w, (v, y)),
                    (true, false) => remove_sorted(w, old),
                    (true, true) => {}
                }
                if !v.is_nan() {
                    b.by_day.push(v);
                    day_sum[d] += v;
                }
            }
            b.by_day[first..].sort_unstable_by(f64::total_cmp);
            b.day_start[d + 1] = b.by_day.len();
        }
        b
    }
}

/// The all-slot 25% quantile of a day (of days `d - baseline_days .. d - 1`),
/// from the sorted values of the window. Only the flat rule's longer runs
/// need it, so the window is brought up to date when asked, in one pass
/// for all the days since the last question.
struct AllSlots {
    all: Vec<f64>,
    removed: Vec<f64>,
    /// `all` is the window of this day.
    as_of: usize,
}

impl AllSlots {
    /// The quantile of day `d`, NaN without values; `d` never decreases.
    fn q25(&mut self, b: &Baselines, d: usize) -> f64 {
        if d != self.as_of {
            let (old, new) = (self.as_of.saturating_sub(b.window), d.saturating_sub(b.window));
            let days_values = |from: usize, to: usize| &b.by_day[b.day_start[from]..b.day_start[to]];
            if new >= self.as_of {
                self.all.clear(); // no day in common
            } else {
                // The days that left, sorted, leave the sorted window in one pass.
                self.removed.clear();
                self.removed.extend_from_slice(days_values(old, new));
                self.removed.sort_by(f64::total_cmp);
                let mut left = self.removed.iter().peekable();
                self.all.retain(|v| left.next_if_eq(&v).is_none());
            }
            self.all.extend_from_slice(days_values(self.as_of.max(new), d));
            // A stable sort merges the sorted runs (the window, each day).
            self.all.sort_by(f64::total_cmp);
            self.as_of = d;
        }
        if self.all.is_empty() {
            f64::NAN
        } else {
            quantile_by(&self.all, 0.25, |v| v)
        }
    }
}

/// A night's accumulators against one reference day.
#[derive(Default, Clone, Copy)]
struct NightAcc {
    n: u32,
    excess: f64,
    /// Readings at or above the slot's `night_high_quantile`.
    high: u32,
    /// Readings at or above `min(q90, m_x + e)` (continuing a run).
    high_cont: u32,
    /// Readings at or above the slot's 5% quantile plus `e` (a lifted floor).
    floor: u32,
}

/// The night_use / plantation state of one client.
struct Nights<'a> {
    p: &'a ConsumptionParams,
    b: &'a Baselines,
    per_day: usize,
    min_mean: f64,
    complete_needs: u32,
    key: Option<i64>,
    own_ref: usize,
    own: NightAcc,
    run: NightAcc,
    run_n: u32,
    run_ref: usize,
    run_miss: u32,
}

impl Nights<'_> {
    /// `(heavy, mean excess)`; the mean is 0 below the readings needed.
    /// `cont`: the night is tested as the continuation of an active run
    /// (against its frozen reference), with the hysteresis tests.
    fn heavy(&self, a: NightAcc, complete: bool, cont: bool) -> (bool, f64) {
        let high = if cont && self.p.plantation_continue_min_excess { a.high_cont } else { a.high };
        let needs = if complete { self.complete_needs } else { self.p.night_min_readings };
        if a.n < needs || a.n == 0 {
            return (false, 0.0);
        }
        let m = a.excess / f64::from(a.n);
        if cont && self.p.plantation_continue_floor && a.floor == a.n {
            return (true, m);
        }
        (m >= self.min_mean && f64::from(high) >= self.p.night_high_fraction * f64::from(a.n), m)
    }

    fn close_night(&mut self) {
        if self.key.is_none() {
            return;
        }
        if self.run_n > 0 {
            if self.heavy(self.run, true, true).0 {
                self.run_n += 1;
                self.run_miss = 0;
                return;
            }
            if self.run_miss < self.p.plantation_max_gap_nights {
                self.run_miss += 1;
                return;
            }
        }
        self.run_miss = 0;
        if self.heavy(self.own, true, false).0 {
            self.run_n = 1;
            self.run_ref = self.own_ref;
        } else {
            self.run_n = 0;
        }
    }

    fn add(&self, a: &mut NightAcc, reference: usize, slot: usize, x: f64) {
        let cell = reference * self.per_day + slot;
        let m = self.b.med_x[cell];
        if m.is_nan() {
            return;
        }
        a.n += 1;
        a.excess += x - m;
        let q90 = self.b.high_x[cell];
        a.high += u32::from(x >= q90);
        a.high_cont += u32::from(x >= q90.min(m + self.min_mean));
        a.floor += u32::from(x >= self.b.low_x[cell] + self.min_mean);
    }

    /// `(night_use ratio, plantation ratio)` of a night reading.
    fn step(&mut self, key: i64, day: usize, slot: usize, x: f64) -> (f64, f64) {
        if self.key != Some(key) {
            let broken = self.key.is_some_and(|k| key != k + 1);
            self.close_night();
            if broken {
                self.run_n = 0;
                self.run_miss = 0;
            }
            self.key = Some(key);
            self.own_ref = day;
            self.own = NightAcc::default();
            self.run = NightAcc::default();
        }
        let (mut own, mut run) = (self.own, self.run);
        if self.run_n > 0 {
            self.add(&mut run, self.run_ref, slot, x);
        }
        self.add(&mut own, self.own_ref, slot, x);
        (self.own, self.run) = (own, run);

        let (mut n_now, mut mean) = (0, 0.0);
        if self.run_n > 0 {
            let (h, m) = self.heavy(run, false, true);
            mean = m;
            if h {
                n_now = self.run_n + 1;
            }
        }
        if n_now == 0 {
            let (h, m) = self.heavy(own, false, false);
            mean = m;
            n_now = u32::from(h);
        }
        if n_now == 0 {
            return ((mean.max(0.0) / self.min_mean).min(0.99) * 0.99, 0.0);
        }
        let a = if n_now > 1 { run } else { own };
        let strict = f64::from(a.high) >= self.p.night_use_high_fraction * f64::from(a.n);
        let night = if strict { (mean / self.min_mean).min(self.p.night_use_max_ratio) } else { 0.99 * 0.5 };
        (night, f64::from(n_now) / f64::from(self.p.plantation_nights))
    }
}

/// Per-reading `(types, score)` of one client under the calibrated rules,
/// and each reading's usual level (its slot's median; NaN without one).
/// `ts` is sorted and unique, on the interval grid, over `days` days from
/// day `d0`.
pub(super) fn flags(
    p: &ConsumptionParams,
    ts: &[i64],
    x: &[f64],
    d0: i64,
    days: usize,
) -> (Vec<(AnomalyTypes, f64)>, Vec<f64>) {
    let n = x.len();
    let step = i64::from(p.interval_minutes) * 60;
    let per_day = (SECONDS_PER_DAY / step) as usize;
    let hours = f64::from(p.interval_minutes) / 60.0;
    let c = p.log_offset_kwh_per_hour * hours;
    let day: Vec<usize> = ts.iter().map(|&t| (day_of(t) - d0) as usize).collect();
    let slot: Vec<usize> = ts.iter().map(|&t| (second_of_day(t) / step) as usize).collect();
    let (mut grid, mut lgrid) = (vec![f64::NAN; days * per_day], vec![f64::NAN; days * per_day]);
    // Still steps per day, for the flat rule's gate, and their levels.
    let (mut still, mut steps) = (vec![0u32; days + 1], vec![0u32; days + 1]);
    let mut still_levels: Vec<Vec<f64>> = vec![Vec::new(); if p.flat_gate_same_level { days } else { 0 }];
    for i in 0..n {
        grid[day[i] * per_day + slot[i]] = x[i];
        lgrid[day[i] * per_day + slot[i]] = (x[i] + c).ln();
        if i > 0 && ts[i] - ts[i - 1] == step {
            steps[day[i] + 1] += 1;
            let is_still = (x[i] - x[i - 1]).abs() <= p.flat_tolerance_kwh;
            still[day[i] + 1] += u32::from(is_still);
            if is_still && p.flat_gate_same_level {
                still_levels[day[i]].push(0.5 * (x[i] + x[i - 1]));
            }
        }
    }
    for d in 1..=days {
        still[d] += still[d - 1];
        steps[d] += steps[d - 1];
    }
    let b = Baselines::new(p, &grid, &lgrid, days, per_day, c);

    let daily = p.interval_minutes >= 1440;
    let (cal_days, cal_min) = if daily {
        (p.daily_calibration_days, p.daily_calibration_min_days)
    } else {
        (p.calibration_days, p.calibration_min_days)
    };
    let min_values = f64::from(cal_min) * per_day as f64 * 0.5;
    let mut outlier_tail = Tail::new(cal_days, min_values, p.tail_probability);
    let mut spike_tail = Tail::new(cal_days, min_values, p.tail_probability);
    // A window holds at most `cal_days` days and the current one.
    let capacity = n.min((cal_days as usize + 1) * per_day);
    outlier_tail.reserve(capacity);
    spike_tail.reserve(capacity);
    let band = p.night_band;
    let mut nights = Nights {
        p,
        b: &b,
        per_day,
        min_mean: p.night_min_kwh_per_hour * hours,
        complete_needs: ((band.hours() * 60) / p.interval_minutes).div_ceil(2),
        key: None,
        own_ref: 0,
        own: NightAcc::default(),
        run: NightAcc::default(),
        run_n: 0,
        run_ref: 0,
        run_miss: 0,
    };
    let night_start = i64::from(band.start_hour) * 3600;
    let wraps = i64::from(band.start_hour > band.end_hour);
    let min_excess = |reference: f64| (p.min_excess_kwh_per_hour * hours).max(p.min_excess_rel * reference);
    let tol = p.flat_tolerance_kwh;
    let reference_days = p.flat_reference_days as usize;
    let (mut run_start, mut lo, mut hi, mut evidence) = (0, 0.0f64, 0.0f64, 0.0);
    // Completed flat runs (last day, readings, level) of the novelty window.
    let novelty_days = p.flat_novelty_days as usize;
    let mut runs: VecDeque<(usize, usize, f64)> = VecDeque::new();
    // Sorted levels of the still steps of days `d - flat_reference_days .. d - 1`.
    let mut window_levels: Vec<f64> = Vec::new();
    let mut all_slots = AllSlots { all: Vec::new(), removed: Vec::new(), as_of: 0 };
    let mut current_day = usize::MAX;
    let mut out = Vec::with_capacity(n);

    for i in 0..n {
        let (d, s, xi) = (day[i], slot[i], x[i]);
        let cell = d * per_day + s;
        if d != current_day {
            outlier_tail.start_day(d);
            spike_tail.start_day(d);
            current_day = d;
            if p.flat_gate_same_level {
                window_levels.clear();
                for levels in &still_levels[d.saturating_sub(reference_days)..d] {
                    window_levels.extend_from_slice(levels);
                }
                window_levels.sort_unstable_by(f64::total_cmp);
            }
            while runs.front().is_some_and(|&(last, _, _)| last + novelty_days < d) {
                runs.pop_front();
            }
        }
        let consecutive = i > 0 && ts[i] - ts[i - 1] == step;
        let mut ratio = [0.0f64; 5];
        let ly = lgrid[cell];

        // Outlier: log ratio to the slot median, calibrated on the client's tail.
        let med = b.med_x[cell];
        let slot_ok = !med.is_nan();
        if slot_ok {
            let z = ly - b.med_y[cell];
            ratio[0] = outlier_tail.ratio(z).min(((xi - med) / min_excess(med)).max(0.0));
            outlier_tail.push(d, z);
        }

        // Spike: a jump over the previous reading, the slot median and the mean.
        let previous = if consecutive { x[i - 1] } else { 0.0 };
        let reference = previous.max(med).max(b.mean_all[d]);
        // The previous reading's log when it is the reference.
        let z = ly - if consecutive && reference == previous { lgrid[cell - 1] } else { (reference + c).ln() };
        if slot_ok && b.ok_day[d] {
            ratio[1] = spike_tail.ratio(z).min(((xi - reference) / min_excess(reference)).max(0.0));
        }
        spike_tail.push(d, z);

        // Night use and plantation: hour-of-day rules, off for daily meters.
        if !daily && band.contains(second_of_day(ts[i])) {
            let key = day_of(ts[i] - night_start) - d0 + wraps;
            (ratio[2], ratio[3]) = nights.step(key, d, s, xi);
        }

        // Flat: greedy run within the tolerance; evidence hours.
        if i == 0 || !consecutive || hi.max(xi) - lo.min(xi) > tol {
            if novelty_days > 0 && i > 0 && i - run_start >= p.flat_min_readings as usize {
                runs.push_back((day[i - 1], i - run_start, 0.5 * (lo + hi)));
            }
            (run_start, lo, hi, evidence) = (i, xi, xi, 0.0);
        } else {
            (lo, hi) = (lo.min(xi), hi.max(xi));
        }
        if b.ok_day[d] {
            let length = i - run_start + 1;
            let level = 0.5 * (lo + hi);
            if xi < b.low_x[cell] - tol {
                evidence += hours;
            }
            let varies = || {
                let first = d.saturating_sub(reference_days);
                let (n_steps, n_still) = (steps[d] - steps[first], still[d] - still[first]);
                if p.flat_gate_same_level {
                    // Only still steps at this run's level close the gate.
                    let (upper, lower) = (level + tol, level - tol);
                    let n_same =
                        window_levels.partition_point(|&v| v <= upper) - window_levels.partition_point(|&v| v < lower);
                    n_steps > 0 && n_same as f64 / f64::from(n_steps) <= p.flat_max_still_fraction
                } else {
                    n_steps > 0 && f64::from(n_still) <= p.flat_max_still_fraction * f64::from(n_steps)
                }
            };
            if length >= p.flat_min_readings as usize && varies() {
                let stuck = level > all_slots.q25(&b, d) + tol;
                let hours_of_evidence = if stuck { length as f64 * hours } else { evidence };
                let mut r = hours_of_evidence / p.flat_evidence_hours;
                if novelty_days > 0 {
                    // Novelty: longer than the client's own recent completed runs at this level.
                    let mut reference_len = 0usize;
                    for &(last, len, run_level) in runs.iter().rev() {
                        if last + novelty_days < d {
                            break;
                        }
                        if last < d && (run_level - level).abs() <= tol {
                            reference_len = reference_len.max(len);
                        }
                    }
                    let longest = p.flat_evidence_hours.max(p.flat_novelty_factor * reference_len as f64 * hours);
                    r = r.max(length as f64 * hours / longest);
                }
                ratio[4] = r;
            }
        }
        out.push(combine_grouped(&ratio));
    }
    let usual = (0..n).map(|i| b.med_x[day[i] * per_day + slot[i]]).collect();
    (out, usual)
}

/// Group of each rule: {outlier, spike}, {night_use, plantation}, {flat}.
const GROUP: [usize; 5] = [0, 0, 1, 1, 2];

/// Fired rules' scores: the max within a group, `1 - prod(1 - s)` across
/// groups; with none fired, the highest sub-threshold score.
fn combine_grouped(ratios: &[f64; 5]) -> (AnomalyTypes, f64) {
    let (mut types, mut below, mut groups) = (0u8, 0.0f64, [0.0f64; 3]);
    for (k, &r) in ratios.iter().enumerate() {
        let r = if r.is_nan() { 0.0 } else { r.max(0.0) };
        let s = rule_score(r);
        if r >= 1.0 {
            types |= AnomalyType::ALL[k].bit();
            groups[GROUP[k]] = groups[GROUP[k]].max(s);
        } else {
            below = below.max(s);
        }
    }
    if types == 0 {
        (AnomalyTypes(0), below)
    } else {
        (AnomalyTypes(types), 1.0 - groups.iter().map(|g| 1.0 - g).product::<f64>())
    }
}

#[cfg(test)]
#[path = "calibrated_tests.rs"]
mod tests;
