//! CSV in and out, fast enough for ten million rows: byte records, a
//! hand-written timestamp parser, and progress on stderr for big files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anomaly_core::consumption::{ColumnNames, Readings, ReadingsBuilder};
use anomaly_core::time::parse_timestamp;
use anomaly_core::Error as CoreError;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::input_error::InputError;

/// Files larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// A progress bar over `len` units, hidden for small jobs and when stderr is
/// not a terminal.
pub(crate) fn progress(len: u64, show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% {binary_bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Position of column `name` in `headers`; an unknown column lists the
/// available ones.
pub(crate) fn column_index(path: &Path, headers: &[String], name: &str) -> Result<usize, InputError> {
    headers.iter().position(|h| h == name).ok_or_else(|| InputError::Data {
        path: path.to_owned(),
        line: None,
        error: CoreError::UnknownColumn { name: name.to_owned(), available: headers.join(", ") },
    })
}

/// The longest line a CSV reader accepts (a row of thousands of numeric
/// columns is a few hundred kB).
pub(crate) const MAX_CSV_LINE: usize = 8 << 20;

/// A reader that fails once a line runs past [`MAX_CSV_LINE`] bytes: the
/// csv crate grows its record buffer without bound, so a device or a file
/// without newlines (`/dev/zero` reached 9 GB in 10 s) must be stopped here.
pub(crate) struct LineCap<R> {
    inner: R,
    /// Bytes since the last newline.
    run: usize,
}

impl<R: std::io::Read> std::io::Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.run = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => n - i - 1,
            None => self.run + n,
        };
        if self.run > MAX_CSV_LINE {
            let message = format!("a line longer than {MAX_CSV_LINE} bytes: not a CSV file");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        Ok(n)
    }
}

/// A CSV reader with a header row over `file`, its lines capped.
pub(crate) fn csv_reader<R: std::io::Read>(file: R) -> csv::Reader<LineCap<R>> {
    csv::ReaderBuilder::new().buffer_capacity(1 << 20).from_reader(LineCap { inner: file, run: 0 })
}

/// Reads `(client, time, value)` columns of a CSV with a header row.
pub(crate) fn read_readings(path: &Path, names: &ColumnNames) -> Result<Readings> {
    let file = crate::input_error::open_input(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    readings_from(path, file, size, names)
}

/// [`read_readings`] from any reader; `path` names it in messages and
/// `size` (bytes, 0 if unknown) drives the progress bar.
pub(crate) fn readings_from(path: &Path, file: impl std::io::Read, size: u64, names: &ColumnNames) -> Result<Readings> {
    let csv_err = |e: csv::Error| InputError::Csv { path: path.to_owned(), message: e.to_string() };
    let mut reader = csv_reader(file);
    let headers: Vec<String> =
        reader.byte_headers().map_err(csv_err)?.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
    let column = |name: &str| column_index(path, &headers, name);
    let (ci, ti, vi) = (column(&names.client)?, column(&names.time)?, column(&names.value)?);
    let bar = progress(size, size >= PROGRESS_MIN_BYTES, "reading");
    let mut builder = ReadingsBuilder::default();
    let mut record = csv::ByteRecord::new();
    let mut row = 0usize;
    let bad = |e: CoreError| InputError::data(path, e);
    while reader.read_byte_record(&mut record).map_err(csv_err)? {
        // Text that is not UTF-8 is an error naming its row: read lossily,
        // every such client id would become one merged client.
        let field = |i: usize, name: &String| {
            let raw = record.get(i).unwrap_or_default();
            std::str::from_utf8(raw).map_err(|_| {
                bad(CoreError::BadText { field: name.clone(), row, value: String::from_utf8_lossy(raw).into_owned() })
            })
        };
        let time = field(ti, &names.time)?;
        let ts = parse_timestamp(time)
            .ok_or_else(|| bad(CoreError::BadTimestamp { field: names.time.clone(), row, value: time.into() }))?;
        let text = field(vi, &names.value)?.trim();
        let kwh: f64 = text
            .parse()
            .map_err(|_| bad(CoreError::BadNumber { field: names.value.clone(), row, value: text.into() }))?;
        builder.push(field(ci, &names.client)?, ts, kwh);
        row += 1;
        if row.is_multiple_of(65_536) {
            bar.set_position(record.position().map_or(0, |p| p.byte()));
        }
    }
    bar.finish_and_clear();
    builder.build(names.clone()).map_err(|e| bad(e).into())
}

/// A CSV writer to `path` with a large buffer.
pub(crate) fn writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 20, file)))
}

