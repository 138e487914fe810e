//! Finding a keyholder's token and key, and logging in with the right PIN.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::ceremony::engine::Engine;
use crate::signer::pkcs11::{TokenDesc, TokenKey};
use crate::tuf::key::KeyId;

use super::error::{DriverError, io, token_error};
use super::plan::Plan;
use super::session::RecordedKey;
use super::token_device::{OpenToken, TokenModule, TokenSigner};

pub(super) fn login(
    module: &dyn TokenModule,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<Box<dyn OpenToken>, DriverError> {
    let token = keyholder_token(module, keyholder, plan)?;
    login_to(module, &token, keyholder, plan, typed)
}

/// The token the plan names for `keyholder` (by label or serial; default: labelled with the
/// keyholder's name), present now.
pub(super) fn keyholder_token(
    module: &dyn TokenModule,
    keyholder: &str,
    plan: &Plan,
) -> Result<TokenDesc, DriverError> {
    let wanted = plan.tokens.get(keyholder).map_or(keyholder, String::as_str);
    keyholder_token_found(module.find_token(wanted), wanted, keyholder, plan)
}

/// [`keyholder_token`] among the tokens `present` (a listing of `module`, made earlier): no
/// token is asked.
pub(super) fn keyholder_token_among(
    present: &[TokenDesc],
    module: &str,
    keyholder: &str,
    plan: &Plan,
) -> Result<TokenDesc, DriverError> {
    let wanted = plan.tokens.get(keyholder).map_or(keyholder, String::as_str);
    let found = crate::signer::pkcs11::pick_token(present, wanted, module, &[]);
    keyholder_token_found(found, wanted, keyholder, plan)
}

/// The keyholder's token as found under the name `wanted`: refused if it is not a real one.
fn keyholder_token_found(
    found: Result<TokenDesc, crate::signer::pkcs11::TokenError>,
    wanted: &str,
    keyholder: &str,
    plan: &Plan,
) -> Result<TokenDesc, DriverError> {
    let token = found.map_err(|e| {
        DriverError::Io(format!(
            "insert the token {wanted} of keyholder {keyholder}: {e}"
        ))
    })?;
    real_token(&token, keyholder, plan)?;
    Ok(token)
}

/// A real ceremony never uses a SoftHSM2 token, whatever chose the module (`--module`, the
/// configuration, the answers file, p11-kit-proxy): checked before any PIN is asked or sent.
pub(super) fn real_token(
    token: &TokenDesc,
    keyholder: &str,
    plan: &Plan,
) -> Result<(), DriverError> {
    if plan.practice || !token.is_softhsm() {
        return Ok(());
    }
    Err(DriverError::Refused(format!(
        "{token} of keyholder {keyholder} is a SoftHSM2 token (its keys are files on this machine): a real ceremony never uses one. Use the keyholder's own device, or mark a training run practice = true in the answers file"
    )))
}

/// The secret of `token` for `keyholder` in `given` (PINs or management keys, from the plan):
/// `KEYHOLDER@TOKEN` first, TOKEN naming the token as `--token` does (label, serial, or the
/// card label without the PIN label OpenSC appends: `alice@alice-new` is the PIN of
/// `alice-new (UserPIN)`), for a keyholder with two tokens (e.g. replacing their own); then
/// `KEYHOLDER`.
fn planned_secret<'a>(
    given: &'a BTreeMap<String, Zeroizing<String>>,
    keyholder: &str,
    token: &TokenDesc,
) -> Option<&'a Zeroizing<String>> {
    given
        .iter()
        .find(|(key, _)| names_token(key, keyholder, token))
        .map(|(_, secret)| secret)
        .or_else(|| given.get(keyholder))
}

/// Is `key` (of the plan's PINs or management keys) `keyholder@TOKEN` with TOKEN naming
/// `token`?
fn names_token(key: &str, keyholder: &str, token: &TokenDesc) -> bool {
    key.strip_prefix(keyholder)
        .and_then(|rest| rest.strip_prefix('@'))
        .is_some_and(|named| token.is_named(named))
}

