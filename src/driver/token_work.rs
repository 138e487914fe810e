//! The keyholder-token commands' device work (`conclave token keygen`, `token bench`): done
//! through the token seam or the PKCS#11 module, PINs asked through the caller's [`Keyholder`];
//! each returns a report as data, which the command line renders as text or JSON.

use std::path::Path;
use std::time::{Duration, Instant};

use super::signing_key::{Ask, Keyholder, SigningError, ask_pin, note_advisories};
use super::token_device::TokenModule;
use crate::signer::Signer;
use crate::signer::pkcs11::{
    EdParams, GeneratedKey, Module, PivSlot, TokenDesc, TokenError, TokenKey, UnreadableSlot,
};
use crate::tuf::key::Algorithm;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::RoleType;
use crate::tuf::verify::trust_root;

/// What `token keygen` makes: checked arguments.
#[derive(Debug, Clone)]
pub struct KeygenRequest<'a> {
    /// The token, by label or serial number.
    pub token: &'a str,
    /// The key type.
    pub alg: Algorithm,
    /// Label for the new key pair (not used on a PIV token: the module sets the labels).
    pub label: &'a str,
    /// `CKA_ID` for the new key pair (default: the token's choice).
    pub id: Option<Vec<u8>>,
    /// How to spell the Ed25519 curve for the token.
    pub ed: EdParams,
    /// PIV slot (a YubiKey through ykcs11 only; default 9c).
    pub piv_slot: Option<PivSlot>,
    /// A practice run: the factory-default PIV management key is accepted.
    pub practice: bool,
}

/// A key pair made by [`keygen`] and self-tested.
pub struct KeygenReport {
    /// The token holding it.
    pub token: TokenDesc,
    /// Its type.
    pub alg: Algorithm,
    /// The key as generated and read back.
    pub generated: GeneratedKey,
    /// Certificates the token holds for the new key (an attestation, e.g. ykcs11): (label, DER).
    pub certificates: Vec<(String, Vec<u8>)>,
    /// Time taken, self-test included.
    pub took: Duration,
}

/// `token keygen`: firmware advisories for the key type are shown first; on a PIV token the key
/// goes into a slot after the PIN and the management key; elsewhere a taken label is refused
/// before the PIN (public objects are visible), then login, generation and the self-test.
pub fn keygen(
    module: &dyn TokenModule,
    req: &KeygenRequest<'_>,
    kh: &mut dyn Keyholder,
) -> Result<KeygenReport, SigningError> {
    let alg = req.alg;
    let token = module.find_token(req.token)?;
    note_advisories(kh, &token, alg);
    let session = module.open(&token, true)?;
    if req.piv_slot.is_some() && !token.is_piv() {
        return Err(SigningError::Usage(format!(
            "--piv-slot is for a YubiKey through ykcs11; {token} is not one"
        )));
    }
    let (generated, took) = if token.is_piv() {
        // PIV: the key goes into a slot (CKA_ID's first byte), made after a management-key
        // login; the module sets the labels.
        let slot = req.piv_slot.unwrap_or(PivSlot::DIGITAL_SIGNATURE);
        session.check_not_locked()?;
        let pin = ask_pin(
            kh,
            &token,
            &format!(
                "PIN for {token} to generate {} key in PIV slot {slot}: ",
                alg.label()
            ),
        )?;
        let management_key = kh.ask(
            Ask::ManagementKey,
            &token,
            &format!("PIV management key for {token} (never stored or shown): "),
        )?;
        let start = Instant::now();
        let g = session.generate_piv(alg, slot, &management_key, &pin, req.practice)?;
        drop(management_key);
        drop(pin);
        (g, start.elapsed())
    } else {
        if session.keys()?.iter().any(|k| k.label == req.label) {
            return Err(TokenError::KeyExists {
                token: token.to_string(),
                what: format!("label \"{}\"", req.label),
            }
            .into());
        }
        session.check_not_locked()?;
        let pin = ask_pin(
            kh,
            &token,
            &format!(
                "PIN for {token} to generate {} key \"{}\": ",
                alg.label(),
                req.label
            ),
        )?;
        session.login(&pin)?;
        drop(pin);
        let start = Instant::now();
        let g = session.generate(alg, req.label, req.id.clone(), req.ed)?;
        (g, start.elapsed())
    };
    let certificates = session.certificates_for(&generated.id)?;
    Ok(KeygenReport {
        token,
        alg,
        generated,
        certificates,
        took,
    })
}

