//! The credit scorer on hand-written model files: arithmetic, validation
//! that names every bad field, and typed errors for corrupt files. (Exactness
//! against scikit-learn itself is tested from Python, on real models.)

use anomaly_core::credit_risk::{Applicants, Cell, ColumnData, CreditModel};
use anomaly_core::Error;

/// Impute -> scale the numeric column, impute -> one-hot (error on unknown)
/// the categorical one, then a binary logistic regression.
fn logistic_model() -> String {
    r#"{"format": "anomaly.credit_risk", "version": 1, "sklearn_version": "1.9.1",
      "input": {"named": true, "columns": [
          {"name": "amount", "kind": "numeric", "categories": null},
          {"name": "purpose", "kind": "categorical", "categories": ["car", "tv"]}]},
      "classes": ["good", "bad"],
      "preprocessing": {"type": "column_transformer", "n_features_in": 2, "transformers": [
          {"name": "num", "columns": [0], "node": {"type": "pipeline", "steps": [
              {"name": "imp", "node": {"type": "simple_imputer", "missing_values": null, "statistics": [100.0]}},
              {"name": "sc", "node": {"type": "standard_scaler", "mean": [100.0], "scale": [50.0]}}]}},
          {"name": "cat", "columns": [1], "node": {"type": "pipeline", "steps": [
              {"name": "imp", "node": {"type": "simple_imputer", "missing_values": null, "statistics": ["car"]}},
              {"name": "ohe", "node": {"type": "one_hot_encoder", "categories": [["car", "tv"]],
                                       "drop": [null], "handle_unknown": "error"}}]}}]},
      "classifier": {"type": "logistic_regression", "coef": [[2.0, -1.0, 0.5]], "intercept": [0.25],
                     "n_features": 3, "accepts_nan": false}}"#
        .to_owned()
}

