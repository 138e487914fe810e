//! sign-tuf-on-ci-event's inputs: the event's `metadata/` folder and the known-good one, read
//! from the input media as `conclave usb import --sub-folders` reads a folder (its
//! `root_history/` included, links and special files refused, `SHA256SUMS` checked when
//! present), and recorded whole in the transcript.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use std::path::PathBuf;

use crate::ceremony::engine::{ACCEPTED_DIR, Event, SIGNATURES_DIR};
use crate::ceremony::script::{Kind, Script};
use crate::folder::{
    DIR_MODE, create_dir_all_mode, open_regular_nofollow, read_regular_nofollow,
    remove_file_synced, remove_interrupted_writes, write_new_file, write_replacing,
};
use crate::text::show;
use crate::transport::usb::{self, DEFAULT_IMPORT_LIMIT, SUMS_NAME};
use crate::tuf::bundle::{Bundle, MAX_BUNDLE_SIZE};
use crate::tuf::tuf_on_ci::{self as tot, DetachedSignature, MetadataFolder, ROOT_HISTORY};

use super::checks::{Check, CheckKind};
use super::error::DriverError;
use super::report::CeremonyReport;
use super::scripts::shipped_script;
use super::session::Session;
use super::workspace::Workspace;

/// A folder on the input media as `conclave usb import --sub-folders` reads it: its files (path
/// relative to it, `/`-separated); anything `usb import` refuses (a link leading outside, a
/// special file, a deeper folder), or a `SHA256SUMS` that does not match, refuses the whole
/// folder, naming the entry. `SHA256SUMS` itself is not returned.
fn read_media_folder(dir: &Path, what: &str) -> Result<Vec<(String, Vec<u8>)>, DriverError> {
    let report = usb::import_dir_with_subfolders(dir, DEFAULT_IMPORT_LIMIT)
        .map_err(|e| DriverError::Refused(format!("{what} ({}): {e}", show_path(dir))))?;
    if let Some(r) = report.refused.first() {
        return Err(DriverError::Refused(format!(
            "{what} ({}): {}: {}",
            show_path(dir),
            show(&r.name),
            show(&r.reason)
        )));
    }
    if report.sums.as_ref().is_some_and(|s| !s.all_ok()) {
        return Err(DriverError::Refused(format!(
            "{what} ({}): SHA256SUMS does not match the files",
            show_path(dir)
        )));
    }
    // A sub-folder's own SHA256SUMS (an export writes one per folder) lists its files by name.
    for sums in report
        .files
        .iter()
        .filter(|f| f.name.ends_with(&format!("/{SUMS_NAME}")))
    {
        let sub = sums.name.trim_end_matches(SUMS_NAME);
        let (entries, bad) = usb::parse_sums(&String::from_utf8_lossy(&sums.data));
        let matches = |(name, want): &(String, String)| {
            report
                .files
                .iter()
                .find(|f| f.name == format!("{sub}{name}"))
                .is_some_and(|f| hex::encode(f.sha256) == *want)
        };
        if !bad.is_empty() || !entries.iter().all(matches) {
            return Err(DriverError::Refused(format!(
                "{what} ({}): {} does not match the files",
                show_path(dir),
                show(&sums.name)
            )));
        }
    }
    Ok(report
        .files
        .into_iter()
        .filter(|f| f.name != SUMS_NAME && !f.name.ends_with(&format!("/{SUMS_NAME}")))
        .map(|f| (f.name, f.data))
        .collect())
}

