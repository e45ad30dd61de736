//! The command line's resource model: what a number on the command line may ask for. Each cap
//! is named in the error that enforces it, with the environment variable that raises it (the
//! command line is the one place that reads its environment).
//!
//! | what | cap | raised by |
//! |---|---|---|
//! | slots `--replicas` (total over all GPUs) | 65 536 | `EPLB_MAX_SLOTS` |
//! | worker threads `--threads` | 1 024 | `EPLB_MAX_THREADS` |
//! | `--time-limit` | 10⁶ s (what a deadline can hold everywhere) | — |
//!
//! Input files are capped by the readers (`eplb::formats::limits`): nothing is allocated for
//! a size a file states before the file's data is checked to hold it.

use std::time::Duration;

/// Default cap on `--replicas` (slots over all GPUs); deployments use a few hundred.
pub(crate) const MAX_SLOTS: usize = 1 << 16;
/// The environment variable that raises [`MAX_SLOTS`].
pub(crate) const MAX_SLOTS_VAR: &str = "EPLB_MAX_SLOTS";
/// Default cap on `--threads`.
pub(crate) const MAX_THREADS: usize = 1 << 10;
/// The environment variable that raises [`MAX_THREADS`].
pub(crate) const MAX_THREADS_VAR: &str = "EPLB_MAX_THREADS";
/// The longest `--time-limit`, in seconds.
pub(crate) const MAX_TIME_LIMIT_SECS: f64 = 1e6;

/// A whole number `>= 0` (the library says which counts must be at least 1).
pub(crate) fn count(text: &str) -> Result<usize, String> {
    text.trim().parse::<usize>().map_err(|_| {
        format!("`{text}` is not a count: give a whole number >= 1 (digits only, no sign)")
    })
}

/// A count no larger than `default` or the value of the environment variable `var`.
fn capped(text: &str, what: &str, default: usize, var: &str) -> Result<usize, String> {
    let n = count(text)?;
    let cap = std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(default);
    if n > cap {
        return Err(format!(
            "{n} {what} is above the cap of {cap} (set {var} to raise it)"
        ));
    }
    Ok(n)
}

/// `--replicas`: a count of slots up to the slot cap.
pub(crate) fn slots(text: &str) -> Result<usize, String> {
    capped(text, "slots", MAX_SLOTS, MAX_SLOTS_VAR)
}

/// `--threads`: a count of worker threads up to the thread cap.
pub(crate) fn threads(text: &str) -> Result<usize, String> {
    capped(text, "worker threads", MAX_THREADS, MAX_THREADS_VAR)
}

/// `--time-limit`: a positive number of seconds up to [`MAX_TIME_LIMIT_SECS`].
pub(crate) fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= MAX_TIME_LIMIT_SECS => {
            Ok(Duration::from_secs_f64(s))
        }
        _ => Err(format!(
            "`{text}` is not a positive number of seconds up to {MAX_TIME_LIMIT_SECS:e} (the longest time limit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_name_what_is_wrong() {
        assert_eq!(count("16"), Ok(16));
        assert!(count("-16").unwrap_err().contains("no sign"));
        assert!(slots("10000000000").unwrap_err().contains(MAX_SLOTS_VAR));
        assert!(threads("100000").unwrap_err().contains(MAX_THREADS_VAR));
        assert_eq!(threads("8"), Ok(8));
    }

    #[test]
    fn time_limits_stay_representable() {
        assert!(seconds("1e300").is_err());
        assert!(seconds("1e19").is_err());
        assert!(seconds("0").is_err());
        assert!(seconds("NaN").is_err());
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(seconds("1e6").is_ok());
    }
}
