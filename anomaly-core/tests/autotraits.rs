//! Fitted models and results cross threads (rayon, Python threads, servers).

use anomaly_core::consumption::{ConsumptionParams, ConsumptionReport, ConsumptionRules, Readings};
use anomaly_core::data::{FeatureMatrix, TimeSeries};

fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<ConsumptionParams>();
    send_sync::<ConsumptionRules>();
    send_sync::<Readings>();
    send_sync::<ConsumptionReport>();
    send_sync::<TimeSeries>();
    send_sync::<FeatureMatrix>();
    send_sync::<anomaly_core::Error>();
}
