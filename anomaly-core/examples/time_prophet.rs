//! Times fitting and forecasting one series: `time_prophet FILE.csv [MODE]`
//! with columns `ds,y` (`YYYY-MM-DD HH:MM:SS`), MODE additive or multiplicative.

use std::time::Instant;

use anomaly_core::forecast_interval::{FittedProphet, History, Intervals, Mode, ProphetOptions, SeasonalitySetting};
use anomaly_core::time::parse_timestamp;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: time_prophet FILE.csv [additive|multiplicative]")?;
    let mode = if args.next().as_deref() == Some("multiplicative") { Mode::Multiplicative } else { Mode::Additive };
    let text = std::fs::read_to_string(path)?;
    let (mut ds, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let (d, v) = line.split_once(',').ok_or("bad line")?;
        ds.push(parse_timestamp(d).ok_or("bad timestamp")? * 1_000_000_000);
        y.push(v.parse::<f64>()?);
    }
    let options = ProphetOptions {
        seasonality_mode: mode,
        interval_width: 0.95,
        daily_seasonality: SeasonalitySetting::Enabled(true),
        weekly_seasonality: SeasonalitySetting::Enabled(true),
        yearly_seasonality: SeasonalitySetting::Enabled(false),
        ..Default::default()
    };
    let history = History::new(ds.clone(), y, Vec::new())?;
    for _ in 0..3 {
        let t = Instant::now();
        let model = FittedProphet::fit(&options, &history)?;
        let fit = t.elapsed();
        let step = ds[1] - ds[0];
        let future: Vec<i64> = (0..ds.len() + 576).map(|i| ds[0] + i as i64 * step).collect();
        let t = Instant::now();
        let f = model.predict(&future, &[], Intervals::Simulated { seed: 1 })?;
        let predict = t.elapsed();
        let t = Instant::now();
        model.predict(&future, &[], Intervals::Analytic)?;
        println!(
            "fit {fit:.2?} (objective {:.4}), predict simulated {predict:.2?}, analytic {:.2?}, yhat[0] {:.4}",
            model.objective,
            t.elapsed(),
            f.yhat[0]
        );
    }
    Ok(())
}
