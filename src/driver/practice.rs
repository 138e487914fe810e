//! Practice tokens of a rehearsal: SoftHSM2 tokens for the practice keyholders, their PINs
//! kept in the workspace, and the saved copy that repairs a token file an interruption emptied.
//! Practice only: a real ceremony's tokens keep their own state and PINs are asked of people.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::ceremony::engine::ParamJson;
use crate::ceremony::script::Kind;
use crate::signer::pkcs11::Module;
use crate::tuf::canonical::{Map, Value};

use super::error::{DriverError, io};
use super::workspace::{Workspace, write_private};

/// The keyholders of a rehearsal.
pub const PRACTICE_KEYHOLDERS: [&str; 3] = ["alice", "bob", "carol"];

/// Who takes part in a rehearsal of this kind, and the parameter values the practice uses: a
/// root rotation adds a fourth keyholder (dave) and removes carol's root key.
pub(super) fn practice_plan(kind: Kind) -> (Vec<String>, BTreeMap<String, ParamJson>) {
    let mut people: Vec<String> = PRACTICE_KEYHOLDERS.iter().map(|s| s.to_string()).collect();
    let mut values = BTreeMap::new();
    if kind == Kind::RotateRootKeys {
        people.push("dave".into());
        values.insert("add_keyholders".into(), ParamJson::Text("dave".into()));
        values.insert("remove_keyholders".into(), ParamJson::Text("carol".into()));
    }
    (people, values)
}

/// The key-event log's name in practice workspaces.
pub const PRACTICE_LOG_ORIGIN: &str = "practice.conclave.invalid/key-events";

/// Environment variable marking the child process that runs with the workspace's SoftHSM2 config.
pub const REHEARSE_CHILD: &str = "CONCLAVE_REHEARSE_CHILD";

pub(super) fn random_digits(n: usize) -> Zeroizing<String> {
    use rand_core::RngCore;
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut rng = rand_core::OsRng;
    while out.len() < n {
        let b = (rng.next_u32() % 10) as u8;
        out.push(char::from(b'0' + b));
    }
    out
}

/// Practice tokens: create the missing ones and return each keyholder's PIN.
pub(super) fn practice_tokens(
    ws: &Workspace,
    module: &Module,
    people: &[String],
) -> Result<BTreeMap<String, Zeroizing<String>>, DriverError> {
    let mut pins: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(ws.practice_pins()) {
        let v = Value::parse(text.as_bytes()).map_err(io(ws.practice_pins().display()))?;
        if let Some(m) = v.as_object() {
            for (k, p) in m.iter() {
                if let Some(p) = p.as_str() {
                    pins.insert(k.clone(), Zeroizing::new(p.to_string()));
                }
            }
        }
    }
    let tokens = module.tokens().map_err(io("listing tokens"))?;
    for name in people.iter().map(String::as_str) {
        let exists = tokens.iter().any(|t| t.initialized && t.label == name);
        if exists && pins.contains_key(name) {
            continue;
        }
        if let Some(pin) = pins.get(name).filter(|_| token_folder(ws, name).is_none()) {
            // Its PIN was saved, then the run was cut before the token was made.
            let so_pin = random_digits(8);
            module
                .init_token(name, &so_pin, pin)
                .map_err(io(format!("creating the practice token of {name}")))?;
            continue;
        }
        if pins.contains_key(name) {
            return Err(DriverError::Io(format!(
                "the practice token of {name} in {} cannot be read any more (SoftHSM2 left it damaged after an interruption, and no saved copy repaired it); start a new workspace",
                ws.dir.join("tokens").display()
            )));
        }
        if exists {
            return Err(DriverError::Io(format!(
                "token \"{name}\" exists but its practice PIN is not in {}",
                ws.practice_pins().display()
            )));
        }
        let pin = random_digits(6);
        let so_pin = random_digits(8);
        pins.insert(name.to_string(), pin.clone());
        // Written before the token is made: an interruption never leaves a token nobody knows
        // the PIN of (a saved PIN without its token is made on the next run).
        let m: Map = pins
            .iter()
            .map(|(k, p)| (k.clone(), Value::String(p.to_string())))
            .collect();
        let text = Zeroizing::new(Value::Object(m).to_pretty_json());
        write_private(&ws.practice_pins(), text.as_bytes())?;
        module
            .init_token(name, &so_pin, &pin)
            .map_err(io(format!("creating the practice token of {name}")))?;
    }
    Ok(pins)
}

