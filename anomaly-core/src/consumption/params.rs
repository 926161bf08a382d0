//! Parameters of the consumption rules, with their defaults and checks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::persist::Persist;
use crate::traits::ParamGuard;

pub use super::hour_band::HourBand;

/// Which set of consumption rules runs.
///
/// `calibrated` (the default) is the tail-calibrated, persistent set of
/// issue 17 (see the module docs of `consumption::calibrated`): about 0.8%
/// of ordinary real readings flagged, 0.13% alta or crítica. `literal` is
/// the analysts' rules as written (per-reading 3-sigma and +150% tests;
/// 5.7% and 2.7% on the same readings), kept as the `literal` preset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The analysts' rules as written.
    Literal,
    /// Tail-calibrated, persistent rules (the default).
    #[default]
    Calibrated,
}

impl Method {
    /// The name used in parameter files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Literal => "literal",
            Method::Calibrated => "calibrated",
        }
    }

    /// Parses `"literal"` or `"calibrated"`; errors name the parameter `name`.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        match text.trim() {
            "literal" => Ok(Method::Literal),
            "calibrated" => Ok(Method::Calibrated),
            _ => Err(Error::param(name, text, "expected literal or calibrated")),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = Error;

    /// [`Method::parse`] for a parameter called `method`.
    fn from_str(s: &str) -> Result<Self> {
        Method::parse("method", s)
    }
}

