//! The practice token store (SoftHSM2's file backend, `tokens/`) and its saved copy
//! (`tokens.saved/`). SoftHSM2 rewrites its object files in place, so an interruption at the
//! wrong moment (a power cut) can leave a file empty or cut short. The rehearsal keeps a copy of
//! every well-formed token file and, before the module is loaded, puts the copy back over a live
//! file that is empty or not well-formed. Only well-formed files are ever copied (a torn live
//! file never replaces its good copy), and a file SoftHSM2 removed (an object destroyed) is
//! never brought back. Practice tokens only: a hardware token keeps its own state.

use std::path::{Path, PathBuf};

use super::error::{DriverError, io};
use super::workspace::Workspace;

/// The live token store.
pub(super) fn live(ws: &Workspace) -> PathBuf {
    ws.dir.join("tokens")
}

/// The saved copy.
pub(super) fn saved(ws: &Workspace) -> PathBuf {
    ws.dir.join("tokens.saved")
}

/// The folder in `tokens/` of the practice token labelled `name` (SoftHSM2 keeps the label in
/// `token.object`, padded with spaces to 32 bytes).
pub(super) fn token_folder(ws: &Workspace, name: &str) -> Option<PathBuf> {
    let padded = format!("{name:<32}");
    std::fs::read_dir(live(ws))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|dir| {
            std::fs::read(dir.join("token.object"))
                .is_ok_and(|b| b.windows(padded.len()).any(|w| w == padded.as_bytes()))
        })
}

/// Kinds of attribute values in a SoftHSM2 object file (`ObjectFile.h`).
const BOOLEAN_ATTR: u64 = 1;
const ULONG_ATTR: u64 = 2;
const BYTESTR_ATTR: u64 = 3;
const ATTRMAP_ATTR: u64 = 4;
const MECHSET_ATTR: u64 = 5;

/// Whether `bytes` is a whole SoftHSM2 object file (`*.object`, `token.object`): a generation
/// number, then attributes (type, kind, value) that end exactly at the end of the file. A file
/// cut short, or empty, is not.
pub(super) fn well_formed_object(bytes: &[u8]) -> bool {
    object_attributes(bytes).is_some()
}

/// The attribute types of a whole SoftHSM2 object file, `None` when it is not one.
fn object_attributes(bytes: &[u8]) -> Option<Vec<u64>> {
    fn ulong(b: &[u8], at: &mut usize) -> Option<u64> {
        let end = at.checked_add(8)?;
        let v = u64::from_be_bytes(b.get(*at..end)?.try_into().ok()?);
        *at = end;
        Some(v)
    }
    fn skip(b: &[u8], at: &mut usize, n: u64) -> Option<()> {
        let end = at.checked_add(usize::try_from(n).ok()?)?;
        if end > b.len() {
            return None;
        }
        *at = end;
        Some(())
    }
    fn value(b: &[u8], at: &mut usize, kind: u64) -> Option<()> {
        match kind {
            BOOLEAN_ATTR => skip(b, at, 1),
            ULONG_ATTR => skip(b, at, 8),
            BYTESTR_ATTR | ATTRMAP_ATTR => {
                let n = ulong(b, at)?;
                skip(b, at, n)
            }
            MECHSET_ATTR => {
                let n = ulong(b, at)?;
                skip(b, at, n.checked_mul(8)?)
            }
            _ => None,
        }
    }
    let mut at = 0;
    ulong(bytes, &mut at)?;
    let mut types = Vec::new();
    while at < bytes.len() {
        let t = ulong(bytes, &mut at)?;
        let kind = ulong(bytes, &mut at)?;
        value(bytes, &mut at, kind)?;
        types.push(t);
    }
    Some(types)
}

/// SoftHSM2's attribute of a token's user PIN in `token.object` (`CKA_OS_USERPIN`, vendor
/// defined: `CKA_VENDOR_DEFINED + 0x5348 + 5`).
const CKA_OS_USERPIN: u64 = 0x8000_0000 + 0x5348 + 5;

