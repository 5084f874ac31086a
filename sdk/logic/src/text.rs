//! Numbers in explanations and reasons, written the way `format!("{x:.2}")`
//! writes them, without paying for it.
//!
//! The standard library prints a float with a fixed number of decimals by
//! working out its exact decimal expansion (Grisu, with Dragon4 and bignum
//! arithmetic as the fallback). That is most of what a failover decision
//! costs, and in WebAssembly it is several times slower still. A number in an
//! explanation is a score, a z or a metric value: [`fixed`] scales it by a
//! power of ten, rounds once and prints the integer, and hands the rare value
//! where that could round differently from the exact expansion (within an
//! ulp of a tie, too large, not finite) to the standard library. The text is
//! therefore exactly what `format!` gives, for every value (tested against
//! it), and the same natively and in WebAssembly.

use std::fmt;

/// `x` with `decimals` decimals, as `format!("{x:.decimals$}")` writes it.
///
/// # Panics
///
/// Never; `decimals` above 9 is printed by the standard library.
pub fn fixed(x: f64, decimals: u8) -> Fixed {
    Fixed {
        x,
        decimals,
        plus: false,
    }
}

/// `x` with `decimals` decimals and always a sign, as
/// `format!("{x:+.decimals$}")` writes it.
pub fn signed(x: f64, decimals: u8) -> Fixed {
    Fixed {
        x,
        decimals,
        plus: true,
    }
}

/// A number to print with a fixed number of decimals; see [`fixed`].
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    x: f64,
    decimals: u8,
    plus: bool,
}

/// Scaled values at or above this (2^52) are left to the standard library:
/// below it, a scaled value's distance to its nearest integer is exact.
const LIMIT: f64 = 4_503_599_627_370_496.0;

impl Fixed {
    /// The text written into `buf` (returned as the used tail of it), or
    /// `None` when the standard library must print the value.
    fn write<'b>(&self, buf: &'b mut [u8; 32]) -> Option<&'b str> {
        if self.decimals > 9 || !self.x.is_finite() {
            return None;
        }
        let decimals = usize::from(self.decimals);
        let scale = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9][decimals];
        // One rounding: `scaled` is within half an ulp of |x| × 10^d.
        let scaled = self.x.abs() * scale;
        if scaled >= LIMIT {
            return None;
        }
        let nearest = scaled.round_ties_even();
        // Exact (both below 2^52 and within 0.5 of each other). Unless the
        // scaled value is within two of its ulps of a tie, rounding it and
        // rounding the exact product give the same integer.
        let off = (scaled - nearest).abs();
        let margin = scaled * f64::EPSILON;
        if (off - 0.5).abs() <= margin {
            return None;
        }
        // In range: below 2^52, non-negative, integral.
        let mut n = nearest as u64;
        let mut at = buf.len();
        let mut written = 0;
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            written += 1;
            if written == decimals {
                at -= 1;
                buf[at] = b'.';
            }
            if n == 0 && written > decimals {
                break;
            }
        }
        if self.x.is_sign_negative() {
            at -= 1;
            buf[at] = b'-';
        } else if self.plus {
            at -= 1;
            buf[at] = b'+';
        }
        std::str::from_utf8(&buf[at..]).ok()
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        match self.write(&mut buf) {
            Some(text) => f.write_str(text),
            None => {
                let decimals = usize::from(self.decimals);
                if self.plus {
                    write!(f, "{:+.*}", decimals, self.x)
                } else {
                    write!(f, "{:.*}", decimals, self.x)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(x: f64) {
        for d in 0..=10u8 {
            let n = usize::from(d);
            assert_eq!(fixed(x, d).to_string(), format!("{x:.n$}"), "{x:e} .{d}");
            assert_eq!(signed(x, d).to_string(), format!("{x:+.n$}"), "{x:e} +.{d}");
        }
    }

    #[test]
    fn writes_what_format_writes_at_the_edges() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.125,
            0.375,
            1.005,
            2.675,
            0.045,
            -0.001,
            -0.005,
            9.995,
            99.95,
            999.5,
            0.1 + 0.2,
            1e-12,
            123_456.789,
            4.5e15,
            4.503_599_627_370_495e15,
            1e17,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for x in edges {
            check(x);
            check(-x);
        }
    }

    #[test]
    fn writes_what_format_writes_for_many_values() {
        // A deterministic spread over magnitudes and mantissas, ties and
        // near-ties included (multiples of 1/8, 1/1000, 5/10^k).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = (state % 24) as i32 - 12;
            check(mantissa * 10f64.powi(exponent));
            check((state % 100_000) as f64 / 1000.0);
            check((state % 4096) as f64 / 8.0);
            check((state % 2000) as f64 * 0.005);
        }
    }
}