/// Every threshold of the consumption rules. Start from `Default` and change
/// what you need; [`ParamGuard::check`] validates the whole set.
///
/// ```
/// use anomaly_core::consumption::ConsumptionParams;
/// use anomaly_core::traits::ParamGuard;
/// let rules = ConsumptionParams { zscore_threshold: 4.0, ..Default::default() }.check().unwrap();
/// assert_eq!(rules.params().zscore_threshold, 4.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumptionParams {
    /// Which rules run: `calibrated` (default) or `literal`. Parameters
    /// marked "calibrated" below only affect the calibrated rules; of the
    /// others, the calibrated rules use `interval_minutes`, `baseline_days`,
    /// `night_band`, `plantation_nights`, `flat_tolerance_kwh`, `peak_band`,
    /// the severity cuts and `suspicious_min_severe`.
    pub method: Method,
    /// Sampling interval of the readings in minutes; must divide a day.
    pub interval_minutes: u32,
    /// Length of the trailing baseline, in whole days before the reading's day.
    pub baseline_days: u32,
    /// Samples a baseline needs before a rule may fire (per hour of day for
    /// the z-score; night readings for the night rules).
    pub min_history_days: u32,
    /// Outlier rule: |z| above this against the same hour of day.
    pub zscore_threshold: f64,
    /// Floor on the baseline standard deviation (kWh), so a very regular
    /// client does not turn tiny wobbles into outliers.
    pub min_std_kwh: f64,
    /// Spike rule: relative increase over the typical level for that hour
    /// (1.5 = more than +150%).
    pub spike_increase: f64,
    /// Days of same-hour readings whose median is the typical level.
    pub spike_baseline_days: u32,
    /// Outlier, spike and night rules also need the reading to differ from
    /// its reference by this many kWh, so that small absolute wobbles around
    /// near-idle levels are not flagged.
    pub min_excess_kwh: f64,
    /// The night band for the night and plantation rules.
    pub night_band: HourBand,
    /// Night rule: a night reading above this multiple of the client's mean
    /// night reading over the baseline.
    pub night_factor: f64,
    /// Plantation rule: consecutive nights that must all be heavy.
    pub plantation_nights: u32,
    /// Plantation rule: mean night use over those nights must exceed this
    /// multiple of the client's mean daytime use.
    pub plantation_day_ratio: f64,
    /// Flat rule: hours of near-constant readings before a run is flagged.
    pub flat_hours: u32,
    /// Flat rule: largest spread (max - min, kWh) still counted as constant.
    pub flat_tolerance_kwh: f64,
    /// Flat rule: the client must normally vary, with a baseline standard
    /// deviation of at least this (kWh).
    pub flat_min_baseline_std: f64,
    /// The peak band reported in monthly aggregates.
    pub peak_band: HourBand,
    /// Scores from here up are severity "media" (from 0.5 it is "baja").
    pub severity_media: f64,
    /// Scores from here up are "alta".
    pub severity_alta: f64,
    /// Scores from here up are "crítica".
    pub severity_critica: f64,
    /// Literal rules: a client is suspicious with any plantation or flat
    /// reading, or at least this many readings of severity alta or crítica
    /// (calibrated rules: when one of its months is).
    pub suspicious_min_severe: u32,
    /// An episode (a run of one rule's flags) continues across at most this
    /// many unflagged readings; night rules continue from night to night.
    pub episode_gap: u32,
    /// A client-month is suspicious with one plantation or flat episode of
    /// severity alta or above, or this many outlier, spike and night-use
    /// episodes of severity alta or above (bursts: a few are ordinary).
    pub suspicious_month_episodes: u32,
    /// Calibrated: offset `c` of the log scale `ln(x + c)`, in kWh per hour
    /// (times the interval; 2.4 kWh for daily meters).
    pub log_offset_kwh_per_hour: f64,
    /// Calibrated: same-slot days a slot baseline needs within `baseline_days`.
    pub slot_min_history_days: u32,
    /// Calibrated: days of the client's own outlier and spike statistics
    /// whose 95th and 99th percentiles calibrate the tail (sub-daily meters).
    pub calibration_days: u32,
    /// Calibrated: the calibration needs `calibration_min_days * slots / 2`
    /// values (sub-daily meters).
    pub calibration_min_days: u32,
    /// Calibrated: `calibration_days` for daily meters (`interval_minutes` 1440).
    pub daily_calibration_days: u32,
    /// Calibrated: `calibration_min_days` for daily meters.
    pub daily_calibration_min_days: u32,
    /// Calibrated: tail probability per reading at ratio 1 (score 0.5) of
    /// the outlier and spike rules; one unit of ratio is a decade rarer.
    pub tail_probability: f64,
    /// Calibrated: outlier and spike must exceed their reference by this
    /// (kWh per hour, times the interval) ...
    pub min_excess_kwh_per_hour: f64,
    /// Calibrated: ... and by this fraction of the reference.
    pub min_excess_rel: f64,
    /// Calibrated: a heavy night's mean excess over the slot medians, kWh per hour.
    pub night_min_kwh_per_hour: f64,
    /// Calibrated: night readings at or above this quantile of their slot are "high".
    pub night_high_quantile: f64,
    /// Calibrated: a heavy night needs at least this fraction of high readings.
    pub night_high_fraction: f64,
    /// Calibrated: readings of the current night before it can be heavy.
    pub night_min_readings: u32,
    /// Calibrated: night_use needs this fraction of the night's readings high.
    pub night_use_high_fraction: f64,
    /// Calibrated: largest night_use ratio (1.5 = at most media).
    pub night_use_max_ratio: f64,
    /// Calibrated: a plantation run survives this many non-heavy nights.
    pub plantation_max_gap_nights: u32,
    /// Calibrated: flat evidence hours at ratio 1 (score 0.5).
    pub flat_evidence_hours: f64,
    /// Calibrated: readings a flat run needs before it can fire.
    pub flat_min_readings: u32,
    /// Calibrated: days of reading-to-reading steps behind the still gate.
    pub flat_reference_days: u32,
    /// Calibrated: flat is off when more than this fraction of those steps were still.
    pub flat_max_still_fraction: f64,
    /// Calibrated: inside an active plantation run, a night reading also
    /// counts as high at `min(q90, slot median + night_min_kwh_per_hour)` of
    /// the run's frozen reference (hysteresis: a run continues more easily
    /// than it starts).
    pub plantation_continue_min_excess: bool,
    /// Calibrated: a night whose every reading is at least
    /// `night_min_kwh_per_hour` above the frozen reference's 5% slot quantile
    /// (a lifted night floor) continues an active plantation run.
    pub plantation_continue_floor: bool,
    /// Calibrated: flat novelty compares a run with the client's completed
    /// runs at its level that ended in the previous this many days (0: off).
    pub flat_novelty_days: u32,
    /// Calibrated: novelty ratio `L / max(flat_evidence_hours, factor * L_ref)`
    /// (hours).
    pub flat_novelty_factor: f64,
    /// Calibrated: the still gate counts only still steps at the run's level
    /// (within `flat_tolerance_kwh`) against all steps of the window.
    pub flat_gate_same_level: bool,
}

