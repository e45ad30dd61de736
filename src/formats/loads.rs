//! Load matrices in JSON.

use std::path::Path;

use serde_json::Value;

use super::limits::MAX_FIRST_MODEL_LAYER;
use super::{format_error, loads_in_file, parse_json, steps_in_file, LoadsFile, ReadOptions};
use crate::error::Result;

/// Parses loads from JSON text. Accepted shapes:
///
/// - a bare array `[[w, ...], ...]` of `[layers][experts]`, taken as it is;
/// - an object with key `loads` holding such an array, taken as it is (an all-zero layer is a
///   valid layer); a `first_model_layer` key, if present, says which model layer row 0 is;
/// - an object with key `logical_count` (SGLang's recorder dumps and `--init-expert-location`
///   statistics): `[layers][experts]` or `[steps][layers][experts]` (summed over steps, the steps kept in
///   [`LoadsFile::steps`]). Its
///   leading all-zero layers are the model's dense layers: they are skipped, with a notice, and
///   `first_layer` records how many (unless `keep_zero_layers`).
///
/// Other keys are ignored.
///
/// ```
/// use std::path::Path;
/// use eplb::formats::{loads::loads_from_json, ReadOptions};
/// let f = loads_from_json(Path::new("x.json"),
///     r#"{"logical_count": [[0, 0], [0, 0], [1, 2], [3, 4.5]]}"#, ReadOptions::default()).unwrap();
/// assert_eq!(f.loads.num_layers(), 2);
/// assert_eq!(f.first_layer, 2);
/// let err = loads_from_json(Path::new("x.json"), r#"{"weights": []}"#, ReadOptions::default());
/// assert!(err.unwrap_err().to_string().contains("`loads`"));
/// ```
///
/// # Errors
/// [`crate::EplbError::Format`] naming the file, the offending position or shape, and what is
/// valid.
pub fn loads_from_json(path: &Path, text: &str, options: ReadOptions) -> Result<LoadsFile> {
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
    let mut per_step = None;
    let mut rows = match depth(matrix) {
        2 => matrix_2d(path, key, matrix)?,
        3 => {
            let (total, steps) = sum_over_steps(path, key, matrix)?;
            per_step = Some(steps);
            total
        }
        d => {
            return Err(format_error(
                path,
                format!(
                    "`{key}` has {d} dimension(s): expected [layers][experts] (or [steps][layers][experts])"
                ),
            ))
        }
    };
    let in_file = first_model_layer(path, &value)?;
    let mut first_layer = in_file;
    let mut notes = Vec::new();
    if key == "logical_count" && !options.keep_zero_layers {
        let zeros = rows
            .iter()
            .take_while(|r| r.iter().all(|&x| x == 0.0))
            .count();
        if zeros > 0 && zeros < rows.len() {
            rows.drain(..zeros);
            first_layer += zeros;
            notes.push(format!(
                "skipped {zeros} leading all-zero layer(s) of `logical_count` (the model's dense layers); the first MoE layer is model layer {first_layer} (keep them with --keep-zero-layers)"
            ));
        }
    }
    let loads = loads_in_file(path, &rows)?;
    let skipped = first_layer - in_file;
    let steps = match per_step {
        Some(steps) => Some(steps_in_file(path, &steps)?.without_leading_layers(skipped)?),
        None => None,
    };
    Ok(LoadsFile {
        loads,
        first_layer,
        notes,
        steps,
    })
}

/// The `first_model_layer` key: absent (`0`) or an integer from 0 to
/// [`MAX_FIRST_MODEL_LAYER`].
fn first_model_layer(path: &Path, value: &Value) -> Result<usize> {
    let Some(v) = value.get("first_model_layer") else {
        return Ok(0);
    };
    match v.as_u64() {
        Some(n) if n <= MAX_FIRST_MODEL_LAYER => Ok(n as usize),
        _ => Err(format_error(
            path,
            format!(
                "`first_model_layer` is {v}: expected an integer from 0 to {MAX_FIRST_MODEL_LAYER} (the model layer of row 0)"
            ),
        )),
    }
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

/// The sum over steps and every step's matrix.
type StepSum = (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>);

fn sum_over_steps(path: &Path, key: &str, v: &Value) -> Result<StepSum> {
    let steps = v.as_array().expect("depth checked");
    let mut total: Option<Vec<Vec<f64>>> = None;
    let mut per_step = Vec::with_capacity(steps.len());
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
            None => total = Some(m.clone()),
            Some(t) => add_same_shape(path, key, s, t, &m)?,
        }
        per_step.push(m);
    }
    let total = total.ok_or_else(|| format_error(path, format!("`{key}` has no steps")))?;
    Ok((total, per_step))
}

/// `total += step`, refusing a step whose shape differs.
pub(crate) fn add_same_shape(
    path: &Path,
    key: &str,
    step: usize,
    total: &mut [Vec<f64>],
    m: &[Vec<f64>],
) -> Result<()> {
    let same_shape = total.len() == m.len() && total.iter().zip(m).all(|(a, b)| a.len() == b.len());
    if !same_shape {
        return Err(format_error(
            path,
            format!("`{key}`[{step}] has a different [layers][experts] shape than step 0: all steps must match"),
        ));
    }
    for (a, b) in total.iter_mut().zip(m) {
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
    Ok(())
}
