//! An RSTUF bootstrap may leave root v1 pending (fewer signatures than its threshold: RSTUF's
//! Distributed Asynchronous Signing collects the rest). Its output is then checked as RSTUF's
//! payload (`conclave rstuf review`), and the transcript cannot be anchored in root v1 yet.

use std::path::Path;

use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf;
use crate::tuf::verify::count_signatures;

use super::audit_files::RepositoryFolder;
use super::checks::{Check, CheckKind};
use super::error::DriverError;
use super::pipeline_inputs::{RstufKind, anchor_pending, review_rstuf_file};
use super::report::CeremonyReport;
use super::session::Session;
use crate::ceremony::engine::Event;

/// When `export` holds an RSTUF ceremony payload whose root v1 does not meet its threshold
/// yet: the verdict of `conclave rstuf review` on it (the same reading and checks:
/// [`review_rstuf_file`]), the command, whether it passed, why not, and the pending state;
/// and that the export's `1.root.json` is that root v1. `None` for every other export (no
/// payload, or its root v1 already meets its threshold).
pub(super) fn pending_bootstrap(export: &Path) -> Option<(String, bool, Option<String>, String)> {
    let path = export.join(rstuf::CEREMONY_PAYLOAD);
    // No payload: no RSTUF bootstrap. One that is there but cannot be read is reported below.
    std::fs::symlink_metadata(&path).ok()?;
    let command = format!("conclave rstuf review {}", path.display());
    let fail = |why: String| Some((command.clone(), false, Some(why), String::new()));
    let f = match review_rstuf_file(&path) {
        Ok(f) if f.kind == RstufKind::CeremonyPayload => f,
        Ok(f) => {
            return fail(format!(
                "{}: $: an {}, not a ceremony payload",
                path.display(),
                f.kind.name()
            ));
        }
        Err(e) => return fail(e.to_string()),
    };
    if f.review.by_self.verified() {
        return None;
    }
    let first = RepositoryFolder::open(export, DEFAULT_MAX_FILE_SIZE)
        .and_then(|folder| folder.read("1.root.json"))
        .ok()
        .flatten()
        .and_then(|b| Metadata::<Root>::from_bytes(&b).ok());
    if first.as_ref().map(Metadata::signed_bytes) != Some(f.pending.root.signed_bytes()) {
        return fail("1.root.json is not the root of ceremony-payload.json".into());
    }
    Some((
        command,
        true,
        None,
        format!(
            "root v1 pending in RSTUF: {}; RSTUF collects the rest",
            f.review.by_self.summary()
        ),
    ))
}