/// What `token bench` measured, per second over `count` signatures of 1 KiB.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The token.
    pub token: TokenDesc,
    /// The key's label.
    pub key_label: String,
    /// The key's type.
    pub alg: Algorithm,
    /// Signatures per measurement.
    pub count: u32,
    /// The token alone: bare `C_Sign` over the prepared input.
    pub bare_per_s: f64,
    /// Conclave's signing path: digest, `C_Sign`, DER, software verification.
    pub conclave_per_s: f64,
    /// How much slower Conclave's path is than the bare `C_Sign`, in percent.
    pub overhead_percent: f64,
    /// Software verification alone.
    pub verify_per_s: f64,
}

/// `token bench`: the bare `C_Sign` is timed with the concrete PKCS#11 signer (the token seam
/// has no bare signing call), against Conclave's signing path, in one session. `count` >= 1.
pub fn bench(
    module: &Module,
    token: &str,
    key: &str,
    count: u32,
    kh: &mut dyn Keyholder,
) -> Result<BenchReport, SigningError> {
    let token = module.find_token(token)?;
    let session = module.open_session(&token, false)?;
    let tkey = session.find_key(key)?;
    session.check_not_locked()?;
    let pin = ask_pin(
        kh,
        &token,
        &format!("PIN for {token} to benchmark key \"{}\": ", tkey.label),
    )?;
    session.login(&pin)?;
    drop(pin);
    let mut signer = session.signer(&tkey)?;
    let msg = vec![0x5a_u8; 1024];
    let input = signer.token_input(&msg);
    let io = |e: crate::signer::SignerError| SigningError::Io(e.to_string());
    // Warm up both paths once.
    signer.sign_prepared(&input)?;
    signer.sign(&msg).map_err(io)?;
    let start = Instant::now();
    for _ in 0..count {
        signer.sign_prepared(&input)?;
    }
    let bare = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..count {
        signer.sign(&msg).map_err(io)?;
    }
    let full = start.elapsed().as_secs_f64();
    let sig = signer.sign(&msg).map_err(io)?;
    let start = Instant::now();
    for _ in 0..count {
        signer
            .public_key()
            .verify(&msg, &sig)
            .map_err(|e| SigningError::Invalid(e.to_string()))?;
    }
    let verify = start.elapsed().as_secs_f64();
    let n = f64::from(count);
    Ok(BenchReport {
        alg: signer.public_key().algorithm(),
        token,
        key_label: tkey.label,
        count,
        bare_per_s: n / bare,
        conclave_per_s: n / full,
        overhead_percent: (full / bare - 1.0) * 100.0,
        verify_per_s: n / verify,
    })
}

/// A key of a trusted root: its id, material, owner (`x-tuf-on-ci-keyowner`) and the roles
/// that name it.
#[derive(Debug, Clone)]
pub struct RootKey {
    /// Its key id.
    pub id: KeyId,
    /// Its key material.
    pub material: Vec<u8>,
    /// Its owner, as tuf-on-ci records it.
    pub owner: Option<String>,
    /// The top-level roles that name it.
    pub roles: Vec<&'static str>,
}

/// The keys of a trusted root that verified.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    /// The root's version.
    pub version: u64,
    /// Its keys (those Conclave can read).
    pub keys: Vec<RootKey>,
}

/// The keys of the trusted root in `path`, which must verify (a threshold of its own root
/// keys), with the roles naming each.
pub fn trusted_root_keys(path: &Path) -> Result<TrustedKeys, SigningError> {
    let b = std::fs::read(path)
        .map_err(|e| SigningError::Io(format!("cannot read {}: {e}", path.display())))?;
    let (t, _) = trust_root(&path.display().to_string(), &b)
        .map_err(|e| SigningError::Invalid(format!("the trusted root does not verify: {e}")))?;
    let root = t.metadata().signed();
    let mut keys = Vec::new();
    for (id, key) in &root.keys {
        let Ok(pk) = key.public_key() else { continue };
        let roles = [
            RoleType::Root,
            RoleType::Targets,
            RoleType::Snapshot,
            RoleType::Timestamp,
        ]
        .into_iter()
        .filter(|ty| root.role(*ty).keyids.contains(id))
        .map(RoleType::as_str)
        .collect();
        keys.push(RootKey {
            id: id.clone(),
            material: pk.material(),
            owner: key
                .unrecognized
                .get("x-tuf-on-ci-keyowner")
                .and_then(crate::tuf::canonical::Value::as_str)
                .map(str::to_string),
            roles,
        });
    }
    Ok(TrustedKeys {
        version: root.common.version,
        keys,
    })
}

