//! The key-event log's directory format, pure: file names, what a log directory holds, and the
//! checks and bytes of an append, decided before anything is written. Reading and writing the
//! files is the edge's ([`crate::driver::log_dir`]).
//!
//! A log is a directory:
//!
//! ```text
//! entries.jsonl         one key event per line (JSON); its canonical JSON is the Merkle leaf
//! checkpoint            the C2SP tlog-checkpoint of all entries, with the keyholders' signatures
//! checkpoints/SIZE      the signed checkpoints of earlier ceremonies (kept, checked for consistency)
//! ```
//!
//! The log of ceremony k is written to a new directory from the log of ceremony k-1 (brought on
//! the input media), which is never modified.

use crate::transcript::chain::verify_chain;
use crate::transcript::seal::verify_seal;
use crate::tuf::metadata::{RoleType, Root, SignedPayload, Targets};

use super::event::{
    CeremonyRef, Entry, Event, Export, KeyState, Published, RoleKeys, RoleName, ceremony_events,
};
use super::log::{Log, verify};
use super::note::{SignedCheckpoint, valid_name};

/// File of the entries in a log directory.
pub const ENTRIES: &str = "entries.jsonl";
/// File of the latest checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// Folder of earlier checkpoints.
pub const HISTORY: &str = "checkpoints";

/// Why a log directory or an append was refused. The messages name the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirError {
    /// The log or a file is not valid (exit 1 at the command line).
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit the log (exit 2 at the command line).
    #[error("{0}")]
    Usage(String),
}

/// A log directory as read: entries, checkpoint, earlier checkpoints.
#[derive(Debug, Clone)]
pub struct LogDir {
    /// The entries.
    pub log: Log,
    /// The latest checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// Earlier checkpoints (file name `checkpoints/SIZE`, checkpoint), by size.
    pub history: Vec<(String, SignedCheckpoint)>,
}

/// The tree size an earlier checkpoint's file name gives (`checkpoints/SIZE`).
pub fn history_size(name: &str) -> Option<u64> {
    name.parse::<u64>().ok()
}

/// Parse a checkpoint file's text; `shown` names the file in errors.
pub fn parse_checkpoint(shown: &str, text: &str) -> Result<SignedCheckpoint, DirError> {
    SignedCheckpoint::parse(text).map_err(|e| DirError::Invalid(format!("{shown}: {e}")))
}

/// The files of a complete log directory, in the order they are written: (path relative to the
/// directory, bytes). Folders come first as paths ending in `/`. The new checkpoint is unsigned.
pub fn layout(
    log: &Log,
    previous: Option<&LogDir>,
    origin: &str,
) -> (Vec<(String, Vec<u8>)>, SignedCheckpoint) {
    let mut files = vec![(ENTRIES.to_string(), log.to_jsonl().into_bytes())];
    if let Some(d) = previous {
        files.push((format!("{HISTORY}/"), Vec::new()));
        for (n, cp) in &d.history {
            let file = n.strip_prefix(&format!("{HISTORY}/")).unwrap_or(n);
            files.push((format!("{HISTORY}/{file}"), cp.to_text().into_bytes()));
        }
        files.push((
            format!("{HISTORY}/{}", d.checkpoint.checkpoint.size),
            d.checkpoint.to_text().into_bytes(),
        ));
    }
    let cp = SignedCheckpoint::new(log.checkpoint(origin));
    files.push((CHECKPOINT.to_string(), cp.to_text().into_bytes()));
    (files, cp)
}

/// A file read for an append: the name shown in messages and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The name shown in messages (its path).
    pub shown: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// What an append needs, read by the edge.
#[derive(Debug, Clone, Copy)]
pub struct AppendInput<'a> {
    /// The previous log (shown name, as read), if the log is extended.
    pub previous: Option<(&'a str, &'a LogDir)>,
    /// The log's name, for a new log (or to check against the previous log's).
    pub origin: Option<&'a str>,
    /// The ceremony's sealed transcript.
    pub transcript: Input<'a>,
    /// The root in force after the ceremony.
    pub root: Input<'a>,
    /// The targets in force after the ceremony.
    pub targets: Option<Input<'a>>,
    /// The root before the ceremony (checked against the previous log).
    pub previous_root: Option<Input<'a>>,
    /// The targets before the ceremony (checked against the previous log).
    pub previous_targets: Option<Input<'a>>,
}

