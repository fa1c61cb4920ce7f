//! Resource quantities (`500m`, `2Gi`, `1e3`) as exact amounts that can be summed without a
//! panic: a PodGroup's `minResources` adds up every counted pod's requests, and a template
//! may ask for `cpu: "70000000000000000000000000000"`. Amounts are whole nano-units in an `i128`
//! (Kubernetes rounds quantities up to nano precision too); sums saturate instead of
//! overflowing. `rust_decimal` parses the number part; the text form is Kubernetes' canonical
//! one (`2800m`, `3Gi`, `1500M`), so the PodGroup reads as upstream's.

use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rust_decimal::Decimal;

/// How Kubernetes writes an amount: the suffix family of the quantity it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, … (powers of 1024).
    BinarySi,
    /// `m`, `k`, `M`, … (powers of 1000), and plain numbers.
    DecimalSi,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// An exact amount in nano-units, with the format to print it in.
#[derive(Clone, Copy, Debug)]
pub struct Amount {
    nanos: i128,
    pub format: Format,
}

/// Amounts compare by value: `1000m` equals `1`.
impl PartialEq for Amount {
    fn eq(&self, other: &Amount) -> bool {
        self.nanos == other.nanos
    }
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

impl Amount {
    /// The largest amount; sums that would exceed it stay here.
    pub const MAX: Amount = Amount {
        nanos: i128::MAX,
        format: Format::DecimalSi,
    };

    /// Parses Kubernetes' quantity syntax. `None` for text that is not a quantity; an amount
    /// too large for nano precision saturates at [`Amount::MAX`].
    pub fn parse(text: &str) -> Option<Amount> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if number.is_empty() || number == "+" || number == "-" {
            return None;
        }
        let number = Decimal::from_str(number).ok()?;
        let (format, base, exponent): (Format, i128, i32) = match suffix {
            "" => (Format::DecimalSi, 10, 0),
            "n" => (Format::DecimalSi, 10, -9),
            "u" => (Format::DecimalSi, 10, -6),
            "m" => (Format::DecimalSi, 10, -3),
            "k" => (Format::DecimalSi, 10, 3),
            "M" => (Format::DecimalSi, 10, 6),
            "G" => (Format::DecimalSi, 10, 9),
            "T" => (Format::DecimalSi, 10, 12),
            "P" => (Format::DecimalSi, 10, 15),
            "E" => (Format::DecimalSi, 10, 18),
            "Ki" => (Format::BinarySi, 1024, 1),
            "Mi" => (Format::BinarySi, 1024, 2),
            "Gi" => (Format::BinarySi, 1024, 3),
            "Ti" => (Format::BinarySi, 1024, 4),
            "Pi" => (Format::BinarySi, 1024, 5),
            "Ei" => (Format::BinarySi, 1024, 6),
            exp if exp.starts_with(['e', 'E']) => {
                let exponent: i32 = exp[1..].parse().ok()?;
                (Format::DecimalExponent, 10, exponent)
            }
            _ => return None,
        };
        Some(Amount {
            nanos: to_nanos(number, base, exponent),
            format,
        })
    }

    /// `self + other`, at most [`Amount::MAX`] (at least its negative); the format is
    /// `self`'s, as Kubernetes' `Quantity.Add` keeps the receiver's.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount {
            nanos: self.nanos.saturating_add(other.nanos),
            format: self.format,
        }
    }

    /// `self × count`, saturating.
    pub fn saturating_mul(self, count: i32) -> Amount {
        Amount {
            nanos: self.nanos.saturating_mul(i128::from(count)),
            format: self.format,
        }
    }

    /// Kubernetes' canonical text: the largest suffix that keeps the number whole.
    pub fn to_quantity(self) -> Quantity {
        Quantity(self.canonical())
    }

    fn canonical(self) -> String {
        let whole = self.nanos % NANOS_PER_UNIT == 0;
        let units = self.nanos / NANOS_PER_UNIT;
        if self.format == Format::BinarySi && whole && units.unsigned_abs() >= 1024 {
            let mut mantissa = units;
            let mut power = 0;
            while power < 6 && mantissa % 1024 == 0 {
                mantissa /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return format!("{mantissa}{suffix}");
        }
        // Powers of 1000 from nano up: the largest that leaves a whole mantissa.
        let mut mantissa = self.nanos;
        let mut exponent = -9;
        while mantissa != 0 && mantissa % 1000 == 0 && exponent < 18 {
            mantissa /= 1000;
            exponent += 3;
        }
        if mantissa == 0 {
            return "0".into();
        }
        match self.format {
            Format::DecimalExponent if exponent == 0 => format!("{mantissa}"),
            Format::DecimalExponent => format!("{mantissa}e{exponent}"),
            _ => {
                let suffix = match exponent {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                };
                format!("{mantissa}{suffix}")
            }
        }
    }
}

