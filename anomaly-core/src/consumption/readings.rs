//! Validated meter readings `(client, timestamp, kWh)` and their grouping
//! into one time-ordered series per client.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::time::format_timestamp;

/// Column names used in error messages, so users see their own names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnNames {
    /// Client id column.
    pub client: String,
    /// Timestamp column.
    pub time: String,
    /// Consumption column.
    pub value: String,
}

impl Default for ColumnNames {
    fn default() -> Self {
        ColumnNames { client: "client_id".into(), time: "timestamp".into(), value: "kwh".into() }
    }
}

/// The largest reading accepted, in kWh. A household uses about 10 kWh a
/// day and the largest meters read GWh an hour; 1e12 keeps every sum over
/// the most readings a run holds (and its monthly aggregates) finite.
pub const MAX_KWH: f64 = 1e12;
const MAX_KWH_TEXT: &str = "at most 1e12 kWh per reading";

/// Why a kWh value cannot be a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KwhProblem {
    /// NaN or infinite.
    NotFinite,
    /// Below zero.
    Negative,
    /// Above [`MAX_KWH`].
    TooLarge,
}

impl std::fmt::Display for KwhProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KwhProblem::NotFinite => "not finite",
            KwhProblem::Negative => "negative",
            KwhProblem::TooLarge => MAX_KWH_TEXT,
        })
    }
}

/// The one rule for a reading's value, shared by every reader (files,
/// DataFrames, the SQL job): `None` when `v` is a usable kWh value.
pub fn kwh_problem(v: f64) -> Option<KwhProblem> {
    if !v.is_finite() {
        Some(KwhProblem::NotFinite)
    } else if v < 0.0 {
        Some(KwhProblem::Negative)
    } else if v > MAX_KWH {
        Some(KwhProblem::TooLarge)
    } else {
        None
    }
}

/// Meter readings in columns. Clients are stored as codes into a table of
/// names (as pandas' `factorize` or a CSV reader produce them), which keeps
/// ten million rows cheap. Every kWh passes [`kwh_problem`].
///
/// Rows need no particular order; duplicates and interval alignment are
/// checked by the detector, which knows the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    names: ColumnNames,
    client_names: Vec<String>,
    client: Vec<u32>,
    timestamp: Vec<i64>,
    kwh: Vec<f64>,
}

impl Readings {
    /// Validates readings given as columns. `client[i]` indexes `client_names`.
    pub fn new(client_names: Vec<String>, client: Vec<u32>, timestamp: Vec<i64>, kwh: Vec<f64>) -> Result<Self> {
        Self::with_names(ColumnNames::default(), client_names, client, timestamp, kwh)
    }

    /// As [`Readings::new`], naming columns as the caller does.
    pub fn with_names(
        names: ColumnNames,
        client_names: Vec<String>,
        client: Vec<u32>,
        timestamp: Vec<i64>,
        kwh: Vec<f64>,
    ) -> Result<Self> {
        let n = kwh.len();
        if n == 0 {
            return Err(Error::Empty { what: "readings".into() });
        }
        for (field, len) in [(&names.client, client.len()), (&names.time, timestamp.len())] {
            if len != n {
                return Err(Error::LengthMismatch { field: field.clone(), expected: n, found: len });
            }
        }
        if let Some(row) = client.iter().position(|&c| c as usize >= client_names.len()) {
            return Err(Error::Shape {
                field: names.client.clone(),
                expected: format!("client codes below {}", client_names.len()),
                found: format!("code {} at row {row}", client[row]),
            });
        }
        let mut seen = HashMap::with_capacity(client_names.len());
        for name in &client_names {
            if seen.insert(name.as_str(), ()).is_some() {
                return Err(Error::Shape {
                    field: names.client.clone(),
                    expected: "distinct client names".into(),
                    found: format!("{name:?} twice"),
                });
            }
        }
        for (row, &v) in kwh.iter().enumerate() {
            if let Some(problem) = kwh_problem(v) {
                return Err(match problem {
                    KwhProblem::NotFinite => Error::NonFinite { field: names.value.clone(), row, value: v },
                    KwhProblem::Negative => Error::Negative { field: names.value.clone(), row, value: v },
                    KwhProblem::TooLarge => {
                        Error::OutOfRange { field: names.value.clone(), row, value: v, limit: MAX_KWH_TEXT.into() }
                    }
                });
            }
        }
        Ok(Readings { names, client_names, client, timestamp, kwh })
    }

