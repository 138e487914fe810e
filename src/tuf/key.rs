//! TUF public keys: the key object as written in metadata, key ids, and signature verification.
//!
//! A [`Key`] keeps its JSON exactly (custom fields included) because the key id of a new key is
//! the SHA-256 of its canonical JSON. Which algorithm verifies a signature is decided by the
//! `scheme` (and the curve inside a PEM key), checked against the `keytype`.

use std::fmt;

use sha2::{Digest, Sha256, Sha384};

use super::canonical::{Map, Value};

/// A key id: an opaque label in metadata (often, but not always, the SHA-256 of the key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub String);

impl KeyId {
    /// The key id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 16 characters, for tables; always show the full id where a person decides.
    pub fn short(&self) -> &str {
        let end = self
            .0
            .char_indices()
            .nth(16)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signature algorithms Conclave knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `ed25519` / `ed25519`
    Ed25519,
    /// ECDSA on P-256 with SHA-256 (`ecdsa-sha2-nistp256`).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384 (`ecdsa-sha2-nistp384`).
    EcdsaP384,
    /// RSASSA-PSS with SHA-256 (`rsassa-pss-sha256`); verification only.
    RsaPssSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`rsa-pkcs1v15-sha256`, which python-tuf verifies);
    /// verification only.
    RsaPkcs1v15Sha256,
}

impl Algorithm {
    /// The TUF scheme name.
    pub fn scheme(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-sha2-nistp256",
            Algorithm::EcdsaP384 => "ecdsa-sha2-nistp384",
            Algorithm::RsaPssSha256 => "rsassa-pss-sha256",
            Algorithm::RsaPkcs1v15Sha256 => "rsa-pkcs1v15-sha256",
        }
    }

    /// The algorithm a key type selector names (`ed25519`, `ecdsa-p256`, `ecdsa-p384`, as
    /// scripts and commands spell them), for the key types Conclave generates.
    pub fn from_key_type(s: &str) -> Option<Algorithm> {
        match s {
            "ed25519" => Some(Algorithm::Ed25519),
            "ecdsa-p256" | "ecdsa-sha2-nistp256" | "p256" => Some(Algorithm::EcdsaP256),
            "ecdsa-p384" | "ecdsa-sha2-nistp384" | "p384" => Some(Algorithm::EcdsaP384),
            _ => None,
        }
    }

    /// A short human name ("Ed25519", "ECDSA P-256", ...).
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::EcdsaP256 => "ECDSA P-256",
            Algorithm::EcdsaP384 => "ECDSA P-384",
            Algorithm::RsaPssSha256 => "RSA-PSS",
            Algorithm::RsaPkcs1v15Sha256 => "RSA PKCS#1 v1.5",
        }
    }
}

/// Why a key object or a signature cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The scheme is not one Conclave can verify.
    #[error("unsupported signature scheme \"{0}\"")]
    UnsupportedScheme(String),
    /// The keytype does not go with the scheme.
    #[error("keytype \"{keytype}\" does not match scheme \"{scheme}\"")]
    KeytypeMismatch {
        /// The keytype as written.
        keytype: String,
        /// The scheme as written.
        scheme: String,
    },
    /// The public key value cannot be decoded.
    #[error("bad public key for scheme \"{}\": {reason}", crate::text::show(.scheme))]
    BadPublicKey {
        /// The scheme as written.
        scheme: String,
        /// What is wrong.
        reason: String,
    },
    /// The signature cannot be decoded (hex, length, DER).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signature is well formed but does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// A decoded public key, ready to verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 public key bytes.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// P-256 public key.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// P-384 public key.
    EcdsaP384(p384::ecdsa::VerifyingKey),
    /// RSA public key, RSASSA-PSS with SHA-256 (verification only).
    Rsa(rsa::RsaPublicKey),
    /// RSA public key, RSASSA-PKCS1-v1_5 with SHA-256 (verification only).
    RsaPkcs1v15(rsa::RsaPublicKey),
}