/// Flushes a writer, naming the file on failure.
pub(crate) fn finish<W: Write>(mut w: csv::Writer<W>, path: &Path) -> Result<()> {
    w.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// Formats an optional float, empty when absent.
pub(crate) fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes `n` data rows after `header`, formatting chunks of rows in
/// parallel (formatting, not I/O, is the cost of a large CSV) and writing
/// them in order. `format_row(row, out)` appends one line without newline.
pub(crate) fn write_rows_parallel<F>(path: &Path, header: &str, n: usize, format_row: F) -> Result<()>
where
    F: Fn(usize, &mut Vec<u8>) + Sync,
{
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let write_err = |e: std::io::Error| anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
    writeln!(out, "{header}").map_err(write_err)?;
    let bar = progress(n as u64, n >= 1_000_000, "writing");
    let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
    // Bounded batches keep memory flat: format a few chunks, write them, go on.
    for batch in starts.chunks(rayon::current_num_threads().max(1) * 4) {
        let buffers: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|&start| {
                let mut buf = Vec::with_capacity(CHUNK * 48);
                for row in start..(start + CHUNK).min(n) {
                    format_row(row, &mut buf);
                    buf.push(b'\n');
                }
                buf
            })
            .collect();
        for buf in &buffers {
            out.write_all(buf).map_err(write_err)?;
        }
        bar.set_position(batch.last().map_or(0, |&s| (s + CHUNK).min(n)) as u64);
    }
    bar.finish_and_clear();
    out.flush().map_err(write_err)
}

/// A field as CSV: quoted (with doubled quotes) only when it needs it.
pub(crate) fn csv_field(text: &str) -> Vec<u8> {
    if text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\"")).into_bytes()
    } else {
        text.as_bytes().to_vec()
    }
}

/// Appends a float in its shortest round-trip form.
pub(crate) fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        out.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
    } else {
        out.extend_from_slice(v.to_string().as_bytes());
    }
}

/// A numeric matrix read from a CSV with a header row.
pub(crate) struct Matrix {
    pub(crate) columns: Vec<String>,
    pub(crate) values: Vec<f32>,
    pub(crate) rows: usize,
}

/// Reads the named columns (all columns when `wanted` is empty) as `f32`,
/// naming the column, row and line of any value that is not a finite number.
pub(crate) fn read_matrix(path: &Path, wanted: &[String]) -> Result<Matrix> {
    let file = crate::input_error::open_input(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    matrix_from(path, file, size, wanted)
}

/// [`read_matrix`] from any reader, as [`readings_from`].
pub(crate) fn matrix_from(path: &Path, file: impl std::io::Read, size: u64, wanted: &[String]) -> Result<Matrix> {
    let csv_err = |e: csv::Error| InputError::Csv { path: path.to_owned(), message: e.to_string() };
    let mut reader = csv_reader(file);
    let headers: Vec<String> = reader.headers().map_err(csv_err)?.iter().map(str::to_owned).collect();
    let columns: Vec<String> = if wanted.is_empty() { headers.clone() } else { wanted.to_vec() };
    let index: Vec<usize> = columns.iter().map(|name| column_index(path, &headers, name)).collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Err(InputError::Data {
            path: path.to_owned(),
            line: None,
            error: CoreError::Empty { what: "columns".into() },
        }
        .into());
    }
    let bar = progress(size, size >= PROGRESS_MIN_BYTES, "reading");
    let mut values = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row = 0usize;
    while reader.read_byte_record(&mut record).map_err(csv_err)? {
        for (&i, name) in index.iter().zip(&columns) {
            let text = std::str::from_utf8(record.get(i).unwrap_or_default()).unwrap_or("").trim();
            let value: f32 = text.parse().map_err(|_| {
                InputError::data(path, CoreError::BadNumber { field: name.clone(), row, value: text.into() })
            })?;
            if !value.is_finite() {
                return Err(InputError::data(
                    path,
                    CoreError::NonFinite { field: name.clone(), row, value: f64::from(value) },
                )
                .into());
            }
            values.push(value);
        }
        row += 1;
        if row.is_multiple_of(65_536) {
            bar.set_position(record.position().map_or(0, |p| p.byte()));
        }
    }
    bar.finish_and_clear();
    Ok(Matrix { columns, values, rows: row })
}
