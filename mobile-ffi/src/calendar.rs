//! Times and calendar days as the app's platforms spell them. The core keeps a moment as Unix
//! milliseconds and a day as `YYYY-MM-DD` text; the app sees a `SystemTime` (Kotlin `Instant`,
//! Swift `Date`, Python `datetime`) and a [`CalendarDate`] (Kotlin `LocalDate`, Swift
//! `DateComponents`, Python `date`: the mapping is in `uniffi.toml`). The conversions live here
//! and nowhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::TourneeError;

/// A day of the calendar, with no time of day and no time zone (Kotlin `LocalDate`, Swift
/// `DateComponents` with year, month and day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDate(pub String);

uniffi::custom_newtype!(
    /// A day of the calendar, with no time of day and no time zone: Kotlin `LocalDate`, Swift
    /// `DateComponents` (Gregorian year, month and day), Python `date`.
    CalendarDate,
    String
);

impl From<String> for CalendarDate {
    fn from(day: String) -> Self {
        Self(day)
    }
}

impl From<CalendarDate> for String {
    fn from(day: CalendarDate) -> Self {
        day.0
    }
}

/// The core's milliseconds for a moment the app gave; `field` names it in the error when the
/// moment is out of the range milliseconds can hold (about 292 million years around 1970).
pub(crate) fn unix_ms(moment: SystemTime, field: &str) -> Result<i64, TourneeError> {
    let out_of_range = || TourneeError::InvalidInput {
        field: field.to_string(),
        reason: "is too far from 1970 to be a time on a phone".into(),
    };
    match moment.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).map_err(|_| out_of_range()),
        Err(before) => i64::try_from(before.duration().as_millis())
            .map(|ms| -ms)
            .map_err(|_| out_of_range()),
    }
}

/// The moment of the core's milliseconds. Every `i64` of milliseconds is a `SystemTime` where
/// the library runs (64-bit seconds on Android, iOS, Linux and macOS); should one not be, the
/// error says which stored time it was.
pub(crate) fn moment(unix_ms: i64, field: &str) -> Result<SystemTime, TourneeError> {
    let offset = Duration::from_millis(unix_ms.unsigned_abs());
    let moment = if unix_ms >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    moment.ok_or_else(|| TourneeError::Internal {
        reason: format!("the stored {field} ({unix_ms} ms) is beyond this platform's clock"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_moments_round_trip_on_both_sides_of_1970() {
        for ms in [
            0,
            1,
            1_764_000_000_123,
            -5,
            -86_400_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let t = moment(ms, "recorded_at_ms").unwrap();
            assert_eq!(unix_ms(t, "recorded_at_ms").unwrap(), ms);
        }
    }

    #[test]
    fn a_moment_beyond_milliseconds_is_a_typed_error_naming_the_field() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        match unix_ms(far, "recorded_at_ms") {
            Err(TourneeError::InvalidInput { field, .. }) => assert_eq!(field, "recorded_at_ms"),
            other => panic!("expected an invalid input, got {other:?}"),
        }
    }
}
