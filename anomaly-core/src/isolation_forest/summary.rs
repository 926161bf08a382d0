//! The sensor-metrics summary: how many records are anomalous, and the
//! state a dashboard shows for that share.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The dashboard state for a share of anomalous records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Below `caution_percent`.
    #[serde(rename = "Normal")]
    Normal,
    /// From `caution_percent` up to `critical_percent`.
    #[serde(rename = "Precaución")]
    Precaucion,
    /// `critical_percent` and above.
    #[serde(rename = "Crítico")]
    Critico,
}

impl State {
    /// The name shown on dashboards.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Normal => "Normal",
            State::Precaucion => "Precaución",
            State::Critico => "Crítico",
        }
    }
}

/// Percent thresholds of the states.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StateThresholds {
    /// From this percent of anomalous records the state is Precaución.
    pub caution_percent: f64,
    /// From this percent it is Crítico.
    pub critical_percent: f64,
}

impl StateThresholds {
    /// The state for a percent of anomalous records.
    pub fn state(&self, percent: f64) -> State {
        if percent >= self.critical_percent {
            State::Critico
        } else if percent >= self.caution_percent {
            State::Precaucion
        } else {
            State::Normal
        }
    }
}

impl Default for StateThresholds {
    fn default() -> Self {
        StateThresholds { caution_percent: 5.0, critical_percent: 10.0 }
    }
}

/// Total, anomalies, percent and state of a batch of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalySummary {
    /// Records.
    pub total: usize,
    /// Records labelled -1.
    pub anomalies: usize,
    /// `100 * anomalies / total` (0 for no records).
    pub percent: f64,
    /// The state for that percent.
    pub state: State,
}

/// Summarises labels (-1 anomalous, +1 normal, as `predict` returns).
///
/// ```
/// use anomaly_core::isolation_forest::{summarize, State, StateThresholds};
/// let s = summarize(&[1, 1, -1, 1, 1, 1, 1, 1, 1, 1], StateThresholds::default()).unwrap();
/// assert_eq!((s.anomalies, s.percent, s.state), (1, 10.0, State::Critico));
/// ```
pub fn summarize(labels: &[i8], thresholds: StateThresholds) -> Result<AnomalySummary> {
    let StateThresholds { caution_percent, critical_percent } = thresholds;
    if !(0.0..=100.0).contains(&caution_percent) {
        return Err(Error::param("caution_percent", caution_percent, "must be between 0 and 100"));
    }
    if !(caution_percent..=100.0).contains(&critical_percent) {
        return Err(Error::param("critical_percent", critical_percent, "must be between caution_percent and 100"));
    }
    if let Some(row) = labels.iter().position(|&l| l != 1 && l != -1) {
        return Err(Error::Shape {
            field: "labels".into(),
            expected: "-1 or +1".into(),
            found: format!("{} at row {row}", labels[row]),
        });
    }
    let total = labels.len();
    let anomalies = labels.iter().filter(|&&l| l == -1).count();
    let percent = if total == 0 { 0.0 } else { 100.0 * anomalies as f64 / total as f64 };
    Ok(AnomalySummary { total, anomalies, percent, state: thresholds.state(percent) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_thresholds() {
        let t = StateThresholds::default();
        let labels = |bad: usize| (0..100).map(|i| if i < bad { -1 } else { 1 }).collect::<Vec<i8>>();
        assert_eq!(summarize(&labels(4), t).unwrap().state, State::Normal);
        assert_eq!(summarize(&labels(5), t).unwrap().state, State::Precaucion);
        assert_eq!(summarize(&labels(10), t).unwrap().state, State::Critico);
        assert_eq!(summarize(&[], t).unwrap().state, State::Normal);
        assert!(summarize(&[0], t).is_err());
        assert!(summarize(&[1], StateThresholds { caution_percent: 20.0, critical_percent: 10.0 }).is_err());
    }
}
