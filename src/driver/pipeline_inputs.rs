//! The input files of the pipeline commands outside a ceremony (`conclave rstuf review|sign`,
//! `conclave intoto show|sign`): each read whole but bounded ([`DEFAULT_MAX_FILE_SIZE`]; a
//! named pipe or a device at the name is refused, never waited on), then parsed and checked by
//! the pure core ([`crate::tuf::rstuf`], [`crate::intoto`], [`crate::tuf::verify`]); every
//! refusal names the file and, where there is one, the JSON field. The command line renders
//! what they return.

use std::path::Path;

use crate::folder::read_limited;
use crate::intoto::{LayoutFile, LayoutSummary};
use crate::text::show_message;
use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf::{self, Pending, PendingReview, RstufError};
use crate::tuf::verify::trust_root;

use super::signing_key::SigningError;

/// A file read whole, at most [`DEFAULT_MAX_FILE_SIZE`] bytes, a regular file.
fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    read_limited(path, DEFAULT_MAX_FILE_SIZE).map_err(SigningError::Io)
}

/// The pure core's refusal of an RSTUF file (it names the file and the field).
fn invalid(e: RstufError) -> SigningError {
    SigningError::Invalid(show_message(&e.to_string()))
}

/// Which of RSTUF's files [`read_rstuf_file`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RstufKind {
    /// RSTUF's pending file (`GET /api/v1/metadata/sign/`: a `data` member).
    PendingFile,
    /// A bootstrap's `ceremony-payload.json` (`settings` and `metadata.root`).
    CeremonyPayload,
    /// An `update-payload.json` (`metadata.root` alone).
    UpdatePayload,
}

impl RstufKind {
    /// How the review names the kind.
    pub fn name(self) -> &'static str {
        match self {
            RstufKind::PendingFile => "RSTUF pending file",
            RstufKind::CeremonyPayload => "RSTUF ceremony payload (bootstrap)",
            RstufKind::UpdatePayload => "RSTUF update payload",
        }
    }
}

/// An RSTUF file, checked: what it is, the root it carries (as a pending file: for a payload,
/// no trusted root and no other roles) and that root's review.
#[derive(Debug)]
pub struct RstufFile {
    /// Which file it is.
    pub kind: RstufKind,
    /// The root it carries.
    pub pending: Pending,
    /// The root's signatures counted (by itself and by the root it replaces).
    pub review: PendingReview,
}

/// Parse and check an RSTUF file's bytes (`file` names it in errors): a pending file by every
/// rule of [`rstuf::parse_pending`], a ceremony payload by every rule of
/// [`rstuf::read_ceremony_payload`] (settings, timeout, root v1, model, a signature), an update
/// payload by [`rstuf::update_payload`] (version, model, a signature); then the root's review.
pub fn parse_rstuf_file(file: &str, bytes: &[u8]) -> Result<RstufFile, SigningError> {
    let v = Value::parse(bytes).map_err(|e| {
        SigningError::Invalid(format!(
            "{file}: $: not JSON: {}",
            show_message(&e.to_string())
        ))
    })?;
    let top = v.as_object();
    let (kind, pending) = if top.is_some_and(|m| m.contains_key("data")) {
        (
            RstufKind::PendingFile,
            rstuf::parse_pending(file, bytes).map_err(invalid)?,
        )
    } else {
        let root = top
            .and_then(|m| m.get("metadata"))
            .and_then(Value::as_object)
            .and_then(|m| m.get("root"))
            .ok_or_else(|| SigningError::Invalid(format!("{file}: $.metadata.root: missing")))?;
        let root = Metadata::<Root>::from_value(root.clone()).map_err(|e| {
            SigningError::Invalid(format!(
                "{file}: $.metadata.root: {}",
                show_message(&e.to_string())
            ))
        })?;
        let kind = if top.is_some_and(|m| m.contains_key("settings")) {
            rstuf::read_ceremony_payload(file, bytes).map_err(invalid)?;
            RstufKind::CeremonyPayload
        } else {
            rstuf::update_payload(&root).map_err(invalid)?;
            RstufKind::UpdatePayload
        };
        (
            kind,
            Pending {
                root,
                trusted: None,
                other_roles: Vec::new(),
            },
        )
    };
    let review = rstuf::review_pending(file, &pending).map_err(invalid)?;
    Ok(RstufFile {
        kind,
        pending,
        review,
    })
}

