//! The pipeline signing commands' token work: with a [`SigningKey`] opened before any PIN, each
//! checks that the key may sign what was reviewed, then asks the PIN, signs (the signer verifies
//! every signature against the token's public key) and checks the result; the rules of each
//! pipeline stay in the pure core ([`crate::tuf::tuf_on_ci`], [`crate::tuf::rstuf`],
//! [`crate::intoto`], [`crate::transparency`]). The command line renders what they return.

use std::path::{Path, PathBuf};

use super::log_dir::{self, LogDirError};
use super::pipeline_inputs::{self, RstufFile};
use super::signing_key::{Keyholder, SigningError, SigningKey};
use super::token_device::TokenModule;
use crate::folder::write_new_file;
use crate::intoto::{LayoutFile, LayoutSummary};
use crate::signer::SignerError;
use crate::signer::pkcs11::TokenDesc;
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

/// Which token key a pipeline signing command signs with, as the keyholder named it.
#[derive(Debug, Clone, Copy)]
pub struct KeyChoice<'a> {
    /// The token, by label or serial (None: the one present token holding `key`).
    pub token: Option<&'a str>,
    /// The key, by label or TUF key id.
    pub key: &'a str,
    /// The keyholder's name, for the prompts.
    pub keyholder: Option<&'a str>,
}

impl KeyChoice<'_> {
    /// The module loaded by `load` (called only now, after every check that needs no token)
    /// and the key found on it ([`SigningKey::on`]; `purpose` goes into the PIN prompt of a
    /// token that shows its keys only after login).
    pub(super) fn open(
        &self,
        load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
        kh: &mut dyn Keyholder,
        purpose: &str,
    ) -> Result<SigningKey, SigningError> {
        SigningKey::on(load()?, self.token, self.key, self.keyholder, kh, purpose)
    }
}

/// A command that writes its result to a new file refuses an existing name (also a dangling
/// link) before anything else is read.
fn refuse_existing(out: &Path, what: &str) -> Result<(), SigningError> {
    if out.symlink_metadata().is_ok() {
        return Err(SigningError::Usage(format!(
            "{} exists; Conclave writes {what} to a new file",
            out.display()
        )));
    }
    Ok(())
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

/// `conclave rstuf sign`: RSTUF's pending file, the root this appliance trusts, the new file
/// for the signature payload, and the key.
#[derive(Debug, Clone, Copy)]
pub struct RstufSignRequest<'a> {
    /// RSTUF's pending file (the JSON response of `GET /api/v1/metadata/sign/`).
    pub pending: &'a Path,
    /// The root this appliance trusts ([`pipeline_inputs::read_pending_to_sign`]).
    pub trusted_root: &'a Path,
    /// The signature payload (a new file).
    pub out: &'a Path,
    /// The token key.
    pub key: KeyChoice<'a>,
}

/// RSTUF's pending root after [`sign_rstuf_pending`].
pub struct PendingRootSigned {
    /// The pending file as read and reviewed (before the new signature).
    pub file: RstufFile,
    /// The root key id signed for.
    pub keyid: KeyId,
    /// The token that signed.
    pub token: TokenDesc,
    /// The key's label on it.
    pub key_label: String,
}

/// `conclave rstuf sign`: every check before the module is loaded (the output is new, the
/// pending file and its anchor, [`pipeline_inputs::read_pending_to_sign`]), then the key, then
/// [`sign_pending_root`].
pub fn sign_rstuf_pending(
    req: &RstufSignRequest<'_>,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<PendingRootSigned, SigningError> {
    refuse_existing(req.out, "the signature payload")?;
    let file = pipeline_inputs::read_pending_to_sign(req.pending, req.trusted_root)?;
    let wanted = file.review.still_to_sign();
    let k = req.key.open(load, kh, "sign RSTUF's pending root")?;
    let (token, key_label) = (k.token.clone(), k.key.label.clone());
    let keyid = sign_pending_root(k, kh, &file.pending, &wanted, req.out)?;
    Ok(PendingRootSigned {
        file,
        keyid,
        token,
        key_label,
    })
}

