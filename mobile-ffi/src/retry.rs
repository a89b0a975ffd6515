//! When the background sync tries a request again, and how long it waits first: the app's
//! [`RetryPolicy`], the reading of an HTTP answer into "use it", "try again" or "stop", and
//! the wait between tries (exponential backoff with jitter, never sooner than the server's
//! Retry-After).

use std::time::{Duration, SystemTime};

use crate::error::TourneeError;

/// How hard the background sync tries before giving up, chosen by the app for its background
/// worker (WorkManager, BGTaskScheduler). `defaultRetryPolicy()` gives sensible values.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RetryPolicy {
    /// How many times one request is sent before giving up, the first time included (at least
    /// 1; 1 means no retry).
    pub max_attempts: u32,
    /// The wait before the first retry. Each retry waits twice as long as the one before, up
    /// to `maxBackoff`, and a random part of each wait (up to half) spreads the phones of a
    /// whole depot that lost the network at once.
    pub first_backoff: Duration,
    /// The longest wait between two tries, unless the server asks for longer (Retry-After).
    pub max_backoff: Duration,
    /// When to give up whatever is left, e.g. when the system ends the background work; null
    /// (nil) for no deadline. A request in flight at the deadline is cancelled.
    pub deadline: Option<SystemTime>,
}

/// Five tries per request, waiting about 1, 2, 4 and 8 seconds between them, at most a minute,
/// and no deadline.
#[uniffi::export]
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        deadline: None,
    }
}

impl RetryPolicy {
    /// Refuses a policy that could never send anything.
    pub(crate) fn check(&self) -> Result<(), TourneeError> {
        if self.max_attempts == 0 {
            return Err(TourneeError::InvalidInput {
                field: "max_attempts".into(),
                reason: "a request must be sent at least once".into(),
            });
        }
        if self.max_backoff < self.first_backoff {
            return Err(TourneeError::InvalidInput {
                field: "max_backoff".into(),
                reason: "the longest wait cannot be shorter than the first".into(),
            });
        }
        Ok(())
    }

    /// The wait after the `failed`-th failed try of a request (1 for the first): half of the
    /// doubled backoff for sure, the other half at random.
    pub(crate) fn backoff(&self, failed: u32) -> Duration {
        let doubling = 2u32.saturating_pow(failed.saturating_sub(1));
        let full = self
            .first_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        let half = full / 2;
        let random = half.mul_f64(fastrand::f64());
        half + random
    }

    /// How long is left before the deadline; `None` without one, zero once it passed.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.deadline.map(|deadline| {
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// What an HTTP status means for the request that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An answer to read: a success, or a refusal the store reads itself (proof uploads).
    Answer,
    /// May succeed later: 408, 429 and every 5xx.
    TryAgain,
    /// The credentials are refused (401, 403): no retry can help.
    NotAuthorized,
    /// Any other status that is not a success: sending the same again gets the same.
    Refused,
}

impl Verdict {
    /// Reads a status.
    pub(crate) fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::Answer,
            401 | 403 => Self::NotAuthorized,
            408 | 429 | 500..=599 => Self::TryAgain,
            _ => Self::Refused,
        }
    }
}

/// The time a Retry-After header names: a number of seconds from `now`, or an HTTP date.
/// Anything else is ignored (the backoff applies).
pub(crate) fn retry_after(header: Option<&str>, now: SystemTime) -> Option<SystemTime> {
    let value = header?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => now.checked_add(Duration::from_secs(seconds)),
        Err(_) => httpdate::parse_http_date(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn policy(first_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            first_backoff: Duration::from_millis(first_ms),
            max_backoff: Duration::from_millis(max_ms),
            deadline: None,
        }
    }

    #[test]
    fn each_wait_doubles_up_to_the_longest_with_at_most_half_of_it_random() {
        let policy = policy(100, 1_000);
        for (failed, full_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1_000),
            (40, 1_000),
        ] {
            let full = Duration::from_millis(full_ms);
            for _ in 0..50 {
                let wait = policy.backoff(failed);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "try {failed}: {wait:?} is not within [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }

    #[test]
    fn statuses_are_read_as_the_http_rules_say() {
        for (status, verdict) in [
            (200, Verdict::Answer),
            (201, Verdict::Answer),
            (401, Verdict::NotAuthorized),
            (403, Verdict::NotAuthorized),
            (408, Verdict::TryAgain),
            (429, Verdict::TryAgain),
            (500, Verdict::TryAgain),
            (503, Verdict::TryAgain),
            (400, Verdict::Refused),
            (404, Verdict::Refused),
            (413, Verdict::Refused),
            (426, Verdict::Refused),
            (302, Verdict::Refused),
        ] {
            assert_eq!(Verdict::of(status), verdict, "HTTP {status}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_424_400);
        assert_eq!(
            retry_after(Some(" 120 "), now),
            Some(now + Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(Some("Mon, 23 Nov 2026 09:02:00 GMT"), now),
            Some(now + Duration::from_secs(120))
        );
        assert_eq!(retry_after(Some("soon"), now), None);
        assert_eq!(retry_after(None, now), None);
    }

    #[test]
    fn a_policy_that_cannot_send_is_refused() {
        let mut none = policy(100, 1_000);
        none.max_attempts = 0;
        assert!(
            matches!(none.check(), Err(TourneeError::InvalidInput { field, .. }) if field == "max_attempts")
        );
        assert!(
            matches!(policy(1_000, 100).check(), Err(TourneeError::InvalidInput { field, .. }) if field == "max_backoff")
        );
        assert!(policy(100, 1_000).check().is_ok());
    }
}
