//! Realistic synthetic household readings with known injected anomalies,
//! for demos, benchmarks and tests (deterministic for a seed).

use serde::{Deserialize, Serialize};

use super::readings::{ColumnNames, Readings};
use super::report::AnomalyType;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::time::SECONDS_PER_DAY;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationSpec {
    /// Number of clients.
    pub clients: usize,
    /// Days of readings per client.
    pub days: u32,
    /// First timestamp (seconds; midnight recommended).
    pub start: i64,
    /// Sampling interval in minutes (must divide a day).
    pub interval_minutes: u32,
    /// Share of clients given a plantation or a flat meter, and (divided by
    /// 500) the chance that any later reading is a spike.
    pub anomaly_rate: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        SimulationSpec {
            clients: 50,
            days: 60,
            start: 19_723 * SECONDS_PER_DAY,
            interval_minutes: 60,
            anomaly_rate: 0.2,
            seed: 7,
        }
    }
}

/// An anomaly the simulator injected: readings of `client` from `start` up
/// to (excluding) `end` follow `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedEvent {
    /// Client name.
    pub client: String,
    /// The pattern injected.
    pub kind: AnomalyType,
    /// First affected timestamp.
    pub start: i64,
    /// First timestamp after the event.
    pub end: i64,
}

fn bump(hour: f64, centre: f64, width: f64) -> f64 {
    let d = (hour - centre) / width;
    (-0.5 * d * d).exp()
}

/// Generates readings for `spec.clients` households: a base load, morning,
/// midday and evening peaks, weekend changes and multiplicative noise, with
/// plantations (heavy night load for 7-14 nights), flat meters (2-4 days of
/// one constant value, often zero) and isolated spikes injected after a
/// two-week warm-up. Values are rounded to the watt-hour, as meters report.
///
/// ```
/// use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
/// let (readings, events) = simulate(&SimulationSpec { clients: 3, days: 30, ..Default::default() }).unwrap();
/// assert_eq!(readings.len(), 3 * 30 * 24);
/// # let _ = events;
/// ```
pub fn simulate(spec: &SimulationSpec) -> Result<(Readings, Vec<InjectedEvent>)> {
    if spec.clients == 0 {
        return Err(Error::param("clients", 0, "must be at least 1"));
    }
    if spec.days == 0 {
        return Err(Error::param("days", 0, "must be at least 1"));
    }
    if spec.interval_minutes == 0 || 1440 % spec.interval_minutes != 0 {
        return Err(Error::param("interval_minutes", spec.interval_minutes, "must divide a day (1440 minutes)"));
    }
    if !(0.0..=1.0).contains(&spec.anomaly_rate) {
        return Err(Error::param("anomaly_rate", spec.anomaly_rate, "must be between 0 and 1"));
    }
    let step = i64::from(spec.interval_minutes) * 60;
    let per_day = (SECONDS_PER_DAY / step) as usize;
    let hours_per_step = step as f64 / 3600.0;
    // Checked before anything is allocated: a huge request is an error, not an abort.
    let max = crate::forecast_interval::MAX_READINGS;
    let n = spec
        .clients
        .checked_mul(spec.days as usize)
        .and_then(|n| n.checked_mul(per_day))
        .filter(|&n| n <= max)
        .ok_or_else(|| {
            Error::param("clients", spec.clients, &format!("x {} days: at most {max} readings at once", spec.days))
        })?;
    let (mut client, mut timestamp, mut kwh) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let mut names = Vec::with_capacity(spec.clients.min(n));
    let mut events = Vec::new();
    let warmup = 14.min(spec.days as i64 - 1);
    let spike_chance = spec.anomaly_rate / 500.0;

    for c in 0..spec.clients {
        let mut rng = Rng::new(spec.seed ^ (c as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let name = format!("C{:05}", c + 1);
        let base = rng.uniform(0.12, 0.35);
        let (morning, midday, evening) = (rng.uniform(0.3, 1.0), rng.uniform(0.1, 0.6), rng.uniform(0.8, 2.5));
        let noise = rng.uniform(0.15, 0.3);

        // At most one structural event per client, after the warm-up.
        let mut structural: Option<(AnomalyType, i64, i64, f64)> = None;
        let room = spec.days as i64 - warmup;
        if room >= 4 && rng.uniform(0.0, 1.0) < spec.anomaly_rate {
            let plantation = rng.uniform(0.0, 1.0) < 0.5;
            let length = if plantation { rng.uniform(7.0, 15.0) } else { rng.uniform(2.0, 5.0) } as i64;
            let length = length.min(room);
            let first = warmup + (rng.uniform(0.0, (room - length + 1) as f64) as i64);
            let start = spec.start + first * SECONDS_PER_DAY;
            let end = start + length * SECONDS_PER_DAY;
            let (kind, level) = if plantation {
                (AnomalyType::Plantation, rng.uniform(1.0, 2.5))
            } else {
                let zero = rng.uniform(0.0, 1.0) < 0.5;
                (AnomalyType::Flat, if zero { 0.0 } else { (base * 1000.0).round() / 1000.0 })
            };
            events.push(InjectedEvent { client: name.clone(), kind, start, end });
            structural = Some((kind, start, end, level));
        }

        for k in 0..spec.days as usize * per_day {
            let t = spec.start + k as i64 * step;
            let hour = (t.rem_euclid(SECONDS_PER_DAY)) as f64 / 3600.0;
            let weekday = (t.div_euclid(SECONDS_PER_DAY) + 3).rem_euclid(7); // 0 = Monday
            let weekend = if weekday >= 5 { 1.3 } else { 1.0 };
            let mean = base
                + morning * bump(hour, 7.5, 1.0)
                + weekend * midday * bump(hour, 13.0, 2.5)
                + evening * bump(hour, 19.5, 1.5);
            let mut v = mean * (noise * rng.normal()).exp() * hours_per_step;
            let night = hour < 6.0;
            match structural {
                Some((AnomalyType::Plantation, start, end, level)) if night && (start..end).contains(&t) => {
                    v += level * hours_per_step
                }
                Some((AnomalyType::Flat, start, end, level)) if (start..end).contains(&t) => v = level * hours_per_step,
                _ => {
                    if t >= spec.start + warmup * SECONDS_PER_DAY && rng.uniform(0.0, 1.0) < spike_chance {
                        v = mean * rng.uniform(3.0, 5.0) * hours_per_step + 0.5;
                        events.push(InjectedEvent {
                            client: name.clone(),
                            kind: AnomalyType::Spike,
                            start: t,
                            end: t + step,
                        });
                    }
                }
            }
            client.push(c as u32);
            timestamp.push(t);
            kwh.push((v * 1000.0).round() / 1000.0);
        }
        names.push(name);
    }
    let readings = Readings::with_names(ColumnNames::default(), names, client, timestamp, kwh)?;
    Ok((readings, events))
}