/// `conclave intoto sign`: the layout to sign, the registry's root, the new file, and the key.
#[derive(Debug, Clone, Copy)]
pub struct LayoutSignRequest<'a> {
    /// The layout (only read).
    pub input: &'a Path,
    /// The registry's root: the key must be one of its targets keys.
    pub trusted_root: &'a Path,
    /// The signed layout (a new file).
    pub out: &'a Path,
    /// The token key.
    pub key: KeyChoice<'a>,
}

/// An in-toto layout after [`sign_intoto_layout`].
pub struct LayoutSigned {
    /// The layout as read (before the new signature).
    pub read: LayoutFile,
    /// Its review summary.
    pub summary: LayoutSummary,
    /// The layout key id of the new signature.
    pub keyid: KeyId,
    /// The token that signed.
    pub token: TokenDesc,
    /// The key's label on it.
    pub key_label: String,
}

/// `conclave intoto sign`: every check before the module is loaded (the output is new, the
/// layout parses, the trusted root verifies: [`pipeline_inputs`]), then the key, then
/// [`sign_layout`].
pub fn sign_intoto_layout(
    req: &LayoutSignRequest<'_>,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<LayoutSigned, SigningError> {
    refuse_existing(req.out, "the signed layout")?;
    let (read, summary) = pipeline_inputs::read_layout(req.input)?;
    let targets_keys = pipeline_inputs::targets_key_material(req.trusted_root)?;
    let k = req.key.open(load, kh, "sign the in-toto layout")?;
    let (token, key_label) = (k.token.clone(), k.key.label.clone());
    let mut layout = read.clone();
    let keyid = sign_layout(k, kh, &mut layout, &targets_keys, req.input, req.out)?;
    Ok(LayoutSigned {
        read,
        summary,
        keyid,
        token,
        key_label,
    })
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
    /// The token that signed.
    pub token: TokenDesc,
    /// The key's label on it.
    pub key_label: String,
}

