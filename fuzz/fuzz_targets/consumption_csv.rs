//! A consumption readings CSV, as `anomaly consumption detect` reads it,
//! then the default rules over it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = anomaly_cli::harness::consumption_csv(data);
});
