//! Checkpoints as C2SP `tlog-checkpoint` signed notes (c2sp.org/signed-note,
//! c2sp.org/tlog-checkpoint), signed by the keyholders' keys: the note text to sign goes out
//! ([`SignedCheckpoint::to_sign`]), the signature comes back in
//! ([`SignedCheckpoint::add_signature`]); the driver asks the token
//! ([`crate::driver::log_dir::sign_note`]).
//!
//! ```text
//! registry.example/conclave-key-events
//! 14
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — registry.example/conclave-key-events AbCdEf...
//! ```
//!
//! Every keyholder signs with the key name equal to the origin (the log's identity is the root
//! role, not one key); the 4-byte key id tells the keys apart:
//!
//! | key | signature type | key id | signature |
//! |---|---|---|---|
//! | Ed25519 | `0x01` (signed-note) | `SHA-256(name \|\| 0x0A \|\| 0x01 \|\| 32-byte key)[:4]` | Ed25519 over the note text |
//! | ECDSA P-256 | `0x02` (signed-note: as transparency-dev/witness and Rekor) | `SHA-256(DER SPKI)[:4]` | ASN.1 DER ECDSA over SHA-256 of the note text |
//! | ECDSA P-384 | `0xff` + `ecdsa-sha2-nistp384` (Conclave's, see below) | `SHA-256(name \|\| 0x0A \|\| 0xff \|\| "ecdsa-sha2-nistp384" \|\| DER SPKI)[:4]` | ASN.1 DER ECDSA over SHA-384 of the note text |
//!
//! Type `0x02` hashes with SHA-256 whatever the curve; a P-384 token key signs with SHA-384 (the
//! TUF scheme `ecdsa-sha2-nistp384` it is listed under), so its signatures are not type `0x02`.
//! signed-note reserves `0xff` for types it has not assigned, followed by a longer identifier:
//! Conclave uses the TUF scheme name, which defines the algorithm exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::tuf::key::{Algorithm, Key, KeyId, PublicKey};

use super::event::RoleKeys;
use super::merkle::Hash;

/// The em dash that starts a signature line.
const DASH: char = '\u{2014}';
/// Verifiers must accept at least 16 signatures; Conclave reads at most this many.
pub const MAX_SIGNATURES: usize = 64;
/// The identifier after type byte `0xff` for ECDSA P-384 with SHA-384.
pub const P384_TYPE_ID: &[u8] = b"ecdsa-sha2-nistp384";

/// Why a checkpoint could not be read or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is not in the signed-note / tlog-checkpoint format.
    #[error("line {line}: {message}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The key cannot sign notes.
    #[error("{0}")]
    UnsupportedKey(String),
    /// The signer failed.
    #[error("{0}")]
    Signer(String),
}

fn format_err(line: usize, message: impl Into<String>) -> NoteError {
    NoteError::Format {
        line,
        message: message.into(),
    }
}

/// The three lines of a checkpoint (Conclave writes no extension lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (a schema-less URL, no spaces or `+`).
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// RFC 9162 root hash of the entries.
    pub root: Hash,
}

/// Whether `s` is a valid origin / key name: non-empty, no Unicode spaces, no `+`, no control
/// characters.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

impl Checkpoint {
    /// The note text the keyholders sign: origin, size, base64 root hash, each ending in a
    /// newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        if lines.len() < 3 {
            return Err(format_err(
                lines.len() + 1,
                "a checkpoint has an origin, a tree size and a root hash line",
            ));
        }
        if lines.len() > 3 {
            return Err(format_err(
                4,
                "extension lines are not used in Conclave's checkpoints",
            ));
        }
        let origin = lines[0];
        if !valid_name(origin) {
            return Err(format_err(
                1,
                "the origin must be non-empty, without spaces or '+'",
            ));
        }
        let size_s = lines[1];
        let size_ok = !size_s.is_empty()
            && size_s.bytes().all(|b| b.is_ascii_digit())
            && (size_s == "0" || !size_s.starts_with('0'));
        let size = size_s
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| {
                format_err(
                    2,
                    format!(
                        "tree size \"{}\" is not a decimal number without leading zeros",
                        crate::text::show(size_s)
                    ),
                )
            })?;
        let root: Hash = B64
            .decode(lines[2])
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format_err(3, "the root hash is not the base64 of 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// One signature line: key name, 4-byte key id, signature bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name (Conclave: the origin).
    pub name: String,
    /// Key id (big-endian).
    pub key_id: [u8; 4],
    /// The signature.
    pub sig: Vec<u8>,
}

