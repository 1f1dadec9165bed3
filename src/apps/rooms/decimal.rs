//! Exact decimals for counters: parsed from their JSON text, never through `f64`.
//!
//! A value is `m / 10^s` with `|m| < 10^34` (34 significant digits, as IEEE decimal128)
//! and `0 <= s <= MAX_SCALE`. Anything finer is rounded half to even; a magnitude that
//! needs more than 34 integer digits is out of range.

use std::cmp::Ordering;
use std::fmt;

const DIGITS: u32 = 34;
const MAX_SCALE: u32 = 64;
const LIMIT: i128 = 10i128.pow(DIGITS);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Decimal {
    m: i128,
    s: u32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// `m / 10^r` rounded half to even.
fn round_div(m: i128, r: u32) -> i128 {
    let Some(d) = pow10(r) else { return 0 };
    let (q, rem) = (m / d, m % d);
    let twice = rem.unsigned_abs() * 2;
    let up = match twice.cmp(&d.unsigned_abs()) {
        Ordering::Greater => true,
        Ordering::Equal => q % 2 != 0,
        Ordering::Less => false,
    };
    if up { q + m.signum() } else { q }
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { m: 0, s: 0 };
    pub const ONE: Decimal = Decimal { m: 1, s: 0 };

    pub fn from_int(n: i64) -> Decimal {
        Decimal { m: n.into(), s: 0 }
    }

    /// Brings `m / 10^s` (any `m`, any `s`) into range, or `None` when it is too large.
    fn normalize(mut m: i128, mut s: u32) -> Option<Decimal> {
        if s > MAX_SCALE {
            m = round_div(m, s - MAX_SCALE);
            s = MAX_SCALE;
        }
        while m.abs() >= LIMIT {
            if s == 0 {
                return None;
            }
            // One digit at a time would double-round; find the digits to drop first.
            let mut r = 1;
            while r < s && pow10(r).is_some_and(|p| (m / p).abs() >= LIMIT) {
                r += 1;
            }
            m = round_div(m, r);
            s -= r;
        }
        while s > 0 && m % 10 == 0 {
            m /= 10;
            s -= 1;
        }
        Some(Decimal { m, s })
    }

    /// Parses a JSON number or the decimal text of a string: `[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?`.
    pub fn parse(text: &str) -> Option<Result<Decimal, OutOfRange>> {
        let b = text.as_bytes();
        let mut i = 0;
        let neg = match b.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut digits: Vec<u8> = Vec::new();
        let mut frac = 0i64;
        let mut seen = false;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] - b'0');
            seen = true;
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] - b'0');
                frac += 1;
                seen = true;
                i += 1;
            }
        }
        if !seen {
            return None;
        }
        let mut exp = 0i64;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = (exp * 10 + i64::from(b[i] - b'0')).min(1 << 40);
                i += 1;
            }
            if i == start {
                return None;
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        // Strip leading zeros, keep at most DIGITS + 2 digits and fold the rest into a
        // sticky digit so that rounding stays exact.
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Some(Ok(Decimal::ZERO));
        };
        let digits = &digits[first..];
        let mut scale = frac - exp; // value = int(digits) / 10^scale
        let keep = (DIGITS as usize + 2).min(digits.len());
        let mut m: i128 = 0;
        for &d in &digits[..keep] {
            m = m * 10 + i128::from(d);
        }
        let dropped = (digits.len() - keep) as i64;
        if dropped > 0 {
            let sticky = digits[keep..].iter().any(|&d| d != 0);
            m = m * 10 + i128::from(sticky);
            scale -= dropped - 1;
        }
        if neg {
            m = -m;
        }
        if scale < 0 {
            let up = u32::try_from(-scale).ok().filter(|&u| u <= 38);
            let big = up.and_then(pow10).and_then(|p| m.checked_mul(p));
            return Some(big.and_then(|m| Decimal::normalize(m, 0)).ok_or(OutOfRange));
        }
        let s = u32::try_from(scale).unwrap_or(u32::MAX);
        Some(Decimal::normalize(m, s).ok_or(OutOfRange))
    }

    pub fn checked_add(self, o: Decimal) -> Option<Decimal> {
        let (hi, lo) = if self.s >= o.s { (self, o) } else { (o, self) };
        let mut d = hi.s - lo.s;
        let mut hm = hi.m;
        let mut s = hi.s;
        // lo.m * 10^d must fit with room for the sum: round hi first if it would not.
        let lo_digits = digits_of(lo.m);
        if lo_digits + d > 37 {
            let r = lo_digits + d - 37;
            hm = round_div(hm, r);
            s -= r;
            d -= r;
        }
        let lm = lo.m * pow10(d).expect("d <= 37 by construction");
        Decimal::normalize(hm + lm, s)
    }

    pub fn abs(self) -> Decimal {
        Decimal {
            m: self.m.abs(),
            s: self.s,
        }
    }

    pub fn negated(self) -> Decimal {
        Decimal {
            m: -self.m,
            s: self.s,
        }
    }

    pub fn cmp_value(self, o: Decimal) -> Ordering {
        match self.checked_add(o.negated()) {
            Some(d) => d.m.cmp(&0),
            None => self.m.signum().cmp(&o.m.signum()),
        }
    }
}

