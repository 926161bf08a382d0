//! What the consumption rules return: flags per reading, a summary per
//! client, aggregates per client and month.

use serde::{Deserialize, Serialize};

/// One of the rules, as it appears in a reading's `types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyType {
    /// More than `zscore_threshold` standard deviations from the client's
    /// usual level for that hour of day.
    Outlier,
    /// More than `spike_increase` above the typical level for that hour.
    Spike,
    /// Night reading far above the client's usual night use.
    NightUse,
    /// Several consecutive heavy nights, heavier than the client's days.
    Plantation,
    /// A long run of constant (or zero) readings in a client that varies.
    Flat,
}

impl AnomalyType {
    /// All types, in bit order.
    pub const ALL: [AnomalyType; 5] =
        [AnomalyType::Outlier, AnomalyType::Spike, AnomalyType::NightUse, AnomalyType::Plantation, AnomalyType::Flat];

    /// The name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyType::Outlier => "outlier",
            AnomalyType::Spike => "spike",
            AnomalyType::NightUse => "night_use",
            AnomalyType::Plantation => "plantation",
            AnomalyType::Flat => "flat",
        }
    }

    /// The type named `name` (as [`AnomalyType::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<AnomalyType> {
        AnomalyType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The bit of this type in [`AnomalyTypes`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`AnomalyType`]s as a bit mask (bit `i` = `AnomalyType::ALL[i]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnomalyTypes(pub u8);

impl AnomalyTypes {
    /// Whether `t` is in the set.
    pub fn contains(self, t: AnomalyType) -> bool {
        self.0 & t.bit() != 0
    }

    /// The types in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = AnomalyType> {
        AnomalyType::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names joined by `sep`, e.g. `"spike;night_use"`.
    pub fn join(self, sep: &str) -> String {
        self.iter().map(AnomalyType::as_str).collect::<Vec<_>>().join(sep)
    }
}

/// Severity of a reading, a function of its score alone (so it is monotone
/// in the score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Score below 0.5: no rule fired.
    #[serde(rename = "normal")]
    Normal,
    /// 0.5 up to `severity_media`.
    #[serde(rename = "baja")]
    Baja,
    /// `severity_media` up to `severity_alta`.
    #[serde(rename = "media")]
    Media,
    /// `severity_alta` up to `severity_critica`.
    #[serde(rename = "alta")]
    Alta,
    /// `severity_critica` and above.
    #[serde(rename = "crítica")]
    Critica,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] =
        [Severity::Normal, Severity::Baja, Severity::Media, Severity::Alta, Severity::Critica];

    /// The name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Baja => "baja",
            Severity::Media => "media",
            Severity::Alta => "alta",
            Severity::Critica => "crítica",
        }
    }

    /// The severity named `name` (as [`Severity::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Flags for every reading, in input row order (columns, for cheap export).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadingFlags {
    /// Whether any rule fired (equivalently, `score >= 0.5`).
    pub is_anomaly: Vec<bool>,
    /// Which rules fired.
    pub types: Vec<AnomalyTypes>,
    /// Score in [0, 1]; 0.5 is the threshold of every rule.
    pub score: Vec<f64>,
    /// Severity from the score.
    pub severity: Vec<Severity>,
    /// The rules' usual level for the reading (kWh; NaN where they had
    /// none): what an episode's kWh above baseline is measured against.
    pub usual: Vec<f64>,
}

/// Per-client summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSummary {
    /// Client name.
    pub client: String,
    /// Readings examined.
    pub n_readings: usize,
    /// Readings flagged.
    pub n_anomalies: usize,
    /// Readings flagged by each rule, in [`AnomalyType::ALL`] order.
    pub n_by_type: [usize; 5],
    /// Readings of severity crítica.
    pub n_critical: usize,
    /// Readings of severity alta or crítica.
    pub n_severe: usize,
    /// Highest score.
    pub max_score: f64,
    /// Flagged for inspection: calibrated rules, any suspicious month;
    /// literal rules, any plantation or flat reading or at least
    /// `suspicious_min_severe` readings of severity alta or crítica.
    pub suspicious: bool,
}

/// Aggregates of one client in one calendar month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyAggregate {
    /// Client name.
    pub client: String,
    /// Calendar year.
    pub year: i64,
    /// Calendar month, 1-12.
    pub month: u32,
    /// Readings in the month.
    pub n_readings: usize,
    /// Total kWh.
    pub total_kwh: f64,
    /// Mean kWh per reading.
    pub mean_kwh: f64,
    /// Smallest reading.
    pub min_kwh: f64,
    /// Largest reading.
    pub max_kwh: f64,
    /// Flagged readings.
    pub n_anomalies: usize,
    /// Readings of severity crítica.
    pub n_critical: usize,
    /// Mean reading in the night band, if any.
    pub night_mean_kwh: Option<f64>,
    /// Mean reading in the peak band, if any.
    pub peak_mean_kwh: Option<f64>,
    /// Mean over the month's days (with readings) of each day's highest
    /// anomaly score (0 for a day with none): 0 = a clean month, 1 = every
    /// day had a certain anomaly.
    pub score: f64,
    /// The month's suspicion score in [0, 1], from its episodes (see
    /// `ConsumptionRules::score_months`).
    pub suspicion: f64,
    /// `suspicion >= 0.5`.
    pub suspicious: bool,
    /// Rank of `suspicion` among the clients' months of the same calendar
    /// month (1 = most suspicious; ties share the best rank).
    pub rank: usize,
    /// Episodes overlapping the month.
    pub n_episodes: usize,
    /// Of those, episodes of peak severity alta or crítica.
    pub n_severe_episodes: usize,
    /// The rules of its episodes: why it is suspicious.
    pub rules: AnomalyTypes,
}

impl MonthlyAggregate {
    /// A client's month with nothing counted and no suspicion scored yet.
    pub fn new(client: &str, year: i64, month: u32) -> Self {
        MonthlyAggregate {
            client: client.to_owned(),
            year,
            month,
            n_readings: 0,
            total_kwh: 0.0,
            mean_kwh: 0.0,
            min_kwh: 0.0,
            max_kwh: 0.0,
            n_anomalies: 0,
            n_critical: 0,
            night_mean_kwh: None,
            peak_mean_kwh: None,
            score: 0.0,
            suspicion: 0.0,
            suspicious: false,
            rank: 0,
            n_episodes: 0,
            n_severe_episodes: 0,
            rules: AnomalyTypes::default(),
        }
    }
}

/// One alert: a run of one rule's flags for one client (see
/// `consumption::episodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Client name.
    pub client: String,
    /// The rule.
    pub kind: AnomalyType,
    /// Time of the first flagged reading.
    pub start: i64,
    /// End of the last flagged reading (its time plus the interval).
    pub end: i64,
    /// Flagged readings in the episode.
    pub n_readings: usize,
    /// Highest score of its readings.
    pub peak_score: f64,
    /// Severity of the peak score.
    pub peak_severity: Severity,
    /// Sum over its readings of the reading less the rules' usual level for
    /// it (negative for a meter reading too little, as a flat one does).
    pub kwh_above_baseline: f64,
}

/// Everything one detection run returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumptionReport {
    /// Per reading, in input row order.
    pub flags: ReadingFlags,
    /// Per client, in client name order.
    pub clients: Vec<ClientSummary>,
    /// Per client and month, clients in name order, months ascending.
    pub monthly: Vec<MonthlyAggregate>,
    /// Episodes, clients in name order, each client's by start.
    pub episodes: Vec<Episode>,
}
