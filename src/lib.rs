//! Conclave: an offline root key ceremony appliance for TUF repositories.
// No unsafe code, but for one `madvise` call (src/memory.rs) and one raw `C_GetTokenInfo` for a
// token whose clock cryptoki cannot parse (`raw_token_info`, src/signer/pkcs11.rs), each with its
// SAFETY comment.
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
