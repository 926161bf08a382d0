//! Times the consumption rules on generated data:
//! `cargo run --release --example time_consumption -- CLIENTS DAYS [literal|calibrated]`.

use std::time::Instant;

use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
use anomaly_core::consumption::{ConsumptionParams, Method, Readings};
use anomaly_core::traits::{Detect, ParamGuard};

fn main() -> Result<(), anomaly_core::Error> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut args = raw.iter().take(2).map(|a| a.parse::<usize>().unwrap_or(0));
    let clients = args.next().filter(|&c| c > 0).unwrap_or(10_000);
    let days = args.next().filter(|&d| d > 0).unwrap_or(30) as u32;
    let method: Method = raw.get(2).map_or(Ok(Method::Literal), |m| m.parse())?;
    let (readings, _) = simulate(&SimulationSpec { clients, days, ..Default::default() })?;
    let rules = ConsumptionParams { method, ..Default::default() }.check()?;
    for _ in 0..3 {
        let t = Instant::now();
        let copy = Readings::new(
            readings.client_names().to_vec(),
            readings.clients().to_vec(),
            readings.timestamps().to_vec(),
            readings.kwh().to_vec(),
        )?;
        let validate = t.elapsed();
        let report = rules.detect(&copy)?;
        println!(
            "{} readings: validate {:.0?}, detect + monthly {:.3?} ({} anomalies, {} months)",
            copy.len(),
            validate,
            t.elapsed() - validate,
            report.flags.is_anomaly.iter().filter(|a| **a).count(),
            report.monthly.len()
        );
    }
    Ok(())
}
