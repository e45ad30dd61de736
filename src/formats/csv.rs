//! CSV: load matrices in (one layer a row) and per-GPU loads out (for spreadsheets).

use std::path::Path;

use super::{format_error, loads_in_file, parse_error, read_text, LoadsFile};
use crate::error::Result;
use crate::evaluate::Evaluation;

/// Reads a load matrix from CSV: one layer a row, one expert a column. A first row that is not
/// all numbers is taken as a header and skipped. Lines starting with `#` are comments.
///
/// ```
/// use std::path::Path;
/// let f = eplb::formats::csv::loads_from_csv(Path::new("x.csv"), "e0,e1\n1,2\n3,4\n").unwrap();
/// assert_eq!(f.loads.layer(1), &[3.0, 4.0]);
/// ```
///
/// # Errors
/// [`crate::EplbError::Format`] naming the file, row and column of a value that is not a
/// number, or ragged rows.
pub fn loads_from_csv(path: &Path, text: &str) -> Result<LoadsFile> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| parse_error(path, "not valid CSV", e))?;
        let parsed: Vec<Option<f64>> = record.iter().map(|f| f.parse::<f64>().ok()).collect();
        if i == 0 && parsed.iter().all(Option::is_none) {
            continue; // a header row
        }
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        let row = record
            .iter()
            .zip(&parsed)
            .enumerate()
            .map(|(col, (field, value))| {
                value.ok_or_else(|| {
                    format_error(
                        path,
                        format!(
                            "line {line}, column {}: `{field}` is not a number (expected one layer per row, one number per expert)",
                            col + 1
                        ),
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        rows.push(row);
    }
    Ok(LoadsFile {
        loads: loads_in_file(path, &rows)?,
        first_layer: 0,
        notes: Vec::new(),
        steps: None,
    })
}

/// Reads a CSV load file (see [`loads_from_csv`]).
///
/// # Errors
/// As [`loads_from_csv`], plus I/O errors.
pub fn read_loads_csv(path: &Path) -> Result<LoadsFile> {
    loads_from_csv(path, &read_text(path)?)
}

/// Per-GPU loads as CSV: one row per layer with `layer`, `max_load`, `mean_load`,
/// `balancedness`, `lower_bound`, `gap`, then `gpu_0 .. gpu_{P-1}`.
pub fn gpu_loads_csv(evaluation: &Evaluation, first_layer: usize) -> String {
    let gpus = evaluation.layers.first().map_or(0, |l| l.gpu_loads.len());
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "layer".to_string(),
        "max_load".into(),
        "mean_load".into(),
        "balancedness".into(),
        "lower_bound".into(),
        "gap".into(),
    ];
    header.extend((0..gpus).map(|g| format!("gpu_{g}")));
    writer.write_record(&header).expect("writing to memory");
    for r in &evaluation.layers {
        let mut row = vec![
            (r.layer + first_layer).to_string(),
            r.max_load.to_string(),
            r.mean_load.to_string(),
            r.balancedness.to_string(),
            r.lower_bound.to_string(),
            r.gap.to_string(),
        ];
        row.extend(r.gpu_loads.iter().map(f64::to_string));
        writer.write_record(&row).expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("CSV of numbers is UTF-8")
}
