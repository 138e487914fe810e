//! sign-tuf-on-ci-event's inputs: the event's `metadata/` folder and the known-good one, read
//! from the input media as `conclave usb import --sub-folders` reads a folder (its
//! `root_history/` included, links and special files refused, `SHA256SUMS` checked when
//! present), and recorded whole in the transcript.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use std::path::PathBuf;

use crate::ceremony::engine::{Event, SIGNATURES_DIR};
use crate::ceremony::script::{Kind, Script};
use crate::folder::read_regular_nofollow;
use crate::text::show;
use crate::transport::usb::{self, DEFAULT_IMPORT_LIMIT};
use crate::tuf::bundle::Bundle;
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::tuf_on_ci::{self as tot, DetachedSignature, MetadataFolder, ROOT_HISTORY};

use super::checks::{Check, CheckKind};
use super::error::DriverError;
use super::report::CeremonyReport;
use super::scripts::shipped_script;
use super::session::Session;
use super::workspace::Workspace;

/// A folder's files (path relative to it, `/`-separated); anything `usb import`
/// refuses, or a `SHA256SUMS` that does not match, refuses the whole folder.
fn read_folder(dir: &Path, what: &str) -> Result<Vec<(String, Vec<u8>)>, DriverError> {
    let report = usb::import_dir_with_subfolders(dir, DEFAULT_IMPORT_LIMIT)
        .map_err(|e| DriverError::Refused(format!("{what} ({}): {e}", dir.display())))?;
    if let Some(r) = report.refused.first() {
        return Err(DriverError::Refused(format!(
            "{what} ({}): {}: {}",
            dir.display(),
            show(&r.name),
            show(&r.reason)
        )));
    }
    if report.sums.as_ref().is_some_and(|s| !s.all_ok()) {
        return Err(DriverError::Refused(format!(
            "{what} ({}): SHA256SUMS does not match the files",
            dir.display()
        )));
    }
    Ok(report
        .files
        .into_iter()
        .filter(|f| f.name != "SHA256SUMS")
        .map(|f| (f.name, f.data))
        .collect())
}

/// The `metadata/` folder: `dir` itself, or `dir/metadata` when the user named the checkout.
pub fn metadata_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("metadata");
    if inner.is_dir() && !dir.join("root.json").exists() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Read a tuf-on-ci `metadata/` folder: its regular files and those of `root_history/`; any
/// other sub-folder, link or special file is refused by name (`conclave tuf-on-ci`; the ceremony
/// reads its input media through [`read_folder`] instead, as `usb import` does).
pub fn read_metadata_folder(dir: &Path) -> Result<MetadataFolder, DriverError> {
    let dir = metadata_dir(dir);
    let label = dir.display().to_string();
    let mut files = Vec::new();
    read_level(&dir, "", &label, &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(MetadataFolder { label, files })
}

fn read_level(
    dir: &Path,
    prefix: &str,
    label: &str,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), DriverError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DriverError::Io(format!("{}: {e}", show(&dir.display().to_string()))))?;
    for entry in entries {
        let entry = entry
            .map_err(|e| DriverError::Io(format!("{}: {e}", show(&dir.display().to_string()))))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(DriverError::Refused(format!(
                "{}: a file name that is not UTF-8 ({})",
                show(label),
                show(&name.to_string_lossy())
            )));
        };
        let rel = format!("{prefix}{name}");
        let kind = entry
            .file_type()
            .map_err(|e| DriverError::Io(format!("{}/{}: {e}", show(label), show(&rel))))?;
        if kind.is_dir() {
            if prefix.is_empty() && name == ROOT_HISTORY {
                read_level(&entry.path(), &format!("{ROOT_HISTORY}/"), label, files)?;
                continue;
            }
            return Err(DriverError::Refused(format!(
                "{}/{}: a sub-folder other than {ROOT_HISTORY}/ is not part of a tuf-on-ci metadata folder",
                show(label),
                show(&rel)
            )));
        }
        let bytes = read_regular_nofollow(&entry.path(), DEFAULT_MAX_FILE_SIZE)
            .map_err(|e| DriverError::Refused(format!("{}/{}: {e}", show(label), show(&rel))))?;
        files.push((rel, bytes));
    }
    Ok(())
}

