//! Parameters of the consumption rules, with their defaults and checks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::persist::Persist;
use crate::traits::ParamGuard;

/// A band of hours of the day, `start_hour` inclusive to `end_hour`
/// exclusive; it wraps past midnight when `start_hour > end_hour`
/// (22 -> 6 is 22:00-06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourBand {
    /// First hour in the band, 0-23.
    pub start_hour: u32,
    /// First hour after the band, 0-24.
    pub end_hour: u32,
}

impl HourBand {
    /// A band from `start_hour` (inclusive) to `end_hour` (exclusive).
    pub const fn new(start_hour: u32, end_hour: u32) -> Self {
        HourBand { start_hour, end_hour }
    }

    /// Whether a time of day (seconds since midnight) falls in the band.
    pub fn contains(&self, second_of_day: i64) -> bool {
        let (start, end) = (i64::from(self.start_hour) * 3600, i64::from(self.end_hour) * 3600);
        if start < end {
            (start..end).contains(&second_of_day)
        } else {
            second_of_day >= start || second_of_day < end
        }
    }

    /// Length of the band in hours.
    pub fn hours(&self) -> u32 {
        (self.end_hour + 24 - self.start_hour) % 24
    }

    fn check(&self, name: &str) -> Result<()> {
        if self.start_hour > 23 || self.end_hour > 24 {
            return Err(Error::param(name, self, "hours must be 0-23 (start) and 0-24 (end)"));
        }
        if self.hours() == 0 {
            return Err(Error::param(name, self, "band is empty or the whole day; start and end must differ"));
        }
        Ok(())
    }
}

impl std::fmt::Display for HourBand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}-{:02}", self.start_hour, self.end_hour)
    }
}

impl HourBand {
    /// Parses `"0-6"` or `"22-6"` (`START-END` hours, spaces allowed) and
    /// checks it; errors name the parameter `name`. The one parser of hour
    /// bands, used by the CLI (through `FromStr`) and Python.
    ///
    /// ```
    /// use anomaly_core::consumption::HourBand;
    /// assert_eq!(HourBand::parse("night_band", "22-6").unwrap(), HourBand::new(22, 6));
    /// assert_eq!(HourBand::parse("night_band", "6").unwrap_err().field(), Some("night_band"));
    /// ```
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let bad = || Error::param(name, text, "expected START-END hours, e.g. 0-6 or 22-6");
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let band = HourBand::new(a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        band.check(name)?;
        Ok(band)
    }
}

impl std::str::FromStr for HourBand {
    type Err = Error;

    /// [`HourBand::parse`] for a parameter called `band`.
    fn from_str(s: &str) -> Result<Self> {
        HourBand::parse("band", s)
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
    /// A client is suspicious with any plantation or flat reading, or at
    /// least this many readings of severity alta or crítica.
    pub suspicious_min_severe: u32,
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
        }
    }
}

impl Persist for ConsumptionParams {
    const KIND: &'static str = "consumption_rules";
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
        if p.min_history_days > p.baseline_days {
            return Err(Error::param("min_history_days", p.min_history_days, "must not exceed baseline_days"));
        }
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
