//! In-memory software keys: for tests and practice only, never for production ceremonies.

use rand_core::{CryptoRng, RngCore};
use signature::Signer as _;
use zeroize::Zeroizing;

use super::{Signer, SignerError};
use crate::tuf::key::{Algorithm, Key, PublicKey};

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A private key held in memory (zeroized on drop by the underlying crates).
pub struct SoftwareSigner {
    secret: Secret,
    key: Key,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("keyid", &self.key.key_id())
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    /// Generate a new key of the given algorithm (RSA is verification-only in Conclave).
    pub fn generate<R: RngCore + CryptoRng>(alg: Algorithm, rng: &mut R) -> Option<Self> {
        let mut seed = Zeroizing::new([0u8; 48]);
        loop {
            rng.fill_bytes(seed.as_mut());
            if let Some(s) = Self::from_seed(alg, seed.as_ref()) {
                return Some(s);
            }
            if matches!(alg, Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256) {
                return None;
            }
        }
    }

    /// A deterministic key from seed bytes (32 bytes used for Ed25519/P-256, 48 for P-384);
    /// `None` if the seed is not a valid scalar or too short. For reproducible tests.
    pub fn from_seed(alg: Algorithm, seed: &[u8]) -> Option<Self> {
        let secret = match alg {
            Algorithm::Ed25519 => {
                let bytes: [u8; 32] = seed.get(..32)?.try_into().ok()?;
                Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&bytes))
            }
            Algorithm::EcdsaP256 => {
                Secret::P256(p256::ecdsa::SigningKey::from_slice(seed.get(..32)?).ok()?)
            }
            Algorithm::EcdsaP384 => {
                Secret::P384(p384::ecdsa::SigningKey::from_slice(seed.get(..48)?).ok()?)
            }
            Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256 => return None,
        };
        let pk = match &secret {
            Secret::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            Secret::P256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            Secret::P384(k) => PublicKey::EcdsaP384(*k.verifying_key()),
        };
        Some(SoftwareSigner {
            key: Key::from_public_key(&pk),
            secret,
        })
    }

    /// Replace the TUF key object (e.g. to add custom fields such as a key owner); the key
    /// material must stay the same.
    pub fn with_key(mut self, key: Key) -> Option<Self> {
        let same = key.public_key().ok()?.material() == self.key.public_key().ok()?.material();
        same.then(|| {
            self.key = key;
            self
        })
    }
}

impl Signer for SoftwareSigner {
    fn key(&self) -> &Key {
        &self.key
    }

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(match &self.secret {
            Secret::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            Secret::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            Secret::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_self_verifies() {
        let mut rng = rand_core::OsRng;
        for alg in [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
        ] {
            let mut s = SoftwareSigner::generate(alg, &mut rng).unwrap();
            let sig = s.sign(b"canonical bytes").unwrap();
            s.key()
                .verify_hex(b"canonical bytes", &hex::encode(&sig))
                .unwrap();
            assert_eq!(s.key().scheme, alg.scheme());
        }
        assert!(SoftwareSigner::generate(Algorithm::RsaPssSha256, &mut rng).is_none());
    }
}
