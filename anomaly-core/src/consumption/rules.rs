//! The five consumption rules, evaluated per client in one causal pass.

use std::collections::VecDeque;

use rayon::prelude::*;

use super::episodes::client_episodes;
use super::params::{ConsumptionRules, Method};
use super::readings::Readings;
use super::report::{
    AnomalyType, AnomalyTypes, ClientSummary, ConsumptionReport, Episode, MonthlyAggregate, ReadingFlags, Severity,
};
use crate::error::{Error, Result};
use crate::time::{civil_from_days, day_of, second_of_day, SECONDS_PER_DAY};
use crate::traits::Detect;

/// Guards divisions by a reference level of zero.
const EPS: f64 = 1e-6;
/// Longest span one client may cover (the per-day grid is laid out densely).
const MAX_DAYS: i64 = 36_600;

impl Detect<Readings> for ConsumptionRules {
    type Output = ConsumptionReport;

    /// Flags every reading, summarises every client and aggregates months.
    /// Clients are independent and run in parallel; the result does not
    /// depend on the number of threads or on the order of the input rows.
    fn detect(&self, readings: &Readings) -> Result<ConsumptionReport> {
        let step = i64::from(self.params.interval_minutes) * 60;
        let groups = readings.group(step)?;
        let (all_ts, all_x) = (readings.timestamps(), readings.kwh());
        let outputs: Vec<Result<ClientOutput>> = groups
            .clients
            .par_iter()
            .map(|g| {
                let rows = &groups.order[g.start..g.end];
                let ts: Vec<i64> = rows.iter().map(|&r| all_ts[r as usize]).collect();
                let x: Vec<f64> = rows.iter().map(|&r| all_x[r as usize]).collect();
                let name = &readings.client_names()[g.code as usize];
                self.detect_client(name, &ts, &x, &readings.names().time)
            })
            .collect();

        let outputs = outputs.into_iter().collect::<Result<Vec<_>>>()?;
        let n = readings.len();
        let mut report = ConsumptionReport {
            flags: ReadingFlags::default(),
            clients: Vec::with_capacity(groups.clients.len()),
            monthly: Vec::new(),
            episodes: Vec::new(),
        };
        // Input already sorted by client and time (the common case): the
        // per-client columns concatenate into input order.
        let in_order = groups.order.iter().enumerate().all(|(i, &row)| i == row as usize);
        let flags = &mut report.flags;
        if in_order {
            flags.is_anomaly.reserve(n);
            flags.types.reserve(n);
            flags.score.reserve(n);
            flags.severity.reserve(n);
            flags.usual.reserve(n);
        } else {
            flags.is_anomaly = vec![false; n];
            flags.types = vec![AnomalyTypes::default(); n];
            flags.score = vec![0.0; n];
            flags.severity = vec![Severity::Normal; n];
            flags.usual = vec![f64::NAN; n];
        }
        for (g, output) in groups.clients.iter().zip(outputs) {
            if in_order {
                flags.is_anomaly.extend(output.flags.iter().map(|(types, _)| !types.is_empty()));
                flags.types.extend(output.flags.iter().map(|(types, _)| *types));
                flags.score.extend(output.flags.iter().map(|(_, score)| *score));
                flags.severity.extend(output.flags.iter().map(|(_, score)| self.severity(*score)));
                flags.usual.extend_from_slice(&output.usual);
            } else {
                let rows = &groups.order[g.start..g.end];
                for ((&(types, score), &row), &usual) in output.flags.iter().zip(rows).zip(&output.usual) {
                    let row = row as usize;
                    flags.is_anomaly[row] = !types.is_empty();
                    flags.types[row] = types;
                    flags.score[row] = score;
                    flags.severity[row] = self.severity(score);
                    flags.usual[row] = usual;
                }
            }
            report.clients.push(output.summary);
            report.monthly.extend(output.monthly);
            report.episodes.extend(output.episodes);
        }
        self.score_months(&report.episodes, &mut report.monthly);
        if self.params.method == Method::Calibrated {
            let suspicious: std::collections::HashSet<&str> =
                report.monthly.iter().filter(|m| m.suspicious).map(|m| m.client.as_str()).collect();
            for c in &mut report.clients {
                c.suspicious = suspicious.contains(c.client.as_str());
            }
        }
        Ok(report)
    }
}

