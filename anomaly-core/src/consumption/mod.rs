//! Rules that flag suspicious electricity consumption, per client.
//!
//! Input: [`Readings`] `(client, timestamp, kWh)` at a regular interval
//! (hourly by default; 15 or 30 minutes with `interval_minutes`, or summed
//! to hourly with [`Readings::aggregate`]). Gaps are allowed: a missing
//! reading is simply absent from every baseline and breaks a flat run.
//!
//! Every baseline uses only readings from the `baseline_days` whole days
//! *before* the reading's day, so a reading's result never changes when later
//! data arrives; that is what a streaming consumer needs. A rule only fires
//! once its baseline holds `min_history_days` samples.
//!
//! # Two methods
//! The default, `method: Method::Calibrated` (`"calibrated"` in parameter
//! files, Python and the CLI), runs the five rule types with baselines on a
//! log scale, outlier and spike ratios calibrated on each client's own
//! tail, and persistence for night use, plantations and flat meters: on ten
//! real households about 0.8% of ordinary readings are flagged and 0.13%
//! alta or crítica, while every injected plantation and flat meter is
//! caught. [`calibrated`] describes the algorithm. The analysts' rules as
//! written stay one argument away, as the `literal` preset
//! ([`ConsumptionParams::preset`]); they flag 5.7% of the same readings.
//!
//! # The literal rules
//! Each rule computes a ratio to its threshold (1 = exactly at it):
//! - **outlier**: `|x - mean| / max(std, min_std_kwh) / zscore_threshold`,
//!   mean and standard deviation of the same hour of day over the baseline
//!   (household use depends strongly on the hour); `|x - mean|` must also be
//!   at least `min_excess_kwh`.
//! - **spike**: a jump, `x / ((1 + spike_increase) * reference)`, where the
//!   reference is the largest of the previous reading, the median of the
//!   same hour over the previous `spike_baseline_days` days (at least half
//!   present) and the client's mean over the baseline; `x` must also exceed
//!   it by `min_excess_kwh`. Household use is bursty: against the hour's
//!   median alone, real meters "spike" several times a day.
//! - **night_use** (readings in `night_band`): `x / (night_factor * m)`
//!   with `m` the client's mean night reading over the baseline; `x` must
//!   also be at least `min_excess_kwh` above it.
//! - **plantation** (readings in `night_band`): a grow room draws heavy,
//!   regular load every night. The last `plantation_nights` nights
//!   (including the current one so far) must each have a mean above
//!   `night_factor` times the baseline night mean, and together a mean
//!   above `plantation_day_ratio` times the baseline daytime mean. The
//!   baseline ends before the first of those nights, so the pattern cannot
//!   raise its own reference.
//! - **flat**: the run of consecutive readings ending here whose spread
//!   (max - min) stays within `flat_tolerance_kwh` has lasted `flat_hours`,
//!   in a client whose baseline standard deviation is at least
//!   `flat_min_baseline_std` (a meter that normally varies). Runs of zeros
//!   are flat runs.
//!
//! # Scores and severity
//! A ratio `r` maps to a rule score `0.5 r` below the threshold and
//! `1 - 0.5 / r` above it. Fired rules combine as `1 - prod(1 - s)`; with
//! none fired the score is the highest sub-threshold score. Hence
//! `is_anomaly == (score >= 0.5)`, scores lie in [0, 1], and severity is a
//! step function of the score: normal < 0.5 <= baja < `severity_media` <=
//! media < `severity_alta` <= alta < `severity_critica` <= crítica.
//!
//! # Episodes and suspicious months
//! Consecutive flags of one client and rule become one episode (`episodes`
//! in the report). Each client-month gets a suspicion score from the
//! episodes overlapping it, a rank among the clients that month and the
//! rules behind it ([`ConsumptionRules::score_months`]); a client is
//! `suspicious` when one of its months is (literal rules: with any
//! plantation or flat reading, or at least `suspicious_min_severe` readings
//! of severity alta or crítica, as before).
//!
//! # Example
//! ```
//! use anomaly_core::consumption::{ConsumptionParams, Readings};
//! use anomaly_core::traits::{Detect, ParamGuard};
//!
//! let day = 86_400;
//! let mut rows = Vec::new();
//! for d in 0..20 {
//!     for h in 0..24 {
//!         let kwh = if (7..22).contains(&h) { 1.0 + 0.1 * ((d + h) % 3) as f64 } else { 0.3 };
//!         rows.push(("client-1", d * day + h * 3600, kwh));
//!     }
//! }
//! rows[19 * 24 + 12].2 = 9.0; // a spike at noon on day 19
//! let readings = Readings::from_records(rows).unwrap();
//! // Twenty days are too short a history for the calibrated default; the
//! // literal rules flag the spike.
//! let rules = ConsumptionParams::preset("preset", "literal").unwrap().check().unwrap();
//! let report = rules.detect(&readings).unwrap();
//! let flagged = 19 * 24 + 12;
//! assert!(report.flags.is_anomaly[flagged]);
//! assert_eq!(report.flags.types[flagged].join(";"), "outlier;spike");
//! ```

pub mod calibrated;
mod episodes;
mod hour_band;
mod params;
mod readings;
mod report;
mod rules;
pub mod simulate;
mod tail;

pub use params::{ConsumptionParams, ConsumptionRules, HourBand, Method};
pub use readings::{kwh_problem, ColumnNames, KwhProblem, Readings, ReadingsBuilder, MAX_KWH};
pub use report::{
    AnomalyType, AnomalyTypes, ClientSummary, ConsumptionReport, Episode, MonthlyAggregate, ReadingFlags, Severity,
};
