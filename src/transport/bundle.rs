//! Signature bundles: detached signatures that travel between appliances when keyholders sign
//! at different sites (as sigstore and tuf-on-ci sign asynchronously). A bundle is a small JSON
//! file — role, version, SHA-256 of the canonical `signed` bytes, key id, signature, token
//! serial, time — that fits in one QR frame. Merging checks each bundle against the metadata and
//! the keys allowed to sign it, and adds all of them or none. The file format is the pure
//! core's ([`crate::tuf::bundle`]).

use crate::tuf::canonical::Map;
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{AnyMetadata, RoleType, Root, Signature};
use crate::tuf::verify::{ThresholdResult, count_signatures};

/// QR fragment size at which any bundle is one frame (`conclave qr encode --fragment-size 400`).
/// At the default fragment size (250 bytes) a bundle takes two fragments: its envelope (deflated
/// JSON with two SHA-256 values and a signature in hex, plus the file's SHA-256) is 330 to 390
/// bytes for Ed25519 to ECDSA P-384.
pub const ONE_FRAME_FRAGMENT_SIZE: usize = super::qr::ONE_FRAME_MAX;

pub use crate::tuf::bundle::{BUNDLE_TYPE, Bundle, BundleError, MAX_BUNDLE_SIZE};

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// What a merge did: the signatures added and the threshold counts afterwards.
#[derive(Clone, Debug)]
pub struct MergeReport {
    /// Key ids whose signatures were added.
    pub added: Vec<KeyId>,
    /// The count for the role after merging (for a root: with its own root keys).
    pub threshold: ThresholdResult,
    /// For a root with a trusted previous root: the count with the previous root's keys.
    pub by_previous: Option<ThresholdResult>,
}

/// The keys allowed to sign `md`: for a root, its own root keys and the trusted root's root keys
/// (a rotation is signed by both); for the other top-level roles, the trusted root's keys for
/// that role.
fn authorized_keys(md: &AnyMetadata, trusted: Option<&Root>) -> Result<Vec<(KeyId, Key)>, String> {
    let mut out: Vec<(KeyId, Key)> = Vec::new();
    let mut add = |root: &Root, ty: RoleType| {
        for id in &root.role(ty).keyids {
            if let Some(k) = root.key(id)
                && !out.iter().any(|(o, _)| o == id)
            {
                out.push((id.clone(), k.clone()));
            }
        }
    };
    match md {
        AnyMetadata::Root(m) => {
            add(m.signed(), RoleType::Root);
            if let Some(t) = trusted {
                add(t, RoleType::Root);
            }
        }
        other => {
            let Some(t) = trusted else {
                return Err(format!(
                    "{} metadata is signed by keys the root names: give the trusted root",
                    other.role_type()
                ));
            };
            add(t, other.role_type());
        }
    }
    Ok(out)
}

