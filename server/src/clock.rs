//! The service's clock and calendar: the instant now, and which day it is in the service's time
//! zone. Rounds (today ± 1 day), holding periods and customers' dates follow the local day, not
//! UTC's; tests inject a clock standing at the minute they need (23:30, 00:30…).

use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Where the time comes from.
#[derive(Debug, Clone)]
enum Source {
    /// The system's clock.
    System,
    /// A clock a test sets and moves.
    Manual(Arc<Mutex<Timestamp>>),
}

/// Now, and the calendar of the service's time zone.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
    zone: TimeZone,
}

/// A time zone name that the IANA database does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {name:?}: give an IANA name such as Europe/Paris")]
pub struct UnknownTimeZone {
    name: String,
}

/// The time zone of an IANA name.
pub fn time_zone(name: &str) -> Result<TimeZone, UnknownTimeZone> {
    TimeZone::get(name).map_err(|_| UnknownTimeZone {
        name: name.to_string(),
    })
}

impl Clock {
    /// The system's clock in `zone`.
    pub fn system(zone: TimeZone) -> Self {
        Self {
            source: Source::System,
            zone,
        }
    }

    /// A clock standing at `at` until [`Clock::set`] moves it (tests).
    pub fn manual(at: Timestamp, zone: TimeZone) -> Self {
        Self {
            source: Source::Manual(Arc::new(Mutex::new(at))),
            zone,
        }
    }

    /// Moves a manual clock (and every copy of it); the system clock ignores this.
    pub fn set(&self, at: Timestamp) {
        if let Source::Manual(now) = &self.source {
            *now.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
        }
    }

    /// The instant now.
    pub fn now(&self) -> Timestamp {
        match &self.source {
            Source::System => Timestamp::now(),
            Source::Manual(now) => *now
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    /// The service's time zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Today, in the service's time zone.
    pub fn today(&self) -> Date {
        self.now().to_zoned_datetime(self.zone.clone()).date()
    }

    /// The local day of an instant given in Unix milliseconds (today for one out of range).
    pub fn day_of_ms(&self, ms: i64) -> Date {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned_datetime(self.zone.clone()).date())
            .unwrap_or_else(|_| self.today())
    }

    /// Today plus `days` (negative: earlier), in the service's time zone.
    pub fn today_plus(&self, days: i64) -> Date {
        plus_days(self.today(), days)
    }
}

/// `day` plus `days`, saturating at the calendar's ends.
pub fn plus_days(day: Date, days: i64) -> Date {
    day.checked_add(days.days())
        .unwrap_or(if days < 0 { Date::MIN } else { Date::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_day_turns_at_local_midnight() {
        let paris = time_zone("Europe/Paris").unwrap_or_else(|e| panic!("{e}"));
        // 2026-12-01 23:30 in Paris is 22:30 UTC: still the 1st in both.
        let at: Timestamp = "2026-12-01T22:30:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let clock = Clock::manual(at, paris);
        assert_eq!(clock.today().to_string(), "2026-12-01");
        // 00:30 in Paris on the 2nd is 23:30 UTC on the 1st.
        clock.set(
            "2026-12-01T23:30:00Z"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(clock.today().to_string(), "2026-12-02");
        assert_eq!(clock.today_plus(-1).to_string(), "2026-12-01");
        assert_eq!(clock.day_of_ms(clock.now_ms()).to_string(), "2026-12-02");
        assert!(time_zone("Europe/Nowhere").is_err());
    }
}