impl Default for ConsumptionParams {
    fn default() -> Self {
        ConsumptionParams {
            interval_minutes: 60,
            baseline_days: 28,
            min_history_days: 7,
            zscore_threshold: 3.0,
            min_std_kwh: 0.05,
            spike_increase: 1.5,
            spike_baseline_days: 7,
            min_excess_kwh: 0.5,
            night_band: HourBand::new(0, 6),
            night_factor: 2.0,
            plantation_nights: 3,
            plantation_day_ratio: 1.0,
            flat_hours: 24,
            flat_tolerance_kwh: 0.01,
            flat_min_baseline_std: 0.05,
            peak_band: HourBand::new(18, 22),
            severity_media: 0.6,
            severity_alta: 0.75,
            severity_critica: 0.9,
            suspicious_min_severe: 3,
            episode_gap: 2,
            suspicious_month_episodes: 5,
            method: Method::Calibrated,
            log_offset_kwh_per_hour: 0.1,
            slot_min_history_days: 14,
            calibration_days: 56,
            calibration_min_days: 14,
            daily_calibration_days: 364,
            daily_calibration_min_days: 56,
            tail_probability: 0.0035,
            min_excess_kwh_per_hour: 0.1,
            min_excess_rel: 0.5,
            night_min_kwh_per_hour: 0.4,
            night_high_quantile: 0.9,
            night_high_fraction: 0.5,
            night_min_readings: 3,
            night_use_high_fraction: 1.0,
            night_use_max_ratio: 1.5,
            plantation_max_gap_nights: 0,
            flat_evidence_hours: 12.0,
            flat_min_readings: 3,
            flat_reference_days: 4,
            flat_max_still_fraction: 0.75,
            plantation_continue_min_excess: true,
            plantation_continue_floor: true,
            flat_novelty_days: 14,
            flat_novelty_factor: 1.5,
            flat_gate_same_level: true,
        }
    }
}

impl ConsumptionParams {
    /// Whole days of history before a reading's day that its day-level
    /// statistics read (baselines and, for the calibrated rules, the tail
    /// calibration). A streaming consumer that loads at least this much
    /// context before new readings scores them as a batch run would, up to
    /// runs (flat, plantation) that started earlier.
    ///
    /// ```
    /// use anomaly_core::consumption::{ConsumptionParams, Method};
    /// assert_eq!(ConsumptionParams::default().history_days(), 84);
    /// assert_eq!(ConsumptionParams { method: Method::Literal, ..Default::default() }.history_days(), 31);
    /// ```
    pub fn history_days(&self) -> u32 {
        match self.method {
            Method::Literal => self.baseline_days.max(self.spike_baseline_days) + self.plantation_nights,
            Method::Calibrated => {
                let calibration =
                    if self.interval_minutes >= 1440 { self.daily_calibration_days } else { self.calibration_days };
                // The tail's statistics of its oldest day read that day's
                // own baseline days before it.
                (calibration + self.baseline_days)
                    .max(self.baseline_days + self.plantation_nights)
                    .max(self.flat_reference_days)
                    .max(self.flat_novelty_days)
            }
        }
    }
}

impl ConsumptionParams {
    /// The named parameter sets: `"calibrated"` (the defaults) and
    /// `"literal"` (the analysts' rules as written, the defaults before
    /// issue 17); errors name the parameter `name`.
    ///
    /// ```
    /// use anomaly_core::consumption::{ConsumptionParams, Method};
    /// assert_eq!(ConsumptionParams::preset("preset", "literal").unwrap().method, Method::Literal);
    /// assert_eq!(ConsumptionParams::preset("preset", "calibrated").unwrap(), ConsumptionParams::default());
    /// assert_eq!(ConsumptionParams::preset("preset", "strict").unwrap_err().field(), Some("preset"));
    /// ```
    pub fn preset(name: &str, preset: &str) -> Result<Self> {
        let method = Method::parse(name, preset)
            .map_err(|_| Error::param(name, preset, "expected a preset: calibrated (the default) or literal"))?;
        Ok(ConsumptionParams { method, ..Default::default() })
    }
}

impl Persist for ConsumptionParams {
    const KIND: &'static str = "consumption_rules";

