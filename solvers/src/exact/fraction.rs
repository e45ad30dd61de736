//! Exact rationals: [`Fraction`] and the conversions between units of `1 / scale` and values.

use super::*;

/// A non-negative rational number `num / den` (`den > 0`), compared exactly.
///
/// ```
/// use eplb_solvers::exact::Fraction;
/// assert!(Fraction::new(1, 3) < Fraction::new(34, 100));
/// assert_eq!(Fraction::new(2, 4), Fraction::new(1, 2));
/// assert!(Fraction::new(1, 3).to_f64_down() <= 1.0 / 3.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fraction {
    pub(super) num: u128,
    pub(super) den: u128,
}

impl Fraction {
    /// `num / den`.
    ///
    /// # Panics
    /// When `den == 0`.
    pub fn new(num: u128, den: u128) -> Self {
        assert!(den > 0, "a fraction needs a positive denominator");
        let g = gcd128(num, den);
        Self {
            num: num / g,
            den: den / g,
        }
    }

    /// The numerator (in lowest terms).
    pub fn numer(&self) -> u128 {
        self.num
    }

    /// The denominator (in lowest terms).
    pub fn denom(&self) -> u128 {
        self.den
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The largest `f64` that is not above the exact value (for reporting lower bounds).
    pub fn to_f64_down(&self) -> f64 {
        let mut f = self.to_f64();
        // The division rounds to nearest; step down while the float is above the value.
        for _ in 0..4 {
            match self.cmp_f64(f) {
                Some(Ordering::Greater) | Some(Ordering::Equal) => return f,
                Some(Ordering::Less) => f = next_down(f),
                None => break,
            }
        }
        // Comparison out of range: step down by a few ulps, enough for the rounding above.
        for _ in 0..3 {
            f = next_down(f);
        }
        f.max(0.0)
    }

    /// Compares this fraction with a finite `f >= 0` exactly (`None` when out of range).
    pub(super) fn cmp_f64(&self, f: f64) -> Option<Ordering> {
        if f == 0.0 {
            return Some(self.num.cmp(&0));
        }
        let bits = f.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        // f = mant * 2^e; compare num / den with it: num * 2^-e vs mant * den.
        let rhs = (mant as u128).checked_mul(self.den)?;
        if e >= 0 {
            let rhs = rhs
                .checked_shl(e as u32)
                .filter(|r| r >> e == (mant as u128) * self.den)?;
            Some(self.num.cmp(&rhs))
        } else {
            let sh = (-e) as u32;
            if sh >= 128 || self.num.leading_zeros() < sh {
                return None;
            }
            Some((self.num << sh).cmp(&rhs))
        }
    }
}

pub(super) fn next_down(f: f64) -> f64 {
    if f > 0.0 {
        f64::from_bits(f.to_bits() - 1)
    } else {
        0.0
    }
}

impl PartialEq for Fraction {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Fraction {}
impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Fraction {
    fn cmp(&self, other: &Self) -> Ordering {
        // Values stay below 2^74 with denominators below 2^50, so products fit in u128.
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

pub(super) fn gcd128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Fraction {
    /// This fraction times the integer `k`.
    pub(super) fn times(self, k: u64) -> Fraction {
        Fraction::new(self.num * k as u128, self.den)
    }
}

/// Incumbent value as a fraction from units.
pub(super) fn frac(units: u64, scale: u64) -> Fraction {
    Fraction::new(units as u128, scale as u128)
}

/// The largest unit count strictly below `f` at `scale`, or `None` when `f <= 0`.
pub(super) fn units_below(f: Fraction, scale: u64) -> Option<u64> {
    // ceil(f * scale) - 1
    let x = (f.num * scale as u128).div_ceil(f.den);
    (x > 0).then(|| (x - 1).min(u64::MAX as u128) as u64)
}

/// The smallest unit count at or above `f` at `scale`.
pub(super) fn units_at_least(f: Fraction, scale: u64) -> u64 {
    (f.num * scale as u128)
        .div_ceil(f.den)
        .min(u64::MAX as u128) as u64
}

pub(super) fn close_enough(value: Fraction, lb: Fraction, gap: f64) -> bool {
    value <= lb || (gap > 0.0 && value.to_f64() <= lb.to_f64_down() * (1.0 + gap))
}
