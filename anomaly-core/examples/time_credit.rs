//! Times the credit scorer: `time_credit MODEL.json APPLICANTS.csv [ROWS]`.
//! Prints JSON: microseconds per single-applicant call (preprocessing
//! included) and rows per second for a batch of ROWS rows (default 100,000,
//! the CSV's rows repeated). Used by `benches/python/bench_credit.py`.

use std::time::Instant;

use anomaly_core::credit_risk::{Applicants, Cell, ColumnData, ColumnKind, CreditModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: time_credit MODEL.json APPLICANTS.csv [ROWS]";
    let model = CreditModel::from_json(&std::fs::read(args.next().ok_or(usage)?)?)?;
    let text = std::fs::read_to_string(args.next().ok_or(usage)?)?;
    let rows: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(100_000);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    let records: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let table = |take: &dyn Fn(usize) -> usize, n: usize| -> Applicants {
        let mut a = Applicants::new();
        for column in model.columns() {
            let at = header.iter().position(|h| *h == column.name).unwrap_or(usize::MAX);
            let cells = (0..n)
                .map(|i| {
                    let raw = records[take(i)].get(at).copied().unwrap_or("");
                    match (raw, column.kind) {
                        ("", _) => Cell::MISSING,
                        (v, ColumnKind::Numeric) => v.parse().map_or_else(|_| Cell::Text(v.into()), Cell::Number),
                        (v, ColumnKind::Categorical) => Cell::Text(v.into()),
                    }
                })
                .collect();
            a = a.column(column.name.clone(), ColumnData::Cells(cells));
        }
        a
    };
    // One applicant at a time, as a form or an HTTP request arrives.
    let singles: Vec<Applicants> = (0..records.len().min(1000)).map(|r| table(&|_| r, 1)).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for a in &singles {
            std::hint::black_box(model.score(a)?);
        }
        best = best.min(t.elapsed().as_secs_f64() / singles.len() as f64);
    }
    let batch = table(&|i| i % records.len(), rows);
    let mut batch_best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(model.score(&batch)?);
        batch_best = batch_best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"single_us\": {:.3}, \"batch_rows\": {rows}, \"batch_s\": {:.6}, \"threads\": {}}}",
        best * 1e6,
        batch_best,
        rayon::current_num_threads()
    );
    Ok(())
}
