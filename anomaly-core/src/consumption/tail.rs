//! A client's own tail of one statistic (the calibrated rules' outlier and
//! spike scores): exact upper quantiles of a sliding window of days, found
//! through a histogram so that a reading costs O(1) amortised.

use std::collections::VecDeque;

/// `(a[k], a[k + 1])` of `a` sorted, by selection (reorders `a`; `a[k + 1]`
/// is `a[k]` when `k` is last), and the part of `a` above `k`.
fn select_pair(a: &mut [f64], k: usize) -> (f64, f64, &mut [f64]) {
    let (_, nth, right) = a.select_nth_unstable_by(k, f64::total_cmp);
    let v = *nth;
    let next = right.iter().copied().fold(f64::INFINITY, f64::min);
    (v, if right.is_empty() { v } else { next }, right)
}

/// Bins of the tail histograms: `BIN_WIDTH` wide from `BIN_LOW`, the end
/// bins open. They only narrow down which values hold the upper quantiles;
/// the quantiles themselves are exact (a selection among those values).
const BINS: usize = 4096;
const BIN_LOW: f64 = -20.0;
const BIN_WIDTH: f64 = 0.01;

fn bin_of(z: f64) -> u16 {
    ((z - BIN_LOW) / BIN_WIDTH).floor().clamp(0.0, (BINS - 1) as f64) as u16
}

/// A client's own tail of one statistic over the previous `days` days.
/// A histogram finds the bins holding the top 5% of the window, and the
/// quantiles are selected among those values only: O(1) amortised per reading plus one scan of the
/// window per day.
pub(super) struct Tail {
    days: usize,
    min_values: f64,
    offset: f64,
    /// Day, value and bin of each value in the window, oldest first.
    days_of: VecDeque<usize>,
    values: VecDeque<f64>,
    bins: VecDeque<u16>,
    histogram: Vec<u32>,
    /// No value in the window lies in a bin above this one.
    top: usize,
    buf: Vec<f64>,
    pub(super) q95: f64,
    pub(super) spread: f64,
    pub(super) ok: bool,
}

impl Tail {
    pub(super) fn new(days: u32, min_values: f64, tail_probability: f64) -> Self {
        Tail {
            days: days as usize,
            min_values,
            offset: 1.0 + (tail_probability / 0.05).log10(),
            days_of: VecDeque::new(),
            values: VecDeque::new(),
            bins: VecDeque::new(),
            histogram: vec![0; BINS],
            top: 0,
            buf: Vec::new(),
            q95: 0.0,
            spread: 1.0,
            ok: false,
        }
    }

    /// Recomputes the quantiles for day `d` from days `d - days .. d - 1`.
    pub(super) fn start_day(&mut self, d: usize) {
        while self.days_of.front().is_some_and(|&day| day + self.days < d) {
            self.days_of.pop_front();
            self.values.pop_front();
            let bin = self.bins.pop_front().unwrap_or_default();
            self.histogram[usize::from(bin)] -= 1;
        }
        let n = self.values.len();
        self.ok = n > 0 && n as f64 >= self.min_values;
        if !self.ok {
            return;
        }
        let (p95, p99) = (0.95 * (n - 1) as f64, 0.99 * (n - 1) as f64);
        let k95 = p95.floor() as usize;
        // The bins from the top that hold ranks k95.. (ascending ranks).
        while self.histogram[self.top] == 0 {
            self.top -= 1;
        }
        let (mut above, mut first_bin) = (0usize, self.top + 1);
        while above < n - k95 {
            first_bin -= 1;
            above += self.histogram[first_bin] as usize;
        }
        let first_bin = first_bin as u16;
        self.buf.clear();
        for (&bin, &v) in self.bins.iter().zip(&self.values) {
            if bin >= first_bin {
                self.buf.push(v);
            }
        }
        // Ranks k95.. of the window are ranks k95 - below.. of `buf`.
        let below = n - self.buf.len();
        let k99 = p99.floor() as usize;
        let (a, a_next, right) = select_pair(&mut self.buf, k95 - below);
        let q95 = a + (a_next - a) * (p95 - k95 as f64);
        let (b, b_next) = if k99 == k95 {
            (a, a_next)
        } else {
            let (b, b_next, _) = select_pair(right, k99 - k95 - 1);
            (b, b_next)
        };
        let q99 = b + (b_next - b) * (p99 - k99 as f64);
        self.q95 = q95;
        self.spread = (q99 - q95).max(0.05);
    }

    pub(super) fn push(&mut self, d: usize, z: f64) {
        let bin = bin_of(z);
        self.histogram[usize::from(bin)] += 1;
        self.top = self.top.max(usize::from(bin));
        self.days_of.push_back(d);
        self.values.push_back(z);
        self.bins.push_back(bin);
    }

    /// `max(0, 1 + log10(p0 / P(Z > z)))` under the exponential tail.
    pub(super) fn ratio(&self, z: f64) -> f64 {
        if !self.ok || z.is_nan() {
            return 0.0;
        }
        (std::f64::consts::LOG10_E * 5f64.ln() * (z - self.q95) / self.spread + self.offset).max(0.0)
    }
}
