//! Scores a CSV matrix with the `extended-isolation-forest` crate (the
//! reference the accuracy test and benchmarks compare against):
//! `eif_reference FILE.csv EXTENSION_LEVEL` prints one anomaly score per row
//! (higher is more abnormal). FILE.csv holds numbers only, no header.
//!
//! The crate fixes the dimension at compile time, so this example is built
//! for the widths of the benchmark sets.

use extended_isolation_forest::{Forest, ForestOptions};

fn scores<const N: usize>(rows: &[Vec<f64>], extension_level: usize) -> Result<Vec<f64>, String> {
    let data: Vec<[f64; N]> = rows.iter().map(|r| std::array::from_fn(|j| r[j])).collect();
    let options =
        ForestOptions { n_trees: 100, sample_size: data.len().min(256), max_tree_depth: None, extension_level };
    let forest = Forest::from_slice(&data, &options).map_err(|e| format!("{e:?}"))?;
    Ok(data.iter().map(|row| forest.score(row)).collect())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: eif_reference FILE.csv EXTENSION_LEVEL")?;
    let level: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse::<f64>().map_err(|e| format!("{v}: {e}"))).collect())
        .collect::<Result<_, _>>()?;
    let width = rows.first().map_or(0, Vec::len);
    let out = match width {
        2 => scores::<2>(&rows, level),
        4 => scores::<4>(&rows, level),
        6 => scores::<6>(&rows, level),
        7 => scores::<7>(&rows, level),
        8 => scores::<8>(&rows, level),
        9 => scores::<9>(&rows, level),
        10 => scores::<10>(&rows, level),
        13 => scores::<13>(&rows, level),
        16 => scores::<16>(&rows, level),
        21 => scores::<21>(&rows, level),
        32 => scores::<32>(&rows, level),
        36 => scores::<36>(&rows, level),
        w => Err(format!("width {w} is not compiled in")),
    }?;
    let lines: Vec<String> = out.iter().map(f64::to_string).collect();
    println!("{}", lines.join("\n"));
    Ok(())
}
