//! A numeric CSV, as `anomaly iforest fit/score` reads it, then a small
//! forest fitted and scored on it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = anomaly_cli::harness::matrix_csv(data);
});
