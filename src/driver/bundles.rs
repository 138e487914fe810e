//! `conclave bundle export` and `conclave bundle merge`: a keyholder's signature carried as a
//! bundle (a detached signature) instead of a whole file, and bundles added to a metadata
//! file. The bundle format and the merge rules are [`crate::transport::bundle`]'s; this module
//! reads and writes the files, every check before anything is written. The command line
//! renders what they return.

use std::path::{Path, PathBuf};

use super::clock::Clock;
use super::sign_metadata::{SignRequest, TokenSignature, sign_with_token};
use super::signing_key::{Keyholder, SigningError};
use super::token_device::TokenModule;
use crate::folder::{read_limited, write_new_file};
use crate::text::show_message;
use crate::transcript::record::sha256;
use crate::transport::bundle::{self, Bundle, MAX_BUNDLE_SIZE, MergeReport};
use crate::transport::qr::{Animation, DEFAULT_FRAGMENT_SIZE, EncodeOptions, one_frame_size};
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::{AnyMetadata, Metadata, Root};

/// The output must be a new file in an existing folder: checked before the token is touched.
fn check_new_output(out: &Path) -> Result<(), SigningError> {
    if out.symlink_metadata().is_ok() {
        return Err(SigningError::Usage(format!(
            "{} exists already; Conclave never overwrites (choose another --out)",
            out.display()
        )));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(SigningError::Usage(format!(
            "--out {}: folder {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// A bundle written by [`export_bundle`].
pub struct BundleExported {
    /// The token's signature and what it is for.
    pub signed: TokenSignature,
    /// The key id the bundle carries (the first the signature is for).
    pub keyid: KeyId,
    /// The bundle.
    pub bundle: Bundle,
    /// The bundle file's bytes, as written.
    pub bytes: Vec<u8>,
    /// How many QR frames `conclave qr encode` shows it as at the default fragment size.
    pub qr_frames: usize,
}

/// `conclave bundle export`: the output is a new file in an existing folder (checked before
/// the token is touched), then [`sign_with_token`] (without `--force`: a role names the key),
/// then the bundle made at the clock's time, parsed back and compared (what is written is what
/// `merge` reads), and written create-exclusive.
pub fn export_bundle(
    req: &SignRequest<'_>,
    out: &Path,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
    clock: &dyn Clock,
) -> Result<BundleExported, SigningError> {
    check_new_output(out)?;
    let signed = sign_with_token(
        &SignRequest {
            force: false,
            ..*req
        },
        load,
        kh,
    )?;
    // Without --force the key is named by a role, so there is at least one key id.
    let Some(keyid) = signed.keyids.first().cloned() else {
        return Err(SigningError::Invalid(format!(
            "no role of {} names the key; nothing written",
            signed.what
        )));
    };
    let b = Bundle::new(
        &signed.md,
        keyid.clone(),
        &signed.sig,
        Some(signed.token.serial.clone()),
        clock.now(),
    );
    let bytes = b.to_bytes();
    let name = out.display().to_string();
    let back = Bundle::from_bytes(&name, &bytes).map_err(|e| {
        SigningError::Usage(format!("internal error: the bundle does not parse: {e}"))
    })?;
    if back != b || back.signed_sha256 != hex::encode(sha256(signed.md.signed_bytes())) {
        return Err(SigningError::Usage(
            "internal error: the bundle read back differs from the one made; nothing written"
                .into(),
        ));
    }
    let qr_frames = Animation::new(
        &bytes,
        &EncodeOptions {
            fragment_size: one_frame_size(&bytes, DEFAULT_FRAGMENT_SIZE),
            ..EncodeOptions::default()
        },
    )
    .map(|anim| anim.fragment_count())
    .map_err(|e| SigningError::Usage(format!("internal error: {e}")))?;
    write_new_file(out, &bytes).map_err(|e| SigningError::Io(format!("{name}: {e}")))?;
    Ok(BundleExported {
        signed,
        keyid,
        bundle: b,
        bytes,
        qr_frames,
    })
}

/// What [`merge_bundles`] added and counted.
pub struct Merged {
    /// The bundles read (the name shown for each, the bundle).
    pub bundles: Vec<(String, Bundle)>,
    /// The merge's threshold counts.
    pub report: MergeReport,
}

/// `conclave bundle merge`: the metadata, the trusted root (when given) and every bundle read
/// bounded and parsed, the bundles added all or none ([`bundle::merge`]: digest, role and
/// version, key and duplicate checks), the result written create-exclusive to `out`.
pub fn merge_bundles(
    metadata: &Path,
    trusted_root: Option<&Path>,
    bundle_files: &[PathBuf],
    out: &Path,
) -> Result<Merged, SigningError> {
    let read = |p: &Path, limit| read_limited(p, limit).map_err(SigningError::Io);
    let mut md = AnyMetadata::from_bytes(&read(metadata, DEFAULT_MAX_FILE_SIZE)?)
        .map_err(|e| SigningError::Invalid(format!("{}: {e}", metadata.display())))?;
    let trusted = match trusted_root {
        None => None,
        Some(p) => {
            let r = Metadata::<Root>::from_bytes(&read(p, DEFAULT_MAX_FILE_SIZE)?)
                .map_err(|e| SigningError::Invalid(format!("{}: {e}", p.display())))?;
            Some(r.signed().clone())
        }
    };
    let mut bundles = Vec::new();
    for p in bundle_files {
        let b = read(p, MAX_BUNDLE_SIZE)?;
        let name = p.display().to_string();
        let bundle = Bundle::from_bytes(&name, &b)
            .map_err(|e| SigningError::Invalid(show_message(&e.to_string())))?;
        bundles.push((name, bundle));
    }
    let report = bundle::merge(&mut md, trusted.as_ref(), &bundles).map_err(|errors| {
        SigningError::Invalid(format!(
            "no signature added; refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}", show_message(&e.to_string())))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })?;
    write_new_file(out, &bundle::file_bytes(&md))
        .map_err(|e| SigningError::Io(format!("{}: {e}", out.display())))?;
    Ok(Merged { bundles, report })
}

/// Bundles made and merged through the token seam with the test double
/// (`driver::fake_tokens`: in-memory tokens that follow SoftHSM2's PKCS#11 answers); the
/// commands against SoftHSM2 are tests/token_softhsm.rs and tests/bundle_sites.rs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::FixedClock;
    use crate::driver::fake_tokens::{Answering, FakeTokens};
    use crate::signer::pkcs11::EdParams;
    use crate::tuf::edit::{RoleKeys, new_root};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::RoleType;
    use zeroize::Zeroizing;

    #[test]
    fn a_bundle_is_exported_once_and_merged_into_a_new_file() {
        let fakes = FakeTokens::new();
        fakes.add("bob", "1002", "bob-pin");
        let t = fakes.find_token("bob").unwrap();
        let s = fakes.open(&t, true).unwrap();
        s.login(&Zeroizing::new("bob-pin".to_string())).unwrap();
        let bob = s
            .generate(Algorithm::Ed25519, "bob-root", None, EdParams::Auto)
            .unwrap()
            .key;
        drop(s);
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![bob.clone()],
                threshold: 1,
            })
            .collect();
        let root =
            Metadata::new(new_root(&roles, time::macros::datetime!(2040-01-01 0:00 UTC)).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("1.root.json");
        std::fs::write(&md, root.to_file_bytes()).unwrap();
        let out = dir.path().join("bob.bundle");
        let req = SignRequest {
            token: None,
            key: "bob-root",
            keyholder: Some("bob"),
            metadata: &md,
            trusted_root: None,
            force: false,
        };
        let clock = FixedClock(time::macros::datetime!(2030-01-01 12:00 UTC));
        let loads = std::cell::Cell::new(0);
        let mut load = || -> Result<Box<dyn TokenModule>, SigningError> {
            loads.set(loads.get() + 1);
            Ok(Box::new(fakes.clone()))
        };
        // A folder that does not exist: refused before the module is loaded.
        let nowhere = dir.path().join("no/such/folder/b.bundle");
        let mut kh = Answering::new("bob-pin");
        let e = export_bundle(&req, &nowhere, &mut load, &mut kh, &clock)
            .err()
            .unwrap();
        assert!(matches!(e, SigningError::Usage(_)), "{e:?}");
        assert_eq!(loads.get(), 0);
        let done = export_bundle(&req, &out, &mut load, &mut kh, &clock)
            .ok()
            .unwrap();
        assert_eq!(done.keyid, bob.key_id());
        assert_eq!(std::fs::read(&out).unwrap(), done.bytes);
        assert!(done.qr_frames >= 1);
        // Never over an existing file.
        let e = export_bundle(&req, &out, &mut load, &mut kh, &clock)
            .err()
            .unwrap();
        assert!(e.to_string().contains("exists already"), "{e}");
        // Merged: bob's signature meets the threshold of 1 in the new file.
        let merged_path = dir.path().join("1.root.signed.json");
        let merged = merge_bundles(&md, None, std::slice::from_ref(&out), &merged_path).unwrap();
        assert!(merged.report.threshold.verified());
        let back = Metadata::<Root>::from_bytes(&std::fs::read(&merged_path).unwrap()).unwrap();
        assert_eq!(back.signatures.len(), 1);
        // The same bundle twice is refused whole; nothing is written.
        let again = dir.path().join("again.json");
        let e = merge_bundles(&md, None, &[out.clone(), out.clone()], &again)
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("no signature added; refused:"),
            "{e}"
        );
        assert!(!again.exists());
    }
}
