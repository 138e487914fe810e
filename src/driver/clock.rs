//! The ceremony's clock.

use time::OffsetDateTime;

use crate::transcript::record::Timestamp;

pub(super) fn now() -> Timestamp {
    // The clock is whole seconds in UTC; the conversion cannot fail for the current time.
    Timestamp::from_datetime(
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
    .unwrap_or_else(|| {
        Timestamp::from_datetime(OffsetDateTime::UNIX_EPOCH).expect("epoch is a valid timestamp")
    })
}
