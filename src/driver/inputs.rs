//! What a ceremony reads from the input media (`WORKSPACE/input/`) and the export of earlier
//! ceremonies (`WORKSPACE/export/`); practice runs make stand-ins for missing inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::signer::Signer;
use crate::signer::software::SoftwareSigner;
use crate::transcript::details::FileDigest;
use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Map, Value};
use crate::tuf::key::Algorithm;
use crate::tuf::metadata::{Metadata, SignedPayload};

use super::audit_files::RepositoryFolder;

use super::clock::Clock;
use super::error::{DriverError, io};
use super::workspace::Workspace;

/// Stand-in online keys on the input media, made once per workspace: for the roles the script
/// imports (`roles`; snapshot and timestamp when it names none). RSTUF's `online` key carries
/// its `x-rstuf-online-key-uri` (`fn:` and its key id, as RSTUF's CLI writes for a key file).
pub(super) fn online_keys(
    ws: &Workspace,
    file: &str,
    make_stand_ins: bool,
    roles: &[String],
) -> Result<(BTreeMap<String, Value>, FileDigest), DriverError> {
    let path = ws.input().join(file);
    if !path.exists() && !make_stand_ins {
        return Err(DriverError::Refused(format!(
            "{}: the online public keys are not on the input media",
            path.display()
        )));
    }
    if !path.exists() {
        crate::folder::create_dir_all_mode(&ws.input(), crate::folder::DIR_MODE)
            .map_err(io(ws.input().display()))?;
        let mut m = Map::new();
        let default = ["snapshot".to_string(), "timestamp".to_string()];
        for role in if roles.is_empty() {
            &default[..]
        } else {
            roles
        } {
            let s = SoftwareSigner::generate(Algorithm::Ed25519, &mut rand_core::OsRng)
                .ok_or_else(|| DriverError::Io("cannot generate a stand-in online key".into()))?;
            let mut key = s.key().clone();
            if role == "online" {
                let uri = format!("fn:{}", key.key_id());
                key.unrecognized
                    .insert(crate::tuf::rstuf::ONLINE_URI_FIELD.to_string(), uri.into());
            }
            m.insert(role.clone(), key.to_value());
        }
        crate::folder::write_new_file(&path, Value::Object(m).to_pretty_json().as_bytes())
            .map_err(io(path.display()))?;
    }
    let bytes = crate::folder::read_limited(&path, crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE)
        .map_err(DriverError::Io)?;
    let v = Value::parse(&bytes).map_err(io(path.display()))?;
    let keys = v
        .as_object()
        .ok_or_else(|| DriverError::Io(format!("{}: expected an object of keys", path.display())))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((keys, FileDigest::of(&format!("input/{file}"), &bytes)))
}

/// Developers' key requests on the input media (`input/requests/*.json`); a practice run makes
/// two (projects `example-pkg` and `other-pkg`, one Ed25519 and one P-256 developer key) when
/// the folder does not exist.
/// The key requests on the input media (`requests/*.json`, in file-name order), each with the
/// file it came from and that file's SHA-256.
pub(super) fn key_requests(
    ws: &Workspace,
    make_stand_ins: bool,
) -> Result<Vec<(Value, crate::ceremony::engine::RequestSource)>, DriverError> {
    let dir = ws.input().join("requests");
    if !dir.exists() && !make_stand_ins {
        return Err(DriverError::Refused(format!(
            "{}: no key requests on the input media",
            dir.display()
        )));
    }
    if !dir.exists() {
        crate::folder::create_dir_all_mode(&dir, crate::folder::DIR_MODE)
            .map_err(io(dir.display()))?;
        for (project, alg) in [
            ("example-pkg", Algorithm::Ed25519),
            ("other-pkg", Algorithm::EcdsaP256),
        ] {
            let dev = SoftwareSigner::generate(alg, &mut rand_core::OsRng).ok_or_else(|| {
                DriverError::Io("cannot generate a stand-in developer key".into())
            })?;
            let mut m = Map::new();
            m.insert(
                "_type".into(),
                crate::ceremony::engine::KEY_REQUEST_TYPE.into(),
            );
            m.insert("project".into(), project.into());
            m.insert(
                "paths".into(),
                Value::Array(vec![Value::String(format!("{project}/*"))]),
            );
            m.insert("threshold".into(), 1u64.into());
            m.insert("keys".into(), Value::Array(vec![dev.key().to_value()]));
            let path = dir.join(format!("{project}.json"));
            crate::folder::write_new_file(&path, Value::Object(m).to_pretty_json().as_bytes())
                .map_err(io(path.display()))?;
        }
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let bytes = crate::folder::read_limited(p, 1024 * 1024).map_err(DriverError::Io)?;
            let v = Value::parse(&bytes).map_err(io(p.display()))?;
            let named = |e| DriverError::Refused(format!("{}: {e}", p.display()));
            let file = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    DriverError::Refused(format!("{}: the file name is not UTF-8", p.display()))
                })?
                .to_string();
            let source = crate::ceremony::engine::RequestSource {
                file,
                sha256: {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(&bytes))
                },
            };
            crate::ceremony::engine::KeyRequest::from_value(&v)
                .map(|_| (v, source))
                .map_err(named)
        })
        .collect()
}