impl NoteSignature {
    /// The line, without its newline.
    pub fn line(&self) -> String {
        let mut b = self.key_id.to_vec();
        b.extend_from_slice(&self.sig);
        format!("{DASH} {} {}", self.name, B64.encode(b))
    }
}

/// A checkpoint with its signature lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Signatures in file order.
    pub signatures: Vec<NoteSignature>,
}

/// The note key id of a public key under key name `name`, or why it cannot sign notes.
pub fn note_key_id(name: &str, pk: &PublicKey) -> Result<[u8; 4], NoteError> {
    let mut h = Sha256::new();
    match pk {
        PublicKey::Ed25519(k) => {
            h.update(name.as_bytes());
            h.update([0x0a, 0x01]);
            h.update(k.as_bytes());
        }
        PublicKey::EcdsaP256(k) => {
            use p256::pkcs8::EncodePublicKey;
            let der = k
                .to_public_key_der()
                .map_err(|e| NoteError::UnsupportedKey(format!("P-256 key has no SPKI: {e}")))?;
            h.update(der.as_bytes());
        }
        PublicKey::EcdsaP384(k) => {
            use p384::pkcs8::EncodePublicKey;
            let der = k
                .to_public_key_der()
                .map_err(|e| NoteError::UnsupportedKey(format!("P-384 key has no SPKI: {e}")))?;
            h.update(name.as_bytes());
            h.update([0x0a, 0xff]);
            h.update(P384_TYPE_ID);
            h.update(der.as_bytes());
        }
        PublicKey::Rsa(_) | PublicKey::RsaPkcs1v15(_) => {
            return Err(NoteError::UnsupportedKey(
                "RSA keys cannot sign checkpoints (Conclave signs with Ed25519 and ECDSA keys only)"
                    .into(),
            ));
        }
    }
    let d = h.finalize();
    Ok([d[0], d[1], d[2], d[3]])
}

/// The outcome of counting a checkpoint's signatures against a role's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteCount {
    /// Key ids whose signature verified (one per distinct key material).
    pub signed: Vec<KeyId>,
    /// Signatures from known keys that did not verify, with the reason.
    pub bad: Vec<(KeyId, String)>,
    /// Signatures from keys the role does not list (ignored, as signed-note requires).
    pub unknown: usize,
    /// Signatures from a key already counted.
    pub duplicates: usize,
    /// The role's threshold.
    pub threshold: u64,
}

impl NoteCount {
    /// Threshold met and no known key's signature failed.
    pub fn verified(&self) -> bool {
        self.bad.is_empty() && self.signed.len() as u64 >= self.threshold
    }

    /// "2 of 3 keys, threshold 2".
    pub fn summary(&self, listed: usize) -> String {
        format!(
            "{} of {listed} root keys signed, threshold {}{}{}",
            self.signed.len(),
            self.threshold,
            if self.unknown > 0 {
                format!(", {} signature(s) from unknown keys ignored", self.unknown)
            } else {
                String::new()
            },
            if self.bad.is_empty() {
                String::new()
            } else {
                format!(", {} BAD signature(s)", self.bad.len())
            }
        )
    }
}

