//! `conclave sign` and `conclave bundle export`: one signature from a token key over a TUF
//! metadata file's canonical signed bytes, after every check that needs no PIN (the metadata
//! parses, the trusted root verifies, a role names the key). The command line renders the
//! result ([`TokenSignature`], [`SignedFile`]).

use std::path::Path;
use std::time::{Duration, Instant};

use super::signing_key::{Keyholder, SigningError, SigningKey, note_advisories};
use super::token_device::TokenModule;
use crate::signer::pkcs11::TokenDesc;
use crate::transport::bundle::file_bytes;
use crate::tuf::key::{Key, KeyId};
use crate::tuf::metadata::{AnyMetadata, Metadata, Role, RoleType, Root, Signature};
use crate::tuf::verify::{
    ThresholdResult, Uncounted, count_signatures, count_signatures_known, trust_root,
};

/// A role that may count a signature: description, the role, its keys.
type RoleWithKeys = (String, Role, Vec<(KeyId, Key)>);

/// Which keys may sign a metadata file, and where that was read.
struct Authority {
    /// (role description, key id, key) for every key a relevant role names.
    keys: Vec<(String, KeyId, Key)>,
    /// Roles to report thresholds for afterwards: (description, role, its keys).
    roles: Vec<RoleWithKeys>,
    /// Why authority could not be established (no trusted root for a non-root file).
    missing: Option<String>,
}

fn authority(md: &AnyMetadata, trusted: Option<&Metadata<Root>>) -> Authority {
    let mut auth = Authority {
        keys: Vec::new(),
        roles: Vec::new(),
        missing: None,
    };
    let mut add = |desc: String, root: &Root, ty: RoleType| {
        let role = root.role(ty);
        let mut ks = Vec::new();
        for id in &role.keyids {
            if let Some(k) = root.key(id) {
                auth.keys.push((desc.clone(), id.clone(), k.clone()));
                ks.push((id.clone(), k.clone()));
            }
        }
        auth.roles.push((desc, role.clone(), ks));
    };
    let ty = md.role_type();
    if let AnyMetadata::Root(r) = md {
        add(
            format!(
                "root role of this root (version {})",
                r.signed().common.version
            ),
            r.signed(),
            RoleType::Root,
        );
    }
    match trusted {
        Some(t) => add(
            format!(
                "{ty} role of the trusted root (version {})",
                t.signed().common.version
            ),
            t.signed(),
            ty,
        ),
        None if ty != RoleType::Root => {
            auth.missing = Some(format!(
                "no --trusted-root given, so Conclave cannot tell which keys the {ty} role accepts"
            ))
        }
        None => {}
    }
    auth
}