/// `number × base^exponent` in nano-units, rounded up (away from zero) to a whole nano-unit as
/// Kubernetes rounds, saturating at the `i128` range.
fn to_nanos(number: Decimal, base: i128, exponent: i32) -> i128 {
    let mantissa = number.mantissa();
    // number = mantissa / 10^scale, with scale in 0..=28.
    let scale = i32::try_from(number.scale()).unwrap_or(28);
    let saturated = if mantissa < 0 { i128::MIN } else { i128::MAX };
    let (multiplier, tens) = if base == 1024 {
        match 1024i128.checked_pow(exponent.unsigned_abs()) {
            Some(factor) => (factor, 9 - scale),
            None => return saturated,
        }
    } else {
        (1, exponent.saturating_add(9).saturating_sub(scale))
    };
    let Some(scaled) = mantissa.checked_mul(multiplier) else {
        return saturated;
    };
    if tens >= 0 {
        match 10i128.checked_pow(tens.unsigned_abs()) {
            Some(power) => scaled.checked_mul(power).unwrap_or(saturated),
            None if scaled == 0 => 0,
            None => saturated,
        }
    } else {
        match 10i128.checked_pow(tens.unsigned_abs()) {
            Some(divisor) => div_away_from_zero(scaled, divisor),
            // Far below one nano-unit: rounds up to one.
            None => scaled.signum(),
        }
    }
}

fn div_away_from_zero(numerator: i128, divisor: i128) -> i128 {
    let quotient = numerator / divisor;
    if numerator % divisor == 0 {
        quotient
    } else {
        quotient + numerator.signum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_as_kubernetes_does() {
        let cases = [
            ("1", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("2.8", "2800m"),
            ("1500M", "1500M"),
            ("1.5G", "1500M"),
            ("2000000000", "2G"),
            ("1Ki", "1Ki"),
            ("1024", "1024"),
            ("3Gi", "3Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1e3", "1e3"),
            ("1E", "1E"),
            ("100n", "100n"),
            ("0.1n", "1n"),
            ("0", "0"),
            ("0Gi", "0"),
            ("+2", "2"),
        ];
        for (text, canonical) in cases {
            let amount = Amount::parse(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(amount.to_quantity().0, canonical, "{text}");
        }
        for bad in ["", "m", "abc", "1x", "1Kii", "--1", "1e", "1e+"] {
            assert_eq!(Amount::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compares_by_value() {
        let a = |t: &str| Amount::parse(t).unwrap();
        assert_eq!(a("1000m"), a("1"));
        assert_eq!(a("1Ki"), a("1024"));
        assert_eq!(a("1e3"), a("1k"));
        assert_ne!(a("1Ki"), a("1k"));
    }

    #[test]
    fn sums_keep_the_first_format_and_never_overflow() {
        let a = |t: &str| Amount::parse(t).unwrap();
        assert_eq!(a("2").saturating_add(a("800m")).to_quantity().0, "2800m");
        assert_eq!(a("1Gi").saturating_add(a("1Gi")).to_quantity().0, "2Gi");
        assert_eq!(a("500m").saturating_mul(6).to_quantity().0, "3");
        // The case that made rust_decimal panic ("Addition overflowed").
        let huge = a("70000000000000000000000000000");
        let sum = huge.saturating_add(huge).saturating_add(huge);
        assert_eq!(sum, Amount::MAX);
        assert_eq!(huge.saturating_mul(i32::MAX), Amount::MAX);
        // Beyond nano precision: saturated, not an error and not a panic.
        assert_eq!(a("1e40"), Amount::MAX);
        assert_eq!(a("99999999999999999999999999Ei"), Amount::MAX);
        assert!(Amount::MAX.to_quantity().0.ends_with('n'));
        assert_eq!(
            a("1e-40").to_quantity().0,
            "1e-9",
            "rounded up to a nano-unit"
        );
        let negative = a("-70000000000000000000000000000");
        let thrice = negative.saturating_add(negative).saturating_add(negative);
        assert_eq!(thrice.nanos, i128::MIN);
    }
}