/// A path for a message, through the one renderer for untrusted text.
fn show_path(p: &Path) -> String {
    show(&p.display().to_string())
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

/// Read a tuf-on-ci `metadata/` folder (`dir`, or `dir/metadata` when `dir` is the checkout):
/// the one reader of an event or known-good folder, for the ceremony's input media and for
/// `conclave tuf-on-ci`. It reads as `conclave usb import --sub-folders` does
/// ([`read_media_folder`]), and a sub-folder other than `root_history/` is refused by name.
/// `what` names the folder in errors ("the signing event's metadata").
pub fn read_metadata_folder(dir: &Path, what: &str) -> Result<MetadataFolder, DriverError> {
    let dir = metadata_dir(dir);
    let files = read_media_folder(&dir, what)?;
    if let Some((rel, _)) = files.iter().find(|(rel, _)| {
        rel.split_once('/')
            .is_some_and(|(sub, _)| sub != ROOT_HISTORY)
    }) {
        return Err(DriverError::Refused(format!(
            "{what} ({}): {}: a sub-folder other than {ROOT_HISTORY}/ is not part of a tuf-on-ci metadata folder",
            show_path(&dir),
            show(rel)
        )));
    }
    Ok(MetadataFolder {
        label: dir.display().to_string(),
        files,
    })
}

/// Signature bundles named on the command line: bundle files, or folders whose `*.bundle` files
/// are taken (a folder read as `usb import` reads one). Returns (source name, bytes).
fn read_bundles(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, DriverError> {
    let mut out = Vec::new();
    for p in paths {
        let is_dir = p.symlink_metadata().is_ok_and(|m| m.is_dir());
        if is_dir {
            let found: Vec<(String, Vec<u8>)> = read_media_folder(p, "the signature bundles")?
                .into_iter()
                .filter(|(n, _)| n.ends_with(".bundle") && !n.contains('/'))
                .map(|(n, b)| (p.join(n).display().to_string(), b))
                .collect();
            if found.is_empty() {
                return Err(DriverError::Refused(format!(
                    "{}: no *.bundle file in this folder",
                    show_path(p)
                )));
            }
            out.extend(found);
        } else {
            let bytes = read_regular_nofollow(p, MAX_BUNDLE_SIZE)
                .map_err(|e| DriverError::Refused(format!("{}: {e}", show_path(p))))?;
            out.push((p.display().to_string(), bytes));
        }
    }
    Ok(out)
}

/// Signature bundles as detached signatures (the bundle's file name as their source).
fn detached(files: Vec<(String, Vec<u8>)>) -> Result<Vec<DetachedSignature>, DriverError> {
    files
        .into_iter()
        .map(|(name, bytes)| {
            let b = Bundle::from_bytes(&name, &bytes)
                .map_err(|e| DriverError::Refused(e.to_string()))?;
            Ok(DetachedSignature {
                source: name,
                version: b.version,
                signed_sha256: b.signed_sha256,
                keyid: b.keyid,
                sig: b.sig,
            })
        })
        .collect()
}

/// What `conclave tuf-on-ci apply` did: one line per signature placed, and the files rewritten.
#[derive(Debug)]
pub struct AppliedEvent {
    /// One line per signature placed (role, key id, file).
    pub lines: Vec<String>,
    /// The files rewritten, in the order written.
    pub written: Vec<PathBuf>,
}

/// `conclave tuf-on-ci apply` on the connected machine: read the event's `metadata/` folder
/// (`event`, or its checkout), the known-good one when given (its root chain verified), an
/// accepted edit when given (the `tuf-on-ci-accepted-HEX/` folder of an
/// `accept-tuf-on-ci-invite` ceremony, checked to be the event with invites accepted and
/// nothing else, [`tot::check_acceptance`]), and the signature bundles; place every signature
/// into its placeholders as tuf-on-ci writes the files ([`tot::apply_signatures`], all or
/// nothing). Then every file to rewrite is checked to be a regular file (a link or a named pipe
/// at its name refuses the whole apply before anything is written), each is replaced
/// atomically (temporary file, explicit mode, rename; a new `root_history/` copy is created
/// exclusively), and a state file the edit removes (no invite left) is removed last.
pub fn apply_event_signatures(
    event: &Path,
    known_good: Option<&Path>,
    accepted: Option<&Path>,
    bundles: &[PathBuf],
) -> Result<AppliedEvent, DriverError> {
    let dir = metadata_dir(event);
    // An apply cut short (power, kill) leaves at most its own temporary files beside the files
    // it had replaced (each is old or new, never torn): they are removed first, so that the
    // same command finishes the apply (and `git add -A` finds none).
    let mut lines = Vec::new();
    for d in [dir.clone(), dir.join(ROOT_HISTORY)] {
        for p in remove_interrupted_writes(&d)
            .map_err(|e| DriverError::Io(format!("{}: {e}", show_path(&d))))?
        {
            lines.push(format!(
                "removed {}: a temporary file of an interrupted apply",
                show_path(&p)
            ));
        }
    }
    let folder = read_metadata_folder(&dir, "the signing event's metadata")?;
    let known_good = match known_good {
        Some(k) => {
            let kg = read_metadata_folder(k, "the known-good metadata")?;
            let (root, _) =
                tot::verify_known_good(&kg).map_err(|e| DriverError::Refused(e.to_string()))?;
            Some(root)
        }
        None => None,
    };
    let sigs = detached(read_bundles(bundles)?)?;
    let target = match accepted {
        Some(a) => {
            let acc = read_metadata_folder(a, "the accepted edit")?;
            match tot::check_acceptance(&folder, &acc) {
                Ok(checked) => lines.extend(checked),
                // The same apply finished before (a rerun after an interruption at its last
                // step, or twice): the folder is already what it writes.
                Err(_) if applied_already(&folder, &acc, known_good.as_ref(), &sigs) => {
                    lines.push(format!(
                        "{}: already applied (every file is as this apply writes it); no file changed",
                        show_path(&dir)
                    ));
                    return Ok(AppliedEvent {
                        lines,
                        written: Vec::new(),
                    });
                }
                Err(e) => return Err(DriverError::Refused(format!("{e}; no file changed"))),
            }
            acc
        }
        None => folder.clone(),
    };
    let applied = if sigs.is_empty() {
        tot::Applied::default()
    } else {
        tot::apply_signatures(&target, known_good.as_ref(), &sigs).map_err(|errs| {
            DriverError::Refused(format!(
                "no file changed; refused:\n{}",
                errs.iter()
                    .map(|e| format!("  {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        })?
    };
    lines.extend(applied.lines);
    // What to write: the accepted edit's files that differ from the event, with the signatures
    // placed (the placed bytes win).
    let mut files: Vec<(String, Vec<u8>)> = target
        .files
        .iter()
        .filter(|(rel, bytes)| folder.get(rel) != Some(bytes.as_slice()))
        .cloned()
        .collect();
    for (rel, bytes) in applied.files {
        match files.iter_mut().find(|(r, _)| *r == rel) {
            Some(f) => f.1 = bytes,
            None => files.push((rel, bytes)),
        }
    }
    let removed: Vec<String> = folder
        .files
        .iter()
        .filter(|(rel, _)| target.get(rel).is_none())
        .map(|(rel, _)| rel.clone())
        .collect();
    // Every file to rewrite or remove is still a regular file (no link, no pipe), and every new
    // one has nothing at its name, before the first write.
    for rel in files.iter().map(|(r, _)| r).chain(removed.iter()) {
        let p = dir.join(rel);
        if folder.get(rel).is_none() {
            if p.symlink_metadata().is_ok() {
                return Err(DriverError::Refused(format!(
                    "{}: something is at this name, which the event's folder did not list; no file changed",
                    show_path(&p)
                )));
            }
            continue;
        }
        open_regular_nofollow(&p).map_err(|e| {
            DriverError::Refused(format!("{}: {e}; no file changed", show_path(&p)))
        })?;
    }
    let mut written = Vec::new();
    for (rel, bytes) in &files {
        let p = dir.join(rel);
        let result = if folder.get(rel).is_some() {
            write_replacing(&p, bytes)
        } else {
            p.parent()
                .map_or(Ok(()), |d| create_dir_all_mode(d, DIR_MODE))
                .and_then(|()| write_new_file(&p, bytes))
        };
        result.map_err(|e| DriverError::Io(format!("{}: {e}", show_path(&p))))?;
        written.push(p);
    }
    for rel in &removed {
        let p = dir.join(rel);
        remove_file_synced(&p).map_err(|e| DriverError::Io(format!("{}: {e}", show_path(&p))))?;
        lines.push(format!("removed {}", show_path(&p)));
    }
    Ok(AppliedEvent { lines, written })
}

/// Whether `folder` holds exactly the files an apply of the accepted edit `acc` with `sigs`
/// writes: `acc`'s files, the signatures placed (no more files, no fewer).
fn applied_already(
    folder: &MetadataFolder,
    acc: &MetadataFolder,
    known_good: Option<&crate::tuf::metadata::Metadata<crate::tuf::metadata::Root>>,
    sigs: &[DetachedSignature],
) -> bool {
    let placed = if sigs.is_empty() {
        tot::Applied::default()
    } else {
        match tot::apply_signatures(acc, known_good, sigs) {
            Ok(a) => a,
            Err(_) => return false,
        }
    };
    let mut want: BTreeMap<&str, &[u8]> = acc
        .files
        .iter()
        .map(|(rel, bytes)| (rel.as_str(), bytes.as_slice()))
        .collect();
    for (rel, bytes) in &placed.files {
        want.insert(rel.as_str(), bytes.as_slice());
    }
    let have: BTreeMap<&str, &[u8]> = folder
        .files
        .iter()
        .map(|(rel, bytes)| (rel.as_str(), bytes.as_slice()))
        .collect();
    have == want
}

/// An output folder must not exist yet (nothing at its name, not even a link): checked before
/// any PIN, and again when writing.
pub fn refuse_existing_output(out: &Path) -> Result<(), DriverError> {
    if out.symlink_metadata().is_ok() {
        return Err(DriverError::Refused(format!(
            "{} exists already; Conclave never overwrites",
            show_path(out)
        )));
    }
    Ok(())
}

/// Write signature bundles, (file name, bytes), into the new folder `out` (created with an
/// explicit mode; each file create-exclusive). Returns the paths written.
pub fn write_bundles(
    out: &Path,
    bundles: &[(String, Vec<u8>)],
) -> Result<Vec<PathBuf>, DriverError> {
    refuse_existing_output(out)?;
    create_dir_all_mode(out, DIR_MODE)
        .map_err(|e| DriverError::Io(format!("{}: {e}", show_path(out))))?;
    let mut written = Vec::new();
    for (name, bytes) in bundles {
        let p = out.join(name);
        write_new_file(&p, bytes)
            .map_err(|e| DriverError::Io(format!("{}: {e}", show_path(&p))))?;
        written.push(p);
    }
    Ok(written)
}

/// Write a metadata folder's files under `out` (created; each file create-exclusive).
pub fn write_metadata_folder(out: &Path, folder: &MetadataFolder) -> Result<(), DriverError> {
    let io = |p: &Path, e: std::io::Error| DriverError::Io(format!("{}: {e}", show_path(p)));
    refuse_existing_output(out)?;
    create_dir_all_mode(out, DIR_MODE).map_err(|e| io(out, e))?;
    for (rel, bytes) in &folder.files {
        let p = out.join(rel);
        if let Some(parent) = p.parent() {
            create_dir_all_mode(parent, DIR_MODE).map_err(|e| io(parent, e))?;
        }
        write_new_file(&p, bytes).map_err(|e| io(&p, e))?;
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

/// Whether the transcript `path`, sealed, imported the signing event now on the input media:
/// its `event-imported` record holds the same files as `input/EVENT` and `input/KNOWN_GOOD`
/// (`folders`, the script's import step) read now. Anything unreadable: `false` (the ceremony
/// then reports it where it reads them).
pub(super) fn signed_same_event(ws: &Workspace, path: &Path, folders: &(String, String)) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Ok(t) = crate::transcript::chain::verify_chain(&bytes) else {
        return false;
    };
    if t.seal_index().is_none() {
        return false;
    }
    let recorded = t
        .records()
        .iter()
        .find_map(|r| match Event::from_value(&r.details) {
            Ok(Event::EventImported {
                files, known_good, ..
            }) => Some((files, known_good)),
            _ => None,
        });
    let Some((files, known_good)) = recorded else {
        return false;
    };
    let now = |name: &str, what: &str| {
        read_metadata_folder(&ws.input().join(name), what)
            .ok()
            .map(base64_files)
    };
    now(&folders.0, "the signing event's metadata") == Some(files)
        && now(&folders.1, "the known-good metadata") == Some(known_good)
}

/// A folder's files as an `event-imported` record holds them (name to base64).
fn base64_files(folder: MetadataFolder) -> BTreeMap<String, String> {
    folder
        .files
        .into_iter()
        .map(|(n, b)| (n, base64::engine::general_purpose::STANDARD.encode(b)))
        .collect()
}

impl Session {
    /// Import the signing event and the known-good metadata from the input media
    /// (`input/EVENT` and `input/KNOWN_GOOD`, each a tuf-on-ci `metadata/` folder).
    pub fn import_event_event(&self, event: &str, known_good: &str) -> Result<Event, DriverError> {
        let input = self.ws.input();
        Ok(Event::EventImported {
            step: self.step(),
            files: base64_files(read_metadata_folder(
                &input.join(event),
                "the signing event's metadata",
            )?),
            known_good: base64_files(read_metadata_folder(
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
    let folder_of = |prefix: &str| {
        report.exported.iter().find_map(|n| {
            n.split_once('/')
                .filter(|(d, _)| d.starts_with(prefix))
                .map(|(d, _)| d.to_string())
        })
    };
    let dir = folder_of(SIGNATURES_DIR)?;
    // A ceremony that accepted invites exports the edited metadata/ too.
    let accepted = folder_of(ACCEPTED_DIR).map(|d| report.export_dir.join(d));
    let input = report.export_dir.parent()?.join("input");
    // The folders the script's import step names (not the defaults: a script may rename them).
    let (event_dir, kg_dir) = report
        .event_inputs
        .as_ref()
        .map(|(e, k)| (input.join(e), input.join(k)))?;
    let bundles = report.export_dir.join(&dir);
    let placed = || -> Result<usize, String> {
        let event = read_metadata_folder(&event_dir, "the signing event's metadata")
            .map_err(|e| e.to_string())?;
        let kg =
            read_metadata_folder(&kg_dir, "the known-good metadata").map_err(|e| e.to_string())?;
        let (kg_root, _) = tot::verify_known_good(&kg).map_err(|e| e.to_string())?;
        let sigs = read_bundles(std::slice::from_ref(&bundles))
            .and_then(detached)
            .map_err(|e| e.to_string())?;
        let event = match &accepted {
            Some(a) => {
                let acc =
                    read_metadata_folder(a, "the accepted edit").map_err(|e| e.to_string())?;
                tot::check_acceptance(&event, &acc).map_err(|e| e.to_string())?;
                acc
            }
            None => event,
        };
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
                "conclave tuf-on-ci apply --event COPY-OF-{} --known-good {}{} {}",
                event_dir.display(),
                kg_dir.display(),
                accepted
                    .as_ref()
                    .map(|a| format!(" --accepted {}", a.display()))
                    .unwrap_or_default(),
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