    /// Files of envelope version 2 or older were written when the literal
    /// rules were the default, so one without a `method` meant them.
    fn upgrade(version: u32, mut model: serde_json::Value) -> Result<serde_json::Value> {
        if version < 3 {
            if let Some(fields) = model.as_object_mut() {
                fields.entry("method").or_insert_with(|| Method::Literal.as_str().into());
            }
        }
        Ok(model)
    }
}

/// Validated consumption rules, ready to [`crate::traits::Detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumptionRules {
    pub(crate) params: ConsumptionParams,
}

impl ConsumptionRules {
    /// The validated parameters.
    pub fn params(&self) -> &ConsumptionParams {
        &self.params
    }
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be a finite number > 0"))
    }
}

fn non_negative(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be a finite number >= 0"))
    }
}

fn fraction(name: &str, v: f64, open_low: bool) -> Result<()> {
    let ok = v.is_finite() && v <= 1.0 && if open_low { v > 0.0 } else { v >= 0.0 };
    if ok {
        Ok(())
    } else {
        Err(Error::param(name, v, if open_low { "must be in (0, 1]" } else { "must be in [0, 1]" }))
    }
}

/// `v` (parameter `name`) at most `limit` (parameter `limit_name`).
fn within(name: &str, v: u32, limit_name: &str, limit: u32) -> Result<()> {
    if v <= limit {
        Ok(())
    } else {
        Err(Error::param(name, v, &format!("must not exceed {limit_name}")))
    }
}

fn at_least(name: &str, v: u32, min: u32) -> Result<()> {
    if v >= min {
        Ok(())
    } else {
        Err(Error::param(name, v, &format!("must be at least {min}")))
    }
}

impl ParamGuard for ConsumptionParams {
    type Checked = ConsumptionRules;