    /// Builds readings from `(client, timestamp, kWh)` records.
    ///
    /// ```
    /// use anomaly_core::consumption::Readings;
    /// let r = Readings::from_records([("a", 0, 1.0), ("b", 0, 2.0), ("a", 3600, 1.5)]).unwrap();
    /// assert_eq!(r.len(), 3);
    /// assert_eq!(r.client_names(), ["a", "b"]);
    /// ```
    pub fn from_records<'a>(records: impl IntoIterator<Item = (&'a str, i64, f64)>) -> Result<Self> {
        let mut builder = ReadingsBuilder::default();
        for (client, ts, kwh) in records {
            builder.push(client, ts, kwh);
        }
        builder.build(ColumnNames::default())
    }

    /// Number of readings (never zero).
    pub fn len(&self) -> usize {
        self.kwh.len()
    }

    /// Always false: readings are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Column names used in messages.
    pub fn names(&self) -> &ColumnNames {
        &self.names
    }

    /// Client names, indexed by code.
    pub fn client_names(&self) -> &[String] {
        &self.client_names
    }

    /// Client code of each row.
    pub fn clients(&self) -> &[u32] {
        &self.client
    }

    /// Timestamp of each row (seconds, see [`crate::time`]).
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamp
    }

    /// kWh of each row.
    pub fn kwh(&self) -> &[f64] {
        &self.kwh
    }

    /// Sums readings at `from_minutes` into complete buckets of `to_minutes`
    /// (e.g. half-hourly into hourly). A bucket with a missing reading is
    /// dropped rather than under-counted, so it shows as a gap.
    pub fn aggregate(&self, from_minutes: u32, to_minutes: u32) -> Result<Readings> {
        if from_minutes == 0 || 1440 % from_minutes != 0 {
            return Err(Error::param("interval_minutes", from_minutes, "must divide a day (1440 minutes)"));
        }
        if !to_minutes.is_multiple_of(from_minutes) || 1440 % to_minutes != 0 {
            return Err(Error::param(
                "aggregate_minutes",
                to_minutes,
                "must be a multiple of the interval that divides a day",
            ));
        }
        let groups = self.group(i64::from(from_minutes) * 60)?;
        let (step, per_bucket) = (i64::from(to_minutes) * 60, (to_minutes / from_minutes) as usize);
        let (mut client, mut timestamp, mut kwh) = (Vec::new(), Vec::new(), Vec::new());
        for g in &groups.clients {
            let rows = &groups.order[g.start..g.end];
            let mut i = 0;
            while i < rows.len() {
                let bucket = self.timestamp[rows[i] as usize].div_euclid(step) * step;
                let (mut sum, mut count) = (0.0, 0);
                while i < rows.len() && self.timestamp[rows[i] as usize] < bucket + step {
                    sum += self.kwh[rows[i] as usize];
                    count += 1;
                    i += 1;
                }
                if count == per_bucket {
                    client.push(g.code);
                    timestamp.push(bucket);
                    kwh.push(sum);
                }
            }
        }
        if kwh.is_empty() {
            return Err(Error::Empty {
                what: format!("readings after aggregating to {to_minutes} minutes (no complete bucket)"),
            });
        }
        Readings::with_names(self.names.clone(), self.client_names.clone(), client, timestamp, kwh)
    }

    /// Groups rows by client (clients in name order), each client's rows in
    /// time order, checking grid alignment and duplicates. Errors name the
    /// lowest offending row, whatever the client order.
    pub(crate) fn group(&self, step: i64) -> Result<Groups> {
        if let Some(row) = self.timestamp.iter().position(|t| t.rem_euclid(step) != 0) {
            return Err(Error::Misaligned {
                field: self.names.time.clone(),
                row,
                value: format_timestamp(self.timestamp[row]),
                interval_minutes: (step / 60) as u32,
            });
        }
        let n_clients = self.client_names.len();
        let mut by_name: Vec<u32> = (0..n_clients as u32).collect();
        by_name.sort_unstable_by(|&a, &b| self.client_names[a as usize].cmp(&self.client_names[b as usize]));
        let mut counts = vec![0usize; n_clients];
        for &c in &self.client {
            counts[c as usize] += 1;
        }
        let mut start_of = vec![0usize; n_clients];
        let mut clients = Vec::new();
        let mut offset = 0;
        for &code in &by_name {
            let count = counts[code as usize];
            if count > 0 {
                start_of[code as usize] = offset;
                clients.push(ClientGroup { code, start: offset, end: offset + count });
                offset += count;
            }
        }
        // Counting sort keeps input order within a client.
        let mut order = vec![0u32; self.len()];
        let mut next = start_of;
        for (row, &c) in self.client.iter().enumerate() {
            order[next[c as usize]] = row as u32;
            next[c as usize] += 1;
        }
        let mut slices = Vec::with_capacity(clients.len());
        let mut rest = order.as_mut_slice();
        for g in &clients {
            let (head, tail) = rest.split_at_mut(g.end - g.start);
            slices.push(head);
            rest = tail;
        }
        let ts = &self.timestamp;
        let error = slices
            .into_par_iter()
            .filter_map(|rows| {
                if rows.windows(2).any(|w| ts[w[1] as usize] < ts[w[0] as usize]) {
                    rows.sort_by_key(|&r| ts[r as usize]);
                }
                rows.windows(2)
                    .filter(|w| ts[w[1] as usize] == ts[w[0] as usize])
                    .map(|w| (w[1] as usize, w[0] as usize))
                    .min()
            })
            .min();
        if let Some((row, first_row)) = error {
            let client = &self.client_names[self.client[row] as usize];
            return Err(Error::DuplicateTimestamp {
                field: self.names.time.clone(),
                row,
                first_row,
                key: format!("{client} at {}", format_timestamp(self.timestamp[row])),
            });
        }
        Ok(Groups { order, clients })
    }
}

