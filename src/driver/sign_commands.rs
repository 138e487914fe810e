//! The pipeline signing commands' token work: with a [`SigningKey`] opened before any PIN, each
//! checks that the key may sign what was reviewed, then asks the PIN, signs (the signer verifies
//! every signature against the token's public key) and checks the result; the rules of each
//! pipeline stay in the pure core ([`crate::tuf::tuf_on_ci`], [`crate::tuf::rstuf`],
//! [`crate::intoto`], [`crate::transparency`]). The command line renders what they return.

use std::path::{Path, PathBuf};

use super::log_dir::{self, LogDirError};
use super::signing_key::{Keyholder, SigningError, SigningKey};
use crate::folder::write_new_file;
use crate::intoto::LayoutFile;
use crate::signer::SignerError;
use crate::text::show;
use crate::transparency::SignedCheckpoint;
use crate::transparency::dir::LogDir;
use crate::transparency::event::RoleKeys;
use crate::transparency::note::NoteCount;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::Signature;
use crate::tuf::rstuf::{self, Pending};
use crate::tuf::tuf_on_ci::{Review, RoleSignature};
use crate::tuf::verify::{ThresholdResult, Uncounted};

impl From<LogDirError> for SigningError {
    fn from(e: LogDirError) -> Self {
        match e {
            LogDirError::Io(m) => SigningError::Io(m),
            LogDirError::Invalid(m) => SigningError::Invalid(m),
            LogDirError::Usage(m) => SigningError::Usage(m),
        }
    }
}

/// A token's signature that is bad (or a token that failed while signing): the token error
/// keeps its kind, anything else refuses with nothing written.
fn signature_error(e: SignerError) -> SigningError {
    match e {
        SignerError::Token(t) => SigningError::Token(t),
        other => SigningError::Invalid(format!(
            "the token's signature is bad, nothing written: {other}"
        )),
    }
}

/// One role of a tuf-on-ci signing event after the new signature: a threshold count by one of
/// the delegations that list the role's keys.
pub struct RoleCount {
    /// The role's name, as the event spells it.
    pub role: String,
    /// Its version in the event.
    pub version: u64,
    /// Which delegation counted.
    pub by: String,
    /// The count with the new signature.
    pub count: ThresholdResult,
}

/// `tuf-on-ci sign` and `accept`: PIN (unless the token logged in already), login, and one
/// signature per role of `plan` over its canonical signed bytes, verified in software; each key
/// id it is for must count where a delegation lists it.
pub fn sign_event_roles(
    k: SigningKey,
    keyholder: Option<&str>,
    kh: &mut dyn Keyholder,
    r: &Review,
    plan: &[(usize, Vec<KeyId>)],
) -> Result<(Vec<RoleSignature>, Vec<RoleCount>), SigningError> {
    let holder = keyholder
        .map(|k| format!(" of keyholder {}", show(k)))
        .unwrap_or_default();
    let prompt = format!(
        "PIN for {}{holder} to sign {} role(s) of the signing event with key \"{}\": ",
        k.token,
        plan.len(),
        show(&k.key.label)
    );
    let mut held = k.signer(kh, &prompt)?;
    let mut done = Vec::new();
    let mut counts = Vec::new();
    for (i, ids) in plan {
        let Some(role) = r.changed.get(*i) else {
            return Err(SigningError::Invalid(format!(
                "internal error: the plan names role {i} of {}; nothing written",
                r.changed.len()
            )));
        };
        let sig = held
            .signer
            .sign(role.md.signed_bytes())
            .map_err(signature_error)?;
        let added: Vec<Signature> = ids
            .iter()
            .map(|id| Signature {
                keyid: id.clone(),
                sig: hex::encode(&sig),
                unrecognized: Default::default(),
            })
            .collect();
        for (by, count) in role.status_with(&added) {
            for (id, why) in &count.unsigned {
                if ids.contains(id) && !matches!(why, Uncounted::SameKeyAs(_)) {
                    return Err(SigningError::Invalid(format!(
                        "the new signature does not count for key {id} in the {by}: {why}; nothing written"
                    )));
                }
            }
            counts.push(RoleCount {
                role: role.name.clone(),
                version: role.md.common().version,
                by,
                count,
            });
        }
        done.push((*i, sig, ids.clone()));
    }
    Ok((done, counts))
}