/// A stand-in in-toto layout for practice: one step "build" by a software functionary key,
/// expiring in half a year.
pub(super) fn practice_layout(clock: &dyn Clock) -> Result<String, DriverError> {
    let func = SoftwareSigner::generate(Algorithm::Ed25519, &mut rand_core::OsRng)
        .ok_or_else(|| DriverError::Io("cannot generate a stand-in functionary key".into()))?;
    let key = func.key().clone();
    let id = key.key_id().0;
    let mut keyv = key.to_value();
    if let Value::Object(m) = &mut keyv {
        m.insert("keyid".into(), Value::String(id.clone()));
    }
    let expires = (clock.now() + time::Duration::days(182))
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| DriverError::Io(e.to_string()))?;
    let text = format!(
        r#"{{"signatures": [], "signed": {{"_type": "layout", "expires": "{expires}", "readme": "Practice layout made by conclave rehearse", "keys": {{"{id}": {keyv}}}, "steps": [{{"_type": "step", "name": "build", "threshold": 1, "expected_materials": [], "expected_products": [["ALLOW", "*"]], "pubkeys": ["{id}"], "expected_command": ["make"]}}], "inspect": []}}}}"#,
        keyv = String::from_utf8_lossy(&keyv.canonical_bytes())
    );
    Ok(text)
}

/// The newest `N.ROLE.json` in a folder, listed as the verifier lists it
/// ([`RepositoryFolder::latest`]); `None` also when the folder cannot be opened.
pub(super) fn latest(dir: &Path, role: &str) -> Option<(u64, PathBuf)> {
    let folder = RepositoryFolder::open(dir, DEFAULT_MAX_FILE_SIZE).ok()?;
    folder.latest(role).map(|(v, name)| (v, folder.path(&name)))
}

/// The current root and targets from the export of earlier ceremonies: what `conclave verify
/// --trusted-root EXPORT/1.root.json --repo EXPORT` verifies there ([`RepositoryFolder::verify`]),
/// the newest root of the chain and the targets the verifier checked, read again through the
/// same folder and taken only when they are the metadata it verified.
/// `rstuf`: RSTUF's model, whose targets is signed online: no targets is read (`null`).
pub(super) fn current_metadata(
    ws: &Workspace,
    clock: &dyn Clock,
    rstuf: bool,
) -> Result<(Value, Value), DriverError> {
    let export = ws.export();
    let first = export.join("1.root.json");
    if !first.exists() {
        return Err(DriverError::Refused(format!(
            "{} does not exist: run the bootstrap-root ceremony in this workspace first",
            first.display()
        )));
    }
    let folder = RepositoryFolder::open(&export, DEFAULT_MAX_FILE_SIZE)
        .map_err(|e| DriverError::Io(e.to_string()))?;
    let (report, verified) = folder
        .verify(&first, clock.now())
        .map_err(|e| DriverError::Refused(e.to_string()))?;
    let (None, Some(set)) = (&report.error, verified) else {
        return Err(DriverError::Refused(format!(
            "the metadata in {} does not verify: {}",
            export.display(),
            report.error.clone().unwrap_or_default()
        )));
    };
    let root = set.root().metadata();
    let root = verified_file(
        &folder,
        &format!("{}.root.json", root.signed().common.version),
        root,
    )?;
    let targets = if rstuf {
        Value::Null
    } else {
        let file = report
            .roles
            .iter()
            .find(|r| r.role == "targets")
            .map(|r| r.file.as_str());
        match (file, set.targets("targets")) {
            (Some(file), Some(trusted)) => verified_file(&folder, file, trusted)?,
            _ => {
                return Err(DriverError::Refused(format!(
                    "no targets metadata in {}",
                    export.display()
                )));
            }
        }
    };
    Ok((root, targets))
}