/// The folder in `tokens/` of the practice token labelled `name` (SoftHSM2 keeps the label in
/// `token.object`, padded with spaces to 32 bytes).
fn token_folder(ws: &Workspace, name: &str) -> Option<std::path::PathBuf> {
    let padded = format!("{name:<32}");
    std::fs::read_dir(ws.dir.join("tokens"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|dir| {
            std::fs::read(dir.join("token.object"))
                .is_ok_and(|b| b.windows(padded.len()).any(|w| w == padded.as_bytes()))
        })
}

/// Before the token module is loaded: remove what an interrupted earlier run left in the
/// practice token store: a practice token made before its PIN was saved (an earlier version
/// saved it after; nobody can log in to it), and the temporary files of the saved copy
/// (`*.tmp`). Returns what was removed.
pub(super) fn clean_practice_leftovers(
    ws: &Workspace,
    people: &[String],
) -> Result<Vec<String>, DriverError> {
    let mut removed = Vec::new();
    let saved: Vec<String> = std::fs::read_to_string(ws.practice_pins())
        .ok()
        .and_then(|t| Value::parse(t.as_bytes()).ok())
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default();
    for name in people {
        if saved.contains(name) {
            continue;
        }
        if let Some(dir) = token_folder(ws, name) {
            std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
            // And its saved copy, which would otherwise bring it back.
            if let Some(copy) = dir.file_name().map(|n| ws.dir.join("tokens.saved").join(n))
                && copy.exists()
            {
                std::fs::remove_dir_all(&copy)
                    .map_err(io(format!("removing {}", copy.display())))?;
            }
            removed.push(format!(
                "the practice token of {name} ({}) was made before its PIN was saved and was made again",
                dir.display()
            ));
        }
    }
    let saved_dir = ws.dir.join("tokens.saved");
    for tmp in temporary_files(&saved_dir) {
        std::fs::remove_file(&tmp).map_err(io(format!("removing {}", tmp.display())))?;
        removed.push(format!(
            "a temporary file of the saved token copy ({})",
            tmp.display()
        ));
    }
    Ok(removed)
}

/// `*.tmp` files (what `write_private` leaves when cut short) one folder level under `dir`.
fn temporary_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.filter_map(Result::ok).map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

/// SoftHSM2 rewrites its token files in place, so a `kill -9` at the wrong moment can leave a
/// practice token's file empty. The rehearsal keeps a copy of the token store once the tokens
/// and keys exist (`tokens.saved/`) and puts back any file that an interruption emptied. Practice
/// tokens only: a hardware token keeps its own state.
pub(super) fn save_tokens(ws: &Workspace) -> Result<(), DriverError> {
    let from = ws.dir.join("tokens");
    let to = ws.dir.join("tokens.saved");
    for dir in std::fs::read_dir(&from).map_err(io(from.display()))? {
        let dir = dir.map_err(io(from.display()))?.path();
        if !dir.is_dir() {
            continue;
        }
        let Some(name) = dir.file_name() else {
            continue;
        };
        let target = to.join(name);
        std::fs::create_dir_all(&target).map_err(io(target.display()))?;
        for f in std::fs::read_dir(&dir).map_err(io(dir.display()))? {
            let f = f.map_err(io(dir.display()))?.path();
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if f.is_file()
                && len > 0
                && let Some(fname) = f.file_name()
            {
                let bytes = std::fs::read(&f).map_err(io(f.display()))?;
                write_private(&target.join(fname), &bytes)?;
            }
        }
    }
    Ok(())
}

/// Put back token files that an interruption left empty; returns what was repaired.
pub(super) fn repair_tokens(ws: &Workspace) -> Result<Vec<String>, DriverError> {
    let live = ws.dir.join("tokens");
    let saved = ws.dir.join("tokens.saved");
    let mut repaired = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&saved) else {
        return Ok(repaired);
    };
    for dir in dirs {
        let dir = dir.map_err(io(saved.display()))?.path();
        let Some(name) = dir.file_name() else {
            continue;
        };
        for f in std::fs::read_dir(&dir).map_err(io(dir.display()))? {
            let f = f.map_err(io(dir.display()))?.path();
            let Some(fname) = f.file_name() else { continue };
            // The saved copy's own temporary files are never put into the token store.
            if f.extension().is_some_and(|e| e == "tmp") {
                continue;
            }
            let target = live.join(name).join(fname);
            let damaged = target.metadata().map(|m| m.len() == 0).unwrap_or(true);
            if damaged {
                let bytes = std::fs::read(&f).map_err(io(f.display()))?;
                write_private(&target, &bytes)?;
                repaired.push(target.display().to_string());
            }
        }
    }
    Ok(repaired)
}