/// The PIN of `token` for `keyholder`: the typed one, the plan's, or asked on the terminal
/// (naming the token and the keyholder; no echo). On a reader with a PIN pad none is asked:
/// the keyholder enters it on the pad (an empty PIN: `C_Login` with no PIN).
pub(super) fn pin_for(
    token: &TokenDesc,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<Zeroizing<String>, DriverError> {
    if token.protected_path
        && typed.is_none()
        && planned_secret(&plan.pins, keyholder, token).is_none()
    {
        eprintln!("{}", token.pin_pad_note());
        return Ok(Zeroizing::new(String::new()));
    }
    // Before the PIN is asked or sent. (The terminal UI types the PIN itself; there the
    // wrong-PIN message before the next prompt says the same.)
    if typed.is_none()
        && let Some(warning) = crate::signer::pkcs11::tpm_last_try_warning(token)
    {
        eprintln!("{warning}");
    }
    secret_for(
        &plan.pins,
        token,
        keyholder,
        typed,
        &format!("PIN for token {} of keyholder {keyholder}: ", token.label),
        "reading the PIN",
    )
}

/// The PIV management key of `token` for `keyholder` (a YubiKey through ykcs11): the typed
/// one, the plan's, or asked on the terminal like a PIN (no echo). Never stored or shown.
pub(super) fn management_key_for(
    token: &TokenDesc,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<Zeroizing<String>, DriverError> {
    secret_for(
        &plan.management_keys,
        token,
        keyholder,
        typed,
        &format!(
            "PIV management key for token {} of keyholder {keyholder} (never stored or shown): ",
            token.label
        ),
        "reading the PIV management key",
    )
}

fn secret_for(
    given: &BTreeMap<String, Zeroizing<String>>,
    token: &TokenDesc,
    keyholder: &str,
    typed: Option<&Zeroizing<String>>,
    prompt: &str,
    reading: &str,
) -> Result<Zeroizing<String>, DriverError> {
    match typed.or_else(|| planned_secret(given, keyholder, token)) {
        Some(p) => Ok(p.clone()),
        None => crate::pin::prompt_pin(prompt).map_err(io(reading)),
    }
}

/// Open a read-write session on `token` and log in with the typed PIN, the plan's, or one asked
/// on the terminal (naming the token and the keyholder).
pub(super) fn login_to(
    module: &dyn TokenModule,
    token: &TokenDesc,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<Box<dyn OpenToken>, DriverError> {
    real_token(token, keyholder, plan)?;
    let session = module
        .open(token, true)
        .map_err(token_error(format!("the token of {keyholder}")))?;
    session
        .check_not_locked()
        .map_err(token_error(format!("the token of {keyholder}")))?;
    let pin = pin_for(token, keyholder, plan, typed)?;
    session
        .login(&pin)
        .map_err(token_error(format!("login to the token of {keyholder}")))?;
    Ok(session)
}

/// The present token that holds the key root (new or current) lists under `keyid`: the
/// keyholder's own token first, then any other present token (a keyholder replacing their own
/// token signs with the old one for the current root and the new one for the new root).
/// Public key objects are read without logging in.
pub(super) fn token_holding(
    module: &dyn TokenModule,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    earlier: &[RecordedKey],
    keyid: &KeyId,
) -> Result<Option<TokenDesc>, DriverError> {
    find_token_with(module, who, plan, engine, earlier, |id| id == keyid)
}

/// Whether `recorded` (a token as a `key-generated` record names it: its identity, module +
/// serial + label, or its serial alone in older transcripts) is `token`.
fn recorded_as(recorded: &str, token: &TokenDesc) -> bool {
    recorded == token.identity() || recorded == token.serial
}

/// Whether a `key-generated` record of this ceremony or of an `earlier` one of the workspace
/// names `token` (a token holding a current key: in a rotation it signs, it does not generate).
pub(super) fn holds_recorded_key(
    engine: &Engine,
    earlier: &[RecordedKey],
    token: &TokenDesc,
) -> bool {
    recorded_owner(engine, token).is_some()
        || earlier
            .iter()
            .any(|(_, recorded, _)| recorded_as(recorded, token))
}

/// The keyholder whose key this ceremony's transcript recorded on `token` (at key
/// generation), if any.
pub(super) fn recorded_owner<'a>(engine: &'a Engine, token: &TokenDesc) -> Option<&'a str> {
    engine
        .generated_keys()
        .iter()
        .find(|(_, recorded, _)| recorded_as(recorded, token))
        .map(|(who, _, _)| who.as_str())
}

/// The tokens `key-generated` records name: those holding a key of `who` that `wanted_key`
/// accepts (this ceremony's records, then `earlier` ceremonies' of the workspace), and those
/// holding another keyholder's key in this ceremony.
fn recorded_tokens(
    who: &str,
    engine: &Engine,
    earlier: &[RecordedKey],
    wanted_key: &impl Fn(&KeyId) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut mine = Vec::new();
    let mut others = Vec::new();
    let this = engine.generated_keys().iter().map(|r| (r, true));
    for ((holder, token, key), now) in this.chain(earlier.iter().map(|r| (r, false))) {
        if holder != who {
            if now {
                others.push(token.clone());
            }
            continue;
        }
        let accepted = key.public_key().is_ok_and(|pk| {
            engine
                .key_ids_for_material(&pk.material())
                .iter()
                .any(wanted_key)
        });
        if accepted {
            mine.push(token.clone());
        }
    }
    (mine, others)
}

/// The first present token (the keyholder's own first) holding a key that root (new or
/// current) lists under a key id `wanted` accepts. Public key objects are read without logging
/// in. A token that shows its keys only after login (YubiHSM 2) is a candidate when the
/// keyholder named it (the plan's token for them, or a `who@TOKEN` PIN) or when a transcript
/// recorded the key on it (the serial recorded at key generation, in this ceremony or an
/// earlier one of the workspace, `earlier`: the keyholder's token chosen in the room is found
/// again, also after a restart, and a keyholder replacing their own YubiHSM signs for the
/// current root with the old one); a token this ceremony recorded as another keyholder's
/// never is. The recorded token is taken without logging in
/// to any. Of several other such tokens (a keyholder replacing their own YubiHSM), each is
/// logged in to with the PIN the plan gives for it and looked into, so the key is found on the
/// token that holds it. The terminal UI and `conclave ceremony run` both find tokens here.
pub(super) fn find_token_with(
    module: &dyn TokenModule,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    earlier: &[RecordedKey],
    wanted_key: impl Fn(&KeyId) -> bool,
) -> Result<Option<TokenDesc>, DriverError> {
    let wanted = plan.tokens.get(who).map_or(who, String::as_str);
    let (recorded, others) = recorded_tokens(who, engine, earlier, &wanted_key);
    let is_recorded = |t: &TokenDesc| recorded.iter().any(|r| recorded_as(r, t));
    let is_others = |t: &TokenDesc| !is_recorded(t) && others.iter().any(|r| recorded_as(r, t));
    let mut tokens = module.tokens().map_err(token_error("listing the tokens"))?;
    tokens.retain(|t| t.initialized);
    tokens.sort_by_key(|t| (!is_recorded(t), !t.is_named(wanted)));
    let holds = |keys: &[TokenKey]| {
        keys.iter().any(|k| {
            k.tuf_key()
                .and_then(|key| key.public_key().ok())
                .is_some_and(|pk| {
                    engine
                        .key_ids_for_material(&pk.material())
                        .iter()
                        .any(&wanted_key)
                })
        })
    };
    // The keyholder's tokens that show their keys only after login.
    let mut hidden = Vec::new();
    for t in tokens {
        let Ok(session) = module.open(&t, false) else {
            continue;
        };
        let named = t.login_required
            && !is_others(&t)
            && (is_recorded(&t)
                || t.is_named(wanted)
                || plan.pins.keys().any(|k| names_token(k, who, &t)));
        let keys = match session.keys() {
            Ok(keys) if keys.is_empty() && named => {
                hidden.push(t);
                continue;
            }
            Ok(keys) => keys,
            Err(_) if named => {
                hidden.push(t);
                continue;
            }
            Err(_) => continue,
        };
        if holds(&keys) {
            return Ok(Some(t));
        }
    }
    // The token the transcript recorded the key on: no PIN goes to any other.
    if let Some(t) = hidden.iter().find(|t| is_recorded(t)) {
        return Ok(Some(t.clone()));
    }
    if hidden.len() > 1 {
        for t in &hidden {
            let Some(pin) = planned_secret(&plan.pins, who, t) else {
                continue;
            };
            if real_token(t, who, plan).is_err() {
                continue;
            }
            let Ok(session) = module.open(t, false) else {
                continue;
            };
            if session.login(pin).is_ok() && session.keys().is_ok_and(|keys| holds(&keys)) {
                return Ok(Some(t.clone()));
            }
        }
    }
    Ok(hidden.into_iter().next())
}

/// The keyholder's token key that root (new or current) lists under `keyid`, logged in.
pub(super) fn token_signer_for(
    module: &dyn TokenModule,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    earlier: &[RecordedKey],
    keyid: &KeyId,
    pin: Option<&Zeroizing<String>>,
) -> Result<TokenSigner, DriverError> {
    let token = token_holding(module, who, plan, engine, earlier, keyid)?.ok_or_else(|| {
        DriverError::Io(format!(
            "no token present holds key {} of {who}: insert it",
            keyid.short()
        ))
    })?;
    let session = login_to(module, &token, who, plan, pin)?;
    let tkey = session
        .keys()
        .map_err(token_error(format!("keys of {who}")))?
        .into_iter()
        .find(|k| {
            k.tuf_key()
                .and_then(|key| key.public_key().ok())
                .is_some_and(|pk| engine.key_ids_for_material(&pk.material()).contains(keyid))
        })
        .ok_or_else(|| DriverError::Io(format!("{token} does not hold key {keyid} of {who}")))?;
    session
        .signer(&tkey)
        .map_err(token_error(format!("the key of {who}")))
}

/// The keyholder's token key that may sign in this ceremony (found by key material: root lists
/// it with its owner), and the key id root lists it under.
/// The present token that holds one of `who`'s keys that may sign in this ceremony (or a root
/// key of the root in force): the keyholder's own token first, then any other (tokens need not
/// be labelled after their keyholder). Public key objects are read without logging in.
pub(super) fn sealing_token(
    module: &dyn TokenModule,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    earlier: &[RecordedKey],
) -> Result<Option<TokenDesc>, DriverError> {
    let mine = engine.keyholder_all_key_ids(who);
    find_token_with(module, who, plan, engine, earlier, |id| {
        mine.contains(id) && (!engine.roles_for_key(id).is_empty() || engine.is_root_key_after(id))
    })
}

pub(super) fn ceremony_signer(
    module: &dyn TokenModule,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    earlier: &[RecordedKey],
    pin: Option<&Zeroizing<String>>,
) -> Result<(TokenSigner, KeyId), DriverError> {
    let session = match sealing_token(module, who, plan, engine, earlier)? {
        Some(token) => login_to(module, &token, who, plan, pin)?,
        // Keys without recorded owners: the keyholder's own token.
        None => login(module, who, plan, pin)?,
    };
    let usable: Vec<(TokenKey, KeyId)> = session
        .keys()
        .map_err(token_error(format!("keys of {who}")))?
        .into_iter()
        .filter_map(|k| {
            let material = k.tuf_key()?.public_key().ok()?.material();
            let id = engine.key_for_material(&material)?;
            (!engine.roles_for_key(&id).is_empty() || engine.is_root_key_after(&id))
                .then_some((k, id))
        })
        .collect();
    // A root key of the root in force after the ceremony first: it also signs the key-event
    // log's checkpoint.
    let found = usable
        .iter()
        .find(|(_, id)| engine.is_root_key_after(id))
        .or(usable.first())
        .cloned();
    let Some((tkey, id)) = found else {
        return Err(DriverError::Io(format!(
            "the token of {who} holds no key that may sign in this ceremony"
        )));
    };
    let signer = session
        .signer(&tkey)
        .map_err(token_error(format!("the key of {who}")))?;
    Ok((signer, id))
}

pub(super) fn key_label(script: &str) -> String {
    format!("conclave-{script}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyholder_at_token_pin_names_the_token_as_token_does() {
        let card = TokenDesc::example("alice-new (UserPIN)", "DENK0100002");
        for key in [
            "alice@alice-new",
            "alice@alice-new (UserPIN)",
            "alice@DENK0100002",
        ] {
            assert!(names_token(key, "alice", &card), "{key}");
        }
        for key in [
            "alice",
            "alice@alice",
            "bob@alice-new",
            "alic@alice-new",
            "alice-new",
        ] {
            assert!(!names_token(key, "alice", &card), "{key}");
        }
    }
}
