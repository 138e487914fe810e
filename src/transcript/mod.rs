//! The ceremony transcript: a hash-chained JSON Lines journal, its seal, and its verification.
//!
//! Everything here is pure (bytes, times and signers come in as arguments) except [`file`](mod@file), the
//! small edge that writes records to disk with `fsync` and resumes after a power cut.
//!
//! - [`record`]: one record, its hash and its line.
//! - [`chain`]: the rules between records; [`chain::verify_chain`].
//! - [`seal`]: the seal record, keyholders' signatures, artifact checks.
//! - [`details`]: typed details of `begin` and `resume`.
//! - [`audit`]: the auditor's verdict (chain, seal, artifacts) as data.
//! - [`report`]: the auditor's Markdown report.
//! - [`display`]: hashes and summaries for people.

pub mod audit;
pub mod chain;
pub mod details;
pub mod display;
pub mod file;
pub mod record;
pub mod report;
pub mod seal;

pub use chain::{ChainError, ChainErrorKind, ChainState, VerifiedTranscript, verify_chain};
pub use record::{Record, Timestamp};
pub use seal::{SealError, VerifiedSeal, verify_seal};
