//! A credit model file (`anomaly.credit_risk.export_sklearn`): loaded, then
//! scoring applicants built from its own columns (numbers, known and
//! unknown categories, missing values): probabilities are finite and sum to 1.
#![no_main]
use anomaly_core::credit_risk::{Applicants, Category, Cell, ColumnData, ColumnKind, CreditModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = CreditModel::from_json(data) else { return };
    let mut applicants = Applicants::new();
    for column in model.columns().iter().take(256) {
        let known = column.categories.as_ref().and_then(|c| c.first()).map(|c| match c {
            Category::Number(x) => Cell::Number(*x),
            Category::Text(s) => Cell::Text(s.clone()),
            Category::Missing(()) => Cell::MISSING,
        });
        let cells = match column.kind {
            ColumnKind::Numeric => vec![Cell::Number(0.5), Cell::Number(-1e6), Cell::MISSING],
            ColumnKind::Categorical => vec![known.unwrap_or(Cell::MISSING), Cell::Text("unseen".into()), Cell::MISSING],
        };
        applicants = applicants.column(column.name.clone(), ColumnData::Cells(cells));
    }
    if let Ok(scores) = model.score(&applicants) {
        for i in 0..scores.rows() {
            let row = scores.row(i);
            assert!(row.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)), "probabilities {row:?}");
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6, "probabilities {row:?} do not sum to 1");
        }
    }
});