/// Write a metadata folder's files under `out` (created; each file create-exclusive).
pub fn write_metadata_folder(out: &Path, folder: &MetadataFolder) -> Result<(), DriverError> {
    let io = |p: &Path, e: std::io::Error| DriverError::Io(format!("{}: {e}", p.display()));
    crate::folder::create_dir_all_mode(out, 0o755).map_err(|e| io(out, e))?;
    for (rel, bytes) in &folder.files {
        let p = out.join(rel);
        if let Some(parent) = p.parent() {
            crate::folder::create_dir_all_mode(parent, 0o755).map_err(|e| io(parent, e))?;
        }
        crate::folder::write_new_file(&p, bytes).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// Why `conclave rehearse` refuses a script, when it has no practice run: a tuf-on-ci
/// signing event is signed by keys the metadata already names, and a rehearsal's practice
/// tokens are made new in its workspace, so they hold none of an event's keys; Conclave makes
/// no stand-in tuf-on-ci repository around them (docs/pipeline-tuf-on-ci.md).
pub fn no_rehearsal(script_name: &str) -> Option<String> {
    let kind = shipped_script(script_name)
        .and_then(|text| Script::parse(script_name, text).ok())?
        .kind;
    (kind == Kind::SignTufOnCiEvent).then(|| {
        format!(
            "{} has no practice run: it signs a tuf-on-ci signing event with keys the event's metadata already names, and a rehearsal's practice tokens are made new and hold none of them (there is no stand-in event). Rehearse with a throwaway tuf-on-ci repository whose keys are on test tokens, then run `conclave ceremony run` or `conclave tui --script {}` on a workspace whose input/ holds that event (docs/pipeline-tuf-on-ci.md)",
            show(script_name),
            show(script_name)
        )
    })
}

/// The number of the next transcript of this script in the workspace
/// (`SCRIPT-vN.transcript.jsonl`: the N-th event signed here).
pub(super) fn next_transcript(ws: &Workspace, script_name: &str) -> std::path::PathBuf {
    let prefix = format!("{script_name}-v");
    let n = std::fs::read_dir(&ws.dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_prefix(&prefix)?
                        .strip_suffix(".transcript.jsonl")?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    ws.dir
        .join(format!("{script_name}-v{}.transcript.jsonl", n + 1))
}

impl Session {
    /// Import the signing event and the known-good metadata from the input media
    /// (`input/EVENT` and `input/KNOWN_GOOD`, each a tuf-on-ci `metadata/` folder).
    pub fn import_event_event(&self, event: &str, known_good: &str) -> Result<Event, DriverError> {
        let input = self.ws.input();
        let b64 = |files: Vec<(String, Vec<u8>)>| -> BTreeMap<String, String> {
            files
                .into_iter()
                .map(|(n, b)| (n, base64::engine::general_purpose::STANDARD.encode(b)))
                .collect()
        };
        Ok(Event::EventImported {
            step: self.step(),
            files: b64(read_folder(
                &input.join(event),
                "the signing event's metadata",
            )?),
            known_good: b64(read_folder(
                &input.join(known_good),
                "the known-good metadata",
            )?),
        })
    }
}

/// The output check of a signed tuf-on-ci event (`None` for every other ceremony): the exported
/// bundles go into the placeholders of the event on the input media as `conclave tuf-on-ci
/// apply` puts them (in memory; nothing is written), and the known-good `root.json` the
/// transcript is anchored in.
pub(super) fn output_check(report: &CeremonyReport) -> Option<(Check, PathBuf)> {
    let dir = report.exported.iter().find_map(|n| {
        n.split_once('/')
            .filter(|(d, _)| d.starts_with(SIGNATURES_DIR))
            .map(|(d, _)| d.to_string())
    })?;
    let input = report.export_dir.parent()?.join("input");
    // The folders the script's import step names (not the defaults: a script may rename them).
    let (event_dir, kg_dir) = report
        .event_inputs
        .as_ref()
        .map(|(e, k)| (input.join(e), input.join(k)))?;
    let bundles = report.export_dir.join(&dir);
    let placed = || -> Result<usize, String> {
        let folder = |d: &Path, what: &str| {
            read_folder(d, what)
                .map(|files| MetadataFolder {
                    label: d.display().to_string(),
                    files,
                })
                .map_err(|e| e.to_string())
        };
        let event = folder(&event_dir, "the signing event's metadata")?;
        let kg = folder(&kg_dir, "the known-good metadata")?;
        let (kg_root, _) = tot::verify_known_good(&kg).map_err(|e| e.to_string())?;
        let mut sigs = Vec::new();
        for (name, bytes) in
            read_folder(&bundles, "the exported signatures").map_err(|e| e.to_string())?
        {
            if !name.ends_with(".bundle") {
                continue;
            }
            let b = Bundle::from_bytes(&name, &bytes).map_err(|e| e.to_string())?;
            sigs.push(DetachedSignature {
                source: name,
                version: b.version,
                signed_sha256: b.signed_sha256,
                keyid: b.keyid,
                sig: b.sig,
            });
        }
        tot::apply_signatures(&event, Some(&kg_root), &sigs)
            .map(|a| a.lines.len())
            .map_err(|errs| {
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    };
    let result = placed();
    Some((
        Check {
            kind: CheckKind::Metadata,
            command: format!(
                "conclave tuf-on-ci apply --event COPY-OF-{} --known-good {} {}",
                event_dir.display(),
                kg_dir.display(),
                bundles.display()
            ),
            passed: result.is_ok(),
            reason: result.as_ref().err().cloned(),
            note: result
                .ok()
                .map(|n| format!("{n} signature(s) go into the event's placeholders")),
        },
        kg_dir.join("root.json"),
    ))
}