fn applicants(amount: Vec<f64>, purpose: Vec<Cell>) -> Applicants {
    Applicants::new().column("amount", ColumnData::Numbers(amount)).column("purpose", ColumnData::Cells(purpose))
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

fn expit(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn preprocessing_and_logistic_arithmetic() {
    let model = CreditModel::from_json(logistic_model().as_bytes()).unwrap();
    let scores = model.score(&applicants(vec![150.0, f64::NAN], vec![text("tv"), Cell::MISSING])).unwrap();
    // Row 0: (150 - 100) / 50 = 1, one-hot [0, 1]: z = 2 - 0 + 0.5 + 0.25.
    // Row 1: imputed 100 -> 0 and "car" -> [1, 0]: z = 0 - 1 + 0 + 0.25.
    let z = [2.75, -0.75];
    for (i, zi) in z.iter().enumerate() {
        assert_eq!(scores.row(i), &[1.0 - expit(*zi), expit(*zi)]);
    }
    assert_eq!(scores.labels, vec![1, 0]);
    assert_eq!(scores.confidence(1), 1.0 - expit(-0.75));
    assert_eq!(model.classes().iter().map(ToString::to_string).collect::<Vec<_>>(), ["good", "bad"]);
}

#[test]
fn every_bad_field_is_named_at_once() {
    let model = CreditModel::from_json(logistic_model().as_bytes()).unwrap();
    // A text in the numeric column, an unknown category, and (separately) a missing column.
    let bad = Applicants::new()
        .column("amount", ColumnData::Cells(vec![text("lots"), Cell::Number(10.0)]))
        .column("purpose", ColumnData::Cells(vec![text("car"), text("boat")]))
        .column("ignored_extra", ColumnData::Numbers(vec![1.0, 2.0]));
    let Err(Error::InvalidFields { problems }) = model.score(&bad) else { panic!("expected InvalidFields") };
    let named: Vec<(&str, Option<usize>)> = problems.iter().map(|p| (p.field.as_str(), p.row)).collect();
    assert_eq!(named, [("amount", Some(0)), ("purpose", Some(1))], "{problems:?}");
    assert!(problems[1].reason.contains("boat") && problems[1].reason.contains("car, tv"));

    let missing = Applicants::new().column("other", ColumnData::Numbers(vec![1.0]));
    let Err(err) = model.score(&missing) else { panic!("expected an error") };
    assert_eq!(err.field(), Some("amount"));
    assert!(err.to_string().contains("amount: missing column") && err.to_string().contains("purpose: missing column"));

    let infinite = applicants(vec![f64::INFINITY], vec![text("tv")]);
    assert!(model.score(&infinite).unwrap_err().to_string().contains("not finite"));
}

#[test]
fn zero_rows_give_an_empty_result() {
    let model = CreditModel::from_json(logistic_model().as_bytes()).unwrap();
    let scores = model.score(&applicants(vec![], vec![])).unwrap();
    assert_eq!(scores.rows(), 0);
}

#[test]
fn corrupt_and_newer_files_are_typed_errors() {
    let good = logistic_model();
    let cases = [
        ("not json".to_owned(), "not a JSON model file"),
        (good.replace("anomaly.credit_risk", "something.else"), "format is"),
        (good.replace("[[2.0, -1.0, 0.5]]", "[[2.0, -1.0]]"), "coef must be"),
        (good.replace(r#""columns": [1]"#, r#""columns": [7]"#), "selects column 7"),
        (good.replace(r#""statistics": [100.0]"#, r#""statistics": [100.0, 1.0]"#), "fitted on 2 columns"),
        (good.replace(r#""mean": [100.0]"#, r#""mean": ["lots"]"#), "expected a number"),
        (good.replace(r#""classes": ["good", "bad"]"#, r#""classes": ["good"]"#), "2 or more"),
    ];
    for (text, message) in cases {
        match CreditModel::from_json(text.as_bytes()) {
            Err(Error::CorruptModel { reason }) => assert!(reason.contains(message), "{reason} lacks {message}"),
            other => panic!("expected CorruptModel ({message}), got {other:?}"),
        }
    }
    let newer = good.replace(r#""version": 1"#, r#""version": 3"#);
    assert!(matches!(CreditModel::from_json(newer.as_bytes()), Err(Error::UnsupportedVersion { found: 3, .. })));
}

/// A two-class forest of stumps: features cast to f32, NaN routed, votes
/// averaged in tree order; thresholds written as strings when not finite.
#[test]
fn tree_walk_casts_to_f32_and_routes_missing_values() {
    let tree = |threshold: &str, missing_left: bool| {
        format!(
            r#"{{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2],
                "threshold": [{threshold}, -2.0, -2.0], "missing_go_to_left": [{missing_left}, false, false],
                "value": [[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]}}"#
        )
    };
    let json = format!(
        r#"{{"format": "anomaly.credit_risk", "version": 1,
            "input": {{"named": false, "columns": [{{"name": "x0", "kind": "numeric"}}]}},
            "classes": [0, 1], "preprocessing": null,
            "classifier": {{"type": "forest", "kind": "random_forest", "n_features": 1, "accepts_nan": true,
                           "trees": [{}, {}]}}}}"#,
        // 0.1 as f32 is 0.100000001490116...: above the f64 threshold 0.1.
        tree("0.1", true),
        tree("\"Infinity\"", false)
    );
    let model = CreditModel::from_json(json.as_bytes()).unwrap();
    let scores = model.score(&Applicants::new().column("x0", ColumnData::Numbers(vec![0.1, f64::NAN]))).unwrap();
    // Row 0: tree 1 goes right (f32 cast), tree 2 left. Row 1: tree 1 left, tree 2 right.
    assert_eq!(scores.row(0), &[(0.2 + 0.9) / 2.0, (0.8 + 0.1) / 2.0]);
    assert_eq!(scores.row(1), &[(0.9 + 0.2) / 2.0, (0.1 + 0.8) / 2.0]);
    assert_eq!(scores.labels, vec![0, 0]);
}