/// `rstuf sign`: the key must be a root key (of the pending root or the root it replaces) whose
/// signature is still `wanted`; then PIN, login, one signature over the pending root's
/// canonical signed bytes, written as RSTUF's `sign-payload.json` to `out` (a new file). The
/// key id signed for.
pub fn sign_pending_root(
    k: SigningKey,
    kh: &mut dyn Keyholder,
    pending: &Pending,
    wanted: &[KeyId],
    out: &Path,
) -> Result<KeyId, SigningError> {
    let root = pending.root.signed();
    let old = pending.trusted.as_ref().map(|t| t.signed());
    let material = k.public.material();
    let keyid = wanted
        .iter()
        .find(|id| {
            [Some(root), old].into_iter().flatten().any(|r| {
                r.key(id)
                    .and_then(|key| key.public_key().ok())
                    .is_some_and(|pk| pk.material() == material)
            })
        })
        .cloned()
        .ok_or_else(|| {
            SigningError::Invalid(format!(
                "refusing to sign: key \"{}\" on {} is not a root key whose signature is still missing",
                show(&k.key.label),
                k.token
            ))
        })?;
    let prompt = format!(
        "PIN for {} to sign RSTUF's pending root v{} with key \"{}\": ",
        k.token,
        root.common.version,
        show(&k.key.label)
    );
    let mut held = k.signer(kh, &prompt)?;
    let sig = held.signer.sign(pending.root.signed_bytes()).map_err(|e| {
        SigningError::Invalid(format!("the token's signature: {e}; nothing written"))
    })?;
    write_new_file(out, &rstuf::sign_payload(&keyid, &sig))
        .map_err(|e| SigningError::Io(format!("cannot write {}: {e}", out.display())))?;
    Ok(keyid)
}

/// `intoto sign`: the key must be one of `targets_keys` (the key material of the trusted root's
/// targets role); then PIN, login, the signature added to the layout `f` (read from `input`)
/// and the layout written to `out` (a new file). The layout key id.
pub fn sign_layout(
    k: SigningKey,
    kh: &mut dyn Keyholder,
    f: &mut LayoutFile,
    targets_keys: &[Vec<u8>],
    input: &Path,
    out: &Path,
) -> Result<KeyId, SigningError> {
    if !targets_keys.contains(&k.public.material()) {
        return Err(SigningError::Invalid(format!(
            "refusing to sign: key \"{}\" on {} is not a targets key of the trusted root",
            k.key.label, k.token
        )));
    }
    let prompt = format!(
        "PIN for {} to sign the in-toto layout {} with key \"{}\": ",
        k.token,
        input.display(),
        k.key.label
    );
    let mut held = k.signer(kh, &prompt)?;
    let keyid = f.add_signature(&mut held.signer).map_err(|e| {
        SigningError::Invalid(format!("the token's signature: {e}; nothing written"))
    })?;
    write_new_file(out, &f.to_file_bytes())
        .map_err(|e| SigningError::Io(format!("cannot write {}: {e}", out.display())))?;
    Ok(keyid)
}

/// The key-event log's checkpoint after [`sign_checkpoint`].
pub struct CheckpointSigned {
    /// The root key id the signature counts for.
    pub keyid: KeyId,
    /// The checkpoint as written.
    pub checkpoint: SignedCheckpoint,
    /// Its signatures counted against the log's root keys.
    pub count: NoteCount,
    /// How many root keys the log's latest root lists.
    pub root_keys: usize,
    /// The checkpoint file written.
    pub path: PathBuf,
}