/// Rows of each client in time order.
#[derive(Debug)]
pub(crate) struct Groups {
    /// Row indices, client after client.
    pub(crate) order: Vec<u32>,
    /// Each client's range in `order`, clients sorted by name.
    pub(crate) clients: Vec<ClientGroup>,
}

/// One client's range of rows.
#[derive(Debug)]
pub(crate) struct ClientGroup {
    pub(crate) code: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Builds [`Readings`] row by row, interning client names.
#[derive(Debug, Default)]
pub struct ReadingsBuilder {
    index: HashMap<String, u32>,
    client_names: Vec<String>,
    client: Vec<u32>,
    timestamp: Vec<i64>,
    kwh: Vec<f64>,
}

impl ReadingsBuilder {
    /// Appends one reading.
    pub fn push(&mut self, client: &str, timestamp: i64, kwh: f64) {
        let code = match self.index.get(client) {
            Some(&code) => code,
            None => {
                let code = self.client_names.len() as u32;
                self.index.insert(client.to_owned(), code);
                self.client_names.push(client.to_owned());
                code
            }
        };
        self.client.push(code);
        self.timestamp.push(timestamp);
        self.kwh.push(kwh);
    }

    /// Validates and returns the readings.
    pub fn build(self, names: ColumnNames) -> Result<Readings> {
        Readings::with_names(names, self.client_names, self.client, self.timestamp, self.kwh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values_naming_the_row() {
        let err = Readings::from_records([("a", 0, 1.0), ("a", 3600, -2.0)]).unwrap_err();
        assert!(matches!(err, Error::Negative { row: 1, .. }), "{err}");
        let err = Readings::from_records([("a", 0, f64::NAN)]).unwrap_err();
        assert!(matches!(err, Error::NonFinite { row: 0, .. }));
        assert!(matches!(Readings::from_records([]), Err(Error::Empty { .. })));
        assert!(matches!(
            Readings::new(vec!["a".into()], vec![0, 1], vec![0, 1], vec![1.0, 1.0]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            Readings::new(vec!["a".into(), "a".into()], vec![0, 1], vec![0, 1], vec![1.0, 1.0]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            Readings::new(vec!["a".into()], vec![0], vec![0, 1], vec![1.0]),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn groups_sort_within_clients_and_find_duplicates() {
        let r = Readings::from_records([("b", 7200, 1.0), ("a", 3600, 1.0), ("b", 0, 1.0), ("a", 0, 1.0)]).unwrap();
        let g = r.group(3600).unwrap();
        assert_eq!(g.order, vec![3, 1, 2, 0]);
        let dup = Readings::from_records([("a", 0, 1.0), ("b", 0, 1.0), ("a", 0, 2.0)]).unwrap();
        match dup.group(3600) {
            Err(Error::DuplicateTimestamp { row: 2, first_row: 0, .. }) => {}
            other => panic!("{other:?}"),
        }
        let misaligned = Readings::from_records([("a", 0, 1.0), ("a", 1800, 1.0)]).unwrap();
        assert!(matches!(misaligned.group(3600), Err(Error::Misaligned { row: 1, .. })));
    }

    #[test]
    fn aggregates_complete_buckets_only() {
        let r = Readings::from_records([
            ("a", 0, 1.0),
            ("a", 1800, 2.0),
            ("a", 3600, 5.0),
            ("a", 7200, 1.0),
            ("a", 9000, 1.0),
        ])
        .unwrap();
        let h = r.aggregate(30, 60).unwrap();
        assert_eq!(h.timestamps(), [0, 7200]);
        assert_eq!(h.kwh(), [3.0, 2.0]);
    }
}