/// `conclave rstuf review`: the file at `path` read ([`parse_rstuf_file`]); a root v1 that no
/// root key of its own has signed is refused (RSTUF would never accept it).
pub fn review_rstuf_file(path: &Path) -> Result<RstufFile, SigningError> {
    let file = path.display().to_string();
    let f = parse_rstuf_file(&file, &read(path)?)?;
    if f.pending.root.signed().common.version == 1 && f.review.by_self.signed.is_empty() {
        return Err(SigningError::Invalid(format!(
            "{file}: $.metadata.root.signatures: no valid signature by a root key"
        )));
    }
    Ok(f)
}

/// `conclave rstuf sign`'s inputs, checked before any token is touched: RSTUF's pending file
/// (`pending`) and the root this appliance trusts (`trusted_root`). The pending root must come
/// from it: its `trusted_root` is the appliance's root or the next version signed by it (then
/// trusted only at its own threshold), or for a pending root v1 it is the appliance's root
/// itself (same signed bytes). A pending root that already meets its thresholds is refused:
/// nothing to sign.
pub fn read_pending_to_sign(
    pending: &Path,
    trusted_root: &Path,
) -> Result<RstufFile, SigningError> {
    let file = pending.display().to_string();
    let anchor_name = trusted_root.display().to_string();
    let bytes = read(pending)?;
    let p = rstuf::parse_pending(&file, &bytes).map_err(invalid)?;
    let review = rstuf::review_pending(&file, &p).map_err(invalid)?;
    let trusted = Metadata::<Root>::from_bytes(&read(trusted_root)?).map_err(|e| {
        SigningError::Invalid(format!("{anchor_name}: {}", show_message(&e.to_string())))
    })?;
    anchor_pending(&file, &p, &anchor_name, &trusted)?;
    if review.complete() {
        return Err(SigningError::Invalid(format!(
            "{file}: $.data.metadata.root.signatures: the pending root already meets its thresholds; nothing to sign"
        )));
    }
    Ok(RstufFile {
        kind: RstufKind::PendingFile,
        pending: p,
        review,
    })
}

/// The pending root `p` (of the file `file`) comes from the root the appliance trusts
/// (`anchor`, named `anchor_name`): its `trusted_root` is `anchor` or the next version signed
/// by it ([`rstuf::check_anchor`]), and is trusted only at its own threshold; a pending root
/// v1 (no `trusted_root`) is `anchor` itself (the same signed bytes). `conclave rstuf sign`
/// checks this before any token is touched, and a ceremony that signed a pending root checks
/// its output by it again.
pub fn anchor_pending(
    file: &str,
    p: &Pending,
    anchor_name: &str,
    anchor: &Metadata<Root>,
) -> Result<(), SigningError> {
    match &p.trusted {
        Some(t) => {
            // The trusted_root is the appliance's root or its next version signed by it.
            rstuf::check_anchor(file, p, anchor_name, anchor).map_err(invalid)?;
            // The anchor is trusted only at its own threshold (the bootstrap's partial root v1
            // is the exception: it is the pending root itself).
            trust_root(anchor_name, &t.to_file_bytes())
                .map_err(|e| SigningError::Invalid(show_message(&e.to_string())))?;
            Ok(())
        }
        None if p.root.signed_bytes() != anchor.signed_bytes() => {
            Err(SigningError::Invalid(format!(
                "{file}: $.data.metadata.root: not the root this appliance trusts ({anchor_name})"
            )))
        }
        None => Ok(()),
    }
}

/// An in-toto layout (metablock or DSSE envelope) read from `path`, and its review summary.
pub fn read_layout(path: &Path) -> Result<(LayoutFile, LayoutSummary), SigningError> {
    let named = |e: crate::intoto::LayoutError| {
        SigningError::Invalid(format!(
            "{}: {}",
            path.display(),
            show_message(&e.to_string())
        ))
    };
    let f = LayoutFile::from_bytes(&read(path)?).map_err(named)?;
    let s = f.summary().map_err(named)?;
    Ok((f, s))
}