/// `log sign`: the key must be a root key of the log's latest root (`root_keys`, read from the
/// log `d` in `log`) that has not signed the checkpoint yet; then PIN, login, the signature
/// added, counted (it must count for that root key) and the checkpoint written.
pub fn sign_checkpoint(
    k: SigningKey,
    keyholder: Option<&str>,
    kh: &mut dyn Keyholder,
    log: &Path,
    d: &LogDir,
    root_keys: &RoleKeys,
) -> Result<CheckpointSigned, SigningError> {
    let material = k.public.material();
    let Some((keyid, _)) = root_keys
        .keys
        .iter()
        .find(|(_, key)| key.public_key().is_ok_and(|p| p.material() == material))
    else {
        return Err(SigningError::Invalid(format!(
            "refusing to sign: key \"{}\" on {} is not a root key of the log's latest root; checkpoint left unchanged",
            k.key.label, k.token
        )));
    };
    let keyid = keyid.clone();
    let mut cp = d.checkpoint.clone();
    let kid = crate::transparency::note::note_key_id(&cp.checkpoint.origin, &k.public)
        .map_err(|e| SigningError::Invalid(e.to_string()))?;
    if cp.signatures.iter().any(|s| s.key_id == kid) {
        return Err(SigningError::Usage(format!(
            "key {keyid} has already signed this checkpoint"
        )));
    }
    let holder = keyholder
        .map(|k| format!(" of keyholder {k}"))
        .unwrap_or_default();
    let prompt = format!(
        "PIN for {}{holder} to sign the key-event log checkpoint (size {}) with key \"{}\": ",
        k.token, cp.checkpoint.size, k.key.label
    );
    let mut held = k.signer(kh, &prompt)?;
    log_dir::sign_note(&mut cp, &mut held.signer).map_err(|e| {
        SigningError::Invalid(format!("the token's signature: {e}; nothing written"))
    })?;
    let count = cp.count(root_keys);
    if !count.signed.contains(&keyid) {
        return Err(SigningError::Invalid(format!(
            "internal error: the new signature does not count for root key {keyid}; nothing written"
        )));
    }
    let path = log_dir::write_checkpoint(log, &cp)?;
    Ok(CheckpointSigned {
        keyid,
        checkpoint: cp,
        count,
        root_keys: root_keys.keys.len(),
        path,
    })
}

