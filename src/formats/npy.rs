//! NumPy `.npy` load matrices: integer or float, `[layers][experts]` or
//! `[steps][layers][experts]` (summed over steps; the steps kept in [`LoadsFile::steps`]).

use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar};

use super::loads::add_same_shape;
use super::{format_error, loads_in_file, parse_error, steps_in_file, LoadsFile};
use crate::error::{EplbError, Result};

/// Reads a load matrix from an `.npy` file.
///
/// # Errors
/// [`EplbError::Format`] naming the file and the dtype or shape found and what is valid.
pub fn read_loads_npy(path: &Path) -> Result<LoadsFile> {
    let bytes = std::fs::read(path).map_err(|source| EplbError::Io {
        path: path.into(),
        source,
    })?;
    loads_from_npy(path, &bytes)
}

/// Parses a load matrix from the bytes of an `.npy` file; see [`read_loads_npy`].
///
/// # Errors
/// As [`read_loads_npy`].
pub fn loads_from_npy(path: &Path, bytes: &[u8]) -> Result<LoadsFile> {
    // npyz reserves the header's stated length before reading it: a length beyond the file
    // (a 4-byte length of 662 MB in a 192-byte file) is refused before npyz sees it.
    if let Some(header) = header_bytes(bytes) {
        let available = bytes.len().saturating_sub(header.start);
        if header.len > available {
            return Err(format_error(
                path,
                format!(
                    "the .npy header states {} bytes but only {available} follow its prefix: the header length must fit in the file",
                    header.len
                ),
            ));
        }
    }
    if let Some(shape) = header_shape(bytes) {
        // The npyz reader multiplies the dimensions unchecked: refuse a product that overflows
        // before it sees the header.
        if shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .is_none()
        {
            return Err(format_error(
                path,
                format!("array of shape {shape:?}: the number of values overflows; the shape must match the data"),
            ));
        }
    }
    // The check above reads the header's shape the simple way; a header it does not read can
    // still reach npyz's unchecked product (a panic in debug builds): that is a bad file too.
    let npy = std::panic::catch_unwind(|| NpyFile::new(bytes))
        .map_err(|_| {
            format_error(
                path,
                "the .npy header's shape is not a list of dimensions whose product fits in 64 bits"
                    .to_string(),
            )
        })?
        .map_err(|e| parse_error(path, "not a valid .npy file", e))?;
    let shape: Vec<u64> = npy.shape().to_vec();
    if !(shape.len() == 2 || shape.len() == 3) {
        return Err(format_error(
            path,
            format!("array of shape {shape:?}: expected 2-D [layers][experts] or 3-D [steps][layers][experts]"),
        ));
    }
    // An empty dimension holds no loads, and the others are then not bounded by the data
    // (`(2^62, 0)` needs 0 bytes): refused before anything is sized by them.
    if shape.contains(&0) {
        return Err(format_error(
            path,
            format!("array of shape {shape:?} is empty: every dimension must be at least 1 (at least one layer and one expert)"),
        ));
    }
    let fortran = npy.order() == Order::Fortran;
    let dtype = npy.dtype();
    let DType::Plain(ty) = &dtype else {
        return Err(format_error(
            path,
            format!(
                "dtype {}: expected a plain integer or float dtype",
                dtype.descr()
            ),
        ));
    };
    // The data must be in the file: nothing is allocated for a shape the bytes cannot hold.
    let values = npy.shape().iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    let needed = values.and_then(|n| n.checked_mul(ty.size_field()));
    if needed.is_none_or(|b| b > bytes.len() as u64) {
        return Err(format_error(
            path,
            format!(
                "array of shape {:?} of {}-byte values needs more data than the file's {} bytes: the shape must match the data",
                npy.shape(),
                ty.size_field(),
                bytes.len()
            ),
        ));
    }
    let read_err = |e: std::io::Error| parse_error(path, "cannot read the data", e);
    let data: Vec<f64> = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(read_err)?,
        (TypeChar::Float, 4) => widen(npy.into_vec::<f32>().map_err(read_err)?),
        (TypeChar::Int, 8) => widen_i64(npy.into_vec::<i64>().map_err(read_err)?),
        (TypeChar::Int, 4) => widen(npy.into_vec::<i32>().map_err(read_err)?),
        (TypeChar::Int, 2) => widen(npy.into_vec::<i16>().map_err(read_err)?),
        (TypeChar::Int, 1) => widen(npy.into_vec::<i8>().map_err(read_err)?),
        (TypeChar::Uint, 8) => widen_u64(npy.into_vec::<u64>().map_err(read_err)?),
        (TypeChar::Uint, 4) => widen(npy.into_vec::<u32>().map_err(read_err)?),
        (TypeChar::Uint, 2) => widen(npy.into_vec::<u16>().map_err(read_err)?),
        (TypeChar::Uint, 1) => widen(npy.into_vec::<u8>().map_err(read_err)?),
        _ => {
            return Err(format_error(
                path,
                format!("dtype {ty}: expected an integer (i1..i8, u1..u8) or float (f4, f8) dtype"),
            ))
        }
    };
    // Row-major [outer][layers][experts] view of the data.
    // Each fits in usize: their product is at most the file's length.
    let experts = shape[shape.len() - 1] as usize;
    let layers = shape[shape.len() - 2] as usize;
    let steps = if shape.len() == 3 {
        shape[0] as usize
    } else {
        1
    };
    let at = |s: usize, l: usize, e: usize| -> f64 {
        let index = if fortran {
            s + steps * (l + layers * e)
        } else {
            (s * layers + l) * experts + e
        };
        data[index]
    };
    let mut total: Vec<Vec<f64>> = Vec::new();
    let mut per_step = Vec::new();
    for s in 0..steps {
        let m: Vec<Vec<f64>> = (0..layers)
            .map(|l| (0..experts).map(|e| at(s, l, e)).collect())
            .collect();
        if s == 0 {
            total = m.clone();
        } else {
            add_same_shape(path, "array", s, &mut total, &m)?;
        }
        if shape.len() == 3 {
            per_step.push(m);
        }
    }
    Ok(LoadsFile {
        loads: loads_in_file(path, &total)?,
        first_layer: 0,
        notes: Vec::new(),
        steps: (shape.len() == 3)
            .then(|| steps_in_file(path, &per_step))
            .transpose()?,
    })
}

