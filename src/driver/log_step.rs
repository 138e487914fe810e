//! The key-event log step after the seal.

use std::path::{Path, PathBuf};

use super::token_device::TokenSigner;

use crate::transparency::dir::ENTRIES;

use super::error::{DriverError, io};
use super::inputs::latest;
use super::log_dir::LogDirError;
use super::report::KeyLog;
use super::session::Session;
use super::workspace::Workspace;

impl Session {
    /// Whether the seal is followed by a key-event log step (its checkpoint signed by the
    /// sealers' tokens): the plan names a log, the input media brings one, or the workspace
    /// has one (as [`log_step_missing`] expects it).
    pub fn key_log_expected(&self) -> bool {
        self.plan.log_origin.is_some()
            || self.ws.input().join("log").is_dir()
            || !workspace_logs(&self.ws).is_empty()
    }

    /// Whether `who` is asked to sign the key-event log's checkpoint after the seal: a log step
    /// follows the seal and `who` holds a key of the root in force after the ceremony (the
    /// checkpoint is signed by a threshold of that root's keys: a keyholder with only other
    /// roles' keys, or rotated out of root, has nothing to sign there and is never asked to
    /// log in for it). The one rule the headless runner and the terminal UI follow.
    pub fn signs_checkpoint(&self, who: &str) -> bool {
        self.key_log_expected() && self.holds_root_key_after(who)
    }

    /// Whether a key of `who` ([`Session::key_ids_of`]) is a root key of the root in force
    /// after the ceremony.
    fn holds_root_key_after(&self, who: &str) -> bool {
        self.key_ids_of(who)
            .iter()
            .any(|id| self.engine.is_root_key_after(id))
    }

    /// The threshold of the root in force after the ceremony (the new root, else the current
    /// one): the signatures the key-event log's checkpoint needs.
    pub fn checkpoint_threshold(&self) -> Option<u64> {
        use crate::tuf::metadata::RoleType;
        let new = self.engine.proposal().ok().and_then(|p| p.root);
        let root = new.or_else(|| self.engine.current().map(|(r, _)| r.clone()))?;
        Some(root.signed().role(RoleType::Root).threshold)
    }

    /// When `have`, the keyholders left to sign who sign the key-event log's checkpoint (as
    /// [`Session::signs_checkpoint`] counts them; the terminal UI counts them once when the
    /// seal begins, as that looks at the media), are fewer than the root threshold: `have` and
    /// the threshold (the checkpoint then cannot be signed).
    pub fn checkpoint_shortfall(&self, have: usize) -> Option<(usize, u64)> {
        let need = self.checkpoint_threshold()?;
        (u64::try_from(have).unwrap_or(u64::MAX) < need).then_some((have, need))
    }

    /// The key-event log after the seal: the ceremony's key events appended to the workspace's
    /// latest log (`export/log-NNN`), or to the log on the input media (`input/log`), or a new
    /// log when the plan names one; its checkpoint signed by every signer whose key is a root
    /// key of the root now in force. Continues a log step an interruption cut short.
    pub(super) fn key_event_log(
        &self,
        seal_hex: &str,
        signers: &mut [(String, TokenSigner)],
    ) -> Result<Option<KeyLog>, DriverError> {
        let export = self.ws.export();
        let mut ours: Vec<(u32, PathBuf)> = std::fs::read_dir(&export)
            .map_err(io(export.display()))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = name.strip_prefix("log-")?.parse::<u32>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        ours.sort();
        let contains_seal = |dir: &Path| {
            std::fs::read_to_string(dir.join("entries.jsonl"))
                .is_ok_and(|t| t.contains(&format!("\"seal\":\"{seal_hex}\"")))
        };
        let newest_log = ours.last().cloned();
        let (dir, previous) = match &newest_log {
            Some((_, d)) if contains_seal(d) => {
                let prev = ours
                    .iter()
                    .rev()
                    .nth(1)
                    .map(|(_, p)| p.clone())
                    .or_else(|| Some(self.ws.input().join("log")).filter(|p| p.is_dir()));
                (d.clone(), prev)
            }
            _ => {
                let input_log = self.ws.input().join("log");
                let previous = newest_log
                    .as_ref()
                    .map(|(_, p)| p.clone())
                    .or_else(|| input_log.is_dir().then_some(input_log));
                if previous.is_none() && self.plan.log_origin.is_none() {
                    return Ok(None);
                }
                let n = newest_log.as_ref().map_or(1, |(n, _)| n + 1);
                let dir = export.join(format!("log-{n:03}"));
                let (_, root) = latest(&export, "root").ok_or_else(|| {
                    DriverError::Io(format!("no root metadata in {}", export.display()))
                })?;
                let targets = latest(&export, "targets").map(|(_, p)| p);
                let request = super::log_dir::AppendRequest {
                    log: dir.clone(),
                    previous_log: previous.clone(),
                    origin: if previous.is_some() {
                        None
                    } else {
                        self.plan.log_origin.clone()
                    },
                    transcript: self.tpath.clone(),
                    root,
                    targets,
                    previous_root: None,
                    previous_targets: None,
                };
                super::log_dir::append(&request).map_err(log_error)?;
                (dir, previous)
            }
        };
        let mut signed_by = Vec::new();
        for (who, s) in signers.iter_mut() {
            if super::log_dir::sign_checkpoint_with(&dir, s.as_mut()).map_err(log_error)? {
                signed_by.push(who.clone());
            }
        }
        Ok(Some(KeyLog {
            dir,
            previous,
            signed_by,
        }))
    }
}

