//! Signature bundles, the format: one keyholder's detached signature over one metadata file
//! (role, version, SHA-256 of the canonical `signed` bytes, key id, signature, token serial,
//! time), as JSON. Pure: the ceremony engine writes them into its export, the edges
//! (`transport::bundle`, `conclave tuf-on-ci apply`) read and merge them.

use std::fmt;

use time::OffsetDateTime;

use crate::text::show;
use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::KeyId;
use crate::tuf::metadata::{AnyMetadata, Expires};
use crate::tuf::parse::{FieldError, Fields};

/// `_type` of a bundle file.
pub const BUNDLE_TYPE: &str = "conclave-signature-bundle";

/// Largest bundle file accepted (they are a few hundred bytes).
pub const MAX_BUNDLE_SIZE: u64 = 64 * 1024;

/// One keyholder's signature over one metadata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// Role of the signed metadata (`root`, `targets`, ...).
    pub role: String,
    /// Version of the signed metadata.
    pub version: u64,
    /// Hex SHA-256 of the canonical `signed` bytes the signature covers.
    pub signed_sha256: String,
    /// Key id of the signing key.
    pub keyid: KeyId,
    /// Hex signature as TUF carries it.
    pub sig: String,
    /// Serial of the token that holds the key, when it was a token.
    pub token_serial: Option<String>,
    /// When it was signed (RFC 3339).
    pub time: String,
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle file.
    #[error("{file}: {reason}")]
    Malformed {
        /// Bundle file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The bundle does not belong to this metadata, or its signature cannot be used.
    #[error("{file}: {reason}")]
    Refused {
        /// Bundle file.
        file: String,
        /// Why.
        reason: String,
    },
}

impl Bundle {
    /// A bundle for a signature made over `md`'s canonical signed bytes.
    pub fn new(
        md: &AnyMetadata,
        keyid: KeyId,
        sig: &[u8],
        token_serial: Option<String>,
        time: OffsetDateTime,
    ) -> Bundle {
        Bundle {
            role: md.role_type().as_str().to_string(),
            version: md.common().version,
            signed_sha256: hex::encode(sha256(md.signed_bytes())),
            keyid,
            sig: hex::encode(sig),
            token_serial,
            time: Expires::from_time(time).raw,
        }
    }

    /// The file as written (indented JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("_type".into(), BUNDLE_TYPE.into());
        m.insert("role".into(), self.role.clone().into());
        m.insert("version".into(), self.version.into());
        m.insert("signed_sha256".into(), self.signed_sha256.clone().into());
        m.insert("keyid".into(), self.keyid.0.clone().into());
        m.insert("sig".into(), self.sig.clone().into());
        if let Some(s) = &self.token_serial {
            m.insert("token_serial".into(), s.clone().into());
        }
        m.insert("time".into(), self.time.clone().into());
        Value::Object(m).to_pretty_json().into_bytes()
    }

    /// Read a bundle file; `file` names it in errors.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Bundle, BundleError> {
        let malformed = |reason: String| BundleError::Malformed {
            file: file.to_string(),
            reason,
        };
        let v =
            Value::parse_limited(bytes, MAX_BUNDLE_SIZE).map_err(|e| malformed(e.to_string()))?;
        let field = |e: FieldError| malformed(e.to_string());
        let mut f = Fields::new(v, "$").map_err(field)?;
        let ty = f.string("_type").map_err(field)?;
        if ty != BUNDLE_TYPE {
            return Err(malformed(format!(
                "$._type: expected \"{BUNDLE_TYPE}\", found \"{}\"",
                show(&ty)
            )));
        }
        let b = Bundle {
            role: f.string("role").map_err(field)?,
            version: f.u64("version").map_err(field)?,
            signed_sha256: f.string("signed_sha256").map_err(field)?,
            keyid: KeyId(f.string("keyid").map_err(field)?),
            sig: f.string("sig").map_err(field)?,
            token_serial: f.opt_string("token_serial").map_err(field)?,
            time: f.string("time").map_err(field)?,
        };
        let digest_ok =
            b.signed_sha256.len() == 64 && b.signed_sha256.bytes().all(|c| c.is_ascii_hexdigit());
        if !digest_ok {
            return Err(malformed(
                "$.signed_sha256: expected 64 hex digits".to_string(),
            ));
        }
        if hex::decode(&b.sig).map_or(true, |s| s.is_empty()) {
            return Err(malformed(
                "$.sig: expected a non-empty hex signature".into(),
            ));
        }
        Ok(b)
    }
}

impl fmt::Display for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} v{} signed by {}{} at {}",
            show(&self.role.to_string()),
            self.version,
            show(&self.keyid.to_string()),
            self.token_serial
                .as_ref()
                .map(|s| format!(" (token {})", show(s)))
                .unwrap_or_default(),
            show(&self.time.to_string())
        )
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}
