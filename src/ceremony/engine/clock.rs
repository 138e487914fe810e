//! The ceremony clock: confirmed by the room against a reference time, confirmed again
//! when a resumed ceremony finds the machine clock moved; the engine decides expiry with it.

use super::{ClockConfirmation, Engine, EngineError};
use crate::text::show;
use crate::tuf::metadata::Expires;
use time::OffsetDateTime;

/// How far (seconds, either way) the machine clock may be from the reference time the room
/// reads: five minutes.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 300;

/// How far forward (seconds) the machine clock may move between the last record of an
/// interrupted ceremony and its resumption before the clock is confirmed again: 24 hours. A
/// clock that went backwards is always confirmed again.
pub const RESUME_CLOCK_ALLOWANCE_SECONDS: i64 = 24 * 3600;

/// Whether a resumed ceremony confirms its clock again: the machine clock at `now` went back
/// from `last` (the last record's time), or moved forward by more than
/// [`RESUME_CLOCK_ALLOWANCE_SECONDS`].
pub fn clock_needs_reconfirming(last: OffsetDateTime, now: OffsetDateTime) -> bool {
    let forward = (now - last).whole_seconds();
    !(0..=RESUME_CLOCK_ALLOWANCE_SECONDS).contains(&forward)
}

/// Parse a reference time as the room types it: `YYYY-MM-DD HH:MM` in UTC (a `T` instead of the
/// space, seconds, and a trailing `Z` or ` UTC` are accepted too).
pub fn parse_reference_time(text: &str) -> Result<OffsetDateTime, String> {
    let bad = || {
        format!(
            "\"{}\" is not a UTC time written YYYY-MM-DD HH:MM",
            show(text)
        )
    };
    let t = text.trim();
    let t = t
        .strip_suffix(" UTC")
        .or_else(|| t.strip_suffix('Z'))
        .unwrap_or(t);
    let (date, clock) = t
        .split_once(' ')
        .or_else(|| t.split_once('T'))
        .ok_or_else(bad)?;
    let num = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.trim().split(':').collect();
    let ([y, mo, da], [h, mi, rest @ ..]) = (d.as_slice(), c.as_slice()) else {
        return Err(bad());
    };
    let sec = match rest {
        [] => 0,
        [s] => num(s, 2)?,
        _ => return Err(bad()),
    };
    let month =
        time::Month::try_from(u8::try_from(num(mo, 2)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let year = i32::try_from(num(y, 4)?).map_err(|_| bad())?;
    let day = u8::try_from(num(da, 2)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let hms = |v: u32| u8::try_from(v).map_err(|_| bad());
    let clock =
        time::Time::from_hms(hms(num(h, 2)?)?, hms(num(mi, 2)?)?, hms(sec)?).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// A time difference for people: `3 days 2 h 5 min 7 s ahead` (or `behind`).
pub fn show_clock_difference(seconds: i64) -> String {
    let dir = if seconds < 0 { "behind" } else { "ahead" };
    let s = seconds.unsigned_abs();
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} days"));
    }
    if d > 0 || h > 0 {
        parts.push(format!("{h} h"));
    }
    if d > 0 || h > 0 || m > 0 {
        parts.push(format!("{m} min"));
    }
    parts.push(format!("{s} s"));
    format!("{} {dir}", parts.join(" "))
}

impl Engine {
    /// Ask for the clock to be confirmed again before the next step (a resumed ceremony whose
    /// machine clock went back or jumped forward: [`clock_needs_reconfirming`]). Nothing to do
    /// before the clock step.
    pub fn require_clock_confirmation(&mut self) {
        if self.clock.is_some() && self.current_step().is_some() {
            self.reconfirm_clock = true;
        }
    }

    /// The time a clock confirmation records, checked against how it was confirmed: a
    /// reference time within [`CLOCK_TOLERANCE_SECONDS`] of it, or a practice run's own clock.
    /// Transcripts written before the confirmation was recorded carry none.
    pub(super) fn check_clock(
        &self,
        time: &str,
        confirmation: Option<&ClockConfirmation>,
    ) -> Result<OffsetDateTime, EngineError> {
        let t = Expires::parse(time.to_string(), "time")
            .map_err(|e| self.policy(e.to_string()))?
            .time;
        match confirmation {
            None => {}
            Some(ClockConfirmation::Practice) if !self.practice => {
                return Err(
                    self.policy("only a practice run confirms the clock without a reference time")
                );
            }
            Some(ClockConfirmation::Practice) => {}
            Some(ClockConfirmation::Reference {
                reference,
                difference_seconds,
            }) => {
                let r = Expires::parse(reference.clone(), "reference")
                    .map_err(|e| self.policy(e.to_string()))?
                    .time;
                let diff = (t - r).whole_seconds();
                if diff != *difference_seconds {
                    return Err(self.policy(format!(
                        "the recorded difference ({difference_seconds} s) is not the machine time minus the reference ({diff} s)"
                    )));
                }
                if diff.abs() > CLOCK_TOLERANCE_SECONDS {
                    return Err(self.policy(format!(
                        "the machine clock ({time}) is off: {} the reference time ({reference}), more than {} minutes: set the machine clock and confirm it again",
                        show_clock_difference(diff),
                        CLOCK_TOLERANCE_SECONDS / 60
                    )));
                }
            }
        }
        Ok(t)
    }

    /// The confirmed clock.
    pub(super) fn now(&self) -> Result<OffsetDateTime, EngineError> {
        self.clock
            .ok_or_else(|| self.policy("the clock has not been confirmed"))
    }

    /// Record a clock confirmation: expiry checks from here on use its time.
    pub(super) fn confirm_clock(
        &mut self,
        time: &str,
        confirmation: Option<&ClockConfirmation>,
    ) -> Result<(), EngineError> {
        self.clock = Some(self.check_clock(time, confirmation)?);
        self.reconfirm_clock = false;
        Ok(())
    }
}
