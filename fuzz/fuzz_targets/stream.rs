//! JSON lines, as `anomaly forecast stream` reads them on stdin, scored by
//! models of two simulated process variables (fitted once).
#![no_main]
use std::sync::OnceLock;

use anomaly_core::forecast_interval::{simulate_process, DetectorConfig, LongReadings, MultiDetector, ProcessSpec};
use libfuzzer_sys::fuzz_target;

fn models() -> &'static MultiDetector {
    static MODELS: OnceLock<MultiDetector> = OnceLock::new();
    MODELS.get_or_init(|| {
        let spec = ProcessSpec {
            variables: 2,
            days: 7.0,
            interval_minutes: 60,
            start: 1_767_225_600,
            anomaly_ratio: 0.0,
            seed: 1,
        };
        let sim = simulate_process(&spec).expect("a valid simulation");
        let readings = LongReadings {
            ds: sim.ts.clone(),
            variable: sim.variable.iter().map(|&v| sim.names[v as usize].clone()).collect(),
            value: sim.value.clone(),
            ..Default::default()
        };
        MultiDetector::fit(&DetectorConfig::default(), &readings).expect("fits")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = anomaly_cli::harness::stream(models(), data);
});
