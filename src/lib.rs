//! Conclave: an offline root key ceremony appliance for TUF repositories.
// No unsafe code, but for one `madvise` call with its SAFETY comment (src/memory.rs).
#![deny(unsafe_code)]
#![deny(unused_must_use)]
#![warn(missing_docs)]

pub mod ceremony;
pub mod cli;
pub mod config;
pub mod driver;
pub mod fault;
pub mod folder;
pub mod intoto;
pub mod memory;
pub mod pin;
pub mod signer;
pub mod system;
pub mod text;
pub mod transcript;
pub mod transparency;
pub mod transport;
pub mod tuf;
pub mod tui;
