//! Human-readable durations (`250ms`, `30s`, `5m`, `2h`) as templates write them.
//!
//! Templates are authored by people, so durations are strings with a unit
//! rather than bare numbers whose unit a reader has to guess.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with a unit: `ms`, `s`, `m` or `h` (e.g. `1500ms`, `30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `<number><unit>`; the number may have a fractional part (`1.5s`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| {
                format!("\"{text}\" has no unit; write e.g. \"500ms\", \"30s\", \"5m\" or \"1h\"")
            })?;
        let (number, unit) = text.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("\"{text}\" does not start with a number"))?;
        let millis_per_unit = match unit.trim() {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            other => {
                return Err(format!(
                    "\"{text}\" has unknown unit \"{other}\"; use ms, s, m or h"
                ));
            }
        };
        let millis = value * millis_per_unit;
        if !millis.is_finite() || millis > 1e15 {
            return Err(format!("\"{text}\" is too large"));
        }
        Ok(Self(Duration::from_millis(millis.round() as u64)))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn as_millis(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1_000) {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(HumanDuration::parse("250ms").unwrap().as_millis(), 250);
        assert_eq!(HumanDuration::parse("1.5s").unwrap().as_millis(), 1_500);
        assert_eq!(HumanDuration::parse("2m").unwrap().as_millis(), 120_000);
        assert_eq!(HumanDuration::parse("1h").unwrap().as_millis(), 3_600_000);
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(HumanDuration::parse("30").unwrap_err().contains("no unit"));
        assert!(
            HumanDuration::parse("3d")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(HumanDuration::parse("s").unwrap_err().contains("number"));
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        for text in ["250ms", "30s", "5m", "2h", "1500ms"] {
            assert_eq!(HumanDuration::parse(text).unwrap().to_string(), text);
        }
    }
}
