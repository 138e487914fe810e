//! An RSTUF bootstrap may leave root v1 pending (fewer signatures than its threshold: RSTUF's
//! Distributed Asynchronous Signing collects the rest). Its output is then checked as RSTUF's
//! payload (`conclave rstuf review`), and the transcript cannot be anchored in root v1 yet.

use std::path::Path;

use crate::tuf::canonical::{DEFAULT_MAX_FILE_SIZE, Value};
use crate::tuf::metadata::{Metadata, RoleType, Root};
use crate::tuf::rstuf::{self, Pending};
use crate::tuf::verify::count_signatures;

use super::checks::{Check, CheckKind};
use super::error::DriverError;
use super::report::CeremonyReport;
use super::session::Session;
use crate::ceremony::engine::Event;

/// When `export` holds an RSTUF ceremony payload whose root v1 does not meet its threshold
/// yet: the verdict of the payload's checks (the `conclave rstuf review` command, whether it
/// passed, why not, and the pending state). `None` for every other export.
pub(super) fn pending_bootstrap(export: &Path) -> Option<(String, bool, Option<String>, String)> {
    let path = export.join(rstuf::CEREMONY_PAYLOAD);
    let bytes = std::fs::read(&path).ok()?;
    let command = format!("conclave rstuf review {}", path.display());
    let fail = |why: String| Some((command.clone(), false, Some(why), String::new()));
    let root = match rstuf::read_ceremony_payload(&path.display().to_string(), &bytes) {
        Ok((_, root)) => root,
        Err(e) => return fail(e.to_string()),
    };
    let own = count_signatures(
        |id| root.signed().key(id),
        root.signed().role(RoleType::Root),
        root.signed_bytes(),
        &root.signatures,
    );
    if own.verified() {
        return None;
    }
    let first = std::fs::read(export.join("1.root.json"))
        .ok()
        .and_then(|b| Metadata::<Root>::from_bytes(&b).ok());
    if first.as_ref().map(Metadata::signed_bytes) != Some(root.signed_bytes()) {
        return fail("1.root.json is not the root of ceremony-payload.json".into());
    }
    let file = path.display().to_string();
    let p = Pending {
        root,
        trusted: None,
        other_roles: Vec::new(),
    };
    match rstuf::review_pending(&file, &p) {
        Ok(r) if !r.by_self.signed.is_empty() => Some((
            command,
            true,
            None,
            format!(
                "root v1 pending in RSTUF: {}; RSTUF collects the rest",
                r.by_self.summary()
            ),
        )),
        Ok(_) => fail(format!(
            "{file}: $.metadata.root.signatures: no valid signature"
        )),
        Err(e) => fail(e.to_string()),
    }
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
        Ok(Event::PendingImported {
            step: self.step(),
            name: file.to_string(),
            file: text,
            trusted_root_name: trusted_root.to_string(),
            trusted_root: anchor,
        })
    }
}

/// The pending file recorded in a transcript (sign-rstuf-pending-root): its name and text, and
/// the name and text of the root the room trusted.
fn recorded_pending(transcript: &Path) -> Option<(String, String, String, String)> {
    let bytes = std::fs::read(transcript).ok()?;
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
        Some((
            d.get("name")?.as_str()?.to_string(),
            d.get("file")?.as_str()?.to_string(),
            text("trusted_root_name"),
            text("trusted_root"),
        ))
    })
}

/// The output check of a signed RSTUF pending root (`None` for every other ceremony): every
/// exported `sign-payload` is RSTUF's format and its signature verifies over the pending root
/// the transcript recorded, by a root key of the trusted root or of the pending root; and the
/// trusted root the transcript is anchored in (name, bytes).
pub(super) fn pending_sign_check(report: &CeremonyReport) -> Option<(Check, (String, Vec<u8>))> {
    let (name, text, anchor_name, anchor_text) = recorded_pending(&report.transcript)?;
    let pending = rstuf::parse_pending(&name, text.as_bytes()).ok()?;
    let trusted = pending.trusted.clone()?;
    let payloads: Vec<&String> = report
        .exported
        .iter()
        .filter(|n| n.starts_with("sign-payload-v") && n.ends_with(".json"))
        .collect();
    let checked = || -> Result<String, String> {
        let anchor = Metadata::<Root>::from_bytes(anchor_text.as_bytes())
            .map_err(|e| format!("{anchor_name} (the root the room trusted): {e}"))?;
        rstuf::check_anchor(&name, &pending, &anchor_name, &anchor).map_err(|e| e.to_string())?;
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
        let (by_trusted, by_self) = (count(trusted.signed()), count(root.signed()));
        for s in &root.signatures {
            if !by_trusted.signed.contains(&s.keyid)
                && !by_self.signed.contains(&s.keyid)
                && !pending.root.signatures.iter().any(|p| p.keyid == s.keyid)
            {
                return Err(format!(
                    "the signature by key {} counts for neither root",
                    s.keyid.short()
                ));
            }
        }
        Ok(format!(
            "{} signature payload(s) verify over root v{}; with them: {} of trusted root v{}, {} of its own{}",
            payloads.len(),
            root.signed().common.version,
            by_trusted.summary(),
            trusted.signed().common.version,
            by_self.summary(),
            if by_trusted.verified() && by_self.verified() {
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
        (
            format!("{name}: $.data.metadata.trusted_root"),
            trusted.to_file_bytes(),
        ),
    ))
}
