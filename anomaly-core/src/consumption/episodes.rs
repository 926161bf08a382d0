//! Episodes: what an analyst acts on. Consecutive flagged readings of one
//! client and one rule become one alert, with its start and end, its peak
//! score and severity, and the energy above (or, for a flat meter, below)
//! the client's usual level over it.
//!
//! A run of a rule's flags continues across at most `episode_gap` unflagged
//! readings (a bursty spike pattern or a flat run interrupted by one odd
//! reading is one event); night use and plantations continue from one
//! night to the next (their readings are nights only, a day apart). A
//! reading flagged by two rules belongs to both rules' episodes.

use std::collections::HashMap;

use super::params::ConsumptionRules;
use super::report::{AnomalyType, AnomalyTypes, Episode, MonthlyAggregate, Severity};
use super::rules::rule_score;
use crate::time::{days_from_civil, SECONDS_PER_DAY};

/// The episodes of one client, in start order (then rule order). `ts` is
/// sorted, `usual[i]` the rules' usual level for reading `i` (NaN where
/// they had none; such readings add nothing to the kWh).
pub(super) fn client_episodes(
    rules: &ConsumptionRules,
    client: &str,
    ts: &[i64],
    x: &[f64],
    usual: &[f64],
    flags: &[(AnomalyTypes, f64)],
) -> Vec<Episode> {
    let mut parts = Vec::new();
    for (i, &(types, score)) in flags.iter().enumerate() {
        for kind in types.iter() {
            parts.push(rules.reading_episode(client, kind, ts[i], x[i], usual[i], score));
        }
    }
    rules.merge_episodes(parts)
}

impl ConsumptionRules {
    /// One flagged reading (at `ts`, `kwh` against the rules' `usual`
    /// level) as an episode of one reading (what
    /// [`ConsumptionRules::merge_episodes`] joins).
    pub fn reading_episode(
        &self,
        client: &str,
        kind: AnomalyType,
        ts: i64,
        kwh: f64,
        usual: f64,
        score: f64,
    ) -> Episode {
        Episode {
            client: client.to_owned(),
            kind,
            start: ts,
            end: ts + i64::from(self.params().interval_minutes) * 60,
            n_readings: 1,
            peak_score: score,
            peak_severity: self.severity(score),
            kwh_above_baseline: if usual.is_nan() { 0.0 } else { kwh - usual },
        }
    }

    /// Joins episodes (or single flagged readings) of the same client and
    /// rule that overlap or follow each other within the rule's gap: at most
    /// `episode_gap` missing readings, a day and a reading for the night
    /// rules. Merging
    /// is associative, so the episodes of a whole series equal those of
    /// its parts merged, which is how the SQL job extends stored episodes
    /// with each batch. Returns clients in name order, each client's
    /// episodes by start, then rule.
    pub fn merge_episodes(&self, mut parts: Vec<Episode>) -> Vec<Episode> {
        let p = self.params();
        let step = i64::from(p.interval_minutes) * 60;
        let gap = |t: AnomalyType| match t {
            // The same hour of the next night (the design's 24 h plus one interval).
            AnomalyType::NightUse | AnomalyType::Plantation => SECONDS_PER_DAY + step,
            _ => (i64::from(p.episode_gap) + 1) * step,
        };
        parts.sort_by(|a, b| (&a.client, a.kind as u8, a.start, a.end).cmp(&(&b.client, b.kind as u8, b.start, b.end)));
        let mut out: Vec<Episode> = Vec::with_capacity(parts.len());
        for e in parts {
            match out.last_mut() {
                // `end - step` is the time of the open episode's last reading.
                Some(o) if o.client == e.client && o.kind == e.kind && e.start - (o.end - step) <= gap(e.kind) => {
                    o.end = o.end.max(e.end);
                    o.n_readings += e.n_readings;
                    o.peak_score = o.peak_score.max(e.peak_score);
                    o.kwh_above_baseline += e.kwh_above_baseline;
                }
                _ => out.push(e),
            }
        }
        for e in &mut out {
            e.peak_severity = self.severity(e.peak_score);
        }
        out.sort_by(|a, b| (&a.client, a.start, a.kind as u8).cmp(&(&b.client, b.start, b.kind as u8)));
        out
    }

