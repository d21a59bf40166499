//! Sizes and durations as people write them: `"64KiB"`, `"5MiB"`, `"500ms"`, `"1h30m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// Why a size or duration could not be read. The message quotes the text and gives
/// examples of what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseUnitError(String);

/// A number of bytes, written in the configuration as an integer (`1048576`) or a string
/// with a unit (`"64KiB"`, `"1MiB"`, `"5MiB"`, `"1GiB"`).
///
/// Units, case-insensitive: `B`, the binary `KiB` `MiB` `GiB` `TiB` (powers of 1024) and
/// the decimal `KB` `MB` `GB` `TB` (powers of 1000). A string without a unit is bytes.
/// Only whole numbers are accepted (`"1.5MiB"` is refused: write `"1536KiB"`).
///
/// ```
/// use weir_config::ByteSize;
///
/// assert_eq!("64KiB".parse::<ByteSize>().unwrap(), ByteSize(65_536));
/// assert_eq!("5 MB".parse::<ByteSize>().unwrap().bytes(), 5_000_000);
/// assert_eq!(ByteSize::mib(1).to_string(), "1MiB");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` KiB (`n` × 1024 bytes).
    pub const fn kib(n: u64) -> Self {
        Self(n << 10)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// `n` GiB.
    pub const fn gib(n: u64) -> Self {
        Self(n << 30)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The number of bytes as a `usize`, saturating on targets where it does not fit.
    pub fn bytes_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Binary units, largest first, for display.
const BINARY_UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`1MiB`, `1536KiB`), else bytes
    /// (`1000B`). The output parses back to the same size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, factor) in BINARY_UNITS {
            if self.0 != 0 && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = ParseUnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ParseUnitError(format!(
                "{text:?} is not a size; expected e.g. \"64KiB\", \"1MiB\", \"5MiB\" or a number of bytes"
            ))
        };
        let trimmed = text.trim();
        let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(digits_end);
        if digits.is_empty() {
            return Err(invalid());
        }
        let factor: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return Err(invalid()),
        };
        let too_large = || ParseUnitError(format!("{text:?} is too large for a size in bytes"));
        let number: u64 = digits.parse().map_err(|_| too_large())?;
        number.checked_mul(factor).map(ByteSize).ok_or_else(too_large)
    }
}

impl Serialize for ByteSize {
    /// As its [`Display`](fmt::Display) form, e.g. `"1MiB"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    /// From a non-negative integer (bytes) or a string with a unit.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64KiB\", \"1MiB\" or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A [`Duration`] written as a number and a unit: `"500ms"`, `"30s"`, `"5m"`, `"1h"`,
/// `"7d"`, or several of them added up: `"1h30m"`.
///
/// Units (lowercase): `ns`, `us`, `ms`, `s`, `m` (minutes), `h`, `d` (24 hours). Only whole
/// numbers are accepted; there is no month or year (their length varies).
///
/// ```
/// use std::time::Duration;
/// use weir_config::HumanDuration;
///
/// assert_eq!("1h30m".parse::<HumanDuration>().unwrap().as_duration(), Duration::from_secs(5400));
/// assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1s500ms");
/// assert!("1 minute".parse::<HumanDuration>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// No time at all (`"0s"`).
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The duration in microseconds, as event times count them (`i64::MAX` past it).
    pub fn micros(self) -> i64 {
        i64::try_from(self.0.as_micros()).unwrap_or(i64::MAX)
    }
}

impl From<Duration> for HumanDuration {
    fn from(duration: Duration) -> Self {
        Self(duration)
    }
}

impl From<HumanDuration> for Duration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

const NANOS_PER: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

impl fmt::Display for HumanDuration {
    /// Each non-zero unit from days down to nanoseconds (`1d`, `1h30m`, `1s500ms`); zero
    /// is `0s`. The output parses back to the same duration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_nanos();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, nanos) in NANOS_PER {
            let count = rest / nanos;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                rest %= nanos;
            }
        }
        Ok(())
    }
}

impl FromStr for HumanDuration {
    type Err = ParseUnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseUnitError(format!("{text:?} is not a duration; expected e.g. \"30s\", \"5m\", \"1h\""));
        let too_large = || ParseUnitError(format!("{text:?} is too long a duration"));
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits_end == 0 {
                return Err(invalid());
            }
            let number: u128 = rest[..digits_end].parse().map_err(|_| too_large())?;
            rest = rest[digits_end..].trim_start();
            let unit_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let unit = &rest[..unit_end];
            let nanos =
                NANOS_PER.iter().find(|(name, _)| *name == unit).map(|(_, nanos)| *nanos).ok_or_else(invalid)?;
            total = number.checked_mul(nanos).and_then(|n| total.checked_add(n)).ok_or_else(too_large)?;
            rest = rest[unit_end..].trim_start();
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_large())?;
        // The remainder is below 10^9, so it fits.
        let subsec = u32::try_from(total % 1_000_000_000).map_err(|_| too_large())?;
        Ok(Self(Duration::new(secs, subsec)))
    }
}

impl Serialize for HumanDuration {
    /// As its [`Display`](fmt::Display) form, e.g. `"1h30m"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    /// From a string such as `"30s"`; a bare number is refused, since its unit would be a
    /// guess.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"1h\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!("0".parse::<ByteSize>().unwrap(), ByteSize(0));
        assert_eq!("512B".parse::<ByteSize>().unwrap(), ByteSize(512));
        assert_eq!("1mib".parse::<ByteSize>().unwrap(), ByteSize::mib(1));
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap(), ByteSize::gib(2));
        assert_eq!("3KB".parse::<ByteSize>().unwrap(), ByteSize(3000));
        for bad in ["", "MiB", "1.5MiB", "1 meg", "-1", "99999999999TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn sizes_display_in_the_largest_exact_unit() {
        for (size, text) in [(0, "0B"), (1000, "1000B"), (1536, "1536B"), (1 << 10, "1KiB"), (3 << 29, "1536MiB")] {
            assert_eq!(ByteSize(size).to_string(), text);
            assert_eq!(text.parse::<ByteSize>().unwrap(), ByteSize(size));
        }
    }

    #[test]
    fn durations_parse_and_display_round_trip() {
        for (text, duration) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1h30m", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
            ("1s5ns", Duration::new(1, 5)),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.as_duration(), duration, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!("1h 30m".parse::<HumanDuration>().unwrap().to_string(), "1h30m");
        for bad in ["", "30", "1 minute", "5M", "s", "1.5s", "99999999999999999999999d"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad:?} parsed");
        }
    }
}