impl SignedCheckpoint {
    /// An unsigned checkpoint.
    pub fn new(checkpoint: Checkpoint) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint,
            signatures: Vec::new(),
        }
    }

    /// The file: the note text, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut s = self.checkpoint.body();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.line());
            s.push('\n');
        }
        s
    }

    /// Read a checkpoint file. A checkpoint with no signature lines yet (as `conclave log append`
    /// writes it) is read too; counting its signatures then finds none.
    pub fn parse(text: &str) -> Result<SignedCheckpoint, NoteError> {
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && *c != '\n')
        {
            return Err(format_err(
                text.chars().take(i).filter(|c| *c == '\n').count() + 1,
                format!("control character U+{:04X} in the note", u32::from(c)),
            ));
        }
        if !text.ends_with('\n') {
            return Err(format_err(
                text.lines().count().max(1),
                "a note ends with a newline",
            ));
        }
        // The text is separated from the signatures by the last blank line.
        let Some(split) = text.rfind("\n\n") else {
            return Err(format_err(
                text.lines().count(),
                "no blank line between the checkpoint and its signatures",
            ));
        };
        let body = &text[..split + 1];
        let checkpoint = Checkpoint::parse_body(body)?;
        let body_lines = body.lines().count() + 1;
        let mut signatures = Vec::new();
        for (i, line) in text[split + 2..].lines().enumerate() {
            let n = body_lines + 1 + i;
            let rest = line
                .strip_prefix(DASH)
                .and_then(|r| r.strip_prefix(' '))
                .ok_or_else(|| format_err(n, "a signature line starts with \"— \""))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| format_err(n, "a signature line is \"— NAME BASE64\""))?;
            if !valid_name(name) {
                return Err(format_err(n, format!("bad key name \"{name}\"")));
            }
            let raw = B64
                .decode(b64)
                .map_err(|e| format_err(n, format!("signature is not base64 ({e})")))?;
            if raw.len() < 5 {
                return Err(format_err(n, "signature shorter than a key id"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                sig: raw[4..].to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(format_err(
                    n,
                    format!("more than {MAX_SIGNATURES} signatures"),
                ));
            }
        }
        Ok(SignedCheckpoint {
            checkpoint,
            signatures,
        })
    }

    /// The bytes `key` signs to add its signature (key name: the origin): the note text.
    /// Refused for a key note signatures cannot carry and for a key that already signed.
    pub fn to_sign(&self, key: &Key) -> Result<Vec<u8>, NoteError> {
        self.new_signer(key)?;
        Ok(self.checkpoint.body().into_bytes())
    }

    /// Add the signature `sig` that `key` made over [`SignedCheckpoint::to_sign`]'s bytes: it
    /// must verify against the key over this note text; a key that already signed is refused.
    pub fn add_signature(&mut self, key: &Key, sig: Vec<u8>) -> Result<NoteSignature, NoteError> {
        let (pk, key_id) = self.new_signer(key)?;
        pk.verify(self.checkpoint.body().as_bytes(), &sig)
            .map_err(|e| {
                NoteError::Signer(format!(
                    "the signature of key {} does not verify over the checkpoint: {e}",
                    key.key_id()
                ))
            })?;
        let s = NoteSignature {
            name: self.checkpoint.origin.clone(),
            key_id,
            sig,
        };
        self.signatures.push(s.clone());
        Ok(s)
    }

    /// `key`'s public key and note key id, if it may add a signature (a key that already
    /// signed may not).
    fn new_signer(&self, key: &Key) -> Result<(PublicKey, [u8; 4]), NoteError> {
        let pk = key
            .public_key()
            .map_err(|e| NoteError::UnsupportedKey(e.to_string()))?;
        let name = &self.checkpoint.origin;
        let key_id = note_key_id(name, &pk)?;
        if self
            .signatures
            .iter()
            .any(|s| s.name == *name && s.key_id == key_id)
        {
            return Err(NoteError::Signer(format!(
                "key {} already signed this checkpoint",
                key.key_id()
            )));
        }
        Ok((pk, key_id))
    }

    /// Count the signatures by the role's keys (the root role: its keys and threshold). Each
    /// distinct key material counts once; signatures from unknown keys are ignored.
    pub fn count(&self, role: &RoleKeys) -> NoteCount {
        let body = self.checkpoint.body();
        let mut out = NoteCount {
            signed: Vec::new(),
            bad: Vec::new(),
            unknown: 0,
            duplicates: 0,
            threshold: role.threshold,
        };
        let known: Vec<(KeyId, PublicKey, [u8; 4])> = role
            .keys
            .iter()
            .filter_map(|(id, k): (&KeyId, &Key)| {
                let pk = k.public_key().ok()?;
                let kid = note_key_id(&self.checkpoint.origin, &pk).ok()?;
                Some((id.clone(), pk, kid))
            })
            .collect();
        let mut counted: Vec<Vec<u8>> = Vec::new();
        for s in &self.signatures {
            let Some((id, pk, _)) = known
                .iter()
                .find(|(_, _, kid)| s.name == self.checkpoint.origin && *kid == s.key_id)
            else {
                out.unknown += 1;
                continue;
            };
            if let Algorithm::Ed25519 | Algorithm::EcdsaP256 | Algorithm::EcdsaP384 = pk.algorithm()
            {
                match pk.verify(body.as_bytes(), &s.sig) {
                    Ok(()) => {
                        let m = pk.material();
                        if counted.contains(&m) {
                            out.duplicates += 1;
                        } else {
                            counted.push(m);
                            out.signed.push(id.clone());
                        }
                    }
                    Err(e) => out.bad.push((id.clone(), e.to_string())),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::log_dir::sign_note;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "registry.example/keys".into(),
            size: 14,
            root: [7u8; 32],
        }
    }

    fn role(signers: &[&SoftwareSigner], threshold: u64) -> RoleKeys {
        RoleKeys {
            threshold,
            keys: signers
                .iter()
                .map(|s| (s.key_id(), s.key().clone()))
                .collect(),
        }
    }

    #[test]
    fn body_and_round_trip() {
        let c = cp();
        assert_eq!(
            c.body(),
            "registry.example/keys\n14\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        let mut s = SignedCheckpoint::new(c);
        let mut a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let mut b = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[2; 32]).unwrap();
        let mut p = SoftwareSigner::from_seed(Algorithm::EcdsaP384, &[3; 48]).unwrap();
        sign_note(&mut s, &mut a).unwrap();
        sign_note(&mut s, &mut b).unwrap();
        sign_note(&mut s, &mut p).unwrap();
        assert!(sign_note(&mut s, &mut a).is_err(), "same key twice");
        let text = s.to_text();
        assert!(
            text.contains("\n\n\u{2014} registry.example/keys "),
            "{text}"
        );
        let back = SignedCheckpoint::parse(&text).unwrap();
        assert_eq!(back, s);
        let r = role(&[&a, &b, &p], 3);
        let count = back.count(&r);
        assert!(count.verified(), "{count:?}");
        assert_eq!(count.signed.len(), 3);
        // Threshold 3 of 3 with one signature removed: not verified.
        let mut two = back.clone();
        two.signatures.pop();
        assert!(!two.count(&r).verified());
        // Another checkpoint (a different size) with these signatures: every one is bad.
        let mut other = back.clone();
        other.checkpoint.size = 15;
        let c = other.count(&r);
        assert_eq!(c.bad.len(), 3);
        assert!(!c.verified());
        // A key the role does not list is ignored.
        let mut stranger = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 32]).unwrap();
        let mut plus = back.clone();
        sign_note(&mut plus, &mut stranger).unwrap();
        assert_eq!(plus.count(&r).unknown, 1);
    }

    #[test]
    fn the_note_text_goes_out_and_only_a_signature_over_it_comes_in() {
        let mut s = SignedCheckpoint::new(cp());
        let mut a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let msg = s.to_sign(a.key()).unwrap();
        assert_eq!(msg, s.checkpoint.body().into_bytes());
        // A signature over other bytes is refused and nothing is added.
        let other = a.sign(b"another checkpoint").unwrap();
        let e = s.add_signature(a.key(), other).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        assert!(s.signatures.is_empty());
        let sig = a.sign(&msg).unwrap();
        s.add_signature(a.key(), sig.clone()).unwrap();
        // A key that signed is refused before it signs again, and after.
        assert!(s.to_sign(a.key()).is_err());
        assert!(s.add_signature(a.key(), sig).is_err());
        assert_eq!(s.signatures.len(), 1);
    }

    #[test]
    fn ed25519_key_id_is_the_signed_note_one() {
        // signed-note: key ID = SHA-256(name || 0x0A || 0x01 || key)[:4].
        let a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 32]).unwrap();
        let pk = a.key().public_key().unwrap();
        let PublicKey::Ed25519(k) = &pk else { panic!() };
        let mut m = b"n.example/x\n\x01".to_vec();
        m.extend_from_slice(k.as_bytes());
        let d = Sha256::digest(&m);
        assert_eq!(note_key_id("n.example/x", &pk).unwrap(), d[..4]);
    }

    #[test]
    fn malformed_notes_name_the_line() {
        let ok = SignedCheckpoint::new(cp()).to_text();
        assert!(SignedCheckpoint::parse(&ok).unwrap().signatures.is_empty());
        let cases = [
            (ok.replace("14\n", "014\n"), "line 2"),
            (ok.replace("14\n", "x\n"), "line 2"),
            (ok.replace("BwcH", "????"), "line 3"),
            (ok.replace("registry.example/keys", "a b"), "line 1"),
            (format!("{ok}- x AAAAAAA=\n"), "line 5"),
            (format!("{ok}\u{2014} x !!!\n"), "line 5"),
            (ok.trim_end().to_string(), "newline"),
            (ok.replace("\n\n", "\n"), "blank line"),
            (ok.replace("14", "1\u{7}4"), "control character"),
        ];
        for (text, want) in cases {
            let e = SignedCheckpoint::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