/// Whether the token whose `token.object` holds `bytes` was given its user PIN (C_InitPIN): a
/// token cut between C_InitToken and C_InitPIN has none, and nobody can log in to it.
pub(super) fn has_user_pin(bytes: &[u8]) -> bool {
    object_attributes(bytes).is_some_and(|t| t.contains(&CKA_OS_USERPIN))
}

/// Whether the token file at `path` is one the saved copy keeps: a SoftHSM2 object file that is
/// well-formed (lock files are empty and are not kept).
fn keepable(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "object")
        && std::fs::read(path).is_ok_and(|b| well_formed_object(&b))
}

/// The token folders of a store (`UUID/` folders).
fn folders(store: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(store) else {
        return Ok(out);
    };
    for e in rd {
        let p = e.map_err(io(store.display()))?.path();
        if p.is_dir() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The files of a folder, sorted.
fn files(dir: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir.display()))? {
        let p = e.map_err(io(dir.display()))?.path();
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Bring the saved copy up to date with the live store: every well-formed object file is copied
/// (when it differs), and copies of files SoftHSM2 has removed (destroyed objects, tokens
/// removed as leftovers) are removed, so that a repair never brings them back.
pub(super) fn save_tokens(ws: &Workspace) -> Result<(), DriverError> {
    let from = live(ws);
    let to = saved(ws);
    for dir in folders(&from)? {
        let Some(name) = dir.file_name() else {
            continue;
        };
        let target = to.join(name);
        let live_files = files(&dir)?;
        if !live_files.iter().any(|f| keepable(f)) {
            continue;
        }
        crate::folder::create_dir_all_mode(&target, crate::folder::PRIVATE_DIR_MODE)
            .map_err(io(target.display()))?;
        for f in &live_files {
            let Some(fname) = f.file_name() else { continue };
            if !keepable(f) {
                continue;
            }
            let bytes = std::fs::read(f).map_err(io(f.display()))?;
            let copy = target.join(fname);
            if std::fs::read(&copy).ok().as_deref() != Some(bytes.as_slice()) {
                crate::folder::write_private_file(&copy, &bytes).map_err(io(copy.display()))?;
            }
        }
    }
    for dir in folders(&to)? {
        let Some(name) = dir.file_name() else {
            continue;
        };
        let live_dir = from.join(name);
        if !live_dir.is_dir() {
            remove_dir(&dir)?;
            continue;
        }
        for f in files(&dir)? {
            let gone = f.file_name().is_some_and(|n| !live_dir.join(n).exists());
            if gone && f.extension().is_some_and(|e| e == "object") {
                crate::fault::point(&format!(
                    "remove saved copy {}",
                    crate::folder::fault_name(&f)
                ));
                std::fs::remove_file(&f).map_err(io(format!("removing {}", f.display())))?;
            }
        }
    }
    Ok(())
}

/// Remove a folder and what it holds.
pub(super) fn remove_dir(dir: &Path) -> Result<(), DriverError> {
    crate::fault::point(&format!("remove folder {}", crate::folder::fault_name(dir)));
    std::fs::remove_dir_all(dir).map_err(io(format!("removing {}", dir.display())))
}

/// Put back, from the saved copy, every live token file that an interruption left empty or cut
/// short (never one SoftHSM2 removed); returns the files restored.
pub(super) fn repair_tokens(ws: &Workspace) -> Result<Vec<String>, DriverError> {
    let from = saved(ws);
    let to = live(ws);
    let mut repaired = Vec::new();
    for dir in folders(&from)? {
        let Some(name) = dir.file_name() else {
            continue;
        };
        for f in files(&dir)? {
            let Some(fname) = f.file_name() else { continue };
            if !keepable(&f) {
                continue;
            }
            let target = to.join(name).join(fname);
            let damaged = match std::fs::read(&target) {
                Ok(b) => !well_formed_object(&b),
                // Removed by SoftHSM2 (a destroyed object): never brought back.
                Err(_) => false,
            };
            if damaged {
                let bytes = std::fs::read(&f).map_err(io(f.display()))?;
                crate::folder::write_private_file(&target, &bytes).map_err(io(target.display()))?;
                repaired.push(target.display().to_string());
            }
        }
    }
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object file as SoftHSM2 writes it: generation, then (type, kind, value) attributes.
    fn object_file() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_be_bytes());
        // CKA_TOKEN, a boolean.
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&BOOLEAN_ATTR.to_be_bytes());
        b.push(1);
        // CKA_CLASS, an unsigned long.
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&ULONG_ATTR.to_be_bytes());
        b.extend_from_slice(&3u64.to_be_bytes());
        // CKA_LABEL, a byte string.
        b.extend_from_slice(&3u64.to_be_bytes());
        b.extend_from_slice(&BYTESTR_ATTR.to_be_bytes());
        b.extend_from_slice(&5u64.to_be_bytes());
        b.extend_from_slice(b"alice");
        // CKA_ALLOWED_MECHANISMS, a mechanism set of two.
        b.extend_from_slice(&0x4000_0600u64.to_be_bytes());
        b.extend_from_slice(&MECHSET_ATTR.to_be_bytes());
        b.extend_from_slice(&2u64.to_be_bytes());
        b.extend_from_slice(&0x1041u64.to_be_bytes());
        b.extend_from_slice(&0x1057u64.to_be_bytes());
        b
    }

    #[test]
    fn a_whole_object_file_is_well_formed_and_every_cut_of_it_is_not() {
        let whole = object_file();
        assert!(well_formed_object(&whole));
        // Cut anywhere inside an attribute: torn. (Cut exactly after one, it still parses, as
        // SoftHSM2 itself would read it; the generation alone is a valid empty object.)
        let boundaries = [8usize, 25, 49, 78, whole.len()];
        for n in 0..whole.len() {
            assert_eq!(
                well_formed_object(&whole[..n]),
                boundaries.contains(&n),
                "cut at {n}"
            );
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(!well_formed_object(&longer), "trailing byte");
        let mut bad_kind = whole;
        bad_kind[23] = 9;
        assert!(!well_formed_object(&bad_kind), "unknown kind");
    }

    #[test]
    fn a_torn_live_file_is_restored_never_saved_and_a_removed_one_stays_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace {
            dir: tmp.path().to_path_buf(),
        };
        let token = live(&ws).join("uuid-1");
        std::fs::create_dir_all(&token).unwrap();
        let good = object_file();
        std::fs::write(token.join("token.object"), &good).unwrap();
        std::fs::write(token.join("key.object"), &good).unwrap();
        std::fs::write(token.join("token.lock"), b"").unwrap();
        save_tokens(&ws).unwrap();
        let copy = saved(&ws).join("uuid-1");
        assert_eq!(std::fs::read(copy.join("token.object")).unwrap(), good);
        assert!(!copy.join("token.lock").exists(), "lock files are not kept");

        // Torn live file: the copy is kept, and the repair puts it back.
        std::fs::write(token.join("token.object"), &good[..30]).unwrap();
        save_tokens(&ws).unwrap();
        assert_eq!(std::fs::read(copy.join("token.object")).unwrap(), good);
        let repaired = repair_tokens(&ws).unwrap();
        assert_eq!(repaired.len(), 1, "{repaired:?}");
        assert_eq!(std::fs::read(token.join("token.object")).unwrap(), good);

        // An object SoftHSM2 destroyed is not brought back, and its copy goes.
        std::fs::remove_file(token.join("key.object")).unwrap();
        assert!(repair_tokens(&ws).unwrap().is_empty());
        assert!(!token.join("key.object").exists());
        save_tokens(&ws).unwrap();
        assert!(!copy.join("key.object").exists());
    }
}
