//! A consumption rules file (`--params`, `ConsumptionRules.save`): loaded,
//! checked, then run over a fixed week of readings of two clients.
#![no_main]
use anomaly_core::consumption::{ColumnNames, ConsumptionParams, Readings};
use anomaly_core::persist::Persist;
use anomaly_core::traits::{Detect, ParamGuard};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = ConsumptionParams::from_bytes(data) else { return };
    let Ok(rules) = params.check() else { return };
    let hours = 24 * 14;
    let (mut client, mut ts, mut kwh) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..2u32 {
        for h in 0..hours {
            client.push(c);
            ts.push(1_700_000_000 - 1_700_000_000 % 3600 + i64::from(h) * 3600);
            kwh.push(if c == 1 && h > 200 { 3.2 } else { 0.2 + f64::from(h % 24) / 10.0 });
        }
    }
    let readings = Readings::new(vec!["a".into(), "b".into()], client, ts, kwh).expect("fixed readings are valid");
    let _ = ColumnNames::default();
    if let Ok(report) = rules.detect(&readings) {
        assert!(report.flags.score.iter().all(|s| (0.0..=1.0).contains(s)), "score outside [0, 1]");
    }
});