/// The key material of the targets role of the root at `path`, which must verify by its own
/// root keys: the keys that may sign an in-toto layout.
pub fn targets_key_material(path: &Path) -> Result<Vec<Vec<u8>>, SigningError> {
    let (trusted, _) = trust_root(&path.display().to_string(), &read(path)?)
        .map_err(|e| SigningError::Invalid(format!("the trusted root does not verify: {e}")))?;
    let root = trusted.metadata().signed();
    Ok(root
        .role(RoleType::Targets)
        .keyids
        .iter()
        .filter_map(|id| root.key(id)?.public_key().ok().map(|p| p.material()))
        .collect())
}

/// The pure reading of RSTUF's files and of layouts, with files made here (software keys: no
/// token is involved); the commands against RSTUF's own tools and SoftHSM2 are tests/rstuf.rs
/// and tests/intoto.rs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{RoleKeys, new_root};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::RoleType;

    /// A software root key with its RSTUF name (as RSTUF's model wants every root key).
    fn signer(seed: u8) -> SoftwareSigner {
        let s = SoftwareSigner::from_seed(Algorithm::Ed25519, &[seed; 32]).unwrap();
        let k = rstuf::named_key(s.key(), &format!("key{seed}"));
        s.with_key(k).unwrap()
    }

    /// RSTUF's online key, with its URI.
    fn online() -> crate::tuf::key::Key {
        let s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[9; 48]).unwrap();
        let mut k = rstuf::named_key(s.key(), "online");
        k.unrecognized
            .insert(rstuf::ONLINE_URI_FIELD.into(), "fn:online-key".into());
        k
    }

    /// An RSTUF root v1 of root keys 1 and 2 (threshold `threshold`) expiring in `year`,
    /// signed by `by`.
    fn rstuf_root(threshold: u64, year: i32, by: &mut [&mut SoftwareSigner]) -> Metadata<Root> {
        let expires = time::OffsetDateTime::UNIX_EPOCH.replace_year(year).unwrap();
        let keys = [signer(1).key().clone(), signer(2).key().clone()];
        let root = Metadata::new(rstuf::new_root(&keys, threshold, &online(), expires).unwrap());
        sign(root, by)
    }

    fn sign(mut root: Metadata<Root>, by: &mut [&mut SoftwareSigner]) -> Metadata<Root> {
        for s in by {
            let sig = s.sign(root.signed_bytes()).unwrap();
            root.add_signature(s.key().key_id(), &sig);
        }
        root
    }

    /// A plain TUF root v1 of keys 1 and 2 for every role, threshold 2, signed by `by`.
    fn root_v1(by: &mut [&mut SoftwareSigner]) -> Metadata<Root> {
        let keys = vec![signer(1).key().clone(), signer(2).key().clone()];
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: keys.clone(),
                threshold: 2,
            })
            .collect();
        let root = new_root(&roles, time::macros::datetime!(2040-01-01 0:00 UTC)).unwrap();
        sign(Metadata::new(root), by)
    }

    fn pending_file(root: &Metadata<Root>) -> String {
        format!(
            r#"{{"data":{{"metadata":{{"root":{}}}}}}}"#,
            String::from_utf8(root.to_file_bytes()).unwrap()
        )
    }

    #[test]
    fn rstuf_files_are_told_apart_and_refusals_name_file_and_field() {
        let (mut a, mut b) = (signer(1), signer(2));
        let root = rstuf_root(2, 2040, &mut [&mut a]);
        let f = parse_rstuf_file("p.json", pending_file(&root).as_bytes()).unwrap();
        assert_eq!(f.kind, RstufKind::PendingFile);
        assert!(!f.review.complete());
        let update = format!(
            r#"{{"metadata":{{"root":{}}}}}"#,
            String::from_utf8(rstuf_root(2, 2040, &mut [&mut a, &mut b]).to_file_bytes()).unwrap()
        );
        let e = parse_rstuf_file("u.json", update.as_bytes()).unwrap_err();
        // An update payload's root is a later version: the pure core names the field.
        assert!(matches!(e, SigningError::Invalid(_)), "{e:?}");
        assert!(
            e.to_string().contains("$.metadata.root.signed.version"),
            "{e}"
        );
        let e = parse_rstuf_file("x.json", b"[1,").unwrap_err();
        assert!(e.to_string().starts_with("x.json: $: not JSON"), "{e}");
        let e = parse_rstuf_file("x.json", br#"{"metadata":{}}"#).unwrap_err();
        assert_eq!(e.to_string(), "x.json: $.metadata.root: missing");
        let e = parse_rstuf_file("x.json", br#"{"metadata":{"root":{"signed":1}}}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("x.json: $.metadata.root: "),
            "{e}"
        );
    }

    #[test]
    fn a_pending_root_is_signed_only_against_the_appliances_root_and_while_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (signer(1), signer(2));
        let partial = rstuf_root(2, 2040, &mut [&mut a]);
        let pending = dir.path().join("pending.json");
        std::fs::write(&pending, pending_file(&partial)).unwrap();
        // A pending root v1 is anchored in itself: the appliance's root must be the same.
        let same = dir.path().join("1.root.json");
        std::fs::write(&same, partial.to_file_bytes()).unwrap();
        let f = read_pending_to_sign(&pending, &same).unwrap();
        assert_eq!(f.review.still_to_sign(), vec![signer(2).key().key_id()]);
        let other = dir.path().join("other.root.json");
        std::fs::write(&other, rstuf_root(2, 2041, &mut [&mut a]).to_file_bytes()).unwrap();
        let e = read_pending_to_sign(&pending, &other).unwrap_err();
        assert!(
            e.to_string()
                .contains("$.data.metadata.root: not the root this appliance trusts"),
            "{e}"
        );
        // Complete already: nothing to sign.
        let full = rstuf_root(2, 2040, &mut [&mut a, &mut b]);
        std::fs::write(&pending, pending_file(&full)).unwrap();
        std::fs::write(&same, full.to_file_bytes()).unwrap();
        let e = read_pending_to_sign(&pending, &same).unwrap_err();
        assert!(e.to_string().contains("nothing to sign"), "{e}");
        // A missing file is an I/O error naming it.
        let e = read_pending_to_sign(&dir.path().join("none.json"), &same).unwrap_err();
        assert!(matches!(e, SigningError::Io(_)), "{e:?}");
        assert!(e.to_string().contains("none.json"), "{e}");
    }

    #[test]
    fn rstuf_review_refuses_a_root_v1_no_root_key_signed_and_bounds_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pending.json");
        std::fs::write(&path, pending_file(&rstuf_root(2, 2040, &mut []))).unwrap();
        let e = review_rstuf_file(&path).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("$.metadata.root.signatures: no valid signature by a root key"),
            "{e}"
        );
        // A named pipe where the file belongs is refused, not waited on.
        let fifo = dir.path().join("fifo.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let e = review_rstuf_file(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn layouts_and_the_targets_keys_that_may_sign_them() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("root.layout");
        std::fs::write(
            &layout,
            r#"{"signed":{"_type":"layout","expires":"2030-01-01T00:00:00Z","keys":{},"readme":"","steps":[],"inspect":[]},"signatures":[]}"#,
        )
        .unwrap();
        let (f, s) = read_layout(&layout).unwrap();
        assert!(f.signatures().is_empty());
        assert_eq!(s.expires, "2030-01-01T00:00:00Z");
        std::fs::write(&layout, r#"{"signed":{"_type":"root"},"signatures":[]}"#).unwrap();
        let e = read_layout(&layout).unwrap_err();
        assert!(
            e.to_string().starts_with(&layout.display().to_string()),
            "{e}"
        );
        let (mut a, mut b) = (signer(1), signer(2));
        let root = dir.path().join("root.json");
        std::fs::write(&root, root_v1(&mut [&mut a, &mut b]).to_file_bytes()).unwrap();
        let keys = targets_key_material(&root).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&signer(1).key().public_key().unwrap().material()));
        // A root short of its own threshold does not name anyone.
        std::fs::write(&root, root_v1(&mut [&mut a]).to_file_bytes()).unwrap();
        let e = targets_key_material(&root).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the trusted root does not verify"),
            "{e}"
        );
    }
}