    fn check(&self) -> Result<ConsumptionRules> {
        let p = self;
        if p.interval_minutes == 0 || 1440 % p.interval_minutes != 0 {
            return Err(Error::param(
                "interval_minutes",
                p.interval_minutes,
                "must divide a day (1440 minutes), e.g. 15, 30 or 60",
            ));
        }
        at_least("baseline_days", p.baseline_days, 1)?;
        at_least("min_history_days", p.min_history_days, 2)?;
        within("min_history_days", p.min_history_days, "baseline_days", p.baseline_days)?;
        positive("zscore_threshold", p.zscore_threshold)?;
        positive("min_std_kwh", p.min_std_kwh)?;
        positive("spike_increase", p.spike_increase)?;
        at_least("spike_baseline_days", p.spike_baseline_days, 1)?;
        non_negative("min_excess_kwh", p.min_excess_kwh)?;
        p.night_band.check("night_band")?;
        if p.night_factor.is_nan() || p.night_factor <= 1.0 || p.night_factor.is_infinite() {
            return Err(Error::param("night_factor", p.night_factor, "must be a finite number > 1"));
        }
        at_least("plantation_nights", p.plantation_nights, 1)?;
        positive("plantation_day_ratio", p.plantation_day_ratio)?;
        at_least("flat_hours", p.flat_hours, 1)?;
        non_negative("flat_tolerance_kwh", p.flat_tolerance_kwh)?;
        non_negative("flat_min_baseline_std", p.flat_min_baseline_std)?;
        if u64::from(p.flat_hours) * 60 < u64::from(p.interval_minutes) {
            return Err(Error::param("flat_hours", p.flat_hours, "must cover at least one interval"));
        }
        p.peak_band.check("peak_band")?;
        at_least("suspicious_month_episodes", p.suspicious_month_episodes, 1)?;
        if p.episode_gap > 10_000 {
            return Err(Error::param("episode_gap", p.episode_gap, "must be at most 10000 readings"));
        }
        positive("log_offset_kwh_per_hour", p.log_offset_kwh_per_hour)?;
        at_least("slot_min_history_days", p.slot_min_history_days, 2)?;
        within("slot_min_history_days", p.slot_min_history_days, "baseline_days", p.baseline_days)?;
        at_least("calibration_days", p.calibration_days, 1)?;
        at_least("calibration_min_days", p.calibration_min_days, 1)?;
        within("calibration_min_days", p.calibration_min_days, "calibration_days", p.calibration_days)?;
        at_least("daily_calibration_days", p.daily_calibration_days, 1)?;
        at_least("daily_calibration_min_days", p.daily_calibration_min_days, 1)?;
        within(
            "daily_calibration_min_days",
            p.daily_calibration_min_days,
            "daily_calibration_days",
            p.daily_calibration_days,
        )?;
        if !(p.tail_probability > 0.0 && p.tail_probability < 0.05) {
            return Err(Error::param("tail_probability", p.tail_probability, "must be in (0, 0.05)"));
        }
        positive("min_excess_kwh_per_hour", p.min_excess_kwh_per_hour)?;
        non_negative("min_excess_rel", p.min_excess_rel)?;
        positive("night_min_kwh_per_hour", p.night_min_kwh_per_hour)?;
        fraction("night_high_quantile", p.night_high_quantile, false)?;
        fraction("night_high_fraction", p.night_high_fraction, false)?;
        at_least("night_min_readings", p.night_min_readings, 1)?;
        fraction("night_use_high_fraction", p.night_use_high_fraction, false)?;
        if !(p.night_use_max_ratio.is_finite() && p.night_use_max_ratio >= 1.0) {
            return Err(Error::param("night_use_max_ratio", p.night_use_max_ratio, "must be a finite number >= 1"));
        }
        positive("flat_evidence_hours", p.flat_evidence_hours)?;
        at_least("flat_min_readings", p.flat_min_readings, 2)?;
        at_least("flat_reference_days", p.flat_reference_days, 1)?;
        fraction("flat_max_still_fraction", p.flat_max_still_fraction, false)?;
        if p.flat_novelty_days > 3660 {
            return Err(Error::param("flat_novelty_days", p.flat_novelty_days, "must be at most 3660 days"));
        }
        positive("flat_novelty_factor", p.flat_novelty_factor)?;
        let cuts = [
            ("severity_media", p.severity_media),
            ("severity_alta", p.severity_alta),
            ("severity_critica", p.severity_critica),
        ];
        let mut previous = 0.5;
        for (name, cut) in cuts {
            if !(cut > previous && cut <= 1.0) {
                return Err(Error::param(name, cut, "severity cuts must increase: 0.5 < media < alta < crítica <= 1"));
            }
            previous = cut;
        }
        Ok(ConsumptionRules { params: p.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(name: &str, edit: impl FnOnce(&mut ConsumptionParams)) {
        let mut p = ConsumptionParams::default();
        edit(&mut p);
        match p.check() {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(ConsumptionParams::default().check().is_ok());
    }

    #[test]
    fn every_parameter_is_checked() {
        rejects("interval_minutes", |p| p.interval_minutes = 7);
        rejects("interval_minutes", |p| p.interval_minutes = 0);
        rejects("baseline_days", |p| p.baseline_days = 0);
        rejects("min_history_days", |p| p.min_history_days = 1);
        rejects("min_history_days", |p| p.min_history_days = 40);
        rejects("zscore_threshold", |p| p.zscore_threshold = f64::NAN);
        rejects("min_std_kwh", |p| p.min_std_kwh = 0.0);
        rejects("spike_increase", |p| p.spike_increase = -1.0);
        rejects("spike_baseline_days", |p| p.spike_baseline_days = 0);
        rejects("min_excess_kwh", |p| p.min_excess_kwh = -0.1);
        rejects("night_band", |p| p.night_band = HourBand::new(3, 3));
        rejects("night_band", |p| p.night_band = HourBand::new(25, 3));
        rejects("night_factor", |p| p.night_factor = 1.0);
        rejects("plantation_nights", |p| p.plantation_nights = 0);
        rejects("plantation_day_ratio", |p| p.plantation_day_ratio = f64::INFINITY);
        rejects("flat_hours", |p| p.flat_hours = 0);
        rejects("flat_tolerance_kwh", |p| p.flat_tolerance_kwh = f64::NAN);
        rejects("flat_min_baseline_std", |p| p.flat_min_baseline_std = -1.0);
        rejects("peak_band", |p| p.peak_band = HourBand::new(0, 24));
        rejects("severity_media", |p| p.severity_media = 0.5);
        rejects("severity_alta", |p| p.severity_alta = 0.6);
        rejects("severity_critica", |p| p.severity_critica = 1.5);
        rejects("log_offset_kwh_per_hour", |p| p.log_offset_kwh_per_hour = 0.0);
        rejects("slot_min_history_days", |p| p.slot_min_history_days = 29);
        rejects("calibration_days", |p| p.calibration_days = 0);
        rejects("calibration_min_days", |p| p.calibration_min_days = 57);
        rejects("daily_calibration_min_days", |p| p.daily_calibration_min_days = 400);
        rejects("tail_probability", |p| p.tail_probability = 0.05);
        rejects("tail_probability", |p| p.tail_probability = f64::NAN);
        rejects("min_excess_kwh_per_hour", |p| p.min_excess_kwh_per_hour = 0.0);
        rejects("min_excess_rel", |p| p.min_excess_rel = -0.5);
        rejects("night_min_kwh_per_hour", |p| p.night_min_kwh_per_hour = -1.0);
        rejects("night_high_quantile", |p| p.night_high_quantile = 1.5);
        rejects("night_high_fraction", |p| p.night_high_fraction = f64::NAN);
        rejects("night_min_readings", |p| p.night_min_readings = 0);
        rejects("night_use_high_fraction", |p| p.night_use_high_fraction = -0.1);
        rejects("night_use_max_ratio", |p| p.night_use_max_ratio = 0.5);
        rejects("flat_evidence_hours", |p| p.flat_evidence_hours = 0.0);
        rejects("flat_min_readings", |p| p.flat_min_readings = 1);
        rejects("flat_reference_days", |p| p.flat_reference_days = 0);
        rejects("flat_max_still_fraction", |p| p.flat_max_still_fraction = 2.0);
        rejects("flat_novelty_days", |p| p.flat_novelty_days = 5000);
        rejects("episode_gap", |p| p.episode_gap = 10_001);
        rejects("suspicious_month_episodes", |p| p.suspicious_month_episodes = 0);
        rejects("flat_novelty_factor", |p| p.flat_novelty_factor = 0.0);
        rejects("flat_novelty_factor", |p| p.flat_novelty_factor = f64::NAN);
    }

    #[test]
    fn the_calibrated_history_covers_the_flat_windows() {
        let p = ConsumptionParams { method: Method::Calibrated, flat_novelty_days: 100, ..Default::default() };
        assert_eq!(p.history_days(), 100);
        let p = ConsumptionParams { method: Method::Calibrated, flat_reference_days: 90, ..Default::default() };
        assert_eq!(p.history_days(), 90);
    }

    #[test]
    fn old_parameter_files_load_with_the_literal_method() {
        let old =
            br#"{"format":"anomaly-model","version":1,"kind":"consumption_rules","model":{"zscore_threshold":4.0}}"#;
        let p = ConsumptionParams::from_bytes(old).unwrap();
        assert_eq!(p.method, Method::Literal);
        assert_eq!(p.zscore_threshold, 4.0);
        let json =
            serde_json::to_string(&ConsumptionParams { method: Method::Calibrated, ..Default::default() }).unwrap();
        assert!(json.contains(r#""method":"calibrated""#), "{json}");
        assert_eq!("calibrated".parse::<Method>().unwrap(), Method::Calibrated);
        assert!("fancy".parse::<Method>().is_err());
    }

    #[test]
    fn bands_wrap_and_parse() {
        let band: HourBand = "22-6".parse().unwrap();
        assert_eq!(band.hours(), 8);
        assert!(band.contains(23 * 3600) && band.contains(0) && !band.contains(6 * 3600) && !band.contains(12 * 3600));
        assert!("6".parse::<HourBand>().is_err());
        assert!("0-24".parse::<HourBand>().is_err());
    }

    #[test]
    fn params_round_trip_through_the_envelope() {
        let p = ConsumptionParams { night_band: HourBand::new(22, 5), ..Default::default() };
        assert_eq!(ConsumptionParams::from_bytes(&p.to_bytes().unwrap()).unwrap(), p);
        let unknown = br#"{"format":"anomaly-model","version":1,"kind":"consumption_rules","model":{"zscore":3}}"#;
        assert!(matches!(ConsumptionParams::from_bytes(unknown), Err(Error::CorruptModel { .. })));
    }
}