impl Session {
    /// Import RSTUF's pending file (`input/FILE`) and the root the room already trusts
    /// (`input/TRUSTED_ROOT`) from the input media, both texts recorded whole. A missing
    /// trusted root is recorded empty: the engine refuses it, naming the file.
    pub fn import_pending_event(
        &self,
        file: &str,
        trusted_root: &str,
    ) -> Result<Event, DriverError> {
        let read = |name: &str, what: &str| -> Result<String, DriverError> {
            let path = self.ws.input().join(name);
            let bytes = crate::folder::read_limited(&path, DEFAULT_MAX_FILE_SIZE)
                .map_err(|e| DriverError::Refused(format!("{what} on the input media: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|_| DriverError::Refused(format!("{}: not UTF-8 JSON", path.display())))
        };
        let text = read(file, "RSTUF's pending file")?;
        let anchor = if self.ws.input().join(trusted_root).exists() {
            read(trusted_root, "the root this appliance trusts")?
        } else {
            String::new()
        };
        let (workspace_root_name, workspace_root) = match workspace_root(&self.ws.export(), &text)?
        {
            Some((name, text)) => (format!("export/{name}"), text),
            None => (String::new(), String::new()),
        };
        Ok(Event::PendingImported {
            step: self.step(),
            name: file.to_string(),
            file: text,
            trusted_root_name: trusted_root.to_string(),
            trusted_root: anchor,
            workspace_root_name,
            workspace_root,
        })
    }
}

/// The root this workspace's own ceremonies left in `export` for RSTUF's pending file `text`
/// (its name and text): for a pending root v1, the `1.root.json` its bootstrap-rstuf
/// exported; for a later version, the newest `N.root.json` before it (the root the previous
/// ceremony here wrote). Listed and read as `conclave verify` reads the folder
/// ([`RepositoryFolder`]). `None` when there is none or the pending file does not parse (the
/// engine names why); a root there that cannot be read is refused.
fn workspace_root(export: &Path, text: &str) -> Result<Option<NamedText>, DriverError> {
    let Ok(pending) = rstuf::parse_pending("pending", text.as_bytes()) else {
        return Ok(None);
    };
    let version = pending.root.signed().common.version;
    let Ok(folder) = RepositoryFolder::open(export, DEFAULT_MAX_FILE_SIZE) else {
        return Ok(None);
    };
    let mut versions = folder.versions("root").into_iter();
    let found = if version == 1 {
        versions.find(|(v, _)| *v == 1)
    } else {
        versions.rfind(|(v, _)| *v < version)
    };
    let Some((_, name)) = found else {
        return Ok(None);
    };
    let refused = |why: String| DriverError::Refused(format!("this workspace's root: {why}"));
    let Some(bytes) = folder.read(&name).map_err(|e| refused(e.to_string()))? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| refused(format!("{}: not UTF-8 JSON", folder.path(&name).display())))?;
    Ok(Some((name, text)))
}

/// A file's name and text.
type NamedText = (String, String);
/// A file's name and bytes.
type NamedBytes = (String, Vec<u8>);

/// The pending file recorded in a transcript (sign-rstuf-pending-root): its name and text, and
/// the roots the room trusted (name, text): the input media's and the workspace's, when given.
fn recorded_pending(transcript: &Path) -> Option<(String, String, Vec<NamedText>)> {
    let bytes = crate::folder::read_limited(transcript, DEFAULT_MAX_FILE_SIZE).ok()?;
    bytes.split(|b| *b == b'\n').find_map(|line| {
        let r = crate::transcript::record::Record::parse_line(line).ok()?;
        let d = r.details.as_object()?;
        if d.get("event").and_then(Value::as_str) != Some("pending-imported") {
            return None;
        }
        let text = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let anchors = [
            ("trusted_root_name", "trusted_root"),
            ("workspace_root_name", "workspace_root"),
        ]
        .into_iter()
        .map(|(n, t)| (text(n), text(t)))
        .filter(|(_, t)| !t.is_empty())
        .collect();
        Some((
            d.get("name")?.as_str()?.to_string(),
            d.get("file")?.as_str()?.to_string(),
            anchors,
        ))
    })
}

/// The output check of a signed RSTUF pending root (`None` for every other ceremony): every
/// exported `sign-payload` is RSTUF's format and its signature verifies over the pending root
/// the transcript recorded, by a root key of the trusted root or of the pending root (of root
/// v1 itself for a pending bootstrap); and the trusted root the transcript is anchored in
/// (name, bytes), `None` for a pending root v1 (no root is in force until RSTUF has its
/// threshold).
pub(super) fn pending_sign_check(report: &CeremonyReport) -> Option<(Check, Option<NamedBytes>)> {
    let (name, text, anchors) = recorded_pending(&report.transcript)?;
    let pending = rstuf::parse_pending(&name, text.as_bytes()).ok()?;
    let payloads: Vec<&String> = report
        .exported
        .iter()
        .filter(|n| n.starts_with("sign-payload-v") && n.ends_with(".json"))
        .collect();
    let checked = || -> Result<String, String> {
        let (anchor_name, anchor_text) = anchors
            .first()
            .ok_or_else(|| "no root the room trusted was recorded".to_string())?;
        let anchor = Metadata::<Root>::from_bytes(anchor_text.as_bytes())
            .map_err(|e| format!("{anchor_name} (the root the room trusted): {e}"))?;
        anchor_pending(&name, &pending, anchor_name, &anchor).map_err(|e| e.to_string())?;
        if payloads.is_empty() {
            return Err("no sign-payload was exported".into());
        }
        let mut root = pending.root.clone();
        for n in &payloads {
            let path = report.export_dir.join(n);
            let bytes = crate::folder::read_limited(&path, DEFAULT_MAX_FILE_SIZE)?;
            let (keyid, sig) = rstuf::read_sign_payload(&path.display().to_string(), &bytes)
                .map_err(|e| e.to_string())?;
            root.add_signature(keyid, &sig);
        }
        let count = |r: &Root| {
            count_signatures(
                |id| r.key(id),
                r.role(RoleType::Root),
                root.signed_bytes(),
                &root.signatures,
            )
        };
        let by_trusted = pending.trusted.as_ref().map(|t| count(t.signed()));
        let by_self = count(root.signed());
        for s in &root.signatures {
            if !by_trusted
                .as_ref()
                .is_some_and(|t| t.signed.contains(&s.keyid))
                && !by_self.signed.contains(&s.keyid)
                && !pending.root.signatures.iter().any(|p| p.keyid == s.keyid)
            {
                return Err(format!(
                    "the signature by key {} counts for neither root",
                    s.keyid.short()
                ));
            }
        }
        let version = root.signed().common.version;
        let (trusted_part, complete) = match (&by_trusted, &pending.trusted) {
            (Some(t), Some(tr)) => (
                format!(
                    "{} of trusted root v{}, ",
                    t.summary(),
                    tr.signed().common.version
                ),
                t.verified(),
            ),
            _ => (String::new(), true),
        };
        Ok(format!(
            "{} signature payload(s) verify over root v{version}; with them: {trusted_part}{} of its own{}",
            payloads.len(),
            by_self.summary(),
            if complete && by_self.verified() {
                ""
            } else {
                "; RSTUF collects the rest"
            }
        ))
    };
    let result = checked();
    Some((
        Check {
            kind: CheckKind::Metadata,
            command: format!(
                "rstuf admin send sign {}/sign-payload-v*.json (after conclave rstuf review of the pending file)",
                report.export_dir.display()
            ),
            passed: result.is_ok(),
            reason: result.as_ref().err().cloned(),
            note: result.ok(),
        },
        pending.trusted.as_ref().map(|t| {
            (
                format!("{name}: $.data.metadata.trusted_root"),
                t.to_file_bytes(),
            )
        }),
    ))
}

/// Whether the transcript `path`, sealed, signed the pending file now on the input media
/// (`input/FILE`) with the same keyholders: its `pending-imported` record holds that file's
/// name and text as read now, and its roll call names `keyholders` (in any order). The same
/// command run again after a cut at that ceremony's last writes (its key-event log complete,
/// the transcript's export cut short) is then that ceremony: it is reported and its transcript
/// exported again, never a second signing of the same pending root. Other keyholders with the
/// same file are a ceremony of their own. Anything unreadable: `false` (the ceremony then
/// reports it where it reads it).
pub(super) fn signed_same_pending(
    ws: &super::workspace::Workspace,
    path: &Path,
    file: &str,
    keyholders: &[String],
) -> bool {
    let Ok(bytes) = crate::folder::read_limited(path, DEFAULT_MAX_FILE_SIZE) else {
        return false;
    };
    let Ok(t) = crate::transcript::chain::verify_chain(&bytes) else {
        return false;
    };
    if t.seal_index().is_none() {
        return false;
    }
    let events: Vec<Event> = t
        .records()
        .iter()
        .filter_map(|r| Event::from_value(&r.details).ok())
        .collect();
    let imported = events.iter().find_map(|e| match e {
        Event::PendingImported { name, file, .. } => Some((name.as_str(), file.as_bytes())),
        _ => None,
    });
    let present = events.iter().find_map(|e| match e {
        Event::RollCall { keyholders, .. } => Some(keyholders),
        _ => None,
    });
    let (Some((name, text)), Some(present)) = (imported, present) else {
        return false;
    };
    let sorted = |names: &[String]| {
        let mut v = names.to_vec();
        v.sort();
        v
    };
    name == file
        && crate::folder::read_limited(&ws.input().join(file), DEFAULT_MAX_FILE_SIZE)
            .is_ok_and(|now| now == text)
        && sorted(present) == sorted(keyholders)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export's RSTUF payload is read as `conclave rstuf review` reads it: one that is there
    /// but no regular file (a named pipe) fails the check naming it; it was taken for no
    /// payload, and the export checked as a plain repository. No payload: no RSTUF bootstrap.
    #[test]
    fn the_payload_is_read_as_rstuf_review_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pending_bootstrap(dir.path()), None);
        let path = dir.path().join(rstuf::CEREMONY_PAYLOAD);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let Some((command, false, Some(why), _)) = pending_bootstrap(dir.path()) else {
            panic!("a named pipe was taken for no payload");
        };
        assert_eq!(command, format!("conclave rstuf review {}", path.display()));
        assert!(why.contains("not a regular file"), "{why}");
        // A payload without its root fails, naming the field, as `rstuf review` does.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, br#"{"metadata":{}}"#).unwrap();
        let Some((_, false, Some(why), _)) = pending_bootstrap(dir.path()) else {
            panic!("a payload without a root was accepted");
        };
        assert!(why.ends_with("$.metadata.root: missing"), "{why}");
    }
}
