//! sign-tuf-on-ci-event's inputs: the event's `metadata/` folder and the known-good one, read
//! from the input media as `conclave usb import --sub-folders` reads a folder (its
//! `root_history/` included, links and special files refused, `SHA256SUMS` checked when
//! present), and recorded whole in the transcript.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use crate::ceremony::engine::Event;
use crate::text::show;
use crate::transport::usb::{self, DEFAULT_IMPORT_LIMIT};

use super::error::DriverError;
use super::session::Session;
use super::workspace::Workspace;

/// A folder's files (path relative to it, `/`-separated) as base64; anything `usb import`
/// refuses, or a `SHA256SUMS` that does not match, refuses the whole folder.
fn read_folder(dir: &Path, what: &str) -> Result<BTreeMap<String, String>, DriverError> {
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
        .map(|f| {
            (
                f.name,
                base64::engine::general_purpose::STANDARD.encode(f.data),
            )
        })
        .collect())
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
        Ok(Event::EventImported {
            step: self.step(),
            event: read_folder(&input.join(event), "the signing event's metadata")?,
            known_good: read_folder(&input.join(known_good), "the known-good metadata")?,
        })
    }
}
