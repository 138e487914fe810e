//! The ceremony's clock, chosen by the caller (as rustls's `TimeProvider`): the host clock in a
//! ceremony, a fixed time in tests. The driver reads time only through a [`Clock`]; the pure
//! core takes times as arguments.

use std::fmt::Debug;

use time::OffsetDateTime;

use crate::transcript::record::Timestamp;

/// Where the driver gets the current time.
pub trait Clock: Debug + Send + Sync {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The host's clock (a ceremony confirms it at its clock step).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// The clock's time as a transcript timestamp: whole seconds in UTC; a time outside what a
/// transcript holds (years 0 to 9999) becomes the epoch.
pub fn timestamp(clock: &dyn Clock) -> Timestamp {
    Timestamp::from_datetime(clock.now()).unwrap_or_else(|| {
        Timestamp::from_datetime(OffsetDateTime::UNIX_EPOCH).expect("epoch is a valid timestamp")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_gives_whole_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap()
            + time::Duration::milliseconds(250);
        assert_eq!(
            timestamp(&FixedClock(t)).to_string(),
            "2026-05-28T20:26:40Z"
        );
    }
}