    /// Scores client-months from their episodes (an episode counts in
    /// every month it overlaps): `suspicion = 1 - (1 - s) (1 - b)`, with
    /// `s` the highest peak score of the month's plantation and flat
    /// episodes of severity alta or above (structural evidence: one is
    /// enough) and `b` the rule score of `n / suspicious_month_episodes`,
    /// `n` its outlier, spike and night episodes of severity alta or above
    /// (bursts: a few are ordinary). A month is suspicious from 0.5, and
    /// ranked among the months of the same calendar month in `months`.
    pub fn score_months(&self, episodes: &[Episode], months: &mut [MonthlyAggregate]) {
        let mut by_client: HashMap<&str, Vec<&Episode>> = HashMap::new();
        for e in episodes {
            by_client.entry(e.client.as_str()).or_default().push(e);
        }
        let min_severe = f64::from(self.params().suspicious_month_episodes.max(1));
        for m in months.iter_mut() {
            let from = days_from_civil(m.year, m.month, 1) * SECONDS_PER_DAY;
            let (ny, nm) = if m.month == 12 { (m.year + 1, 1) } else { (m.year, m.month + 1) };
            let to = days_from_civil(ny, nm, 1) * SECONDS_PER_DAY;
            let (mut structural, mut bursts, mut n, mut severe, mut rules) = (0.0f64, 0usize, 0usize, 0usize, 0u8);
            for e in by_client.get(m.client.as_str()).into_iter().flatten() {
                if e.start >= to || e.end <= from {
                    continue;
                }
                n += 1;
                rules |= e.kind.bit();
                if e.peak_severity < Severity::Alta {
                    continue;
                }
                severe += 1;
                match e.kind {
                    AnomalyType::Plantation | AnomalyType::Flat => structural = structural.max(e.peak_score),
                    _ => bursts += 1,
                }
            }
            let burst = rule_score(bursts as f64 / min_severe);
            m.suspicion = 1.0 - (1.0 - structural) * (1.0 - burst);
            m.suspicious = m.suspicion >= 0.5;
            m.n_episodes = n;
            m.n_severe_episodes = severe;
            m.rules = AnomalyTypes(rules);
        }
        // Rank 1 = most suspicious of its calendar month; ties share the best rank.
        let mut by_month: HashMap<(i64, u32), Vec<f64>> = HashMap::new();
        for m in months.iter() {
            by_month.entry((m.year, m.month)).or_default().push(m.suspicion);
        }
        for scores in by_month.values_mut() {
            scores.sort_by(|a, b| b.total_cmp(a));
        }
        for m in months.iter_mut() {
            m.rank = 1 + by_month[&(m.year, m.month)].partition_point(|&s| s > m.suspicion);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumption::{ConsumptionParams, Severity};
    use crate::traits::ParamGuard;

    const H: i64 = 3600;

    fn flag(t: &[AnomalyType], score: f64) -> (AnomalyTypes, f64) {
        (AnomalyTypes(t.iter().fold(0, |m, t| m | t.bit())), score)
    }

    #[test]
    fn runs_with_short_gaps_are_one_episode_per_rule() {
        let rules = ConsumptionParams::default().check().unwrap();
        let none = (AnomalyTypes::default(), 0.1);
        let spike = |s| flag(&[AnomalyType::Spike], s);
        // Spikes at hours 0, 1, 4 (gap of 2: same episode), 8 (gap of 3: a new one);
        // an outlier at hour 1 too.
        let mut flags = vec![none; 10];
        flags[0] = spike(0.6);
        flags[1] = flag(&[AnomalyType::Spike, AnomalyType::Outlier], 0.95);
        flags[4] = spike(0.7);
        flags[8] = spike(0.55);
        let ts: Vec<i64> = (0..10).map(|h| h * H).collect();
        let x = vec![3.0; 10];
        let mut baseline = vec![1.0; 10];
        baseline[4] = f64::NAN; // no usual level: adds nothing
        let e = client_episodes(&rules, "c", &ts, &x, &baseline, &flags);
        let got: Vec<_> =
            e.iter().map(|e| (e.kind, e.start / H, e.end / H, e.n_readings, e.kwh_above_baseline)).collect();
        assert_eq!(
            got,
            vec![
                (AnomalyType::Spike, 0, 5, 3, 4.0),
                (AnomalyType::Outlier, 1, 2, 1, 2.0),
                (AnomalyType::Spike, 8, 9, 1, 2.0),
            ]
        );
        assert_eq!(e[0].peak_score, 0.95);
        assert_eq!(e[0].peak_severity, rules.severity(0.95));
        assert!(e[0].peak_severity >= Severity::Alta);
    }

    #[test]
    fn night_rules_continue_from_night_to_night() {
        let rules = ConsumptionParams::default().check().unwrap();
        // Plantation flags at 01:00-03:00 on three consecutive nights, then a
        // night off, then one more: two episodes.
        let mut ts = Vec::new();
        for night in [0, 1, 2, 4] {
            for h in 1..4 {
                ts.push(night * 24 * H + h * H);
            }
        }
        let flags = vec![flag(&[AnomalyType::Plantation], 0.8); ts.len()];
        let x = vec![2.0; ts.len()];
        let e = client_episodes(&rules, "c", &ts, &x, &vec![0.5; ts.len()], &flags);
        assert_eq!(e.iter().map(|e| e.n_readings).collect::<Vec<_>>(), vec![9, 3]);
        assert_eq!(e[0].end, 2 * 24 * H + 4 * H);
        assert_eq!(e[0].kwh_above_baseline, 9.0 * 1.5);
    }

    #[test]
    fn months_are_scored_from_the_episodes_overlapping_them() {
        let rules = ConsumptionParams::default().check().unwrap();
        let day = 86_400;
        let jan = crate::time::days_from_civil(2024, 1, 1) * day;
        let feb = crate::time::days_from_civil(2024, 2, 1) * day;
        let episode = |client: &str, kind, start: i64, end: i64, peak: f64| Episode {
            client: client.into(),
            kind,
            start,
            end,
            n_readings: 1,
            peak_score: peak,
            peak_severity: rules.severity(peak),
            kwh_above_baseline: 0.0,
        };
        let month =
            |client: &str, month| MonthlyAggregate { n_readings: 1, ..MonthlyAggregate::new(client, 2024, month) };
        let episodes = vec![
            // A severe flat run over the turn of the month counts in both months.
            episode("a", AnomalyType::Flat, feb - day, feb + day, 0.8),
            // Two severe spikes: below the five that make a month suspicious.
            episode("b", AnomalyType::Spike, jan, jan + H, 0.95),
            episode("b", AnomalyType::Spike, jan + day, jan + day + H, 0.8),
            // A mild plantation episode is not structural evidence.
            episode("b", AnomalyType::Plantation, jan + 2 * day, jan + 3 * day, 0.6),
        ];
        let mut months = vec![month("a", 1), month("a", 2), month("b", 1), month("b", 2)];
        rules.score_months(&episodes, &mut months);
        let got: Vec<_> = months.iter().map(|m| (m.suspicious, m.rank, m.n_episodes, m.n_severe_episodes)).collect();
        assert_eq!(got, vec![(true, 1, 1, 1), (true, 1, 1, 1), (false, 2, 3, 2), (false, 2, 0, 0)]);
        assert_eq!(months[0].suspicion, 0.8);
        assert!((months[2].suspicion - 0.5 * 2.0 / 5.0).abs() < 1e-15);
        assert_eq!(months[2].rules.join(";"), "spike;plantation");
    }
}