/// `conclave log sign`: the log (read and verified apart from its signatures, the root keys of
/// its latest root: [`log_dir::read_log_to_sign`]) before the module is loaded, then the key
/// named by `key`, then [`sign_checkpoint`].
pub fn sign_log_checkpoint(
    log: &Path,
    key: &KeyChoice<'_>,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<CheckpointSigned, SigningError> {
    let (d, root_keys) = log_dir::read_log_to_sign(log)?;
    let Some(root_keys) = root_keys else {
        return Err(SigningError::Invalid(
            "refusing to sign: the log has published no root, so no root keys".into(),
        ));
    };
    let k = key.open(load, kh, "sign the key-event log checkpoint")?;
    sign_checkpoint(k, key.keyholder, kh, log, &d, &root_keys)
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
    let (token, key_label) = (k.token.clone(), k.key.label.clone());
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
        token,
        key_label,
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

    /// A module loader for the whole commands that counts its calls: every input check comes
    /// before the module is loaded.
    fn loader(
        fakes: &FakeTokens,
        loads: &std::cell::Cell<u32>,
    ) -> impl FnMut() -> Result<Box<dyn TokenModule>, SigningError> {
        let fakes = fakes.clone();
        move || {
            loads.set(loads.get() + 1);
            Ok(Box::new(fakes.clone()))
        }
    }

    fn choice(key: &str) -> KeyChoice<'_> {
        KeyChoice {
            token: None,
            key,
            keyholder: Some("bob"),
        }
    }

    #[test]
    fn rstuf_sign_checks_its_files_before_loading_the_module_then_signs() {
        let (fakes, _alice, bob) = tokens();
        let dir = tempfile::tempdir().unwrap();
        // RSTUF's model: named root keys (bob's and a software key, threshold 2), the online
        // key with its URI.
        let named_bob = rstuf::named_key(&bob, "bob");
        let other = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 32]).unwrap();
        let s = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[8; 48]).unwrap();
        let mut online = rstuf::named_key(s.key(), "online");
        online
            .unrecognized
            .insert(rstuf::ONLINE_URI_FIELD.into(), "fn:online-key".into());
        let root = rstuf::new_root(
            &[named_bob.clone(), rstuf::named_key(other.key(), "other")],
            2,
            &online,
            time::macros::datetime!(2040-01-01 0:00 UTC),
        )
        .unwrap();
        let p = Pending {
            root: Metadata::new(root),
            trusted: None,
            other_roles: Vec::new(),
        };
        let pending_path = dir.path().join("pending.json");
        std::fs::write(
            &pending_path,
            format!(
                r#"{{"data":{{"metadata":{{"root":{}}}}}}}"#,
                String::from_utf8(p.root.to_file_bytes()).unwrap()
            ),
        )
        .unwrap();
        let anchor = dir.path().join("1.root.json");
        let out = dir.path().join("sign-payload.json");
        let loads = std::cell::Cell::new(0);
        let req = |trusted_root| RstufSignRequest {
            pending: &pending_path,
            trusted_root,
            out: &out,
            key: choice("bob-root"),
        };
        // No trusted root on disk: refused, naming it, before the module is loaded.
        let mut kh = Answering::new("bob-pin");
        let e = sign_rstuf_pending(&req(&anchor), &mut loader(&fakes, &loads), &mut kh)
            .err()
            .unwrap();
        assert!(
            matches!(e, SigningError::Io(_)) && e.to_string().contains("1.root.json"),
            "{e}"
        );
        assert_eq!(loads.get(), 0);
        // The appliance's root v1 is the pending root: bob signs, once.
        std::fs::write(&anchor, p.root.to_file_bytes()).unwrap();
        let done = sign_rstuf_pending(&req(&anchor), &mut loader(&fakes, &loads), &mut kh)
            .ok()
            .unwrap();
        assert_eq!((loads.get(), kh.asked.len()), (1, 1));
        assert_eq!(done.keyid, named_bob.key_id());
        assert_eq!(done.key_label, "bob-root");
        assert!(!done.file.review.complete());
        // The payload exists now: a second run is refused before anything else.
        std::fs::remove_file(&anchor).unwrap();
        let e = sign_rstuf_pending(&req(&anchor), &mut loader(&fakes, &loads), &mut kh)
            .err()
            .unwrap();
        assert!(matches!(e, SigningError::Usage(_)), "{e:?}");
        assert_eq!(loads.get(), 1);
    }

    #[test]
    fn intoto_sign_checks_the_trusted_root_before_loading_the_module() {
        let (fakes, alice, bob) = tokens();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("root.layout");
        std::fs::write(&input, format!(r#"{{"signed":{LAYOUT},"signatures":[]}}"#)).unwrap();
        let root_path = dir.path().join("root.json");
        let out = dir.path().join("signed.layout");
        // bob's key alone for every role, threshold 1, signed by nobody: does not verify.
        let roles: Vec<TufRoleKeys> = RoleType::ALL
            .iter()
            .map(|r| TufRoleKeys {
                role: *r,
                keys: vec![bob.clone()],
                threshold: 1,
            })
            .collect();
        let root =
            Metadata::new(new_root(&roles, time::macros::datetime!(2040-01-01 0:00 UTC)).unwrap());
        std::fs::write(&root_path, root.to_file_bytes()).unwrap();
        let loads = std::cell::Cell::new(0);
        let req = LayoutSignRequest {
            input: &input,
            trusted_root: &root_path,
            out: &out,
            key: choice("bob-root"),
        };
        let mut kh = Answering::new("bob-pin");
        let e = sign_intoto_layout(&req, &mut loader(&fakes, &loads), &mut kh)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("the trusted root does not verify"),
            "{e}"
        );
        assert_eq!(loads.get(), 0);
        assert!(kh.asked.is_empty() && !out.exists());
        // Signed by bob's root key (on his token, outside any command): it verifies.
        let t = fakes.find_token("bob").unwrap();
        let s = fakes.open(&t, true).unwrap();
        s.login(&Zeroizing::new("bob-pin".to_string())).unwrap();
        let key = s.find_key("bob-root").unwrap();
        let mut signer = s.signer(&key).unwrap();
        let mut root = root;
        let sig = signer.sign(root.signed_bytes()).unwrap();
        root.add_signature(bob.key_id(), &sig);
        drop(signer);
        std::fs::write(&root_path, root.to_file_bytes()).unwrap();
        let done = sign_intoto_layout(&req, &mut loader(&fakes, &loads), &mut kh)
            .ok()
            .unwrap();
        assert_eq!(loads.get(), 1);
        assert!(done.read.signatures().is_empty(), "the layout as read");
        let written = LayoutFile::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(written.signatures().len(), 1);
        let _ = alice;
    }

    /// A key-event log of one ceremony whose root's root keys are bob's and a software key
    /// (threshold 1), written as `conclave log append` writes a new log.
    fn log_of(bob: &Key, dir: &Path) {
        use crate::transparency::event::{CeremonyRef, Export, KeyState, Published};
        use crate::transparency::log::Log;
        let roles: Vec<TufRoleKeys> = RoleType::ALL
            .iter()
            .map(|r| TufRoleKeys {
                role: *r,
                keys: vec![bob.clone()],
                threshold: 1,
            })
            .collect();
        let root =
            Metadata::new(new_root(&roles, time::macros::datetime!(2040-01-01 0:00 UTC)).unwrap());
        let export = Export {
            root: Some(Published::from_bytes(&root.to_file_bytes()).unwrap()),
            targets: None,
        };
        let ceremony = CeremonyRef {
            name: "bootstrap-root".into(),
            seal: [7; 32],
        };
        let mut log = Log::new();
        log.append(crate::transparency::event::ceremony_events(
            &ceremony,
            &KeyState::default(),
            &export,
        ));
        let (files, _) = crate::transparency::dir::layout(&log, None, "test.invalid/key-events");
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn log_sign_reads_the_log_before_loading_the_module_and_signs_once_per_root_key() {
        let (fakes, _alice, bob) = tokens();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let loads = std::cell::Cell::new(0);
        let mut kh = Answering::new("bob-pin");
        // No log there: refused before the module is loaded.
        let e = sign_log_checkpoint(
            &log,
            &choice("bob-root"),
            &mut loader(&fakes, &loads),
            &mut kh,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("is not a log directory"), "{e}");
        assert_eq!(loads.get(), 0);
        std::fs::create_dir(&log).unwrap();
        log_of(&bob, &log);
        // alice's key is no root key of the log: refused before any PIN.
        let mut alice = Answering::new("alice-pin");
        let e = sign_log_checkpoint(
            &log,
            &choice("alice-root"),
            &mut loader(&fakes, &loads),
            &mut alice,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("not a root key of the log's latest root"),
            "{e}"
        );
        assert!(alice.asked.is_empty());
        let done = sign_log_checkpoint(
            &log,
            &choice("bob-root"),
            &mut loader(&fakes, &loads),
            &mut kh,
        )
        .ok()
        .unwrap();
        assert_eq!(done.keyid, bob.key_id());
        assert!(done.count.verified());
        assert_eq!((done.key_label.as_str(), kh.asked.len()), ("bob-root", 1));
        let e = sign_log_checkpoint(
            &log,
            &choice("bob-root"),
            &mut loader(&fakes, &loads),
            &mut kh,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("has already signed"), "{e}");
    }
}
