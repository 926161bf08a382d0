//! A bare insert reference for `benches/sql_jobs.py`: write N synthetic
//! result rows into a table with exactly the schema of the plant results
//! table (`anomalies_detector`), as fast as a plain program can, and print
//! `{"rows": N, "seconds": S}`.
//!
//! SQLite: one transaction, one prepared statement (WAL, `synchronous=NORMAL`,
//! a 256 MB page cache). PostgreSQL: one `COPY ... FROM STDIN` (text format)
//! in one transaction. Only the insert is timed: the table is (re)created and
//! the rows are generated before the clock starts.
//!
//! ```text
//! bare_insert --db sqlite:/tmp/bare.db --rows 2628000 --variables 25
//! bare_insert --db postgres://postgres@localhost:5432/bench --rows 2628000 --variables 25 --table bare_rust
//! ```

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

/// Insert synthetic result rows into a results table and time it.
#[derive(Parser)]
struct Args {
    /// `sqlite:PATH` or `postgres://...`.
    #[arg(long)]
    db: String,
    /// Number of result rows to insert.
    #[arg(long)]
    rows: usize,
    /// Variables per datetime (`VAR_01`, `VAR_02`, ...).
    #[arg(long, default_value_t = 25)]
    variables: usize,
    /// Table to (re)create and fill.
    #[arg(long, default_value = "bare_results")]
    table: String,
}

/// 2024-03-04 00:00:00 UTC, the first simulated datetime.
const START: i64 = 1_709_510_400;
/// Every row's `processed_at`.
const PROCESSED_AT: &str = "2024-03-05 00:00:00";
/// Bytes of COPY text sent to the server at a time.
const COPY_CHUNK: usize = 1 << 20;

/// One result row; `ds` and `variable` index the shared label tables.
struct Row {
    ds: usize,
    variable: usize,
    y: f64,
    yhat: f64,
    lower: f64,
    upper: f64,
    residual: f64,
    is_anomaly: bool,
    score: f64,
}

/// `YYYY-MM-DD HH:MM:SS` of a UTC epoch second: the core's one formatter.
fn timestamp(secs: i64) -> String {
    anomaly_core::time::format_timestamp(secs)
}

/// Deterministic xorshift64: a uniform float in [0, 1).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The datetime labels, the variable names and the rows, in key order
/// (datetime-major).
fn generate(rows: usize, variables: usize) -> (Vec<String>, Vec<String>, Vec<Row>) {
    let steps = rows.div_ceil(variables);
    let ds: Vec<String> = (0..steps).map(|s| timestamp(START + 300 * s as i64)).collect();
    let names: Vec<String> = (1..=variables).map(|v| format!("VAR_{v:02}")).collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let out = (0..rows)
        .map(|i| {
            let (step, variable) = (i / variables, i % variables);
            let phase = (step % 288) as f64 / 288.0 * std::f64::consts::TAU;
            let yhat = 50.0 + variable as f64 + 10.0 * phase.sin();
            let y = yhat + 4.0 * (rng.next() - 0.5);
            let score = 100.0 * rng.next();
            Row {
                ds: step,
                variable,
                y,
                yhat,
                lower: yhat - 3.0,
                upper: yhat + 3.0,
                residual: y - yhat,
                is_anomaly: score >= 99.0,
                score,
            }
        })
        .collect();
    (ds, names, out)
}

fn ddl(table: &str, postgres: bool) -> String {
    let (id, ts, real, flag, processed) = if postgres {
        ("BIGSERIAL PRIMARY KEY", "TIMESTAMP", "DOUBLE PRECISION", "BOOLEAN", "TIMESTAMP NOT NULL DEFAULT now()")
    } else {
        ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "REAL", "INTEGER", "TEXT NOT NULL")
    };
    format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id {id}, ds {ts} NOT NULL, variable TEXT NOT NULL,
           y {real}, yhat {real}, yhat_lower {real}, yhat_upper {real}, residual {real}, is_anomaly {flag} NOT NULL,
           anomaly_score {real}, processed_at {processed}, UNIQUE (ds, variable));
         CREATE INDEX idx_{table}_ds ON {table}(ds); CREATE INDEX idx_{table}_variable ON {table}(variable);
         CREATE INDEX idx_{table}_is_anomaly ON {table}(is_anomaly); CREATE INDEX idx_{table}_score ON {table}(anomaly_score);"
    )
}

const COLUMNS: &str =
    "ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score, processed_at";

fn sqlite(path: &str, table: &str, ds: &[String], names: &[String], rows: &[Row]) -> Result<f64> {
    let mut conn = rusqlite::Connection::open(path).with_context(|| format!("cannot open {path}"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    conn.execute_batch(&ddl(table, false))?;
    let sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    let t = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(&sql)?;
        for r in rows {
            insert.execute(rusqlite::params![
                ds[r.ds],
                names[r.variable],
                r.y,
                r.yhat,
                r.lower,
                r.upper,
                r.residual,
                i64::from(r.is_anomaly),
                r.score,
                PROCESSED_AT
            ])?;
        }
    }
    tx.commit()?;
    Ok(t.elapsed().as_secs_f64())
}

fn postgres(url: &str, table: &str, ds: &[String], names: &[String], rows: &[Row]) -> Result<f64> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).context("cannot connect to PostgreSQL")?;
    client.batch_execute(&ddl(table, true))?;
    let t = Instant::now();
    let mut tx = client.transaction()?;
    {
        let mut copy = tx.copy_in(&format!("COPY {table} ({COLUMNS}) FROM STDIN"))?;
        let mut buf: Vec<u8> = Vec::with_capacity(COPY_CHUNK + 512);
        let mut fmt = ryu::Buffer::new();
        for r in rows {
            buf.extend_from_slice(ds[r.ds].as_bytes());
            buf.push(b'\t');
            buf.extend_from_slice(names[r.variable].as_bytes());
            for x in [r.y, r.yhat, r.lower, r.upper, r.residual] {
                buf.push(b'\t');
                buf.extend_from_slice(fmt.format_finite(x).as_bytes());
            }
            buf.extend_from_slice(if r.is_anomaly { b"\tt\t" } else { b"\tf\t" });
            buf.extend_from_slice(fmt.format_finite(r.score).as_bytes());
            buf.push(b'\t');
            buf.extend_from_slice(PROCESSED_AT.as_bytes());
            buf.push(b'\n');
            if buf.len() >= COPY_CHUNK {
                copy.write_all(&buf)?;
                buf.clear();
            }
        }
        copy.write_all(&buf)?;
        copy.finish()?;
    }
    tx.commit()?;
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.variables == 0 {
        bail!("--variables must be at least 1");
    }
    if !args.table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || args.table.is_empty() {
        bail!("--table must be a plain name (letters, digits, _), got {:?}", args.table);
    }
    let (ds, names, rows) = generate(args.rows, args.variables);
    let seconds = if let Some(path) = args.db.strip_prefix("sqlite:") {
        sqlite(path, &args.table, &ds, &names, &rows)?
    } else if args.db.starts_with("postgres://") || args.db.starts_with("postgresql://") {
        postgres(&args.db, &args.table, &ds, &names, &rows)?
    } else {
        bail!("--db must be sqlite:PATH or postgres://..., got {}", args.db);
    };
    println!("{}", serde_json::json!({"rows": rows.len(), "seconds": seconds}));
    Ok(())
}
