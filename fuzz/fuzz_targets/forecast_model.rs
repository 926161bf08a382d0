//! A forecast model directory (`anomaly forecast train`): the index
//! `detector.json` and the model files it names. The input is the index,
//! a NUL byte, then the bytes every model file it names reads as.
#![no_main]
use anomaly_core::forecast_interval::{LongReadings, MultiDetector, INDEX_FILE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (index, file) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let loaded =
        MultiDetector::from_directory(|name| Ok(if name == INDEX_FILE { index.to_vec() } else { file.to_vec() }));
    let Ok(models) = loaded else { return };
    let mut readings = LongReadings::default();
    for (name, detector) in models.variables.iter().take(4) {
        for ds in
            [detector.stats.first, detector.stats.last, detector.stats.last.saturating_add(3600), 0, 253_402_300_799]
        {
            readings.ds.push(ds);
            readings.variable.push(name.clone());
            readings.value.push(1.0);
        }
    }
    if let Ok(d) = models.detect(&readings) {
        assert!(d.rows.score.iter().all(|s| s.is_finite()), "non-finite score from a loaded model");
    }
});
