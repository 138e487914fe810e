//! The ceremony transcript: a hash-chained JSON Lines journal, its seal, and its verification.
//!
//! Everything here is pure: bytes, times and signatures come in as arguments. The file a
//! transcript is written to (create-exclusive, append with `fsync`, torn-tail repair) is the
//! driver's edge, [`crate::driver::transcript_file`], around the pure [`writer`].
//!
//! - [`record`]: one record, its hash and its line.
//! - [`chain`]: the rules between records; [`chain::verify_chain`].
//! - [`seal`]: the seal record, keyholders' signatures, artifact checks.
//! - [`details`]: typed details of `begin` and `resume`.
//! - [`writer`]: the next record, what may be appended, the seal statement to sign, the resume
//!   plan of a file found on disk.
//! - [`audit`]: the auditor's verdict (chain, seal, artifacts) as data.
//! - [`report`]: the auditor's Markdown report.
//! - [`display`]: hashes and summaries for people.

pub mod audit;
pub mod chain;
pub mod details;
pub mod display;
pub mod record;
pub mod report;
pub mod seal;
pub mod writer;

pub use chain::{ChainError, ChainErrorKind, ChainState, VerifiedTranscript, verify_chain};
pub use record::{Record, Timestamp};
pub use seal::{SealError, VerifiedSeal, verify_seal};