fn widen<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

fn widen_i64(v: Vec<i64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f64).collect()
}

fn widen_u64(v: Vec<u64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f64).collect()
}

/// Where a `.npy` header starts and how long its prefix says it is (version 1: a 2-byte
/// length; later versions: 4 bytes), when `bytes` start with the magic string.
struct HeaderBytes {
    /// Offset of the header's first byte.
    start: usize,
    /// The header's length as the prefix states it.
    len: usize,
}

fn header_bytes(bytes: &[u8]) -> Option<HeaderBytes> {
    let rest = bytes.strip_prefix(b"\x93NUMPY")?;
    let (&major, rest) = rest.split_first()?;
    let rest = rest.get(1..)?;
    let (len, width) = if major == 1 {
        (
            usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?])),
            2,
        )
    } else {
        let b = rest.get(..4)?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 4)
    };
    Some(HeaderBytes {
        start: 8 + width,
        len,
    })
}

/// The dimensions in the `shape` of an `.npy` header, when the header has the documented
/// layout (magic, version, length, then a dict with `'shape': (d, ...)`); `None` otherwise
/// (the full reader then says what is wrong).
fn header_shape(bytes: &[u8]) -> Option<Vec<u64>> {
    let header = header_bytes(bytes)?;
    let rest = bytes.get(header.start..)?;
    let len = header.len;
    let header = std::str::from_utf8(rest.get(..len.min(rest.len()))?).ok()?;
    let after = &header[header.find("shape")?..];
    let open = after.find('(')?;
    let close = after.find(')')?;
    after
        .get(open + 1..close)?
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<u64>().ok())
        .collect()
}
