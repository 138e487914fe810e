//! Command-line commands: each parses its arguments, calls the library, and returns what to
//! print. `main.rs` maps the result to exit codes (0 ok, 1 verification failed, 2 usage or I/O).

pub mod bundle;
pub mod ceremony;
pub mod intoto;
pub mod log;
pub mod qr;
pub mod rehearse;
pub mod rstuf;
pub mod selfcheck;
pub mod token;
pub mod transcript;
pub mod tuf_on_ci;
pub mod tui;
pub mod usb;
pub mod verify;

/// What a command produced.
#[derive(Debug)]
pub struct Outcome {
    /// Text for standard output.
    pub stdout: String,
    /// false: verification failed (exit 1).
    pub success: bool,
}

/// Why a command could not run or refused.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A file or device could not be read or written (exit 2).
    #[error("{0}")]
    Io(String),
    /// The input is not valid (exit 1).
    #[error("{0}")]
    Invalid(String),
}

impl CliError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Io(_) => 2,
            CliError::Invalid(_) => 1,
        }
    }
}
