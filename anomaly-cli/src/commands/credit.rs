//! `anomaly credit ...`: score applicants with a scikit-learn pipeline
//! exported by `anomaly.credit_risk.export_sklearn`, with the same
//! probabilities as scikit-learn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anomaly_core::credit_risk::{Applicants, Cell, ColumnData, ColumnKind};
use anomaly_core::Error;
use anyhow::Result;
use clap::{Args, Subcommand};
use log::info;

use crate::csvio;
use crate::input_error::InputError;

/// Credit scoring subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Score a CSV of applicants: one output row per input row with the
    /// prediction, its confidence and one probability per class.
    ///
    /// Export the model once from Python:
    ///
    ///   from anomaly.credit_risk import export_sklearn
    ///   export_sklearn(fitted_pipeline, "credit.json", sample=X_test)
    ///
    /// then:
    ///
    ///   anomaly credit score --model credit.json --input applicants.csv --output scored.csv
    ///
    ///   # keep the applicant id, print a JSON summary
    ///   anomaly credit score -m credit.json -i applicants.csv -o scored.csv --keep id --json
    ///
    /// Cells that are empty, NA, N/A, NaN, nan, null, NULL or None are missing
    /// (the pipeline's imputers fill them). Every bad field (missing column,
    /// text in a numeric column, unknown category) is reported at once, with
    /// its CSV line; the exit code is then 2.
    #[command(verbatim_doc_comment)]
    Score(ScoreArgs),
    /// Print the model's input schema as JSON: columns, kinds, known
    /// categories, classes and the scikit-learn version.
    ///
    ///   anomaly credit schema --model credit.json
    #[command(verbatim_doc_comment)]
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// Model file written by `anomaly.credit_risk.export_sklearn`.
    #[arg(long, short)]
    model: PathBuf,
    /// CSV of applicants with a header row (extra columns are ignored).
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write the scores (CSV).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Comma-separated input columns to copy into the output first (e.g. an id).
    #[arg(long, value_delimiter = ',')]
    keep: Vec<String>,
    /// Print a JSON summary (rows, predictions per class, seconds) on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Model file written by `anomaly.credit_risk.export_sklearn`.
    #[arg(long, short)]
    model: PathBuf,
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Score(args) => score(args),
        Command::Schema(args) => schema(args),
    }
}

/// The cell texts that mean "missing" (pandas' default `na_values`, in short).
pub(crate) fn is_missing_text(text: &str) -> bool {
    matches!(text, "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None" | "<NA>")
}

/// A CSV cell for a column of `kind`: numbers parsed (text kept as text, so
/// the scorer reports it by name), missing markers as missing.
fn cell(text: &str, kind: ColumnKind) -> Cell {
    let text = text.trim();
    if is_missing_text(text) {
        return Cell::MISSING;
    }
    match kind {
        ColumnKind::Numeric => text.parse::<f64>().map_or_else(|_| Cell::Text(text.to_owned()), Cell::Number),
        ColumnKind::Categorical => Cell::Text(text.to_owned()),
    }
}

/// Rewrites row numbers as CSV lines (header = line 1) in the message.
fn with_lines(path: &Path, err: Error) -> InputError {
    match err {
        Error::InvalidFields { problems } => {
            let text = problems
                .iter()
                .map(|p| match p.row {
                    Some(row) => format!("{} (line {}): {}", p.field, row + 2, p.reason),
                    None => format!("{}: {}", p.field, p.reason),
                })
                .collect::<Vec<_>>()
                .join("; ");
            InputError::Csv { path: path.to_owned(), message: format!("invalid input: {text}") }
        }
        other => InputError::data(path, other),
    }
}

fn score(args: ScoreArgs) -> Result<()> {
    let started = Instant::now();
    let model = crate::models::load_credit(&args.model)?;
    let mut reader = crate::csvio::csv_reader(crate::input_error::open_input(&args.input)?);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| InputError::Csv { path: args.input.clone(), message: e.to_string() })?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut records = Vec::new();
    for record in reader.records() {
        records.push(record.map_err(|e| InputError::Csv { path: args.input.clone(), message: e.to_string() })?);
    }
    if records.is_empty() {
        return Err(
            InputError::Csv { path: args.input.clone(), message: "no applicants (E001: empty input)".into() }.into()
        );
    }
    let mut applicants = Applicants::new();
    for column in model.columns() {
        let Some(at) = headers.iter().position(|h| *h == column.name) else { continue };
        let cells = records.iter().map(|r| cell(r.get(at).unwrap_or(""), column.kind)).collect();
        applicants = applicants.column(column.name.clone(), ColumnData::Cells(cells));
    }
    let kept: Vec<usize> =
        args.keep.iter().map(|name| csvio::column_index(&args.input, &headers, name)).collect::<Result<_, _>>()?;
    let scores = model.score(&applicants).map_err(|e| with_lines(&args.input, e))?;
    let classes: Vec<String> = model.classes().iter().map(ToString::to_string).collect();
    if let Some(path) = &args.output {
        let mut header: Vec<String> = args.keep.clone();
        header.extend(["prediction".to_owned(), "confidence".to_owned()]);
        header.extend(classes.iter().map(|c| format!("proba_{c}")));
        let header = header.iter().map(|h| String::from_utf8_lossy(&csvio::csv_field(h)).into_owned());
        let header = header.collect::<Vec<_>>().join(",");
        csvio::write_rows_parallel(path, &header, scores.rows(), |row, out| {
            for &k in &kept {
                out.extend_from_slice(&csvio::csv_field(records[row].get(k).unwrap_or("")));
                out.push(b',');
            }
            out.extend_from_slice(&csvio::csv_field(&classes[scores.labels[row]]));
            out.push(b',');
            csvio::push_f64(out, scores.confidence(row));
            for p in scores.row(row) {
                out.push(b',');
                csvio::push_f64(out, *p);
            }
        })?;
    }
    let mut counts: BTreeMap<&str, usize> = classes.iter().map(|c| (c.as_str(), 0)).collect();
    for &label in &scores.labels {
        *counts.entry(classes[label].as_str()).or_default() += 1;
    }
    info!("scored {} applicants in {:.2?}: {:?}", scores.rows(), started.elapsed(), counts);
    if args.json {
        let summary = serde_json::json!({
            "rows": scores.rows(),
            "predictions": counts,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{summary}");
    }
    Ok(())
}

fn schema(args: SchemaArgs) -> Result<()> {
    let model = crate::models::load_credit(&args.model)?;
    let schema = serde_json::json!({
        "columns": model.columns(),
        "classes": model.classes(),
        "sklearn_version": model.sklearn_version(),
        "n_features": model.n_features(),
    });
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(())
}
