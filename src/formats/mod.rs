//! File formats: reading expert-load statistics and reading/writing placements.
//!
//! - [`loads`]: load matrices from JSON (a bare `[[...]]`, or an object with key `loads` or
//!   `logical_count`).
//! - [`deepseek`]: DeepSeek's placement layout (`phy2log`, `log2phy`, `logcnt`) with per-layer
//!   metrics, as `eplb place` writes it and `eplb check` reads it.

pub mod deepseek;
pub mod loads;

use std::path::Path;

use crate::error::{EplbError, Result};

/// Reads a whole file (or standard input for `-`) to a string.
///
/// # Errors
/// [`EplbError::Io`] when the file cannot be read, [`EplbError::Format`] when it is empty.
pub fn read_text(path: &Path) -> Result<String> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
            EplbError::Io {
                path: path.into(),
                source,
            }
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| EplbError::Io {
            path: path.into(),
            source,
        })?
    };
    if text.trim().is_empty() {
        return Err(format_error(path, "the file is empty"));
    }
    Ok(text)
}

/// Parses JSON, naming the file and position on failure.
pub(crate) fn parse_json(path: &Path, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| format_error(path, format!("not valid JSON: {e}")))
}

pub(crate) fn format_error(path: &Path, message: impl Into<String>) -> EplbError {
    EplbError::Format {
        path: path.into(),
        message: message.into(),
    }
}
