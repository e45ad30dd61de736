//! Reading expert-load matrices.

use std::path::Path;

use serde_json::Value;

use super::{format_error, parse_json, read_text};
use crate::error::{EplbError, Result};
use crate::problem::Loads;

/// Reads loads from a JSON file (or `-` for standard input). See [`loads_from_json`].
///
/// # Errors
/// [`EplbError::Io`] or [`EplbError::Format`] naming the file and the problem; load
/// validation errors ([`EplbError::InvalidLoad`], ...) as from [`Loads::from_rows`].
pub fn read_loads(path: &Path) -> Result<Loads> {
    let text = read_text(path)?;
    loads_from_json(path, &text)
}

/// Parses loads from JSON text. Accepted shapes:
///
/// - a bare array `[[w, ...], ...]` of `[layers][experts]`;
/// - an object with key `loads` or `logical_count` holding such an array (other keys are
///   ignored); a 3-D `[steps][layers][experts]` array is summed over steps (SGLang's
///   recorder dumps).
///
/// ```
/// use std::path::Path;
/// let loads = eplb::formats::loads::loads_from_json(Path::new("x.json"),
///     r#"{"model": "demo", "loads": [[1, 2], [3, 4.5]]}"#).unwrap();
/// assert_eq!(loads.layer(1), &[3.0, 4.5]);
/// let err = eplb::formats::loads::loads_from_json(Path::new("x.json"), r#"{"weights": []}"#);
/// assert!(err.unwrap_err().to_string().contains("`loads`"));
/// ```
///
/// # Errors
/// [`EplbError::Format`] naming the file, the offending position and what is valid.
pub fn loads_from_json(path: &Path, text: &str) -> Result<Loads> {
    let value = parse_json(path, text)?;
    let (key, matrix) = match &value {
        Value::Array(_) => ("loads", &value),
        Value::Object(map) => match ["loads", "logical_count"]
            .iter()
            .find_map(|k| map.get(*k).map(|v| (*k, v)))
        {
            Some(found) => found,
            None => {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(format_error(
                    path,
                    format!(
                        "no load matrix found: expected a bare [[...]] array or an object with key `loads` or `logical_count`; the object has keys {keys:?}"
                    ),
                ));
            }
        },
        other => {
            return Err(format_error(
                path,
                format!(
                    "expected a [[...]] array or an object with key `loads` or `logical_count`, found {}",
                    kind(other)
                ),
            ))
        }
    };
    let rows = match depth(matrix) {
        2 => matrix_2d(path, key, matrix)?,
        3 => sum_over_steps(path, key, matrix)?,
        d => {
            return Err(format_error(
                path,
                format!(
                    "`{key}` has {d} dimension(s): expected [layers][experts] (or [steps][layers][experts])"
                ),
            ))
        }
    };
    Loads::from_rows(&rows).map_err(|e| match e {
        EplbError::InvalidLoad { .. } | EplbError::RaggedLoads { .. } | EplbError::EmptyLoads => {
            format_error(path, e.to_string())
        }
        other => other,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Nesting depth of arrays along the first elements.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.first().map_or(1, depth),
        _ => 0,
    }
}

fn matrix_2d(path: &Path, key: &str, v: &Value) -> Result<Vec<Vec<f64>>> {
    let rows = v.as_array().expect("depth checked");
    rows.iter()
        .enumerate()
        .map(|(l, row)| {
            let row = row.as_array().ok_or_else(|| {
                format_error(
                    path,
                    format!(
                        "`{key}`[{l}] is {}: expected an array of numbers",
                        kind(row)
                    ),
                )
            })?;
            row.iter()
                .enumerate()
                .map(|(e, x)| {
                    x.as_f64().ok_or_else(|| {
                        format_error(
                            path,
                            format!("`{key}`[{l}][{e}] is {}: expected a number", kind(x)),
                        )
                    })
                })
                .collect()
        })
        .collect()
}

fn sum_over_steps(path: &Path, key: &str, v: &Value) -> Result<Vec<Vec<f64>>> {
    let steps = v.as_array().expect("depth checked");
    let mut total: Option<Vec<Vec<f64>>> = None;
    for (s, step) in steps.iter().enumerate() {
        let m = match step {
            Value::Array(_) => matrix_2d(path, &format!("{key}[{s}]"), step)?,
            other => {
                return Err(format_error(
                    path,
                    format!(
                        "`{key}`[{s}] is {}: expected [layers][experts]",
                        kind(other)
                    ),
                ))
            }
        };
        match &mut total {
            None => total = Some(m),
            Some(t) => {
                let same_shape =
                    t.len() == m.len() && t.iter().zip(&m).all(|(a, b)| a.len() == b.len());
                if !same_shape {
                    return Err(format_error(
                        path,
                        format!("`{key}`[{s}] has a different [layers][experts] shape than step 0: all steps must match"),
                    ));
                }
                for (a, b) in t.iter_mut().zip(&m) {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                }
            }
        }
    }
    total.ok_or_else(|| format_error(path, format!("`{key}` has no steps")))
}