impl PublicKey {
    /// The algorithm this key verifies with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::EcdsaP256(_) => Algorithm::EcdsaP256,
            PublicKey::EcdsaP384(_) => Algorithm::EcdsaP384,
            PublicKey::Rsa(_) => Algorithm::RsaPssSha256,
            PublicKey::RsaPkcs1v15(_) => Algorithm::RsaPkcs1v15Sha256,
        }
    }

    /// The key material in one fixed encoding, independent of how the metadata wrote it
    /// (hex or PEM, keytype spelling, custom fields). Two key ids whose keys have the same
    /// material are the same key and count once toward a threshold.
    pub fn material(&self) -> Vec<u8> {
        let (tag, bytes): (&[u8], Vec<u8>) = match self {
            PublicKey::Ed25519(k) => (b"ed25519:", k.as_bytes().to_vec()),
            PublicKey::EcdsaP256(k) => (b"p256:", k.to_encoded_point(false).as_bytes().to_vec()),
            PublicKey::EcdsaP384(k) => (b"p384:", k.to_encoded_point(false).as_bytes().to_vec()),
            PublicKey::Rsa(k) | PublicKey::RsaPkcs1v15(k) => {
                use rsa::traits::PublicKeyParts;
                let mut v = k.n().to_bytes_be();
                v.push(b':');
                v.extend(k.e().to_bytes_be());
                (b"rsa:", v)
            }
        };
        let mut out = tag.to_vec();
        out.extend(bytes);
        out
    }

    /// Short fingerprint for people: SHA-256 of the key material, first 16 hex digits.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.material())[..8])
    }

    /// Verify a TUF signature (raw 64 bytes for Ed25519, DER for ECDSA, PSS for RSA) over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        use signature::Verifier;
        match self {
            PublicKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
                    KeyError::MalformedSignature(format!(
                        "Ed25519 signature must be 64 bytes, got {}",
                        sig.len()
                    ))
                })?;
                k.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            PublicKey::EcdsaP256(k) => {
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| {
                    KeyError::MalformedSignature("not a DER ECDSA P-256 signature".into())
                })?;
                k.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            PublicKey::EcdsaP384(k) => {
                let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| {
                    KeyError::MalformedSignature("not a DER ECDSA P-384 signature".into())
                })?;
                k.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            PublicKey::Rsa(k) => {
                let vk = rsa::pss::VerifyingKey::<Sha256>::new(k.clone());
                let sig = rsa::pss::Signature::try_from(sig)
                    .map_err(|_| KeyError::MalformedSignature("not an RSA-PSS signature".into()))?;
                vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            PublicKey::RsaPkcs1v15(k) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone());
                let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| {
                    KeyError::MalformedSignature("not an RSA PKCS#1 v1.5 signature".into())
                })?;
                vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

/// How many decoded public keys each thread remembers ([`Key::public_key`]).
const DECODED_KEYS: usize = 16;

