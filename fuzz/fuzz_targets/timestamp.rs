//! The timestamp and duration parsers every reader and flag uses: any text
//! that parses formats back to a time that parses to the same instant.
#![no_main]
use anomaly_core::time::{format_timestamp, parse_duration, parse_timestamp, DurationUnit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(ts) = parse_timestamp(text) {
        let formatted = format_timestamp(ts);
        assert_eq!(parse_timestamp(&formatted), Some(ts), "{text:?} -> {ts} -> {formatted:?}");
    }
    let _ = parse_duration("--interval", text, DurationUnit::Second);
});