fn add_signature(md: &mut AnyMetadata, keyid: KeyId, sig: &[u8]) {
    match md {
        AnyMetadata::Root(m) => m.add_signature(keyid, sig),
        AnyMetadata::Targets(m) => m.add_signature(keyid, sig),
        AnyMetadata::Snapshot(m) => m.add_signature(keyid, sig),
        AnyMetadata::Timestamp(m) => m.add_signature(keyid, sig),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// What `conclave sign` and `conclave bundle export` have in common: which token key signs which
/// metadata file, checked against which trusted root.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The token, by label or serial (None: the one present token holding `key`).
    pub token: Option<&'a str>,
    /// The key, by label or TUF key id (or a unique prefix).
    pub key: &'a str,
    /// The keyholder's name, for the PIN prompt.
    pub keyholder: Option<&'a str>,
    /// The metadata file to sign (only read).
    pub metadata: &'a Path,
    /// Trusted root: names the keys of targets/snapshot/timestamp, and the old root keys when
    /// signing a new root. It must verify by its own root keys.
    pub trusted_root: Option<&'a Path>,
    /// Sign even if no role names the key (loud; the signature will not count).
    pub force: bool,
}

/// A token's signature over a metadata file's canonical signed bytes, already verified in
/// software against the key as each relevant role lists it.
pub struct TokenSignature {
    /// Key material of the token's key (the signature was verified against it).
    pub material: Vec<u8>,
    /// The metadata as read (unchanged).
    pub md: AnyMetadata,
    /// The signature as TUF carries it (DER for ECDSA).
    pub sig: Vec<u8>,
    /// Key ids the signature is for (more than one only when a root lists the same key under
    /// two ids).
    pub keyids: Vec<KeyId>,
    /// Which roles name the key, as "ROLE DESCRIPTION as KEYID".
    pub named_by: Vec<String>,
    /// Roles to report thresholds for.
    roles: Vec<RoleWithKeys>,
    /// The token that signed.
    pub token: TokenDesc,
    /// Label of the key on the token.
    pub key_label: String,
    /// "ROLE version N (FILE)".
    pub what: String,
    /// Time the token took to sign.
    pub took: Duration,
}

impl TokenSignature {
    /// One line per relevant role: its threshold count over `signatures`, by the verifier's
    /// one threshold counter.
    pub fn threshold_lines(&self, signatures: &[Signature]) -> String {
        let mut out = String::new();
        for (desc, role, keys) in &self.roles {
            let r = count_signatures(
                |id| keys.iter().find(|(k, _)| k == id).map(|(_, k)| k),
                role,
                self.md.signed_bytes(),
                signatures,
            );
            let state = if r.verified() {
                "threshold met"
            } else {
                "not enough signatures yet"
            };
            out.push_str(&format!("  {desc}: {} ({state})\n", r.summary()));
        }
        out
    }
}

/// Sign a metadata file's canonical signed bytes with a token key: everything that can be
/// checked is checked before the PIN is asked (the metadata parses, the trusted root verifies,
/// a role names the key); then PIN, login, sign, and verification of the signature in software.
/// Writes nothing: the callers decide what to write (a signed file, a bundle).
///
/// The module is loaded by `load` after every check that needs no token; PINs are asked and
/// notes (firmware advisories, `--force` warnings) shown through `kh`.
pub fn sign_with_token(
    req: &SignRequest<'_>,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<TokenSignature, SigningError> {
    // 1. Everything that can be checked before touching the token.
    let in_bytes = std::fs::read(req.metadata)
        .map_err(|e| SigningError::Io(format!("cannot read {}: {e}", req.metadata.display())))?;
    let md = AnyMetadata::from_bytes(&in_bytes).map_err(|e| {
        SigningError::Usage(format!(
            "{} is not TUF metadata: {e}",
            req.metadata.display()
        ))
    })?;
    // The trusted root must itself verify (a threshold of its own root keys) before its key
    // lists decide anything.
    let trusted = match req.trusted_root {
        Some(p) => {
            let b = std::fs::read(p)
                .map_err(|e| SigningError::Io(format!("cannot read {}: {e}", p.display())))?;
            let (t, _) = trust_root(&p.display().to_string(), &b).map_err(|e| {
                SigningError::Invalid(format!("the trusted root does not verify: {e}"))
            })?;
            Some(t.metadata().clone())
        }
        None => None,
    };
    let auth = authority(&md, trusted.as_ref());
    let ty = md.role_type();
    let version = md.common().version;
    let what = format!("{ty} version {version} ({})", req.metadata.display());

    // 2. The token and the key (public objects: no PIN needed yet).
    let holder = req
        .keyholder
        .map(|k| format!(" of keyholder {k}"))
        .unwrap_or_default();
    let k = SigningKey::on(
        load()?,
        req.token,
        req.key,
        req.keyholder,
        kh,
        &format!("sign {what}"),
    )?;
    let (token, tkey, public) = (&k.token, &k.key, &k.public);
    note_advisories(kh, token, public.algorithm());
    let material = public.material();
    let mut keyids: Vec<KeyId> = Vec::new();
    let mut named_by = Vec::new();
    for (desc, id, k) in &auth.keys {
        if k.public_key().is_ok_and(|p| p.material() == material) {
            if !keyids.contains(id) {
                keyids.push(id.clone());
            }
            named_by.push(format!("{desc} as {id}"));
        }
    }
    let own_id = Key::from_public_key(public).key_id();
    if keyids.is_empty() {
        let why = auth.missing.clone().unwrap_or_else(|| {
            format!(
                "key \"{}\" ({own_id}) on {token} is not named by the {}",
                tkey.label,
                auth.roles
                    .iter()
                    .map(|r| r.0.clone())
                    .collect::<Vec<_>>()
                    .join(" nor the ")
            )
        });
        if !req.force {
            return Err(SigningError::Invalid(format!(
                "refusing to sign {what}: {why}; {} left unchanged (use --force to sign anyway; the signature would not count)",
                req.metadata.display()
            )));
        }
        kh.note(&format!("!!! WARNING: --force: {why}."));
        kh.note(&format!(
            "!!! WARNING: signing {what} anyway with key id {own_id}; this signature does NOT count toward any threshold Conclave knows."
        ));
        keyids.push(own_id.clone());
    }

    // 3. PIN, login, sign, verify.
    k.login(
        kh,
        &format!(
            "PIN for {token}{holder} to sign {what} with key \"{}\": ",
            tkey.label
        ),
    )?;
    let token = token.clone();
    let key_label = tkey.label.clone();
    let mut signer = k.session.signer(&k.key)?;
    let msg = md.signed_bytes();
    let start = Instant::now();
    let sig = signer.sign(msg).map_err(|e| match e {
        crate::signer::SignerError::Token(t) => SigningError::Token(t),
        other => SigningError::Invalid(format!(
            "the token's signature is bad, nothing written: {other}"
        )),
    })?;
    let took = start.elapsed();
    // `signer.sign` verified the signature against the token's public key, whose material is
    // the material of every key id in `keyids` (matched above): not verified again here.
    Ok(TokenSignature {
        material,
        md,
        sig,
        keyids,
        named_by,
        roles: auth.roles,
        token,
        key_label,
        what,
        took,
    })
}

/// A metadata file signed by [`sign_file`] and written.
pub struct SignedFile {
    /// The token's signature and what it is for.
    pub signed: TokenSignature,
    /// Each relevant role's threshold count over the file as written (description, count).
    pub counts: Vec<(String, ThresholdResult)>,
}

/// `conclave sign`: add one signature from a token key to the metadata file `req.metadata` and
/// write it to `out` (atomically; `out` must not exist unless it is the input). Before the
/// rename the file as written is read back: its signed part is the one signed, and the new
/// signature counts wherever a role names its key id (the one threshold counter: the token's
/// signature was verified against its key over these bytes and is taken as known for exactly
/// that key material and those signature bytes; every other signature is verified).
pub fn sign_file(
    req: &SignRequest<'_>,
    out: &Path,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, SigningError>,
    kh: &mut dyn Keyholder,
) -> Result<SignedFile, SigningError> {
    let in_place = same_file(req.metadata, out);
    if !in_place && out.exists() {
        return Err(SigningError::Usage(format!(
            "{} exists; Conclave does not overwrite another file (sign in place with --out equal to --in)",
            out.display()
        )));
    }
    let signed = sign_with_token(req, load, kh)?;
    let mut md = signed.md.clone();
    for id in &signed.keyids {
        add_signature(&mut md, id.clone(), &signed.sig);
    }
    let out_bytes = file_bytes(&md);
    let check = AnyMetadata::from_bytes(&out_bytes)
        .map_err(|e| SigningError::Usage(format!("internal error: output does not parse: {e}")))?;
    if check.signed_bytes() != signed.md.signed_bytes() {
        return Err(SigningError::Usage(
            "internal error: the signed part changed while adding a signature; nothing written"
                .into(),
        ));
    }
    let known = [(signed.material.clone(), signed.sig.clone())];
    let mut counts = Vec::new();
    for (desc, role, keys) in &signed.roles {
        let r = count_signatures_known(
            |id| keys.iter().find(|(k, _)| k == id).map(|(_, k)| k),
            role,
            signed.md.signed_bytes(),
            check.signatures(),
            &known,
        );
        for (id, why) in &r.unsigned {
            if signed.keyids.contains(id) && !matches!(why, Uncounted::SameKeyAs(_)) {
                return Err(SigningError::Invalid(format!(
                    "the new signature does not count for key {id} as the {desc} lists it: {why}; nothing written"
                )));
            }
        }
        counts.push((desc.clone(), r));
    }
    crate::folder::write_replacing(out, &out_bytes)
        .map_err(|e| SigningError::Io(format!("cannot write {}: {e}", out.display())))?;
    Ok(SignedFile { signed, counts })
}

/// Signing metadata through the token seam with the test double (`driver::fake_tokens`:
/// in-memory tokens that follow SoftHSM2's PKCS#11 answers: public key objects listed without
/// login, `CKR_PIN_INCORRECT` on a wrong PIN); the same commands on SoftHSM2 itself are
/// tests/token_softhsm.rs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake_tokens::{Answering, FakeTokens};
    use crate::signer::Signer;
    use crate::signer::pkcs11::{EdParams, TokenError};
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{RoleKeys, new_root};
    use crate::tuf::key::Algorithm;
    use zeroize::Zeroizing;

    /// Generate key `label` on `token` (logged in with `pin`); its TUF key.
    fn make_key(fakes: &FakeTokens, token: &str, label: &str, pin: &str) -> Key {
        let t = fakes.find_token(token).unwrap();
        let s = fakes.open(&t, true).unwrap();
        s.login(&Zeroizing::new(pin.to_string())).unwrap();
        s.generate(Algorithm::Ed25519, label, None, EdParams::Auto)
            .unwrap()
            .key
    }

    /// Two tokens, bob's key in a root v1 (with a software key: threshold 2 of 2), written.
    fn setup() -> (FakeTokens, Key, tempfile::TempDir, std::path::PathBuf) {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        fakes.add("bob", "1002", "bob-pin");
        let key = make_key(&fakes, "bob", "bob-root", "bob-pin");
        // alice holds a key too: a token that requires login and shows no key at all is taken
        // for one that hides its keys until login (yubihsm_pkcs11), see `locate_key`.
        make_key(&fakes, "alice", "alice-root", "alice-pin");
        let other = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 32]).unwrap();
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![key.clone(), other.key().clone()],
                threshold: 2,
            })
            .collect();
        let exp = time::macros::datetime!(2040-01-01 0:00 UTC);
        let root = Metadata::new(new_root(&roles, exp).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("1.root.json");
        std::fs::write(&file, root.to_file_bytes()).unwrap();
        (fakes, key, dir, file)
    }

    fn request<'a>(key: &'a str, file: &'a Path) -> SignRequest<'a> {
        SignRequest {
            token: None,
            key,
            keyholder: Some("bob"),
            metadata: file,
            trusted_root: None,
            force: false,
        }
    }

    /// The key is found by label on whichever present token holds it, the PIN asked once, and
    /// the signature verifies against the key the root lists.
    #[test]
    fn sign_finds_the_key_on_whichever_token_holds_it_and_signs_a_root() {
        let (fakes, key, _dir, file) = setup();
        let req = request("bob-root", &file);
        let mut bob = Answering::new("bob-pin");
        let signed = sign_with_token(&req, &mut || Ok(Box::new(fakes.clone())), &mut bob).unwrap();
        assert_eq!(bob.asked.len(), 1);
        assert!(
            bob.asked[0].1.starts_with("PIN for token \"bob\"")
                && bob.asked[0]
                    .1
                    .contains(" of keyholder bob to sign root version 1"),
            "{:?}",
            bob.asked
        );
        assert_eq!(signed.token.label, "bob");
        assert_eq!(signed.keyids, vec![key.key_id()]);
        key.public_key()
            .unwrap()
            .verify(signed.md.signed_bytes(), &signed.sig)
            .unwrap();
        let sigs = [Signature {
            keyid: key.key_id(),
            sig: hex::encode(&signed.sig),
            unrecognized: Default::default(),
        }];
        let lines = signed.threshold_lines(&sigs);
        assert!(
            lines.contains("1 of 2 keys signed") && lines.contains("not enough signatures yet"),
            "{lines}"
        );
        // A key no present token holds: the error names what the tokens hold, no PIN asked.
        let missing = request("carol-root", &file);
        let mut bob = Answering::new("bob-pin");
        let e = sign_with_token(&missing, &mut || Ok(Box::new(fakes.clone())), &mut bob)
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.to_string().contains("carol-root")
                && e.to_string().contains("bob-root")
                && e.to_string().contains("alice-root"),
            "{e}"
        );
        assert!(
            bob.asked.is_empty(),
            "no PIN asked for a key that is not there"
        );
    }

    /// `conclave sign` in place: the file gains the signature and the counts say 1 of 2; a wrong
    /// PIN is the token's typed error and writes nothing; an existing other file is refused
    /// before the module is loaded.
    #[test]
    fn sign_file_writes_in_place_refuses_a_wrong_pin_and_an_existing_output() {
        let (fakes, key, dir, file) = setup();
        let before = std::fs::read(&file).unwrap();
        let req = request("bob-root", &file);
        let mut wrong = Answering::new("not-bobs");
        let e = sign_file(&req, &file, &mut || Ok(Box::new(fakes.clone())), &mut wrong)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&e, SigningError::Token(t) if matches!(**t, TokenError::WrongPin { .. })),
            "{e:?}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), before, "nothing written");

        let other = dir.path().join("other.json");
        std::fs::write(&other, b"{}").unwrap();
        let mut loaded = false;
        let e = sign_file(
            &req,
            &other,
            &mut || {
                loaded = true;
                Ok(Box::new(fakes.clone()))
            },
            &mut Answering::new("bob-pin"),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(matches!(e, SigningError::Usage(_)), "{e:?}");
        assert!(e.to_string().contains("does not overwrite"), "{e}");
        assert!(!loaded, "refused before the module is loaded");

        let done = sign_file(
            &req,
            &file,
            &mut || Ok(Box::new(fakes.clone())),
            &mut Answering::new("bob-pin"),
        )
        .unwrap();
        let (desc, count) = &done.counts[0];
        assert!(
            desc.starts_with("root role of this root (version 1)"),
            "{desc}"
        );
        assert_eq!(count.summary(), "1 of 2 keys signed, threshold 2");
        let md = AnyMetadata::from_bytes(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(md.signatures().len(), 1);
        assert_eq!(md.signatures()[0].keyid, key.key_id());
    }

    /// A targets file without a trusted root: refused before any PIN (exit 1 at the command
    /// line); with `--force` signed, and the warnings reach the keyholder before the PIN.
    #[test]
    fn a_key_no_role_names_is_refused_before_the_pin_unless_forced() {
        let (fakes, _key, dir, _root) = setup();
        let targets = crate::tuf::edit::new_targets(time::macros::datetime!(2040-01-01 0:00 UTC));
        let file = dir.path().join("targets.json");
        std::fs::write(&file, Metadata::new(targets).to_file_bytes()).unwrap();
        let req = request("bob-root", &file);
        let mut bob = Answering::new("bob-pin");
        let e = sign_with_token(&req, &mut || Ok(Box::new(fakes.clone())), &mut bob)
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(e, SigningError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("no --trusted-root given"), "{e}");
        assert!(bob.asked.is_empty());
        let forced = SignRequest { force: true, ..req };
        let signed =
            sign_with_token(&forced, &mut || Ok(Box::new(fakes.clone())), &mut bob).unwrap();
        assert_eq!(bob.asked.len(), 1);
        assert!(
            bob.notes
                .iter()
                .any(|n| n.starts_with("!!! WARNING: --force")),
            "{:?}",
            bob.notes
        );
        assert_eq!(signed.keyids.len(), 1);
    }
}
