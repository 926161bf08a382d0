//! Raw bytes on a connection to `anomaly serve` (the credit model and a
//! SQLite dashboard database from `$ANOMALY_FUZZ_FIXTURES`), in-process
//! through the real HTTP/1 settings and router: every answer ends, and
//! every error answered is JSON with a code.
#![no_main]
use std::sync::OnceLock;

use anomaly_cli::harness::Service;
use libfuzzer_sys::fuzz_target;

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| Service::from_fixtures(true).expect("the fixture service starts"))
}

fuzz_target!(|data: &[u8]| {
    let answer = service().exchange(data);
    let head_request = data.windows(5).any(|w| w == b"HEAD ");
    for (status, body) in Service::responses(&answer) {
        // hyper answers requests it cannot parse itself, without a body;
        // a HEAD answer has none either.
        let bare = body.is_empty() && (matches!(status, 400 | 408 | 413 | 431 | 505) || head_request);
        if status >= 400 && !bare {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert!(
                json["error"]["code"].is_string(),
                "{status} without a JSON error code: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }
});
