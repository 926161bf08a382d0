//! Simulated process readings (the plant's demo and benchmark data): per
//! variable a level, daily and weekly cycles, a slow trend, noise, and
//! spikes at a given rate; deterministic for a seed.

use crate::error::{Error, Result};
use crate::rng::Rng;

/// The most readings one simulation writes (variables x steps).
pub const MAX_READINGS: usize = 100_000_000;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// Process variables (`VAR_01`, `VAR_02`, ...).
    pub variables: usize,
    /// Days of history.
    pub days: f64,
    /// Minutes between readings.
    pub interval_minutes: i64,
    /// First time (seconds).
    pub start: i64,
    /// Share of readings turned into spikes.
    pub anomaly_ratio: f64,
    /// Random seed.
    pub seed: u64,
}

/// Simulated readings, time-major (every variable at one time, then the next time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessReadings {
    /// Variable names; `variable` indexes them.
    pub names: Vec<String>,
    /// Seconds.
    pub ts: Vec<i64>,
    /// Index into `names`.
    pub variable: Vec<u32>,
    /// The reading.
    pub value: Vec<f64>,
    /// Readings turned into spikes.
    pub spikes: usize,
}

/// Simulates readings; sizes are checked before anything is allocated.
pub fn simulate_process(spec: &ProcessSpec) -> Result<ProcessReadings> {
    let bad = |what: &str, value: String, why: &str| Err(Error::param(what, value, why));
    if spec.variables == 0 || spec.variables > u32::MAX as usize {
        return bad("variables", spec.variables.to_string(), "must be between 1 and 2^32");
    }
    if !(spec.interval_minutes > 0 && spec.interval_minutes <= 1440 * 366) {
        return bad("interval_minutes", spec.interval_minutes.to_string(), "must be positive, at most a year");
    }
    if !(spec.days.is_finite() && spec.days > 0.0) {
        return bad("days", spec.days.to_string(), "must be a positive number");
    }
    if !(0.0..=1.0).contains(&spec.anomaly_ratio) {
        return bad("anomaly_ratio", spec.anomaly_ratio.to_string(), "must be between 0 and 1");
    }
    let steps = (spec.days * 1440.0 / spec.interval_minutes as f64).round();
    let total = steps * spec.variables as f64;
    if total > MAX_READINGS as f64 {
        return bad("days", spec.days.to_string(), &format!("{total} readings: at most {MAX_READINGS} at once"));
    }
    let (steps, n) = (steps as usize, total as usize);
    let step_s = spec.interval_minutes * 60;
    if spec.start.checked_add(step_s.saturating_mul(steps as i64)).is_none() {
        return bad("start", spec.start.to_string(), "the simulated range overflows");
    }
    let mut rng = Rng::new(spec.seed);
    let mut out = ProcessReadings {
        names: (0..spec.variables).map(|v| format!("VAR_{:02}", v + 1)).collect(),
        ts: Vec::with_capacity(n),
        variable: Vec::with_capacity(n),
        value: Vec::with_capacity(n),
        spikes: 0,
    };
    for i in 0..steps {
        let ts = spec.start + i as i64 * step_s;
        let day = (ts.rem_euclid(86_400)) as f64 / 86_400.0;
        let week = (ts.rem_euclid(7 * 86_400)) as f64 / (7.0 * 86_400.0);
        for v in 0..spec.variables {
            let level = 40.0 + 7.0 * v as f64;
            let phase = v as f64 * 0.7;
            let seasonal = 1.0
                + 0.08 * (std::f64::consts::TAU * day + phase).sin()
                + 0.03 * (std::f64::consts::TAU * week + phase).cos();
            let mut y = level * seasonal * (1.0 + 0.0005 * i as f64 / 288.0) + rng.normal();
            if rng.uniform(0.0, 1.0) < spec.anomaly_ratio {
                y += if rng.uniform(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 } * rng.uniform(8.0, 15.0);
                out.spikes += 1;
            }
            out.ts.push(ts);
            out.variable.push(v as u32);
            out.value.push(y);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_before_allocating() {
        let spec = ProcessSpec { variables: 2, days: 1.0, interval_minutes: 60, start: 0, anomaly_ratio: 0.1, seed: 1 };
        let r = simulate_process(&spec).unwrap();
        assert_eq!((r.ts.len(), r.names.len()), (48, 2));
        assert_eq!(r, simulate_process(&spec).unwrap());
        for bad in [
            ProcessSpec { variables: 0, ..spec.clone() },
            ProcessSpec { days: 1e12, ..spec.clone() },
            ProcessSpec { days: f64::NAN, ..spec.clone() },
            ProcessSpec { interval_minutes: -5, ..spec.clone() },
            ProcessSpec { anomaly_ratio: 2.0, ..spec.clone() },
            ProcessSpec { start: i64::MAX - 10, ..spec.clone() },
        ] {
            assert!(simulate_process(&bad).is_err(), "{bad:?}");
        }
    }
}
