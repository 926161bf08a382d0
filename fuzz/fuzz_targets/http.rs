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
    SERVICE.get_or_init(|| {
        let dir = std::env::var("ANOMALY_FUZZ_FIXTURES").expect("ANOMALY_FUZZ_FIXTURES (set by scripts/fuzz)");
        let model = std::fs::read(format!("{dir}/credit_model.json")).expect("the fixture credit model");
        Service::new(Some(&model), Some(&format!("sqlite:{dir}/dashboard.db"))).expect("the service starts")
    })
}

fuzz_target!(|data: &[u8]| {
    let answer = service().exchange(data);
    // Each response's status line and, for errors, a JSON body with a code.
    let text = String::from_utf8_lossy(&answer);
    for response in text.split("HTTP/1.1 ").skip(1) {
        let status: u16 = response.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
        // hyper answers requests it cannot parse itself, without a body;
        // a HEAD answer has none either.
        let bare = body.is_empty() && (matches!(status, 400 | 408 | 413 | 431 | 505) || data.starts_with(b"HEAD"));
        if status >= 400 && !bare && !data.windows(5).any(|w| w == b"HEAD ") {
            let json: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap_or_default();
            assert!(json["error"]["code"].is_string(), "{status} without a JSON error code: {body:?}");
        }
    }
});
