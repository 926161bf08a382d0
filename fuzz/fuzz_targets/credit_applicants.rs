//! A `POST /predict` body (one applicant or a list) against the credit
//! model in `$ANOMALY_FUZZ_FIXTURES/credit_model.json`: every answer is a
//! JSON error with a code, or finite probabilities.
#![no_main]
use std::sync::OnceLock;

use anomaly_cli::harness::Service;
use libfuzzer_sys::fuzz_target;

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| Service::from_fixtures(false).expect("the fixture service starts"))
}

fuzz_target!(|data: &[u8]| {
    let (status, body) = service().predict(data);
    if status == 200 {
        let rows = if body.is_array() { body.as_array().cloned().unwrap_or_default() } else { vec![body] };
        for row in rows {
            let p = &row["probabilities"];
            let finite = p.as_object().is_some_and(|m| m.values().all(|v| v.as_f64().is_some_and(f64::is_finite)));
            assert!(finite, "200 with probabilities that are not finite numbers: {row}");
        }
    } else {
        assert!(body["error"]["code"].is_string(), "{status} without a JSON error code: {body}");
    }
});
