//! The pure TUF core: JSON and canonical bytes, keys, metadata, verification. No I/O here.

pub mod bundle;
pub mod canonical;
pub mod compat;
pub mod edit;
pub mod key;
pub mod lookup;
pub mod metadata;
pub mod parallel;
pub mod parse;
pub mod repository;
pub mod rstuf;
pub mod tuf_on_ci;
pub mod verify;