/// The pipeline signing steps through the token seam with the test double
/// (`driver::fake_tokens`: in-memory tokens that follow SoftHSM2's PKCS#11 answers: public key
/// objects listed without login, `CKR_PIN_INCORRECT` on a wrong PIN); the whole commands
/// against SoftHSM2 and the pipelines' own tools are tests/rstuf.rs, tests/intoto.rs,
/// tests/tuf_on_ci.rs and tests/transparency.rs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::TokenModule;
    use crate::driver::fake_tokens::{Answering, FakeTokens};
    use crate::signer::Signer;
    use crate::signer::pkcs11::{EdParams, TokenError};
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{RoleKeys as TufRoleKeys, new_root};
    use crate::tuf::key::{Algorithm, Key};
    use crate::tuf::metadata::{Metadata, RoleType};
    use zeroize::Zeroizing;

    /// bob's token with key "bob-root", alice's with "alice-root".
    fn tokens() -> (FakeTokens, Key, Key) {
        let fakes = FakeTokens::new();
        let mut made = Vec::new();
        for (who, serial) in [("alice", "1001"), ("bob", "1002")] {
            fakes.add(who, serial, &format!("{who}-pin"));
            let t = fakes.find_token(who).unwrap();
            let s = fakes.open(&t, true).unwrap();
            s.login(&Zeroizing::new(format!("{who}-pin"))).unwrap();
            made.push(
                s.generate(
                    Algorithm::Ed25519,
                    &format!("{who}-root"),
                    None,
                    EdParams::Auto,
                )
                .unwrap()
                .key,
            );
        }
        let bob = made.pop().unwrap();
        let alice = made.pop().unwrap();
        (fakes, alice, bob)
    }

    fn open(fakes: &FakeTokens, key: &str) -> SigningKey {
        SigningKey::on(
            Box::new(fakes.clone()),
            None,
            key,
            None,
            &mut Answering::new("unused"),
            "test",
        )
        .unwrap()
    }

    /// RSTUF's pending file for a root v1 of bob's key and a software key (threshold 2).
    fn pending(bob: &Key) -> Pending {
        let other = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 32]).unwrap();
        let roles: Vec<TufRoleKeys> = RoleType::ALL
            .iter()
            .map(|r| TufRoleKeys {
                role: *r,
                keys: vec![bob.clone(), other.key().clone()],
                threshold: 2,
            })
            .collect();
        let root =
            Metadata::new(new_root(&roles, time::macros::datetime!(2040-01-01 0:00 UTC)).unwrap());
        let file = format!(
            r#"{{"data":{{"metadata":{{"root":{}}}}}}}"#,
            String::from_utf8(root.to_file_bytes()).unwrap()
        );
        rstuf::parse_pending("pending.json", file.as_bytes()).unwrap()
    }

    #[test]
    fn rstuf_pending_root_is_signed_only_by_a_wanted_root_key_and_written_once() {
        let (fakes, _alice, bob) = tokens();
        let p = pending(&bob);
        let wanted = vec![bob.key_id()];
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sign-payload.json");
        // alice's key is no root key: refused before any PIN, nothing written.
        let mut alice = Answering::new("alice-pin");
        let e = sign_pending_root(open(&fakes, "alice-root"), &mut alice, &p, &wanted, &out)
            .unwrap_err();
        assert!(matches!(e, SigningError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("not a root key"), "{e}");
        assert!(alice.asked.is_empty());
        assert!(!out.exists());
        // A wrong PIN is the token's typed error; nothing written.
        let e = sign_pending_root(
            open(&fakes, "bob-root"),
            &mut Answering::new("nope"),
            &p,
            &wanted,
            &out,
        )
        .unwrap_err();
        assert!(
            matches!(&e, SigningError::Token(t) if matches!(**t, TokenError::WrongPin { .. })),
            "{e:?}"
        );
        assert!(!out.exists());
        // bob's PIN: one prompt naming the version, the payload verifies against bob's key.
        let mut bob_kh = Answering::new("bob-pin");
        let keyid =
            sign_pending_root(open(&fakes, "bob-root"), &mut bob_kh, &p, &wanted, &out).unwrap();
        assert_eq!(keyid, bob.key_id());
        assert_eq!(bob_kh.asked.len(), 1);
        assert!(
            bob_kh.asked[0].1.contains("pending root v1"),
            "{:?}",
            bob_kh.asked
        );
        let (payload_id, sig) =
            rstuf::read_sign_payload("sign-payload.json", &std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(payload_id, bob.key_id());
        bob.public_key()
            .unwrap()
            .verify(p.root.signed_bytes(), &sig)
            .unwrap();
        // The payload is written to a new file only.
        let e = sign_pending_root(
            open(&fakes, "bob-root"),
            &mut Answering::new("bob-pin"),
            &p,
            &wanted,
            &out,
        )
        .unwrap_err();
        assert!(matches!(e, SigningError::Io(_)), "{e:?}");
    }

    const LAYOUT: &str = r#"{"_type":"layout","expires":"2030-01-01T00:00:00Z","keys":{},"readme":"","steps":[],"inspect":[]}"#;

    #[test]
    fn intoto_layout_is_signed_only_by_a_targets_key() {
        let (fakes, alice, bob) = tokens();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("root.layout");
        let out = dir.path().join("signed.layout");
        let mut f =
            LayoutFile::from_bytes(format!(r#"{{"signed":{LAYOUT},"signatures":[]}}"#).as_bytes())
                .unwrap();
        let targets = vec![bob.public_key().unwrap().material()];
        let mut alice_kh = Answering::new("alice-pin");
        let e = sign_layout(
            open(&fakes, "alice-root"),
            &mut alice_kh,
            &mut f,
            &targets,
            &input,
            &out,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a targets key"), "{e}");
        assert!(alice_kh.asked.is_empty() && !out.exists());
        let _ = alice;
        let mut bob_kh = Answering::new("bob-pin");
        let keyid = sign_layout(
            open(&fakes, "bob-root"),
            &mut bob_kh,
            &mut f,
            &targets,
            &input,
            &out,
        )
        .unwrap();
        assert_eq!(bob_kh.asked.len(), 1);
        let back = LayoutFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(back.to_file_bytes(), f.to_file_bytes());
        assert!(
            String::from_utf8(f.to_file_bytes())
                .unwrap()
                .contains(&keyid.0),
            "the written layout carries the signature's key id"
        );
    }
}