thread_local! {
    /// Keys decoded on this thread, oldest first: (keytype, scheme, public, decoded).
    static DECODED: std::cell::RefCell<Vec<(String, String, String, PublicKey)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A public key object as it appears in metadata (`keytype`, `scheme`, `keyval`, custom fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// `keytype` as written (`ed25519`, `ecdsa`, `ecdsa-sha2-nistp256`, `rsa`, ...).
    pub keytype: String,
    /// `scheme` as written.
    pub scheme: String,
    /// `keyval.public` as written (hex or PEM).
    pub public: String,
    /// Members of `keyval` other than `public`.
    pub keyval_unrecognized: Map,
    /// Members of the key object other than `keytype`, `scheme`, `keyval` (e.g.
    /// `keyid_hash_algorithms`, `x-tuf-on-ci-keyowner`).
    pub unrecognized: Map,
}

impl Key {
    /// The TUF key object for a public key, in the encodings python-tuf and tuf-on-ci write:
    /// `ed25519` with a hex public key; ECDSA as keytype `ecdsa` with a PEM (SPKI) public key.
    pub fn from_public_key(pk: &PublicKey) -> Key {
        let public = match pk {
            PublicKey::Ed25519(k) => hex::encode(k.as_bytes()),
            PublicKey::EcdsaP256(k) => spki_pem(k),
            PublicKey::EcdsaP384(k) => spki_pem(k),
            PublicKey::Rsa(k) | PublicKey::RsaPkcs1v15(k) => spki_pem(k),
        };
        let keytype = match pk.algorithm() {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => "ecdsa",
            Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256 => "rsa",
        };
        Key {
            keytype: keytype.to_string(),
            scheme: pk.algorithm().scheme().to_string(),
            public,
            keyval_unrecognized: Map::new(),
            unrecognized: Map::new(),
        }
    }

    /// The key object as JSON.
    pub fn to_value(&self) -> Value {
        let mut keyval = self.keyval_unrecognized.clone();
        // An empty `public` is a key read without one (see `metadata::key_from_value`).
        if !self.public.is_empty() {
            keyval.insert("public".into(), Value::String(self.public.clone()));
        }
        let mut m = self.unrecognized.clone();
        m.insert("keytype".into(), self.keytype.clone().into());
        m.insert("scheme".into(), self.scheme.clone().into());
        m.insert("keyval".into(), Value::Object(keyval));
        Value::Object(m)
    }

    /// The key id a new key gets: SHA-256 of the canonical JSON of the key object, in hex.
    pub fn key_id(&self) -> KeyId {
        KeyId(hex::encode(self.to_value().canonical_sha256()))
    }

    /// Decode the public key, checking that keytype, scheme and key agree.
    ///
    /// Decoding an Ed25519 or ECDSA key decompresses a curve point (a field exponentiation);
    /// many roles signed by one key (hash bins, a thousand delegations to one online key) would
    /// pay it once per signature. The last few keys decoded on this thread are remembered by
    /// their exact keytype, scheme and public key text: the result for the same text is the
    /// same, so the memo changes nothing but the time.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let same = |(t, s, p, _): &(String, String, String, PublicKey)| {
            *t == self.keytype && *s == self.scheme && *p == self.public
        };
        if let Some(pk) = DECODED.with_borrow(|m| m.iter().find(|e| same(e)).map(|e| e.3.clone())) {
            return Ok(pk);
        }
        let pk = self.decode_public_key()?;
        DECODED.with_borrow_mut(|m| {
            if m.len() >= DECODED_KEYS {
                m.remove(0);
            }
            m.push((
                self.keytype.clone(),
                self.scheme.clone(),
                self.public.clone(),
                pk.clone(),
            ));
        });
        Ok(pk)
    }

    fn decode_public_key(&self) -> Result<PublicKey, KeyError> {
        let scheme = self.scheme.as_str();
        let keytype_ok = match scheme {
            "ed25519" => self.keytype == "ed25519",
            "ecdsa-sha2-nistp256" => {
                matches!(self.keytype.as_str(), "ecdsa" | "ecdsa-sha2-nistp256")
            }
            "ecdsa-sha2-nistp384" => {
                matches!(self.keytype.as_str(), "ecdsa" | "ecdsa-sha2-nistp384")
            }
            "rsassa-pss-sha256" | "rsa-pkcs1v15-sha256" => self.keytype == "rsa",
            other => return Err(KeyError::UnsupportedScheme(other.to_string())),
        };
        if !keytype_ok {
            return Err(KeyError::KeytypeMismatch {
                keytype: self.keytype.clone(),
                scheme: self.scheme.clone(),
            });
        }
        let bad = |reason: String| KeyError::BadPublicKey {
            scheme: self.scheme.clone(),
            reason,
        };
        let public = self.public.trim();
        match scheme {
            "ed25519" => {
                let bytes = decode_hex(public).map_err(&bad)?;
                let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    bad(format!(
                        "Ed25519 public key must be 32 bytes, got {}",
                        bytes.len()
                    ))
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&arr)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| bad("not a valid Ed25519 point".into()))
            }
            "ecdsa-sha2-nistp256" => {
                let pk = if is_pem(public) {
                    use p256::pkcs8::DecodePublicKey;
                    p256::PublicKey::from_public_key_pem(public)
                        .map_err(|e| bad(format!("not a P-256 SPKI PEM key ({e})")))?
                } else {
                    let bytes = decode_hex(public).map_err(&bad)?;
                    p256::PublicKey::from_sec1_bytes(&bytes)
                        .map_err(|_| bad("not a P-256 SEC1 point".into()))?
                };
                Ok(PublicKey::EcdsaP256(pk.into()))
            }
            "ecdsa-sha2-nistp384" => {
                let pk = if is_pem(public) {
                    use p384::pkcs8::DecodePublicKey;
                    p384::PublicKey::from_public_key_pem(public)
                        .map_err(|e| bad(format!("not a P-384 SPKI PEM key ({e})")))?
                } else {
                    let bytes = decode_hex(public).map_err(&bad)?;
                    p384::PublicKey::from_sec1_bytes(&bytes)
                        .map_err(|_| bad("not a P-384 SEC1 point".into()))?
                };
                Ok(PublicKey::EcdsaP384(pk.into()))
            }
            _ => {
                use rsa::pkcs8::DecodePublicKey;
                if !is_pem(public) {
                    return Err(bad("RSA public key must be SPKI PEM".into()));
                }
                let k = rsa::RsaPublicKey::from_public_key_pem(public)
                    .map_err(|e| bad(format!("not an RSA SPKI PEM key ({e})")))?;
                if scheme == "rsa-pkcs1v15-sha256" {
                    Ok(PublicKey::RsaPkcs1v15(k))
                } else {
                    Ok(PublicKey::Rsa(k))
                }
            }
        }
    }

    /// Verify a hex signature from metadata over `msg` with this key.
    pub fn verify_hex(&self, msg: &[u8], sig_hex: &str) -> Result<(), KeyError> {
        let pk = self.public_key()?;
        let sig = hex::decode(sig_hex)
            .map_err(|e| KeyError::MalformedSignature(format!("signature is not hex ({e})")))?;
        pk.verify(msg, &sig)
    }
}

