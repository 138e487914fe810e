//! Why a ceremony stopped, typed to the edge: the UI decides on the variant (a wrong PIN lets
//! the keyholder try again), the command line on the exit code.

use crate::ceremony::engine::Event;
use crate::signer::SignerError;
use crate::signer::pkcs11::TokenError;

/// Why a ceremony stopped (or a step failed).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The workspace, a file or the token module failed.
    #[error("{0}")]
    Io(String),
    /// The engine refused an event (the ceremony cannot go on as it is).
    #[error("{0}")]
    Refused(String),
    /// The PIN was wrong (`CKR_PIN_INCORRECT`): the keyholder may try again.
    #[error("{0}")]
    WrongPin(String),
    /// The PIV management key was wrong (`C_Login(CKU_SO)` returned `CKR_PIN_INCORRECT`): nothing
    /// was generated; the keyholder may type it again.
    #[error("{0}")]
    WrongManagementKey(String),
    /// The token's user PIN is locked: nothing was attempted.
    #[error("{0}")]
    PinLocked(String),
    /// The token went away while it was used.
    #[error("{0}")]
    TokenRemoved(String),
    /// Another run holds the workspace's lock (the message names it).
    #[error("{0}")]
    InUse(String),
    /// A step's record was not written: the step, the record and why (its source keeps the
    /// kind: a failed write is I/O, a refusal by the engine is refused). Said with
    /// [`NotRecorded::report`].
    #[error("{}", .0.report())]
    NotRecorded(Box<NotRecorded>),
}

/// What the room can do after a failed transcript write, once the medium is sound.
pub const CONTINUES_FROM_DISK: &str =
    "the same command continues the ceremony from the last record on disk";

/// A step that was not recorded: the step, the record, and why (the transcript's write failed,
/// or the engine refused the event). Made by [`Session::record_step`](super::Session::record_step)
/// (the headless runner stops with it as [`DriverError::NotRecorded`]); the terminal UI shows it
/// naming the step, and a failed write stays on screen until a record is written and is said
/// again when the UI ends.
#[derive(Debug, thiserror::Error)]
#[error("step {step}: {what} was NOT recorded: {source}")]
pub struct NotRecorded {
    /// The step the ceremony was at.
    pub step: String,
    /// The record ("the roll-call record": [`record_name`]).
    pub what: String,
    /// Why.
    #[source]
    pub source: DriverError,
}

impl NotRecorded {
    /// The step `step`'s record `what` was not written, for `source`.
    pub fn new(step: impl Into<String>, what: impl Into<String>, source: DriverError) -> Self {
        NotRecorded {
            step: step.into(),
            what: what.into(),
            source,
        }
    }

    /// [`NotRecorded::new`], unless `source` names its step and record already (a record of
    /// the seal stage: [`Session::seal_step`](super::Session::seal_step)): then that one.
    pub fn naming(step: impl Into<String>, what: impl Into<String>, source: DriverError) -> Self {
        match source {
            DriverError::NotRecorded(n) => *n,
            source => NotRecorded::new(step, what, source),
        }
    }

    /// Whether the transcript's write failed (not a refusal): the transcript takes no more
    /// records in this run, and the same command continues from the last record on disk.
    pub fn write_failed(&self) -> bool {
        matches!(self.source, DriverError::Io(_))
    }

    /// As a command says it when the ceremony stops: the step, the record, why, and for a
    /// failed write how to continue ([`CONTINUES_FROM_DISK`]).
    pub fn report(&self) -> String {
        if self.write_failed() {
            format!("{self}; {CONTINUES_FROM_DISK}")
        } else {
            self.to_string()
        }
    }
}

impl From<NotRecorded> for DriverError {
    fn from(e: NotRecorded) -> DriverError {
        DriverError::NotRecorded(Box::new(e))
    }
}

/// What a record is called where it is named as not written or being written: "the roll-call
/// record".
pub fn record_name(event: &Event) -> String {
    record_named(event.action())
}

/// [`record_name`] of a record of `action` written without an event (the seal, its
/// signatures, a withdrawal): "the seal-signature record".
pub fn record_named(action: &str) -> String {
    format!("the {action} record")
}

