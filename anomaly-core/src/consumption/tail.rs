//! A client's own tail of one statistic (the calibrated rules' outlier and
//! spike scores): exact upper quantiles of a sliding window of days, found
//! through a histogram so that a reading costs O(1) amortised.

use std::collections::VecDeque;

/// Bins of the tail histograms: `BIN_WIDTH` wide from `BIN_LOW`, the end
/// bins open. They only narrow down which values hold the upper quantiles;
/// the quantiles themselves are exact (a selection among those values).
const BINS: usize = 4096;
const BIN_LOW: f64 = -20.0;
const BIN_WIDTH: f64 = 0.01;

/// `floor` then clamp, as a clamp then a truncation (the same for a
/// non-negative value, and no call to `floor`).
fn bin_of(z: f64) -> u16 {
    ((z - BIN_LOW) / BIN_WIDTH).clamp(0.0, (BINS - 1) as f64) as u16
}

/// A client's own tail of one statistic over the previous `days` days.
/// A histogram finds the bins holding the ranks of the two quantiles, and
/// each rank is selected among its bin's values only: O(1) amortised per
/// reading plus, per day, a walk down the top bins of the histogram.
pub(super) struct Tail {
    days: usize,
    min_values: f64,
    offset: f64,
    /// The window's values, oldest first; `start` is the sequence number of
    /// the front one (wrapping: only differences within the window count).
    window: VecDeque<Entry>,
    start: u32,
    histogram: Vec<u32>,
    /// Sequence number of the newest value of each non-empty bin: with the
    /// `previous` links, a bin's values without scanning the window.
    newest: Vec<u32>,
    /// No value in the window lies in a bin above this one.
    top: usize,
    buf: Vec<f64>,
    pub(super) q95: f64,
    pub(super) spread: f64,
    pub(super) ok: bool,
}

struct Entry {
    value: f64,
    day: usize,
    /// The previous value in the same bin (followed only `histogram[bin]`
    /// times, so links to values that left the window are never used).
    previous: u32,
    bin: u16,
}

impl Tail {
    pub(super) fn new(days: u32, min_values: f64, tail_probability: f64) -> Self {
        Tail {
            days: days as usize,
            min_values,
            offset: 1.0 + (tail_probability / 0.05).log10(),
            window: VecDeque::new(),
            start: 0,
            histogram: vec![0; BINS],
            newest: vec![0; BINS],
            top: 0,
            buf: Vec::new(),
            q95: 0.0,
            spread: 1.0,
            ok: false,
        }
    }

    /// Room for `n` values in the window, so that it does not regrow.
    pub(super) fn reserve(&mut self, n: usize) {
        self.window.reserve(n);
    }

    /// Recomputes the quantiles for day `d` from days `d - days .. d - 1`.
    pub(super) fn start_day(&mut self, d: usize) {
        while let Some(e) = self.window.front().filter(|e| e.day + self.days < d) {
            self.histogram[usize::from(e.bin)] -= 1;
            self.window.pop_front();
            self.start = self.start.wrapping_add(1);
        }
        let n = self.window.len();
        self.ok = n > 0 && n as f64 >= self.min_values;
        if !self.ok {
            return;
        }
        let (p95, p99) = (0.95 * (n - 1) as f64, 0.99 * (n - 1) as f64);
        let (k95, k99) = (p95.floor() as usize, p99.floor() as usize);
        // Ranks (ascending; the last one's successor is itself) whose values
        // the two quantiles interpolate, highest first.
        let ranks = [(k99 + 1).min(n - 1), k99, (k95 + 1).min(n - 1), k95];
        let mut at = [0.0; 4];
        while self.histogram[self.top] == 0 {
            self.top -= 1;
        }
        // Bins are monotone in the value (`total_cmp` order; `z` is never
        // NaN), so rank `r` is the `r - below`-th of its bin: the same value
        // as a selection over the whole window.
        let (mut bin, mut below) = (self.top, n - self.histogram[self.top] as usize);
        let mut gathered = usize::MAX;
        for (&r, v) in ranks.iter().zip(&mut at) {
            while below > r {
                bin -= 1;
                below -= self.histogram[bin] as usize;
            }
            if gathered != bin {
                self.gather(bin);
                gathered = bin;
            }
            *v = *self.buf.select_nth_unstable_by(r - below, f64::total_cmp).1;
        }
        let [b_next, b, a_next, a] = at;
        let q95 = a + (a_next - a) * (p95 - k95 as f64);
        let q99 = b + (b_next - b) * (p99 - k99 as f64);
        self.q95 = q95;
        self.spread = (q99 - q95).max(0.05);
    }

    /// The values of `bin` into `buf`, newest first.
    fn gather(&mut self, bin: usize) {
        self.buf.clear();
        let mut seq = self.newest[bin];
        for _ in 0..self.histogram[bin] {
            let e = &self.window[seq.wrapping_sub(self.start) as usize];
            self.buf.push(e.value);
            seq = e.previous;
        }
    }

    pub(super) fn push(&mut self, d: usize, z: f64) {
        let bin = bin_of(z);
        let b = usize::from(bin);
        let seq = self.start.wrapping_add(self.window.len() as u32);
        self.window.push_back(Entry { value: z, day: d, previous: self.newest[b], bin });
        self.newest[b] = seq;
        self.histogram[b] += 1;
        self.top = self.top.max(b);
    }

    /// `max(0, 1 + log10(p0 / P(Z > z)))` under the exponential tail.
    pub(super) fn ratio(&self, z: f64) -> f64 {
        if !self.ok || z.is_nan() {
            return 0.0;
        }
        (std::f64::consts::LOG10_E * 5f64.ln() * (z - self.q95) / self.spread + self.offset).max(0.0)
    }
}
