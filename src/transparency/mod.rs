//! The key-event log: every ceremony's key additions and removals, threshold changes and
//! published root and targets versions, as an append-only RFC 9162 Merkle tree log whose head is
//! published as a C2SP `tlog-checkpoint` signed note, signed by the keyholders' root keys.
//!
//! Pure, no I/O: [`event`] derives a ceremony's entries from the metadata before and after it,
//! [`log`] holds the entries, replays them and verifies a log against its checkpoints,
//! [`merkle`] is RFC 9162 hashing and proofs, [`note`] the checkpoint format and its signatures,
//! [`dir`] the log's directory format (names, files, the checks of an append; the files are
//! read and written by `driver::log_dir`).
//! See docs/transparency.md.

pub mod dir;
pub mod event;
pub mod log;
pub mod merkle;
pub mod note;

pub use event::{CeremonyRef, Entry, Export, KeyState, Published, ceremony_events};
pub use log::{Log, verify};
pub use note::{Checkpoint, SignedCheckpoint};