/// What the key-event log step's failure names as not recorded (its entries and checkpoint).
pub const KEY_LOG_RECORD: &str = "the key-event log";

impl DriverError {
    /// The same error (same kind) with what the room can do about it appended.
    pub fn with_hint(self, hint: impl std::fmt::Display) -> DriverError {
        let add = |t: String| format!("{t}; {hint}");
        match self {
            DriverError::Io(t) => DriverError::Io(add(t)),
            DriverError::Refused(t) => DriverError::Refused(add(t)),
            DriverError::WrongPin(t) => DriverError::WrongPin(add(t)),
            DriverError::WrongManagementKey(t) => DriverError::WrongManagementKey(add(t)),
            DriverError::PinLocked(t) => DriverError::PinLocked(add(t)),
            DriverError::TokenRemoved(t) => DriverError::TokenRemoved(add(t)),
            DriverError::InUse(t) => DriverError::InUse(t),
            // What was left where: said with why the record was not written.
            DriverError::NotRecorded(mut n) => {
                n.source = n.source.with_hint(hint);
                DriverError::NotRecorded(n)
            }
        }
    }
}

pub(super) fn io<E: std::fmt::Display>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> DriverError {
    move |e| DriverError::Io(format!("{what}: {e}"))
}

/// A token error with what was being done, keeping the kinds the UI decides on.
pub(super) fn token_error(what: impl std::fmt::Display) -> impl FnOnce(TokenError) -> DriverError {
    move |e| {
        let text = format!("{what}: {e}");
        match e {
            // A PIN of impossible length was not sent: asked again like a wrong one, the text
            // says which it was.
            TokenError::WrongPin { .. } | TokenError::PinLength { .. } => {
                DriverError::WrongPin(text)
            }
            TokenError::WrongManagementKey { .. } => DriverError::WrongManagementKey(text),
            // Refused by policy before anything was sent to the token.
            TokenError::DefaultManagementKey { .. } => DriverError::Refused(text),
            TokenError::PinLocked { .. } => DriverError::PinLocked(text),
            TokenError::TokenRemoved { .. } => DriverError::TokenRemoved(text),
            _ => DriverError::Io(text),
        }
    }
}

/// A signer's error: a token error keeps its kind.
pub(super) fn signer_error(
    what: impl std::fmt::Display,
) -> impl FnOnce(SignerError) -> DriverError {
    move |e| match e {
        SignerError::Token(t) => token_error(what)(*t),
        other => DriverError::Io(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_keep_their_kind() {
        let wrong = TokenError::WrongPin {
            token: "token \"alice\"".into(),
            tries: crate::signer::pkcs11::PinTries::default(),
        };
        let e = token_error("login to the token of alice")(wrong);
        assert!(matches!(e, DriverError::WrongPin(_)), "{e:?}");
        assert!(
            e.to_string().starts_with("login to the token of alice: "),
            "{e}"
        );
        let removed = TokenError::TokenRemoved {
            token: "token \"bob\"".into(),
            function: "C_Sign".into(),
            rv: "CKR_DEVICE_REMOVED".into(),
        };
        let e = signer_error("signing root with the token of bob")(SignerError::Token(Box::new(
            removed,
        )));
        assert!(matches!(e, DriverError::TokenRemoved(_)), "{e:?}");
        let locked = TokenError::PinLocked {
            token: "token \"carol\"".into(),
            how: "token flags say CKF_USER_PIN_LOCKED".into(),
        };
        assert!(matches!(
            token_error("x")(locked),
            DriverError::PinLocked(_)
        ));
        let mgm = TokenError::WrongManagementKey {
            token: "token \"YubiKey PIV #1\"".into(),
        };
        assert!(matches!(
            token_error("x")(mgm),
            DriverError::WrongManagementKey(_)
        ));
        let default = TokenError::DefaultManagementKey {
            token: "token \"YubiKey PIV #1\"".into(),
        };
        assert!(matches!(token_error("x")(default), DriverError::Refused(_)));
        let other = TokenError::ModuleMissing {
            path: "/x.so".into(),
        };
        assert!(matches!(token_error("x")(other), DriverError::Io(_)));
    }
}
