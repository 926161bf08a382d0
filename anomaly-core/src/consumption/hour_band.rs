//! Bands of hours of the day (the night and peak bands), and their one parser.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

    pub(super) fn check(&self, name: &str) -> Result<()> {
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