/// Check every bundle against `md` and add their signatures; refuses all of them if any one is
/// refused (mismatched digest, wrong role or version, a key the role does not name, an invalid
/// signature, a key that already signed or appears twice). `md` is unchanged on error.
pub fn merge(
    md: &mut AnyMetadata,
    trusted: Option<&Root>,
    bundles: &[(String, Bundle)],
) -> Result<MergeReport, Vec<BundleError>> {
    let keys = authorized_keys(md, trusted).map_err(|reason| {
        vec![BundleError::Refused {
            file: "--metadata".into(),
            reason,
        }]
    })?;
    let digest = hex::encode(sha256(md.signed_bytes()));
    let role = md.role_type().as_str();
    let version = md.common().version;
    let mut errors = Vec::new();
    let mut accepted: Vec<(KeyId, String, Vec<u8>)> = Vec::new();
    for (file, b) in bundles {
        let refuse = |reason: String| BundleError::Refused {
            file: file.clone(),
            reason,
        };
        if b.role != role || b.version != version {
            errors.push(refuse(format!(
                "bundle is for {} v{}, the metadata is {role} v{version}",
                b.role, b.version
            )));
            continue;
        }
        if !b.signed_sha256.eq_ignore_ascii_case(&digest) {
            errors.push(refuse(format!(
                "bundle signs digest {}, the metadata's signed bytes have digest {digest}: it was made for other content",
                b.signed_sha256
            )));
            continue;
        }
        let Some((_, key)) = keys.iter().find(|(id, _)| *id == b.keyid) else {
            errors.push(refuse(format!(
                "key {} is not one that may sign {role}",
                b.keyid
            )));
            continue;
        };
        let pk = match key.public_key() {
            Ok(pk) => pk,
            Err(e) => {
                errors.push(refuse(format!("key {}: {e}", b.keyid)));
                continue;
            }
        };
        if let Err(e) = key.verify_hex(md.signed_bytes(), &b.sig) {
            errors.push(refuse(format!(
                "signature by {} does not verify: {e}",
                b.keyid
            )));
            continue;
        }
        let material = pk.material();
        let already = md
            .signatures()
            .iter()
            .any(|s| s.keyid == b.keyid && !s.sig.is_empty());
        if already {
            errors.push(refuse(format!(
                "{} has signed this metadata already",
                b.keyid
            )));
            continue;
        }
        if let Some((other, _, _)) = accepted
            .iter()
            .find(|(id, _, m)| *id == b.keyid || *m == material)
        {
            errors.push(refuse(format!(
                "duplicate: key {} signs twice (also as {other})",
                b.keyid
            )));
            continue;
        }
        accepted.push((b.keyid.clone(), b.sig.clone(), material));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut added = Vec::new();
    let sigs: &mut Vec<Signature> = match md {
        AnyMetadata::Root(m) => &mut m.signatures,
        AnyMetadata::Targets(m) => &mut m.signatures,
        AnyMetadata::Snapshot(m) => &mut m.signatures,
        AnyMetadata::Timestamp(m) => &mut m.signatures,
    };
    for (keyid, sig, _) in accepted {
        match sigs.iter_mut().find(|s| s.keyid == keyid) {
            Some(slot) => slot.sig = sig,
            None => sigs.push(Signature {
                keyid: keyid.clone(),
                sig,
                unrecognized: Map::new(),
            }),
        }
        added.push(keyid);
    }
    let (threshold, by_previous) = counts(md, trusted);
    Ok(MergeReport {
        added,
        threshold,
        by_previous,
    })
}

/// Threshold counts for `md` as it is now (see [`MergeReport`]).
pub fn counts(
    md: &AnyMetadata,
    trusted: Option<&Root>,
) -> (ThresholdResult, Option<ThresholdResult>) {
    match md {
        AnyMetadata::Root(m) => {
            let own = m.signed();
            let by_self = count_signatures(
                |id| own.key(id),
                own.role(RoleType::Root),
                m.signed_bytes(),
                &m.signatures,
            );
            let by_prev = trusted.map(|t| {
                count_signatures(
                    |id| t.key(id),
                    t.role(RoleType::Root),
                    m.signed_bytes(),
                    &m.signatures,
                )
            });
            (by_self, by_prev)
        }
        other => {
            let ty = other.role_type();
            let result = match trusted {
                Some(t) => count_signatures(
                    |id| t.key(id),
                    t.role(ty),
                    other.signed_bytes(),
                    other.signatures(),
                ),
                None => ThresholdResult {
                    threshold: 1,
                    signed: Vec::new(),
                    unsigned: Vec::new(),
                    ignored: other.signatures().iter().map(|s| s.keyid.clone()).collect(),
                },
            };
            (result, None)
        }
    }
}

/// The file bytes of metadata after a merge.
pub fn file_bytes(md: &AnyMetadata) -> Vec<u8> {
    match md {
        AnyMetadata::Root(m) => m.to_file_bytes(),
        AnyMetadata::Targets(m) => m.to_file_bytes(),
        AnyMetadata::Snapshot(m) => m.to_file_bytes(),
        AnyMetadata::Timestamp(m) => m.to_file_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{self, RoleKeys};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::Metadata;
    use time::macros::datetime;

    fn signer(n: u8) -> SoftwareSigner {
        SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[n; 32]).unwrap()
    }

    fn root(signers: &[&SoftwareSigner], threshold: u64) -> Metadata<Root> {
        let keys: Vec<Key> = signers.iter().map(|s| s.key().clone()).collect();
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: keys.clone(),
                threshold,
            })
            .collect();
        Metadata::new(edit::new_root(&roles, datetime!(2030-01-01 0:00 UTC)).unwrap())
    }

    fn bundle_for(md: &AnyMetadata, s: &mut SoftwareSigner) -> Bundle {
        let sig = s.sign(md.signed_bytes()).unwrap();
        Bundle::new(
            md,
            s.key_id(),
            &sig,
            Some("1583".into()),
            datetime!(2026-11-23 10:00 UTC),
        )
    }

    #[test]
    fn bundles_round_trip_fit_a_qr_frame_and_merge() {
        let (mut a, mut b, c) = (signer(1), signer(2), signer(3));
        let mut md = AnyMetadata::Root(root(&[&a, &b, &c], 2));
        let ba = bundle_for(&md, &mut a);
        let bb = bundle_for(&md, &mut b);
        let bytes = ba.to_bytes();
        assert!(bytes.len() < 600, "fits in one QR frame: {}", bytes.len());
        assert_eq!(Bundle::from_bytes("a.json", &bytes).unwrap(), ba);
        let report = merge(
            &mut md,
            None,
            &[("a.json".into(), ba), ("b.json".into(), bb)],
        )
        .unwrap();
        assert_eq!(report.added.len(), 2);
        assert!(report.threshold.verified());
    }

    /// Measured: with the fields the format carries (two SHA-256 values and a signature in hex),
    /// the QR envelope of a bundle is 330 to 390 bytes, so at the default fragment size of 250
    /// it would take two fragments; `conclave qr encode` sends envelopes up to
    /// `ONE_FRAME_FRAGMENT_SIZE` bytes as one frame.
    #[test]
    fn a_bundle_of_every_key_type_fits_one_qr_frame_at_the_one_frame_fragment_size() {
        use crate::transport::qr::{Animation, EncodeOptions, QrMatrix};
        for alg in [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
        ] {
            let mut s = SoftwareSigner::from_seed(alg, &[7; 48]).unwrap();
            let md = AnyMetadata::Root(root(&[&s], 1));
            let mut b = bundle_for(&md, &mut s);
            // The longest forms: a 16-character token serial (SoftHSM2, YubiHSM), and for
            // ECDSA the longest DER signature (both integers 49 bytes with a leading zero).
            b.token_serial = Some("0123456789abcdef".into());
            if alg == Algorithm::EcdsaP384 {
                b.sig = format!("3066023100{}023100{}", "ab".repeat(48), "cd".repeat(48));
                assert_eq!(b.sig.len(), 2 * 104);
            }
            let bytes = b.to_bytes();
            // What `conclave qr encode` does with the default fragment size: one frame.
            let default = Animation::new(
                &bytes,
                &EncodeOptions {
                    fragment_size: crate::transport::qr::one_frame_size(
                        &bytes,
                        crate::transport::qr::DEFAULT_FRAGMENT_SIZE,
                    ),
                    ..EncodeOptions::default()
                },
            )
            .unwrap();
            assert_eq!(
                default.fragment_count(),
                1,
                "{alg:?}: {} fragments with the default size",
                default.fragment_count()
            );
            let mut one = Animation::new(
                &bytes,
                &EncodeOptions {
                    fragment_size: ONE_FRAME_FRAGMENT_SIZE,
                    ..EncodeOptions::default()
                },
            )
            .unwrap();
            assert_eq!(
                one.fragment_count(),
                1,
                "{alg:?}: {} bytes, {} as envelope, do not fit one fragment of {ONE_FRAME_FRAGMENT_SIZE}",
                bytes.len(),
                one.envelope_len
            );
            // A QR code a phone or webcam reads from a screen: version 20 or lower (97 modules).
            let frame = one.next_frame().unwrap();
            let qr = QrMatrix::encode(&frame, 0).unwrap();
            assert!(qr.width() <= 97, "{alg:?}: {} modules", qr.width());
        }
    }

    #[test]
    fn bad_bundles_are_refused_and_nothing_is_added() {
        let (mut a, mut b, mut c) = (signer(1), signer(2), signer(3));
        let mut stranger = signer(9);
        let md0 = AnyMetadata::Root(root(&[&a, &b, &c], 2));
        let good = bundle_for(&md0, &mut a);
        // Made for other content: a root with another threshold.
        let other = AnyMetadata::Root(root(&[&a, &b, &c], 3));
        let mismatched = bundle_for(&other, &mut b);
        let unknown = bundle_for(&md0, &mut stranger);
        let mut forged = bundle_for(&md0, &mut c);
        forged.sig = good.sig.clone();
        let dup = good.clone();
        let cases: Vec<(&str, Bundle, &str)> = vec![
            ("mismatch.json", mismatched, "made for other content"),
            ("unknown.json", unknown, "is not one that may sign root"),
            ("forged.json", forged, "does not verify"),
            ("dup.json", dup, "duplicate"),
        ];
        for (name, bad, why) in cases {
            let mut md = md0.clone();
            let errs = merge(
                &mut md,
                None,
                &[("good.json".into(), good.clone()), (name.into(), bad)],
            )
            .unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            let msg = errs[0].to_string();
            assert!(msg.starts_with(name) && msg.contains(why), "{msg}");
            assert!(
                md.signatures().is_empty(),
                "nothing added when one bundle is refused"
            );
        }
    }

    #[test]
    fn malformed_bundle_files_name_the_field() {
        for (text, why) in [
            ("{}", "$._type: required field is missing"),
            (
                r#"{"_type": "x"}"#,
                "expected \"conclave-signature-bundle\"",
            ),
            (
                r#"{"_type": "conclave-signature-bundle", "role": "root", "version": 1, "signed_sha256": "zz", "keyid": "k", "sig": "00", "time": "t"}"#,
                "$.signed_sha256",
            ),
            ("not json", "expected"),
        ] {
            let e = Bundle::from_bytes("b.json", text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("b.json: ") && e.contains(why), "{e}");
        }
    }
}
