//! The edge to private keys: a [`Signer`] holds one key and signs bytes with it.
//!
//! Keyholders' keys live in PKCS#11 tokens; in-memory software keys exist for tests and practice
//! imports only and are never used for production ceremonies.

pub mod pkcs11;
pub mod software;

use crate::tuf::key::{Key, KeyError, KeyId};
use crate::tuf::metadata::{Metadata, SignedPayload};

/// Why a signer could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The signature the key produced does not verify against its public key.
    #[error("signature from key {keyid} does not verify against its public key: {source}")]
    SelfCheck {
        /// The key that signed.
        keyid: KeyId,
        /// Why verification failed.
        source: KeyError,
    },
    /// The device or backend failed.
    #[error("{0}")]
    Backend(String),
    /// The PKCS#11 token failed (which function, which return value, which token).
    #[error(transparent)]
    Token(Box<pkcs11::TokenError>),
}

/// One private key that can sign; the public half is known as a TUF key object.
pub trait Signer {
    /// The public key in TUF form.
    fn key(&self) -> &Key;

    /// The key id a new key gets (SHA-256 of the canonical key object).
    fn key_id(&self) -> KeyId {
        self.key().key_id()
    }

    /// Sign `msg` (the canonical bytes of a `signed` part) and return the signature bytes as TUF
    /// carries them: raw 64 bytes for Ed25519, DER for ECDSA.
    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError>;

    /// Verify a signature over `msg` against this signer's public key, in software. The
    /// default decodes [`Signer::key`] each time; signers that already hold the decoded key
    /// (the PKCS#11 signer reads it from the token once) override this to skip the decoding.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        self.key().public_key().and_then(|pk| pk.verify(msg, sig))
    }

    /// Sign and verify the signature in software before returning it.
    fn sign(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        let sig = self.sign_raw(msg)?;
        let check = self.verify(msg, &sig);
        match check {
            Ok(()) => Ok(sig),
            Err(source) => Err(SignerError::SelfCheck {
                keyid: self.key_id(),
                source,
            }),
        }
    }
}

/// A boxed signer (a ceremony's or a command's token key behind the driver's token seam,
/// [`crate::driver::TokenSigner`]) signs as the signer inside it, with its own verification.
impl<S: Signer + ?Sized> Signer for Box<S> {
    fn key(&self) -> &Key {
        (**self).key()
    }

    fn key_id(&self) -> KeyId {
        (**self).key_id()
    }

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).sign_raw(msg)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        (**self).verify(msg, sig)
    }

    fn sign(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).sign(msg)
    }
}

/// Sign metadata with a signer (adds or replaces that key's signature), verifying the
/// signature in software first. Signing lives here, at the edge: `tuf` only builds and verifies
/// metadata.
pub fn sign_metadata<T: SignedPayload>(
    md: &mut Metadata<T>,
    signer: &mut dyn Signer,
) -> Result<KeyId, SignerError> {
    let sig = signer.sign(md.signed_bytes())?;
    let id = signer.key_id();
    md.add_signature(id.clone(), &sig);
    Ok(id)
}