struct ClientOutput {
    flags: Vec<(AnomalyTypes, f64)>,
    usual: Vec<f64>,
    summary: ClientSummary,
    monthly: Vec<MonthlyAggregate>,
    episodes: Vec<Episode>,
}

/// Sums over whole days, as prefix sums: `row d` holds days `0..d`, so a
/// window of days `lo..hi` is `row hi - row lo`.
struct DayPrefix {
    width: usize,
    count: Vec<u32>,
    sum: Vec<f64>,
    sumsq: Vec<f64>,
}

impl DayPrefix {
    fn new(days: usize, width: usize) -> Self {
        let len = (days + 1) * width;
        DayPrefix { width, count: vec![0; len], sum: vec![0.0; len], sumsq: vec![0.0; len] }
    }

    fn add(&mut self, day: usize, column: usize, v: f64) {
        let i = (day + 1) * self.width + column;
        self.count[i] += 1;
        self.sum[i] += v;
        self.sumsq[i] += v * v;
    }

    fn accumulate(&mut self) {
        for i in self.width..self.count.len() {
            self.count[i] += self.count[i - self.width];
            self.sum[i] += self.sum[i - self.width];
            self.sumsq[i] += self.sumsq[i - self.width];
        }
    }

    /// `(count, mean, sample std)` over days `lo..hi` in `column`.
    fn window(&self, lo: usize, hi: usize, column: usize) -> (u32, f64, f64) {
        let (a, b) = (lo * self.width + column, hi * self.width + column);
        let c = self.count[b] - self.count[a];
        if c == 0 {
            return (0, 0.0, 0.0);
        }
        let (s, q) = (self.sum[b] - self.sum[a], self.sumsq[b] - self.sumsq[a]);
        let n = f64::from(c);
        let mean = s / n;
        let var = if c > 1 { ((q - s * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
        (c, mean, var.sqrt())
    }
}

/// Maps a rule's ratio to its threshold (1 = exactly at it) to a score:
/// 0.5 at the threshold, rising towards 1 above it and falling linearly to 0
/// below, so every rule speaks the same scale.
pub(super) fn rule_score(ratio: f64) -> f64 {
    if ratio < 1.0 {
        0.5 * ratio
    } else {
        1.0 - 0.5 / ratio
    }
}

/// How far `x` exceeds `reference` relative to `min_excess` (infinite when
/// no minimum excess is required and `x` is above).
fn excess_ratio(x: f64, reference: f64, min_excess: f64) -> f64 {
    if min_excess > 0.0 {
        (x - reference) / min_excess
    } else if x > reference {
        f64::INFINITY
    } else {
        0.0
    }
}

impl ConsumptionRules {
    /// Severity of a score under these parameters.
    pub fn severity(&self, score: f64) -> Severity {
        let p = &self.params;
        if score < 0.5 {
            Severity::Normal
        } else if score < p.severity_media {
            Severity::Baja
        } else if score < p.severity_alta {
            Severity::Media
        } else if score < p.severity_critica {
            Severity::Alta
        } else {
            Severity::Critica
        }
    }

    fn detect_client(&self, name: &str, ts: &[i64], x: &[f64], time_field: &str) -> Result<ClientOutput> {
        let p = &self.params;
        let n = ts.len();
        let step = i64::from(p.interval_minutes) * 60;
        let per_day = (SECONDS_PER_DAY / step) as usize;
        let d0 = day_of(ts[0]);
        let span = day_of(ts[n - 1]) - d0 + 1;
        if span > MAX_DAYS {
            return Err(Error::SpanTooLong {
                field: time_field.into(),
                series: name.into(),
                days: span,
                max_days: MAX_DAYS,
            });
        }
        let days = span as usize;
        let day_index = |t: i64| (day_of(t) - d0) as usize;
        let cell: Vec<usize> =
            ts.iter().map(|&t| day_index(t) * per_day + (second_of_day(t) / step) as usize).collect();
        let is_night: Vec<bool> = ts.iter().map(|&t| p.night_band.contains(second_of_day(t))).collect();
        if p.method == Method::Calibrated {
            let (flags, baseline) = super::calibrated::flags(p, ts, x, d0, days);
            let (summary, monthly) = self.summarise(name, ts, x, &is_night, &flags);
            let episodes = client_episodes(self, name, ts, x, &baseline, &flags);
            return Ok(ClientOutput { flags, usual: baseline, summary, monthly, episodes });
        }
        let mut grid = vec![f64::NAN; days * per_day];

        // Baselines: per slot of the day (z-score), all readings (flat), and
        // night / other readings (night and plantation rules). Values are
        // shifted by the first reading so the sums of squares stay small.
        let shift = x[0];
        let mut slots = DayPrefix::new(days, per_day);
        let mut totals = DayPrefix::new(days, 1);
        let mut bands = DayPrefix::new(days, 2); // column 0: night, 1: other hours
        for i in 0..n {
            grid[cell[i]] = x[i];
            let (d, s) = (cell[i] / per_day, cell[i] % per_day);
            slots.add(d, s, x[i] - shift);
            totals.add(d, 0, x[i] - shift);
            bands.add(d, usize::from(!is_night[i]), x[i]);
        }
        slots.accumulate();
        totals.accumulate();
        bands.accumulate();

        let baseline = p.baseline_days as usize;
        let min_history = p.min_history_days;
        let night_start = i64::from(p.night_band.start_hour) * 3600;
        let slots_per_night = (p.night_band.hours() as usize * 60) / p.interval_minutes as usize;
        let mut night_sum = vec![0.0; days + 1];
        let mut night_count = vec![0usize; days + 1];
        let mut same_hour = Vec::with_capacity(p.spike_baseline_days as usize);
        let (mut max_q, mut min_q) = (VecDeque::new(), VecDeque::new());
        let mut run_start = 0;
        let mut flags = Vec::with_capacity(n);
        // The usual level of each reading, for episodes: its hour's mean.
        let mut usual = Vec::with_capacity(n);

        for i in 0..n {
            let (xi, di, slot) = (x[i], cell[i] / per_day, cell[i] % per_day);
            let lo = di.saturating_sub(baseline);
            let mut ratio = [0.0f64; 5];

            // Outlier: z-score against the same hour of day, and at least
            // `min_excess_kwh` away from its mean.
            let (c, mean, std) = slots.window(lo, di, slot);
            usual.push(if c >= min_history { mean + shift } else { f64::NAN });
            if c >= min_history {
                let deviation = (xi - shift - mean).abs();
                ratio[0] = (deviation / std.max(p.min_std_kwh) / p.zscore_threshold).min(excess_ratio(
                    deviation,
                    0.0,
                    p.min_excess_kwh,
                ));
            }
            let (c_all, mean_all, std_all) = totals.window(lo, di, 0);

            // Spike: a jump over both the recent and the typical level: the
            // previous reading, the median of the same hour on the previous
            // days, and the client's mean level (household use is bursty; an
            // idle hour's median alone is no reference for a spike).
            same_hour.clear();
            for k in 1..=(p.spike_baseline_days as usize).min(di) {
                let v = grid[(di - k) * per_day + slot];
                if !v.is_nan() {
                    same_hour.push(v);
                }
            }
            if !same_hour.is_empty() && same_hour.len() * 2 >= p.spike_baseline_days as usize {
                let level = if c_all >= min_history { mean_all + shift } else { 0.0 };
                let previous = if i > 0 && cell[i] == cell[i - 1] + 1 { x[i - 1] } else { 0.0 };
                let typical = median(&mut same_hour).max(level).max(previous);
                ratio[1] = (xi / ((1.0 + p.spike_increase) * typical.max(EPS))).min(excess_ratio(
                    xi,
                    typical,
                    p.min_excess_kwh,
                ));
            }

            if is_night[i] {
                // Night use: over the client's mean night reading.
                let (c, night_mean, _) = bands.window(lo, di, 0);
                if c >= min_history {
                    ratio[2] = (xi / (p.night_factor * night_mean.max(EPS))).min(excess_ratio(
                        xi,
                        night_mean,
                        p.min_excess_kwh,
                    ));
                }
                // Plantation: the last `plantation_nights` nights all heavy.
                // Night k starts on day k - 1; its baseline ends before the
                // first night under test, so the pattern cannot mask itself.
                let key = (day_of(ts[i] - night_start) - d0 + 1) as usize;
                night_sum[key] += xi;
                night_count[key] += 1;
                ratio[3] = self.plantation_ratio(key, &night_sum, &night_count, &bands, slots_per_night);
            }

            // Flat: the longest run of consecutive readings ending here whose
            // spread stays within the tolerance (monotonic queues).
            if i == 0 || cell[i] != cell[i - 1] + 1 {
                run_start = i;
                max_q.clear();
                min_q.clear();
            }
            while max_q.back().is_some_and(|&j| x[j] <= xi) {
                max_q.pop_back();
            }
            max_q.push_back(i);
            while min_q.back().is_some_and(|&j| x[j] >= xi) {
                min_q.pop_back();
            }
            min_q.push_back(i);
            while let (Some(&hi), Some(&lo_idx)) = (max_q.front(), min_q.front()) {
                if x[hi] - x[lo_idx] <= p.flat_tolerance_kwh {
                    break;
                }
                run_start += 1;
                while max_q.front().is_some_and(|&j| j < run_start) {
                    max_q.pop_front();
                }
                while min_q.front().is_some_and(|&j| j < run_start) {
                    min_q.pop_front();
                }
            }
            if c_all >= min_history {
                let std = std_all;
                let run_hours = ((i - run_start + 1) as i64 * step) as f64 / 3600.0;
                let varies = if p.flat_min_baseline_std > 0.0 { std / p.flat_min_baseline_std } else { f64::INFINITY };
                ratio[4] = (run_hours / f64::from(p.flat_hours)).min(varies);
            }

            flags.push(combine(&ratio));
        }

        let (summary, monthly) = self.summarise(name, ts, x, &is_night, &flags);
        let episodes = client_episodes(self, name, ts, x, &usual, &flags);
        Ok(ClientOutput { flags, usual, summary, monthly, episodes })
    }

    /// Ratio of the plantation rule for the night with index `key`, using
    /// nights `key - K + 1 ..= key` so far.
    fn plantation_ratio(
        &self,
        key: usize,
        night_sum: &[f64],
        night_count: &[usize],
        bands: &DayPrefix,
        slots_per_night: usize,
    ) -> f64 {
        let p = &self.params;
        let nights = p.plantation_nights as usize;
        if key + 1 < nights {
            return 0.0;
        }
        let first = key + 1 - nights;
        if first < 2 {
            return 0.0; // no baseline day before the first night under test
        }
        let hi = first - 1;
        let lo = hi.saturating_sub(p.baseline_days as usize);
        let (cn, night_mean, _) = bands.window(lo, hi, 0);
        let (cd, day_mean, _) = bands.window(lo, hi, 1);
        if cn < p.min_history_days || cd < p.min_history_days {
            return 0.0;
        }
        let (mut lowest, mut total, mut count) = (f64::INFINITY, 0.0, 0);
        for k in first..=key {
            // Completed nights need half their readings; the current one any.
            let needed = if k == key { 1 } else { slots_per_night.div_ceil(2) };
            if night_count[k] < needed {
                return 0.0;
            }
            lowest = lowest.min(night_sum[k] / night_count[k] as f64);
            total += night_sum[k];
            count += night_count[k];
        }
        let heavy = lowest / (p.night_factor * night_mean.max(EPS));
        let over_days = (total / count as f64) / (p.plantation_day_ratio * day_mean.max(EPS));
        heavy.min(over_days).min(excess_ratio(lowest, night_mean, p.min_excess_kwh))
    }

    fn summarise(
        &self,
        name: &str,
        ts: &[i64],
        x: &[f64],
        is_night: &[bool],
        flags: &[(AnomalyTypes, f64)],
    ) -> (ClientSummary, Vec<MonthlyAggregate>) {
        let p = &self.params;
        let mut summary = ClientSummary {
            client: name.to_owned(),
            n_readings: ts.len(),
            n_anomalies: 0,
            n_by_type: [0; 5],
            n_critical: 0,
            n_severe: 0,
            max_score: 0.0,
            suspicious: false,
        };
        let mut monthly: Vec<MonthlyAggregate> = Vec::new();
        let mut acc = MonthAcc::default();
        let mut current: Option<(i64, i64, u32)> = None; // (day, year, month)
        for (i, &(types, score)) in flags.iter().enumerate() {
            let day = day_of(ts[i]);
            let (year, month) = match current {
                Some((d, y, m)) if d == day => (y, m),
                _ => {
                    let (y, m, _) = civil_from_days(day);
                    (y, m)
                }
            };
            if current.is_none_or(|(d, _, _)| d != day) {
                acc.close_day();
                if current.is_some_and(|(_, y, m)| (y, m) != (year, month)) {
                    monthly.push(acc.finish(name));
                    acc = MonthAcc::default();
                }
            }
            current = Some((day, year, month));
            acc.year = year;
            acc.month = month;

            let severity = self.severity(score);
            let anomalous = !types.is_empty();
            if anomalous {
                summary.n_anomalies += 1;
                for (k, t) in AnomalyType::ALL.iter().enumerate() {
                    summary.n_by_type[k] += usize::from(types.contains(*t));
                }
            }
            summary.n_critical += usize::from(severity == Severity::Critica);
            summary.n_severe += usize::from(severity >= Severity::Alta);
            summary.max_score = summary.max_score.max(score);

            acc.add(x[i], anomalous, severity == Severity::Critica, if anomalous { score } else { 0.0 });
            if is_night[i] {
                acc.night = (acc.night.0 + x[i], acc.night.1 + 1);
            }
            if p.peak_band.contains(second_of_day(ts[i])) {
                acc.peak = (acc.peak.0 + x[i], acc.peak.1 + 1);
            }
        }
        acc.close_day();
        monthly.push(acc.finish(name));
        let structural = summary.n_by_type[3] + summary.n_by_type[4] > 0;
        summary.suspicious = structural || summary.n_severe >= p.suspicious_min_severe as usize;
        (summary, monthly)
    }
}

#[derive(Default)]
struct MonthAcc {
    year: i64,
    month: u32,
    n: usize,
    total: f64,
    min: f64,
    max: f64,
    anomalies: usize,
    critical: usize,
    night: (f64, usize),
    peak: (f64, usize),
    day_max: Option<f64>,
    day_max_sum: f64,
    days: usize,
}

impl MonthAcc {
    fn add(&mut self, x: f64, anomalous: bool, critical: bool, anomaly_score: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        }
        self.n += 1;
        self.total += x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.anomalies += usize::from(anomalous);
        self.critical += usize::from(critical);
        self.day_max = Some(self.day_max.unwrap_or(0.0).max(anomaly_score));
    }

    fn close_day(&mut self) {
        if let Some(m) = self.day_max.take() {
            self.day_max_sum += m;
            self.days += 1;
        }
    }

    fn finish(&self, client: &str) -> MonthlyAggregate {
        let mean = |(s, c): (f64, usize)| (c > 0).then(|| s / c as f64);
        MonthlyAggregate {
            n_readings: self.n,
            total_kwh: self.total,
            mean_kwh: self.total / self.n as f64,
            min_kwh: self.min,
            max_kwh: self.max,
            n_anomalies: self.anomalies,
            n_critical: self.critical,
            night_mean_kwh: mean(self.night),
            peak_mean_kwh: mean(self.peak),
            score: if self.days > 0 { self.day_max_sum / self.days as f64 } else { 0.0 },
            ..MonthlyAggregate::new(client, self.year, self.month)
        }
    }
}

/// Combines the rules' ratios: the rules that fired (ratio >= 1) combine as
/// independent evidence, `1 - prod(1 - s)`, which is at least 0.5; when none
/// fired, the score is the highest sub-threshold score, below 0.5.
fn combine(ratios: &[f64; 5]) -> (AnomalyTypes, f64) {
    let (mut types, mut below, mut none_left) = (0u8, 0.0f64, 1.0f64);
    for (k, &r) in ratios.iter().enumerate() {
        let r = if r.is_nan() { 0.0 } else { r.max(0.0) };
        let s = rule_score(r);
        if r >= 1.0 {
            types |= AnomalyType::ALL[k].bit();
            none_left *= 1.0 - s;
        } else {
            below = below.max(s);
        }
    }
    if types == 0 {
        (AnomalyTypes(0), below)
    } else {
        (AnomalyTypes(types), 1.0 - none_left)
    }
}

/// Median of a small, non-empty buffer (reorders it).
fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_scores_meet_at_the_threshold() {
        assert_eq!(rule_score(1.0), 0.5);
        assert!(rule_score(0.999) < 0.5 && rule_score(2.0) == 0.75 && rule_score(f64::INFINITY) == 1.0);
        assert_eq!(combine(&[0.0; 5]), (AnomalyTypes(0), 0.0));
        let (types, score) = combine(&[1.0, 2.0, 0.5, 0.0, f64::NAN]);
        assert_eq!(types, AnomalyTypes(0b11));
        assert!((score - (1.0 - 0.5 * 0.25)).abs() < 1e-15);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