/// What `token list` found: the present tokens, their keys, and which keys of a trusted root
/// they hold.
pub struct TokenListing {
    /// The module has no slot or device at all (why), as opposed to no token present.
    pub no_device: Option<String>,
    /// Slots whose token could not be described.
    pub unreadable: Vec<UnreadableSlot>,
    /// The tokens, initialised or not, in slot order.
    pub tokens: Vec<ListedToken>,
    /// Indices into the trusted root's keys ([`TrustedKeys::keys`]) of keys a role names that
    /// no present token holds (empty without a trusted root).
    pub missing: Vec<usize>,
}

/// One token of a [`TokenListing`].
pub struct ListedToken {
    /// The token.
    pub token: TokenDesc,
    /// Its key pairs (none listed for a slot without an initialised token), or why they
    /// cannot be listed.
    pub keys: Result<Vec<ListedKey>, TokenError>,
}

/// One key pair of a [`ListedToken`].
pub struct ListedKey {
    /// The key as the token shows it (its TUF key, or why Conclave cannot use it).
    pub key: TokenKey,
    /// Certificates the token holds for it (label, DER); for usable keys only.
    pub certificates: Vec<(String, Vec<u8>)>,
    /// Indices into the trusted root's keys ([`TrustedKeys::keys`]) with this key's material.
    pub serves: Vec<usize>,
}