fn digits_of(m: i128) -> u32 {
    let mut n = m.unsigned_abs();
    let mut d = 0;
    while n > 0 {
        n /= 10;
        d += 1;
    }
    d
}

/// A value that cannot be held.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange;

/// Plain decimal: no exponent, no trailing fraction zeros, no `.` for integers, no `-0`.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.m == 0 {
            return f.write_str("0");
        }
        let digits = self.m.unsigned_abs().to_string();
        if self.m < 0 {
            f.write_str("-")?;
        }
        let s = self.s as usize;
        if s == 0 {
            return f.write_str(&digits);
        }
        if digits.len() > s {
            let (int, fr) = digits.split_at(digits.len() - s);
            write!(f, "{int}.{fr}")
        } else {
            write!(f, "0.{}{digits}", "0".repeat(s - digits.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap().unwrap()
    }

    #[test]
    fn sums_are_exact_and_plain() {
        let sum = d("0.1").checked_add(d("0.2")).unwrap();
        assert_eq!(sum.to_string(), "0.3");
        let s = d("17.75").checked_add(d("-15.14")).unwrap();
        assert_eq!(s.to_string(), "2.61");
        assert_eq!(d("1e2").to_string(), "100");
        assert_eq!(d("-0").to_string(), "0");
        assert_eq!(d("1.50").to_string(), "1.5");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("5.").to_string(), "5");
        assert_eq!(d("1E-3").to_string(), "0.001");
        assert_eq!(
            d("100.3").checked_add(d("-100.3")).unwrap().to_string(),
            "0"
        );
    }

    #[test]
    fn rejects_non_decimals() {
        for bad in [
            "", "abc", "0x10", "Infinity", "1e", "--1", "1.2.3", ".", "+",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn rounds_half_to_even_and_caps_range() {
        // 35 significant digits: the last one rounds away, half to even.
        assert_eq!(d("1.0000000000000000000000000000000005").to_string(), "1");
        assert_eq!(
            d("1.0000000000000000000000000000000015").to_string(),
            "1.000000000000000000000000000000002"
        );
        assert_eq!(d("1e-100").to_string(), "0");
        assert_eq!(Decimal::parse("1e40"), Some(Err(OutOfRange)));
        let big = d("9999999999999999999999999999999999");
        assert!(big.checked_add(Decimal::ONE).is_none());
        let fine = d("0.0000000000000000000000000001");
        assert_eq!(
            fine.checked_add(fine).unwrap().to_string(),
            "0.0000000000000000000000000002"
        );
        let mixed = d("1234567890123456789012345678")
            .checked_add(d("0.5"))
            .unwrap();
        assert_eq!(mixed.to_string(), "1234567890123456789012345678.5");
    }
}