fn is_pem(s: &str) -> bool {
    s.starts_with("-----BEGIN")
}

fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("public key is not hex ({e})"))
}

fn spki_pem<K: p256::pkcs8::EncodePublicKey>(k: &K) -> String {
    // Encoding a valid public key as PEM cannot fail; fall back to empty rather than panic.
    k.to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap_or_default()
}

/// Hash `msg` as the scheme requires before an ECDSA token signs the digest (PKCS#11 `CKM_ECDSA`
/// takes a digest). Ed25519 signs the message itself; returns `None` for it.
pub fn prehash(alg: Algorithm, msg: &[u8]) -> Option<Vec<u8>> {
    match alg {
        Algorithm::EcdsaP256 | Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256 => {
            Some(Sha256::digest(msg).to_vec())
        }
        Algorithm::EcdsaP384 => Some(Sha384::digest(msg).to_vec()),
        Algorithm::Ed25519 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::Signer as _;

    fn ed_key() -> (ed25519_dalek::SigningKey, Key) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let key = Key::from_public_key(&PublicKey::Ed25519(sk.verifying_key()));
        (sk, key)
    }

    #[test]
    fn rsa_pkcs1v15_sha256_keys_verify_as_python_tuf_does() {
        use rsa::pkcs8::EncodePublicKey;
        let mut rng = rand_core::OsRng;
        let sk = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let pem = sk
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let key = |scheme: &str| Key {
            keytype: "rsa".into(),
            scheme: scheme.into(),
            public: pem.clone(),
            keyval_unrecognized: Map::new(),
            unrecognized: Map::new(),
        };
        let msg = b"signed bytes";
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(sk.clone());
        let sig = signature::SignatureEncoding::to_vec(&signer.sign(msg));
        let pkcs1 = key("rsa-pkcs1v15-sha256");
        assert_eq!(
            pkcs1.public_key().unwrap().algorithm(),
            Algorithm::RsaPkcs1v15Sha256
        );
        pkcs1.verify_hex(msg, &hex::encode(&sig)).unwrap();
        assert_eq!(
            pkcs1.verify_hex(b"other bytes", &hex::encode(&sig)),
            Err(KeyError::BadSignature)
        );
        // The same signature under the PSS scheme does not verify: the schemes are not mixed.
        assert!(
            key("rsassa-pss-sha256")
                .verify_hex(msg, &hex::encode(&sig))
                .is_err()
        );
        // Both schemes name one key (it counts once toward a threshold).
        assert_eq!(
            pkcs1.public_key().unwrap().material(),
            key("rsassa-pss-sha256").public_key().unwrap().material()
        );
    }

    #[test]
    fn ed25519_key_object_and_id_match_python_tuf_form() {
        let (_, key) = ed_key();
        let v = key.to_value();
        let text = String::from_utf8(v.canonical_bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"keytype":"ed25519","keyval":{"public":""#),
            "{text}"
        );
        assert!(text.ends_with(r#""},"scheme":"ed25519"}"#), "{text}");
        assert_eq!(key.key_id().0, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn remembered_keys_follow_the_key_text() {
        let (sk, key) = ed_key();
        let other_sk = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let other = Key::from_public_key(&PublicKey::Ed25519(other_sk.verifying_key()));
        let msg = b"bytes to sign";
        let sig = hex::encode(sk.sign(msg).to_bytes());
        // Decoded (and remembered) first, then a key whose text differs must not reuse it.
        key.verify_hex(msg, &sig).unwrap();
        assert!(other.verify_hex(msg, &sig).is_err());
        // A key edited after it was decoded is decoded again.
        let mut edited = key.clone();
        edited.public = other.public.clone();
        assert!(edited.verify_hex(msg, &sig).is_err());
        edited.scheme = "ecdsa-sha2-nistp256".into();
        assert!(matches!(
            edited.public_key(),
            Err(KeyError::KeytypeMismatch { .. })
        ));
        // More keys than are remembered: each still decodes to itself.
        for n in 0..(DECODED_KEYS as u8 + 4) {
            let sk = ed25519_dalek::SigningKey::from_bytes(&[n + 20; 32]);
            let k = Key::from_public_key(&PublicKey::Ed25519(sk.verifying_key()));
            let sig = hex::encode(sk.sign(msg).to_bytes());
            k.verify_hex(msg, &sig).unwrap();
            k.verify_hex(msg, &sig).unwrap();
        }
        key.verify_hex(msg, &sig).unwrap();
    }

    #[test]
    fn ed25519_sign_verify_and_reject() {
        let (sk, key) = ed_key();
        let sig = sk.sign(b"hello").to_bytes();
        key.verify_hex(b"hello", &hex::encode(sig)).unwrap();
        assert_eq!(
            key.verify_hex(b"hellO", &hex::encode(sig)),
            Err(KeyError::BadSignature)
        );
        assert!(matches!(
            key.verify_hex(b"hello", &hex::encode(&sig[..63])),
            Err(KeyError::MalformedSignature(_))
        ));
        assert!(matches!(
            key.verify_hex(b"hello", "zz"),
            Err(KeyError::MalformedSignature(_))
        ));
    }

    #[test]
    fn ecdsa_pem_and_hex_spellings_are_the_same_key() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
        let vk = *sk.verifying_key();
        let pem_key = Key::from_public_key(&PublicKey::EcdsaP256(vk));
        assert_eq!(pem_key.keytype, "ecdsa");
        assert!(pem_key.public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem_key.public.ends_with("-----END PUBLIC KEY-----\n"));
        let hex_key = Key {
            keytype: "ecdsa-sha2-nistp256".into(),
            public: hex::encode(vk.to_encoded_point(false).as_bytes()),
            ..pem_key.clone()
        };
        let a = pem_key.public_key().unwrap();
        let b = hex_key.public_key().unwrap();
        assert_eq!(a.material(), b.material());
        assert_ne!(pem_key.key_id(), hex_key.key_id());
        let sig: p256::ecdsa::Signature = sk.sign(b"msg");
        let der = hex::encode(sig.to_der().as_bytes());
        pem_key.verify_hex(b"msg", &der).unwrap();
        hex_key.verify_hex(b"msg", &der).unwrap();
        // Raw r||s is not what TUF carries.
        assert!(
            pem_key
                .verify_hex(b"msg", &hex::encode(sig.to_bytes()))
                .is_err()
        );
    }

    #[test]
    fn scheme_decides_and_must_match_curve_and_keytype() {
        let sk = p384::ecdsa::SigningKey::from_slice(&[5u8; 48]).unwrap();
        let mut key = Key::from_public_key(&PublicKey::EcdsaP384(*sk.verifying_key()));
        assert_eq!(key.scheme, "ecdsa-sha2-nistp384");
        let sig: p384::ecdsa::Signature = sk.sign(b"m");
        key.verify_hex(b"m", &hex::encode(sig.to_der().as_bytes()))
            .unwrap();
        // A P-384 PEM declared as P-256 is refused, not misread.
        key.scheme = "ecdsa-sha2-nistp256".into();
        assert!(matches!(
            key.public_key(),
            Err(KeyError::BadPublicKey { .. })
        ));
        key.scheme = "ed25519".into();
        assert!(matches!(
            key.public_key(),
            Err(KeyError::KeytypeMismatch { .. })
        ));
        key.scheme = "dsa-sha1".into();
        assert!(matches!(
            key.public_key(),
            Err(KeyError::UnsupportedScheme(_))
        ));
    }

    #[test]
    fn custom_fields_change_the_key_id_and_survive() {
        let (_, mut key) = ed_key();
        let plain = key.key_id();
        key.unrecognized
            .insert("x-tuf-on-ci-keyowner".into(), "@alice".into());
        assert_ne!(key.key_id(), plain);
        let v = key.to_value();
        assert!(
            v.to_string()
                .contains("\"x-tuf-on-ci-keyowner\":\"@alice\"")
        );
    }
}
