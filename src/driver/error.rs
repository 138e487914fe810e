//! Why a ceremony stopped.

/// Why a ceremony stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The workspace, a file or the token module failed.
    #[error("{0}")]
    Io(String),
    /// The engine refused an event (the ceremony cannot go on as it is).
    #[error("{0}")]
    Refused(String),
}

pub(super) fn io<E: std::fmt::Display>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> DriverError {
    move |e| DriverError::Io(format!("{what}: {e}"))
}
