//! Command implementations behind `main.rs`: argument structs (clap) and the functions they call.
//! `main.rs` only parses and maps [`CliError`] to the exit code.

pub mod token;

use std::fmt;

/// A command's failure: the message for stderr and the exit code (1 verification failed or
/// refused, 2 usage, I/O or device error).
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// Message (never contains a secret).
    pub message: String,
}

impl CliError {
    /// Exit code 1: verification failed or the action was refused.
    pub fn refused(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: usage or I/O.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<crate::signer::pkcs11::TokenError> for CliError {
    fn from(e: crate::signer::pkcs11::TokenError) -> Self {
        CliError {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}