/// A failure of the key-event log step, of its kind: a file of the log directory that could
/// not be read or written is I/O (the same command continues once the medium is sound); a
/// log that does not verify, or an append or signature the log refuses, is refused.
fn log_error(e: LogDirError) -> DriverError {
    let text = format!("the key-event log: {e}");
    match e {
        LogDirError::Io(_) => DriverError::Io(text),
        LogDirError::Invalid(_) | LogDirError::Usage(_) => DriverError::Refused(text),
    }
}

/// The workspace's key-event logs (`export/log-NNN`), oldest first.
fn workspace_logs(ws: &Workspace) -> Vec<(u32, PathBuf)> {
    let mut logs: Vec<(u32, PathBuf)> = std::fs::read_dir(ws.export())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let n = name.strip_prefix("log-")?.parse::<u32>().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

/// Whether a log directory's entries hold the ceremony sealed with `seal_hex`.
fn holds_seal(dir: &Path, seal_hex: &str) -> bool {
    std::fs::read_to_string(dir.join(ENTRIES))
        .is_ok_and(|t| t.contains(&format!("\"seal\":\"{seal_hex}\"")))
}

/// The log that holds the ceremony sealed with `seal_hex` (the newest that does), and the log
/// it extends (the one before it, else the input media's).
pub(super) fn log_of_seal(ws: &Workspace, seal_hex: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let logs = workspace_logs(ws);
    let at = logs.iter().rposition(|(_, d)| holds_seal(d, seal_hex))?;
    let previous = at
        .checked_sub(1)
        .and_then(|i| logs.get(i))
        .map(|(_, p)| p.clone())
        .or_else(|| Some(ws.input().join("log")).filter(|p| p.is_dir()));
    Some((logs[at].1.clone(), previous))
}

/// Whether a log's checkpoint carries the signatures its latest root's threshold asks for
/// (and the log verifies).
pub(super) fn log_signed(dir: &Path) -> bool {
    super::log_dir::read_log_dir(dir).is_ok_and(|d| {
        crate::transparency::log::verify(&d.log, &d.checkpoint, &d.history, None, None).passed()
    })
}

/// Whether a sealed ceremony still lacks (part of) its key-event log step (interrupted after
/// the seal signatures): a log is expected when the plan names one (`log_planned`: the plan's
/// log origin; always for a rehearsal), the input media brings one, or the workspace has one;
/// the step is missing when no `export/log-NNN` holds the seal, or the log that does lacks
/// checkpoint signatures (interrupted while signing).
pub(super) fn log_step_missing(ws: &Workspace, log_planned: bool, seal_hex: &str) -> bool {
    let expected = log_planned || ws.input().join("log").is_dir() || !workspace_logs(ws).is_empty();
    expected
        && match log_of_seal(ws, seal_hex) {
            None => true,
            Some((dir, _)) => !log_signed(&dir),
        }
}

#[cfg(test)]
mod tests {
    use super::super::error::{CONTINUES_FROM_DISK, KEY_LOG_RECORD, NotRecorded};
    use super::super::log_dir::{read_log_to_sign, write_checkpoint};
    use super::*;
    use crate::transparency::dir::layout;
    use crate::transparency::log::Log;

    #[test]
    fn a_log_file_that_cannot_be_written_stops_the_step_as_io_and_a_bad_log_as_refused() {
        let tmp = tempfile::tempdir().unwrap();
        // Where the log directory must be, a regular file: the write fails (even as root).
        let blocker = tmp.path().join("export");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let (_, checkpoint) = layout(&Log::new(), None, "example.org/keys");
        let failed = write_checkpoint(&blocker.join("log-001"), &checkpoint).unwrap_err();
        assert!(matches!(failed, LogDirError::Io(_)), "{failed:?}");
        let e = log_error(failed);
        assert!(
            matches!(&e, DriverError::Io(t) if t.starts_with("the key-event log: cannot write ")),
            "{e:?}"
        );
        let report = NotRecorded::new("seal", KEY_LOG_RECORD, e).report();
        assert!(report.ends_with(CONTINUES_FROM_DISK), "{report}");

        // A log directory whose entries do not parse: the log does not verify, refused.
        let bad = tmp.path().join("log-002");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join(ENTRIES), b"{torn").unwrap();
        let invalid = read_log_to_sign(&bad).unwrap_err();
        assert!(matches!(invalid, LogDirError::Invalid(_)), "{invalid:?}");
        let e = log_error(invalid);
        assert!(
            matches!(&e, DriverError::Refused(t) if t.starts_with("the key-event log: ")),
            "{e:?}"
        );
        let report = NotRecorded::new("seal", KEY_LOG_RECORD, e).report();
        assert!(!report.contains(CONTINUES_FROM_DISK), "{report}");
    }
}