/// `token list`: every present token and its keys (seen without login), and with a trusted
/// root which of its keys each token key is and which keys a role names that no token holds.
pub fn list_tokens(
    module: &dyn TokenModule,
    trusted: Option<&TrustedKeys>,
) -> Result<TokenListing, SigningError> {
    let (scan, no_device) = match module.scan() {
        Ok(scan) => (scan, None),
        Err(e @ TokenError::NoDevice { .. }) => (Default::default(), Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let mut seen: Vec<usize> = Vec::new();
    let mut tokens = Vec::new();
    for t in scan.tokens {
        let keys = if t.initialized {
            module.open(&t, false).and_then(|s| s.keys())
        } else {
            Ok(Vec::new())
        };
        let keys = keys.map(|keys| {
            keys.into_iter()
                .map(|k| {
                    let usable = k.tuf_key().is_some();
                    let certificates = if usable {
                        module
                            .open(&t, false)
                            .and_then(|s| s.certificates_for(&k.id))
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let mut serves = Vec::new();
                    if let (true, Some(tr)) = (usable, trusted) {
                        let material = k.public.as_ref().map(|p| p.material()).unwrap_or_default();
                        for (i, rk) in tr.keys.iter().enumerate() {
                            if rk.material == material {
                                serves.push(i);
                                seen.push(i);
                            }
                        }
                    }
                    ListedKey {
                        key: k,
                        certificates,
                        serves,
                    }
                })
                .collect()
        });
        tokens.push(ListedToken { token: t, keys });
    }
    let missing = trusted
        .map(|tr| {
            (0..tr.keys.len())
                .filter(|i| !tr.keys[*i].roles.is_empty() && !seen.contains(i))
                .collect()
        })
        .unwrap_or_default();
    Ok(TokenListing {
        no_device,
        unreadable: scan.unreadable,
        tokens,
        missing,
    })
}

/// `token keygen`'s device work through the token seam with the test double
/// (`driver::fake_tokens`: in-memory tokens that follow SoftHSM2's PKCS#11 answers: public key
/// objects listed without login, `CKR_PIN_INCORRECT` on a wrong PIN; PIV slots not emulated).
/// `token bench` needs the concrete PKCS#11 signer: tests/token_softhsm.rs runs it on SoftHSM2.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake_tokens::{Answering, FakeTokens};

    fn request(label: &str) -> KeygenRequest<'_> {
        KeygenRequest {
            token: "alice",
            alg: Algorithm::Ed25519,
            label,
            id: None,
            ed: EdParams::Auto,
            piv_slot: None,
            practice: false,
        }
    }

    #[test]
    fn keygen_reports_the_key_and_refuses_a_taken_label_a_wrong_pin_and_a_piv_slot() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        let mut alice = Answering::new("alice-pin");
        let r = keygen(&fakes, &request("root-key"), &mut alice).unwrap();
        assert_eq!(alice.asked.len(), 1);
        assert_eq!(alice.asked[0].0, Ask::Pin);
        assert_eq!(r.token.label, "alice");
        assert_eq!(r.generated.label, "root-key");
        let on_token = fakes
            .open(&r.token, false)
            .unwrap()
            .find_key("root-key")
            .unwrap();
        assert_eq!(
            on_token.tuf_key().unwrap().key_id(),
            r.generated.key.key_id()
        );
        // Taken label: refused before the PIN, as the token's typed error.
        let mut alice = Answering::new("alice-pin");
        let e = keygen(&fakes, &request("root-key"), &mut alice)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&e, SigningError::Token(t) if matches!(**t, TokenError::KeyExists { .. })),
            "{e:?}"
        );
        assert!(alice.asked.is_empty());
        // A wrong PIN is a value; no key made.
        let e = keygen(&fakes, &request("other"), &mut Answering::new("wrong"))
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&e, SigningError::Token(t) if matches!(**t, TokenError::WrongPin { .. })),
            "{e:?}"
        );
        assert_eq!(fakes.key_count("alice"), 1);
        // A PIV slot on a token that is no YubiKey PIV: a usage error before any PIN.
        let piv = KeygenRequest {
            piv_slot: Some(PivSlot::DIGITAL_SIGNATURE),
            ..request("piv")
        };
        let mut alice = Answering::new("alice-pin");
        let e = keygen(&fakes, &piv, &mut alice).map(|_| ()).unwrap_err();
        assert!(matches!(e, SigningError::Usage(_)), "{e:?}");
        assert!(alice.asked.is_empty());
    }

    #[test]
    fn list_tokens_shows_keys_and_which_trusted_root_keys_no_token_holds() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        fakes.add("bob", "1002", "bob-pin");
        let r = keygen(
            &fakes,
            &request("alice-root"),
            &mut Answering::new("alice-pin"),
        )
        .unwrap();
        let on_token = r.generated.key;
        let absent =
            crate::signer::software::SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 32])
                .unwrap();
        let absent = crate::signer::Signer::key(&absent).clone();
        let root_key = |k: &crate::tuf::key::Key, roles: Vec<&'static str>| RootKey {
            id: k.key_id(),
            material: k.public_key().unwrap().material(),
            owner: None,
            roles,
        };
        let trusted = TrustedKeys {
            version: 3,
            keys: vec![
                root_key(&on_token, vec!["root"]),
                root_key(&absent, vec!["root", "targets"]),
                root_key(&absent, vec![]),
            ],
        };
        let l = list_tokens(&fakes, Some(&trusted)).unwrap();
        assert!(l.no_device.is_none() && l.unreadable.is_empty());
        let labels: Vec<&str> = l.tokens.iter().map(|t| t.token.label.as_str()).collect();
        assert_eq!(labels, ["alice", "bob"]);
        let alice_keys = l.tokens[0].keys.as_ref().unwrap();
        assert_eq!(alice_keys.len(), 1);
        assert_eq!(alice_keys[0].key.label, "alice-root");
        assert_eq!(alice_keys[0].serves, [0]);
        assert!(l.tokens[1].keys.as_ref().unwrap().is_empty());
        // The absent key a role names is missing; the one no role names is not.
        assert_eq!(l.missing, [1]);
        // Without a trusted root nothing is matched.
        let l = list_tokens(&fakes, None).unwrap();
        assert!(l.missing.is_empty());
        assert!(l.tokens[0].keys.as_ref().unwrap()[0].serves.is_empty());
    }
}
