//! in-toto layouts: read one (the classic metablock `{"signed": {"_type": "layout", ...},
//! "signatures": [...]}`, or a DSSE envelope whose payload is a layout), summarise it for review
//! (expiry, functionaries' keys, steps, inspections), and sign it with a keyholder's [`Signer`].
//!
//! A metablock's signatures are over securesystemslib's canonical JSON of `signed`, hex encoded:
//! the same bytes and encoding as TUF metadata, so Conclave's canonical JSON and signers sign it as
//! they sign roles. A DSSE envelope's signatures are over the DSSE pre-authentication encoding
//! (PAE) of the payload, base64 encoded. Pure: bytes in, bytes out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::signer::{Signer, SignerError};
use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::KeyId;
use crate::tuf::parse::{FieldError, Fields};

/// The DSSE payload type of in-toto layouts and links.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Why a layout could not be read or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Not JSON, or not a layout.
    #[error("{0}")]
    Format(String),
    /// A field of the layout.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// The signer failed.
    #[error("{0}")]
    Signer(String),
}

/// One signature: key id and signature bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutSignature {
    /// The key id (SHA-256 of the canonical key object, as TUF and in-toto compute it).
    pub keyid: KeyId,
    /// Signature bytes (DER for ECDSA, 64 bytes for Ed25519).
    pub sig: Vec<u8>,
}

/// A layout file as read.
#[derive(Clone, Debug)]
pub enum LayoutFile {
    /// The classic metablock.
    Metablock {
        /// `signed`, the layout.
        signed: Value,
        /// Signatures.
        signatures: Vec<LayoutSignature>,
    },
    /// A DSSE envelope with a layout payload.
    Dsse {
        /// The payload bytes (JSON of the layout), exactly as carried.
        payload: Vec<u8>,
        /// The layout parsed from the payload.
        layout: Value,
        /// Signatures.
        signatures: Vec<LayoutSignature>,
    },
}

/// A step of a layout, for review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSummary {
    /// Step name.
    pub name: String,
    /// Expected command, joined by spaces.
    pub expected_command: String,
    /// Functionaries' key ids.
    pub pubkeys: Vec<String>,
    /// Signatures (links) needed.
    pub threshold: u64,
}

/// What a keyholder reviews before signing a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutSummary {
    /// `expires`.
    pub expires: String,
    /// Functionaries' keys: (key id, scheme).
    pub keys: Vec<(String, String)>,
    /// Steps in order.
    pub steps: Vec<StepSummary>,
    /// Inspections: (name, run command).
    pub inspections: Vec<(String, String)>,
    /// `readme`.
    pub readme: String,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn sig_list(v: Vec<Value>, path: &str, hex_sig: bool) -> Result<Vec<LayoutSignature>, LayoutError> {
    let mut out = Vec::new();
    for (i, s) in v.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut f = Fields::new(s, &p)?;
        let keyid = KeyId(f.string("keyid")?);
        let raw = f.string("sig")?;
        let sig = if hex_sig {
            hex::decode(&raw).map_err(|e| LayoutError::Format(format!("{p}.sig: not hex ({e})")))?
        } else {
            B64.decode(&raw)
                .map_err(|e| LayoutError::Format(format!("{p}.sig: not base64 ({e})")))?
        };
        out.push(LayoutSignature { keyid, sig });
    }
    Ok(out)
}

fn check_layout(v: &Value, path: &str) -> Result<(), LayoutError> {
    let ty = v
        .as_object()
        .and_then(|m| m.get("_type"))
        .and_then(Value::as_str);
    if ty != Some("layout") {
        return Err(LayoutError::Format(format!(
            "{path}._type: expected \"layout\", found {}",
            ty.map_or("nothing".to_string(), |t| format!("\"{t}\""))
        )));
    }
    Ok(())
}

/// DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl LayoutFile {
    /// Read a layout file (metablock or DSSE envelope).
    pub fn from_bytes(bytes: &[u8]) -> Result<LayoutFile, LayoutError> {
        let v = Value::parse(bytes).map_err(|e| LayoutError::Format(e.to_string()))?;
        let is_dsse = v.as_object().is_some_and(|m| m.contains_key("payloadType"));
        let mut f = Fields::new(v, "$")?;
        if is_dsse {
            let ty = f.string("payloadType")?;
            if ty != PAYLOAD_TYPE {
                return Err(LayoutError::Format(format!(
                    "$.payloadType: expected \"{PAYLOAD_TYPE}\", found \"{}\"",
                    crate::text::show(&ty)
                )));
            }
            let payload = B64
                .decode(f.string("payload")?)
                .map_err(|e| LayoutError::Format(format!("$.payload: not base64 ({e})")))?;
            let layout = Value::parse(&payload)
                .map_err(|e| LayoutError::Format(format!("$.payload: {e}")))?;
            check_layout(&layout, "$.payload")?;
            let signatures = sig_list(f.array("signatures")?, "$.signatures", false)?;
            Ok(LayoutFile::Dsse {
                payload,
                layout,
                signatures,
            })
        } else {
            let signed = f.take("signed")?;
            check_layout(&signed, "$.signed")?;
            let signatures = sig_list(f.array("signatures")?, "$.signatures", true)?;
            Ok(LayoutFile::Metablock { signed, signatures })
        }
    }

    /// The layout itself.
    pub fn layout(&self) -> &Value {
        match self {
            LayoutFile::Metablock { signed, .. } => signed,
            LayoutFile::Dsse { layout, .. } => layout,
        }
    }

    /// The bytes every signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        match self {
            LayoutFile::Metablock { signed, .. } => signed.canonical_bytes(),
            LayoutFile::Dsse { payload, .. } => pae(PAYLOAD_TYPE, payload),
        }
    }

    /// The signatures.
    pub fn signatures(&self) -> &[LayoutSignature] {
        match self {
            LayoutFile::Metablock { signatures, .. } | LayoutFile::Dsse { signatures, .. } => {
                signatures
            }
        }
    }

    /// What to review.
    pub fn summary(&self) -> Result<LayoutSummary, LayoutError> {
        let mut f = Fields::new(self.layout().clone(), "layout")?;
        let expires = f.string("expires")?;
        let keys = f
            .map("keys")?
            .iter()
            .map(|(id, k)| {
                let scheme = k
                    .as_object()
                    .and_then(|m| m.get("scheme"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                (id.clone(), scheme)
            })
            .collect();
        let mut steps = Vec::new();
        for (i, s) in f.array("steps")?.into_iter().enumerate() {
            let mut sf = Fields::new(s, &format!("layout.steps[{i}]"))?;
            steps.push(StepSummary {
                name: sf.string("name")?,
                expected_command: strings(&sf.take_opt("expected_command").unwrap_or(Value::Null))
                    .join(" "),
                pubkeys: strings(&sf.take_opt("pubkeys").unwrap_or(Value::Null)),
                threshold: sf.opt_u64("threshold")?.unwrap_or(1),
            });
        }
        let mut inspections = Vec::new();
        for (i, s) in f
            .take_opt("inspect")
            .map(|v| match v {
                Value::Array(a) => a,
                _ => Vec::new(),
            })
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let mut sf = Fields::new(s, &format!("layout.inspect[{i}]"))?;
            inspections.push((
                sf.string("name")?,
                strings(&sf.take_opt("run").unwrap_or(Value::Null)).join(" "),
            ));
        }
        let readme = f.opt_string("readme")?.unwrap_or_default();
        Ok(LayoutSummary {
            expires,
            keys,
            steps,
            inspections,
            readme,
        })
    }

    /// Sign with `signer` (key id: the SHA-256 of its canonical key object) and add the
    /// signature, replacing an earlier one by the same key id.
    pub fn add_signature(&mut self, signer: &mut dyn Signer) -> Result<KeyId, LayoutError> {
        let msg = self.signed_message();
        let sig = signer
            .sign(&msg)
            .map_err(|e: SignerError| LayoutError::Signer(e.to_string()))?;
        let keyid = signer.key_id();
        let list = match self {
            LayoutFile::Metablock { signatures, .. } | LayoutFile::Dsse { signatures, .. } => {
                signatures
            }
        };
        list.retain(|s| s.keyid != keyid);
        list.push(LayoutSignature {
            keyid: keyid.clone(),
            sig,
        });
        Ok(keyid)
    }

    /// Add a signature made elsewhere (a token's, already verified by the caller) under
    /// `keyid`, replacing an earlier one by the same key id.
    pub fn add_signature_bytes(&mut self, keyid: KeyId, sig: Vec<u8>) {
        let list = match self {
            LayoutFile::Metablock { signatures, .. } | LayoutFile::Dsse { signatures, .. } => {
                signatures
            }
        };
        list.retain(|s| s.keyid != keyid);
        list.push(LayoutSignature { keyid, sig });
    }

    /// The file, as JSON (payload and `signed` unchanged).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let sigs = |hex_sig: bool| {
            Value::Array(
                self.signatures()
                    .iter()
                    .map(|s| {
                        let mut m = Map::new();
                        m.insert("keyid".into(), s.keyid.0.clone().into());
                        let enc = if hex_sig {
                            hex::encode(&s.sig)
                        } else {
                            B64.encode(&s.sig)
                        };
                        m.insert("sig".into(), enc.into());
                        Value::Object(m)
                    })
                    .collect(),
            )
        };
        let mut m = Map::new();
        match self {
            LayoutFile::Metablock { signed, .. } => {
                m.insert("signed".into(), signed.clone());
                m.insert("signatures".into(), sigs(true));
            }
            LayoutFile::Dsse { payload, .. } => {
                m.insert("payload".into(), B64.encode(payload).into());
                m.insert("payloadType".into(), PAYLOAD_TYPE.into());
                m.insert("signatures".into(), sigs(false));
            }
        }
        Value::Object(m).to_pretty_json().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::key::Algorithm;

    const LAYOUT: &str = r#"{"_type":"layout","expires":"2030-01-01T00:00:00Z","keys":{"ab":{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}},"readme":"","steps":[{"_type":"step","name":"build","expected_command":["make"],"pubkeys":["ab"],"threshold":1,"expected_materials":[],"expected_products":[]}],"inspect":[{"_type":"inspection","name":"check","run":["true"],"expected_materials":[],"expected_products":[]}]}"#;

    #[test]
    fn metablock_and_dsse_sign_and_verify_over_the_right_bytes() {
        let mut s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[5; 32]).unwrap();
        let mb = format!(r#"{{"signed":{LAYOUT},"signatures":[]}}"#);
        let mut f = LayoutFile::from_bytes(mb.as_bytes()).unwrap();
        let sum = f.summary().unwrap();
        assert_eq!(sum.steps[0].name, "build");
        assert_eq!(sum.steps[0].expected_command, "make");
        assert_eq!(sum.inspections, vec![("check".into(), "true".into())]);
        f.add_signature(&mut s).unwrap();
        let back = LayoutFile::from_bytes(&f.to_file_bytes()).unwrap();
        let sig = &back.signatures()[0];
        let pk = s.key().public_key().unwrap();
        pk.verify(&back.layout().canonical_bytes(), &sig.sig)
            .unwrap();
        let env = format!(
            r#"{{"payload":"{}","payloadType":"{PAYLOAD_TYPE}","signatures":[]}}"#,
            B64.encode(LAYOUT)
        );
        let mut d = LayoutFile::from_bytes(env.as_bytes()).unwrap();
        d.add_signature(&mut s).unwrap();
        let back = LayoutFile::from_bytes(&d.to_file_bytes()).unwrap();
        let msg = pae(PAYLOAD_TYPE, LAYOUT.as_bytes());
        assert!(msg.starts_with(b"DSSEv1 28 application/vnd.in-toto+json "));
        pk.verify(&msg, &back.signatures()[0].sig).unwrap();
        assert!(
            LayoutFile::from_bytes(br#"{"signed":{"_type":"link"},"signatures":[]}"#)
                .unwrap_err()
                .to_string()
                .contains("expected \"layout\"")
        );
    }
}
