//! The one duration syntax of every value a person writes: the `run` and `emulator` flags (and
//! their environment variables, hence the chart's values), the `vpc.alicloud.dev/resync-period`
//! annotation, and the duration strings of the emulator's seed file and admin API.
//!
//! Accepted: a number with a unit (`500ms`, `30s`, `10m`, `1h`, `1.5s`, `2 hours`), several of
//! them (`1m30s`, `1h 30m`), ISO 8601 (`PT30S`), all parsed by [`jiff`]; and a **bare whole
//! number, which is seconds** (`600` = 10 minutes). Seconds because that is what the operator
//! has always read from the annotation and the `run` flags, and what the chart's values schema
//! documents ("a bare number is seconds"); the emulator alone used to read milliseconds.
//! Refused, with a message that shows the accepted forms: an empty value, a negative one, an
//! unknown unit, days or longer (calendar units), and numbers too large for a duration.
//!
//! (A JSON or YAML *number*, as opposed to a string, in the emulator's documents stays integer
//! milliseconds: that is what `GET /__admin/config` answers, so an answer can be posted back.)

use std::time::Duration;

/// A value that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration (examples: 500ms, 30s, 10m, 1h30m, PT30S; a bare number is seconds)"
)]
pub struct DurationError(String);

/// Parses a duration written by a person; see the [module](self) for the accepted forms.
/// Usable as a clap `value_parser`.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let text = s.trim();
    let refuse = || DurationError(s.to_owned());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| refuse());
    }
    let signed: jiff::SignedDuration = text.parse().map_err(|_| refuse())?;
    Duration::try_from(signed).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let secs = Duration::from_secs;
        for (text, want) in [
            ("90s", secs(90)),
            ("5m", secs(300)),
            ("2h", secs(7200)),
            ("24h", secs(86_400)),
            ("1m30s", secs(90)),
            ("1h 30m", secs(5400)),
            ("10 s", secs(10)),
            ("2 hours", secs(7200)),
            ("PT2S", secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("0s", Duration::ZERO),
            ("+5s", secs(5)),
            (" 90s ", secs(90)),
            // A bare number is seconds, everywhere.
            ("42", secs(42)),
            ("0", Duration::ZERO),
            ("600", secs(600)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refused_forms() {
        for text in [
            "",
            "   ",
            "-1s",
            "-5",
            "5 parsecs",
            "soon",
            "1d",
            "1w",
            "P1D",
            "1H",
            "1.5",
            "99999999999999999999",
            "10s later",
        ] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_refusal_names_the_value_and_the_accepted_forms() {
        let err = parse("5 parsecs").unwrap_err().to_string();
        assert!(err.starts_with("\"5 parsecs\" is not a duration"), "{err}");
        assert!(
            err.contains("30s") && err.contains("bare number is seconds"),
            "{err}"
        );
    }
}
