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

use super::params::ConsumptionRules;
use super::report::{AnomalyType, AnomalyTypes, Episode};

/// One open episode of a rule.
struct Open {
    first: usize,
    last: usize,
    n: usize,
    peak: f64,
    kwh: f64,
}

/// The episodes of one client, in start order (then rule order). `ts` is
/// sorted, `baseline[i]` the rules' usual level for reading `i` (NaN where
/// they had none; such readings add nothing to the kWh).
pub(super) fn client_episodes(
    rules: &ConsumptionRules,
    client: &str,
    ts: &[i64],
    x: &[f64],
    baseline: &[f64],
    flags: &[(AnomalyTypes, f64)],
) -> Vec<Episode> {
    let p = rules.params();
    let step = i64::from(p.interval_minutes) * 60;
    let gap = |t: AnomalyType| match t {
        AnomalyType::NightUse | AnomalyType::Plantation => 86_400,
        _ => (i64::from(p.episode_gap) + 1) * step,
    };
    let mut open: [Option<Open>; 5] = Default::default();
    let mut out = Vec::new();
    let close = |o: Open, t: AnomalyType, out: &mut Vec<Episode>| {
        out.push(Episode {
            client: client.to_owned(),
            kind: t,
            start: ts[o.first],
            end: ts[o.last] + step,
            n_readings: o.n,
            peak_score: o.peak,
            peak_severity: rules.severity(o.peak),
            kwh_above_baseline: o.kwh,
        });
    };
    for (i, &(types, score)) in flags.iter().enumerate() {
        let above = if baseline[i].is_nan() { 0.0 } else { x[i] - baseline[i] };
        for (k, t) in AnomalyType::ALL.into_iter().enumerate() {
            if !types.contains(t) {
                continue;
            }
            match open[k].as_mut() {
                Some(o) if ts[i] - ts[o.last] <= gap(t) => {
                    o.last = i;
                    o.n += 1;
                    o.peak = o.peak.max(score);
                    o.kwh += above;
                }
                _ => {
                    if let Some(o) = open[k].take() {
                        close(o, t, &mut out);
                    }
                    open[k] = Some(Open { first: i, last: i, n: 1, peak: score, kwh: above });
                }
            }
        }
    }
    for (k, o) in open.into_iter().enumerate() {
        if let Some(o) = o {
            close(o, AnomalyType::ALL[k], &mut out);
        }
    }
    out.sort_by_key(|e| (e.start, e.kind as u8));
    out
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
}