/// An append decided: the new log and its files, nothing written yet.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The log's name.
    pub origin: String,
    /// Entries before the append.
    pub old_size: usize,
    /// The whole new log.
    pub log: Log,
    /// The entries this ceremony adds.
    pub entries: Vec<Entry>,
    /// The ceremony (name and seal).
    pub ceremony: CeremonyRef,
    /// The new, unsigned checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// The files of the new log directory ([`layout`]).
    pub files: Vec<(String, Vec<u8>)>,
    /// The root keys' threshold after the append (signatures the checkpoint needs).
    pub threshold: u64,
}

fn published<T: SignedPayload>(input: Input<'_>) -> Result<Published<T>, DirError> {
    Published::from_bytes(input.bytes)
        .map_err(|e| DirError::Invalid(format!("{}: {e}", input.shown)))
}

/// Check everything an append needs and compute the new log directory's files.
pub fn plan_append(a: &AppendInput<'_>) -> Result<Appended, DirError> {
    let (previous, origin) = match (a.previous, a.origin) {
        (Some((shown, d)), origin) => {
            let v = verify(&d.log, &d.checkpoint, &d.history, None, None);
            if let Some(f) = v.first_failure() {
                return Err(DirError::Invalid(format!(
                    "the previous log {shown} does not verify: {}",
                    f.text
                )));
            }
            let o = d.checkpoint.checkpoint.origin.clone();
            if let Some(given) = origin
                && given != o
            {
                return Err(DirError::Usage(format!(
                    "--origin {given} is not the previous log's origin {o}"
                )));
            }
            (Some(d), o)
        }
        (None, Some(o)) => {
            if !valid_name(o) {
                return Err(DirError::Usage(format!(
                    "--origin \"{o}\": a log name is non-empty, without spaces or '+' (e.g. registry.example/conclave-key-events)"
                )));
            }
            (None, o.to_string())
        }
        (None, None) => {
            return Err(DirError::Usage(
                "a new log needs --origin NAME (or give --previous-log DIR to extend one)".into(),
            ));
        }
    };
    let prev_root = a.previous_root.map(published::<Root>).transpose()?;
    let prev_targets = a.previous_targets.map(published::<Targets>).transpose()?;
    let from_files = KeyState::from_metadata(prev_root.as_ref(), prev_targets.as_ref());
    let before = match previous {
        Some(d) => {
            let replayed = d
                .log
                .replay(d.log.len())
                .map_err(|e| DirError::Invalid(format!("the previous log: {e}")))?;
            if prev_root.is_some() {
                check_same(&replayed, &from_files, true, "--previous-root")?;
            }
            if prev_targets.is_some() {
                check_same(&replayed, &from_files, false, "--previous-targets")?;
            }
            replayed
        }
        None if prev_root.is_some() || prev_targets.is_some() => {
            return Err(DirError::Usage(
                "--previous-root/--previous-targets check the previous log (--previous-log); a new log starts from the keys of the ceremony's own root and targets".into(),
            ));
        }
        None => KeyState::default(),
    };
    // The ceremony: its name and seal from the verified transcript.
    let shown = a.transcript.shown;
    let t = verify_chain(a.transcript.bytes)
        .map_err(|e| DirError::Invalid(format!("{shown}: the transcript does not verify: {e}")))?;
    let seal = verify_seal(&t)
        .map_err(|e| DirError::Invalid(format!("{shown}: the seal does not verify: {e}")))?;
    let name = t.begin().map(|b| b.script.name).ok_or_else(|| {
        DirError::Invalid(format!(
            "{shown}: the first record does not name the ceremony script"
        ))
    })?;
    let ceremony = CeremonyRef {
        name,
        seal: seal.seal_hash,
    };
    if let Some(d) = previous
        && let Some((i, _)) = d
            .log
            .entries()
            .iter()
            .enumerate()
            .find(|(_, e)| e.seal == hex::encode(ceremony.seal))
    {
        return Err(DirError::Usage(format!(
            "the ceremony sealed with {} is already in the previous log (entry {i})",
            hex::encode(ceremony.seal)
        )));
    }
    let export = Export {
        root: Some(published::<Root>(a.root)?),
        targets: a.targets.map(published::<Targets>).transpose()?,
    };
    let entries = ceremony_events(&ceremony, &before, &export);
    // What the log says was published must be what the ceremony sealed.
    for e in &entries {
        if let Event::Published(p) = &e.event {
            let file = if p.role == RoleType::Root {
                a.root.shown
            } else {
                a.targets.map_or(a.root.shown, |t| t.shown)
            };
            if !seal
                .details
                .artifacts
                .iter()
                .any(|f| f.sha256 == p.file_sha256)
            {
                return Err(DirError::Invalid(format!(
                    "{file} ({} version {}) is not among the artifacts the seal of {shown} lists: it is not what this ceremony exported",
                    p.role, p.version,
                )));
            }
        }
    }
    let mut log = previous.map(|d| d.log.clone()).unwrap_or_default();
    let old_size = log.len();
    log.append(entries.clone());
    let (files, checkpoint) = layout(&log, previous, &origin);
    let state = log
        .replay(log.len())
        .map_err(|e| DirError::Invalid(format!("internal error: the new log: {e}")))?;
    let threshold = state.root_keys().map_or(0, |k| k.threshold);
    Ok(Appended {
        origin,
        old_size,
        log,
        entries,
        ceremony,
        checkpoint,
        files,
        threshold,
    })
}