/// The file `name` of `folder` as JSON, when it is the metadata `trusted` the verifier
/// verified from it (the same signed part and signatures: a file replaced since is refused).
fn verified_file<T: SignedPayload>(
    folder: &RepositoryFolder,
    name: &str,
    trusted: &Metadata<T>,
) -> Result<Value, DriverError> {
    let path = folder.path(name);
    let bytes = folder
        .read(name)
        .map_err(|e| DriverError::Io(e.to_string()))?
        .ok_or_else(|| {
            DriverError::Io(format!("{}: gone since it was verified", path.display()))
        })?;
    let v = Value::parse(&bytes).map_err(io(path.display()))?;
    match Metadata::<T>::from_value(v.clone()) {
        Ok(m)
            if m.signed_bytes() == trusted.signed_bytes() && m.signatures == trusted.signatures =>
        {
            Ok(v)
        }
        _ => Err(DriverError::Refused(format!(
            "{}: changed since it was verified",
            path.display()
        ))),
    }
}

/// The target files to publish (publish-targets): the manifest `input/publish-targets/
/// manifest.json` and, for every entry that adds or replaces a file, its bytes from
/// `input/publish-targets/files/PATH` (base64, by target path). A file larger than `max_bytes`
/// is refused before it is read; a path the engine will refuse (traversal, odd characters) is
/// never opened, and a file reached through a symbolic link out of the files folder is refused.
/// A practice run makes a stand-in manifest and file when there is none.
pub(super) fn publish_targets(
    ws: &Workspace,
    make_stand_ins: bool,
    max_bytes: u64,
) -> Result<(Value, BTreeMap<String, String>), DriverError> {
    use crate::ceremony::publish::{
        FILES_DIR, MANIFEST_FILE, MAX_TARGET_BYTES, MAX_TOTAL_BYTES, check_target_path,
    };
    use base64::Engine as _;
    let manifest_path = ws.input().join(MANIFEST_FILE);
    let files_dir = ws.input().join(FILES_DIR);
    if !manifest_path.exists() && !make_stand_ins {
        return Err(DriverError::Refused(format!(
            "{}: no manifest of target files to publish on the input media",
            manifest_path.display()
        )));
    }
    if !manifest_path.exists() {
        let path = "practice/notice.txt";
        let file = files_dir.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
        }
        crate::folder::write_new_file(
            &file,
            b"A practice target file made by conclave rehearse.\n",
        )
        .map_err(io(file.display()))?;
        let text = format!(
            "{{\"_type\": \"{}\", \"targets\": [{{\"path\": \"{path}\", \"action\": \"add\", \"custom\": {{\"practice\": {{\"made-by\": \"conclave rehearse\"}}}}}}]}}\n",
            crate::ceremony::publish::MANIFEST_TYPE
        );
        crate::folder::write_new_file(&manifest_path, text.as_bytes())
            .map_err(io(manifest_path.display()))?;
    }
    let bytes = crate::folder::read_limited(&manifest_path, 1024 * 1024).map_err(|e| {
        DriverError::Refused(format!("the manifest of target files to publish: {e}"))
    })?;
    let manifest = Value::parse(&bytes)
        .map_err(|e| DriverError::Refused(format!("{}: {e}", manifest_path.display())))?;
    let entries = manifest
        .as_object()
        .and_then(|m| m.get("targets"))
        .and_then(|t| match t {
            Value::Array(a) => Some(a.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let root = files_dir.canonicalize().ok();
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let Some(m) = e.as_object() else { continue };
        let (Some(path), Some(action)) = (
            m.get("path").and_then(Value::as_str),
            m.get("action").and_then(Value::as_str),
        ) else {
            continue;
        };
        // The engine names what is wrong with the entry; nothing outside the files folder is
        // opened for it.
        if action == "remove" || check_target_path(path, false).is_err() || files.contains_key(path)
        {
            continue;
        }
        let named = |what: String| {
            DriverError::Refused(format!(
                "{MANIFEST_FILE}: $.targets[{i}] ({}): {what}",
                crate::text::show(path)
            ))
        };
        let file = files_dir.join(path);
        let Ok(real) = file.canonicalize() else {
            continue; // Missing: the engine says which file is not on the input media.
        };
        if root.as_ref().is_none_or(|r| !real.starts_with(r)) {
            return Err(named(format!(
                "{} leads out of {FILES_DIR} (a symbolic link): refused",
                file.display()
            )));
        }
        let len = std::fs::metadata(&real)
            .map_err(|e| named(format!("{}: {e}", file.display())))?
            .len();
        if len > max_bytes {
            return Err(named(format!(
                "the file is {len} bytes, more than {MAX_TARGET_BYTES} ({max_bytes})"
            )));
        }
        total += len;
        if total > MAX_TOTAL_BYTES {
            return Err(named(format!(
                "the files together are more than {MAX_TOTAL_BYTES} bytes"
            )));
        }
        let data = crate::folder::read_limited(&real, max_bytes).map_err(named)?;
        files.insert(
            path.to_string(),
            base64::engine::general_purpose::STANDARD.encode(data),
        );
    }
    Ok((manifest, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What sits at the export's `1.root.json` is read bounded and only when it is a regular
    /// file: a named pipe there is refused at once (a plain read would block the ceremony for
    /// good), and a missing first root says which ceremony comes first.
    #[test]
    fn the_first_root_is_read_only_from_a_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace {
            dir: tmp.path().to_path_buf(),
        };
        std::fs::create_dir_all(ws.export()).unwrap();
        let clock = super::super::clock::FixedClock(time::OffsetDateTime::UNIX_EPOCH);
        let missing = current_metadata(&ws, &clock, false)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("run the bootstrap-root ceremony"),
            "{missing}"
        );
        let made = std::process::Command::new("mkfifo")
            .arg(ws.export().join("1.root.json"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let fifo = current_metadata(&ws, &clock, false)
            .unwrap_err()
            .to_string();
        assert!(fifo.contains("not a regular file"), "{fifo}");
    }

    /// The current root and targets are the ones `conclave verify` verified in the export,
    /// whatever else lies there: `latest` took `+2.targets.json` (a name no client asks for,
    /// never verified) as the newest targets and loaded it into the ceremony.
    #[test]
    fn the_current_metadata_is_what_the_verifier_verified() {
        use crate::tuf::edit::new_targets;
        use crate::tuf::metadata::Metadata;
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace {
            dir: tmp.path().to_path_buf(),
        };
        let export = ws.export();
        std::fs::create_dir_all(&export).unwrap();
        let (root, targets) = super::super::audit_files::tests::export_folder(&export, true);
        let expires = time::macros::datetime!(2040-01-01 0:00 UTC);
        let mut other = new_targets(expires);
        other.common.version = 2;
        std::fs::write(
            export.join("+2.targets.json"),
            Metadata::new(other).to_file_bytes(),
        )
        .unwrap();
        let clock = super::super::clock::FixedClock(time::macros::datetime!(2030-01-01 0:00 UTC));
        let (r, t) = current_metadata(&ws, &clock, false).unwrap();
        assert_eq!(r, root.to_value());
        assert_eq!(t, targets.to_value());
        let (_, none) = current_metadata(&ws, &clock, true).unwrap();
        assert_eq!(none, Value::Null);
        assert_eq!(
            latest(&export, "targets"),
            Some((1, export.join("1.targets.json")))
        );
    }
}