/// The roles the log's replay gives must be those the previous metadata file gives.
fn check_same(
    replayed: &KeyState,
    from_file: &KeyState,
    top_level: bool,
    flag: &str,
) -> Result<(), DirError> {
    let digest = if top_level {
        (&replayed.root, &from_file.root)
    } else {
        (&replayed.targets, &from_file.targets)
    };
    if digest.0.as_ref().map(|p| p.signed_sha256) != digest.1.as_ref().map(|p| p.signed_sha256) {
        return Err(DirError::Invalid(format!(
            "{flag} is not the {} the previous log published last (version {:?} there)",
            if top_level { "root" } else { "targets" },
            digest.0.as_ref().map(|p| p.version)
        )));
    }
    let pick = |s: &KeyState| -> Vec<(RoleName, _)> {
        s.roles
            .iter()
            .filter(|(n, _)| n.is_top_level() == top_level)
            .map(|(n, k)| (n.clone(), k.clone()))
            .collect()
    };
    if pick(replayed) != pick(from_file) {
        return Err(DirError::Invalid(format!(
            "{flag}: its keys and thresholds differ from those the previous log's events give"
        )));
    }
    Ok(())
}

/// Before a checkpoint is signed: the log must verify apart from its signatures. Returns the
/// root keys of the log's latest root (`None`: the log has published no root).
pub fn signing_keys(shown: &str, d: &LogDir) -> Result<Option<RoleKeys>, DirError> {
    let v = verify(&d.log, &d.checkpoint, &d.history, None, None);
    if let Some(f) = v
        .checks
        .iter()
        .find(|c| !c.ok && !c.text.starts_with("checkpoint signatures"))
    {
        return Err(DirError::Invalid(format!(
            "refusing to sign: the log {shown} does not verify: {}",
            f.text
        )));
    }
    let state = d
        .log
        .replay(d.log.len())
        .map_err(|e| DirError::Invalid(format!("refusing to sign: {e}")))?;
    Ok(state.root_keys().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_names_are_sizes() {
        assert_eq!(history_size("12"), Some(12));
        assert_eq!(history_size("x"), None);
    }

    #[test]
    fn a_new_log_needs_a_valid_origin() {
        let input = AppendInput {
            previous: None,
            origin: Some("has space"),
            transcript: Input {
                shown: "t",
                bytes: b"",
            },
            root: Input {
                shown: "r",
                bytes: b"",
            },
            targets: None,
            previous_root: None,
            previous_targets: None,
        };
        assert!(matches!(plan_append(&input), Err(DirError::Usage(m)) if m.contains("has space")));
        let none = AppendInput {
            origin: None,
            ..input
        };
        assert!(
            matches!(plan_append(&none), Err(DirError::Usage(m)) if m.contains("--origin NAME"))
        );
    }
}
