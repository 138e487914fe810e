//! The key-event log's directory on disk: reading it, writing an append (into a temporary
//! sibling renamed when complete), and adding a signature to its checkpoint. The format and
//! every check are [`crate::transparency::dir`]'s; `conclave log` and the key-event log step
//! at a ceremony's seal both use these.

use std::path::{Path, PathBuf};

use crate::folder::{read_limited, write_new_file, write_replacing};
use crate::signer::Signer;
use crate::transparency::SignedCheckpoint;
use crate::transparency::dir::{
    self, AppendInput, Appended, CHECKPOINT, DirError, ENTRIES, HISTORY, Input, LogDir,
};
use crate::transparency::event::{Published, RoleKeys};
use crate::transparency::log::{Log, Previous, Verification, verify};
use crate::transparency::note::{NoteError, NoteSignature};
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::metadata::Root;

/// Why a log directory could not be read, written or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogDirError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The log or a file is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit the log.
    #[error("{0}")]
    Usage(String),
}

impl From<DirError> for LogDirError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::Invalid(m) => LogDirError::Invalid(m),
            DirError::Usage(m) => LogDirError::Usage(m),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LogDirError> {
    read_limited(path, DEFAULT_MAX_FILE_SIZE).map_err(LogDirError::Io)
}

fn read_text(path: &Path) -> Result<String, LogDirError> {
    String::from_utf8(read(path)?)
        .map_err(|_| LogDirError::Invalid(format!("{}: not UTF-8 text", path.display())))
}

/// Read and parse a checkpoint file.
pub fn read_checkpoint(path: &Path) -> Result<crate::transparency::SignedCheckpoint, LogDirError> {
    Ok(dir::parse_checkpoint(
        &path.display().to_string(),
        &read_text(path)?,
    )?)
}

/// Read a log directory.
pub fn read_log_dir(dir: &Path) -> Result<LogDir, LogDirError> {
    if !dir.is_dir() {
        return Err(LogDirError::Io(format!(
            "{} is not a log directory",
            dir.display()
        )));
    }
    let entries = dir.join(ENTRIES);
    let log = Log::parse_jsonl(&read(&entries)?)
        .map_err(|e| LogDirError::Invalid(format!("{}: {e}", entries.display())))?;
    let checkpoint = read_checkpoint(&dir.join(CHECKPOINT))?;
    let mut history = Vec::new();
    let hdir = dir.join(HISTORY);
    if hdir.is_dir() {
        let mut names: Vec<(u64, String)> = Vec::new();
        for e in std::fs::read_dir(&hdir)
            .map_err(|e| LogDirError::Io(format!("cannot list {}: {e}", hdir.display())))?
        {
            let e = e.map_err(|e| LogDirError::Io(format!("{}: {e}", hdir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let size = dir::history_size(&name).ok_or_else(|| {
                LogDirError::Invalid(format!(
                    "{}: unexpected file \"{name}\" (names are tree sizes)",
                    hdir.display()
                ))
            })?;
            names.push((size, name));
        }
        names.sort();
        for (size, name) in names {
            let p = hdir.join(&name);
            let cp = read_checkpoint(&p)?;
            if cp.checkpoint.size != size {
                return Err(LogDirError::Invalid(format!(
                    "{}: the checkpoint covers {} entries, not {size}",
                    p.display(),
                    cp.checkpoint.size
                )));
            }
            history.push((format!("{HISTORY}/{name}"), cp));
        }
    }
    Ok(LogDir {
        log,
        checkpoint,
        history,
    })
}

/// An append to the key-event log: the files it reads and the new directory it writes.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The new log directory (created; must not exist).
    pub log: PathBuf,
    /// The log of the previous ceremony (only read); without it a new log starts.
    pub previous_log: Option<PathBuf>,
    /// The log's name, for a new log.
    pub origin: Option<String>,
    /// The ceremony's sealed transcript.
    pub transcript: PathBuf,
    /// The root in force after the ceremony.
    pub root: PathBuf,
    /// The targets in force after the ceremony.
    pub targets: Option<PathBuf>,
    /// The root before the ceremony (checked against the previous log).
    pub previous_root: Option<PathBuf>,
    /// The targets before the ceremony (checked against the previous log).
    pub previous_targets: Option<PathBuf>,
}

/// Write the log after a ceremony: everything is read and checked before anything is written;
/// the new directory is written into a temporary sibling and renamed when complete, so an
/// interrupted append leaves no half-written log under the name.
pub fn append(a: &AppendRequest) -> Result<Appended, LogDirError> {
    let previous = a.previous_log.as_deref().map(read_log_dir).transpose()?;
    let previous_shown = a.previous_log.as_ref().map(|p| p.display().to_string());
    let read_opt = |p: &Option<PathBuf>| -> Result<Option<(String, Vec<u8>)>, LogDirError> {
        p.as_deref()
            .map(|p| Ok((p.display().to_string(), read(p)?)))
            .transpose()
    };
    let prev_root = read_opt(&a.previous_root)?;
    let prev_targets = read_opt(&a.previous_targets)?;
    let transcript = (a.transcript.display().to_string(), read(&a.transcript)?);
    let root = (a.root.display().to_string(), read(&a.root)?);
    let targets = read_opt(&a.targets)?;
    fn input(f: &(String, Vec<u8>)) -> Input<'_> {
        Input {
            shown: &f.0,
            bytes: &f.1,
        }
    }
    let plan = dir::plan_append(&AppendInput {
        previous: previous_shown.as_deref().zip(previous.as_ref()),
        origin: a.origin.as_deref(),
        transcript: input(&transcript),
        root: input(&root),
        targets: targets.as_ref().map(input),
        previous_root: prev_root.as_ref().map(input),
        previous_targets: prev_targets.as_ref().map(input),
    })?;
    if a.log.symlink_metadata().is_ok() {
        return Err(LogDirError::Usage(format!(
            "{} exists; the new log goes into a new directory",
            a.log.display()
        )));
    }
    let file_name = a.log.file_name().ok_or_else(|| {
        LogDirError::Usage(format!("--log {}: not a directory name", a.log.display()))
    })?;
    let tmp = a.log.with_file_name(format!(
        ".{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_files(&tmp, &plan.files).and_then(|()| {
        crate::fault::point(&format!("log rename {}", crate::folder::fault_name(&a.log)));
        std::fs::rename(&tmp, &a.log).map_err(|e| {
            LogDirError::Io(format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                a.log.display()
            ))
        })
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(plan)
}

fn mkdir_new(dir: &Path) -> Result<(), LogDirError> {
    crate::fault::point(&format!("log mkdir {}", crate::folder::fault_name(dir)));
    std::fs::create_dir(dir).map_err(|e| {
        LogDirError::Io(format!(
            "cannot create {} (the new log goes into a new directory): {e}",
            dir.display()
        ))
    })
}

/// Write a complete log directory at `dir` (created), the files as [`dir::layout`] gives them.
fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), LogDirError> {
    mkdir_new(dir)?;
    for (name, bytes) in files {
        let path = dir.join(name.trim_end_matches('/'));
        if name.ends_with('/') {
            mkdir_new(&path)?;
        } else {
            write_new_file(&path, bytes)
                .map_err(|e| LogDirError::Io(format!("cannot write {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

/// A log directory about to get a checkpoint signature (`conclave log sign`, the key-event
/// log step at a ceremony's seal): read, and verified apart from its signatures
/// ([`dir::signing_keys`]); with the root keys of its latest root (`None`: the log has
/// published no root, so no key may sign).
pub fn read_log_to_sign(log_dir: &Path) -> Result<(LogDir, Option<RoleKeys>), LogDirError> {
    let d = read_log_dir(log_dir)?;
    let keys = dir::signing_keys(&log_dir.display().to_string(), &d)?;
    Ok((d, keys))
}

/// Write a log's checkpoint (replacing the file).
pub fn write_checkpoint(
    log_dir: &Path,
    cp: &crate::transparency::SignedCheckpoint,
) -> Result<PathBuf, LogDirError> {
    let path = log_dir.join(CHECKPOINT);
    write_replacing(&path, cp.to_text().as_bytes())
        .map_err(|e| LogDirError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Have `signer` (a token key, logged in) sign the checkpoint `cp`: the note text the core
/// gives out is signed (the signer verifies its signature) and the signature goes back in.
pub fn sign_note(
    cp: &mut SignedCheckpoint,
    signer: &mut dyn Signer,
) -> Result<NoteSignature, NoteError> {
    let msg = cp.to_sign(signer.key())?;
    let sig = signer
        .sign(&msg)
        .map_err(|e| NoteError::Signer(e.to_string()))?;
    cp.add_signature(signer.key(), sig)
}

/// Sign the log's checkpoint with a signer that is already logged in (the keyholders' tokens at
/// the seal of a ceremony). Returns `Ok(false)` when the signer's key is not a root key of the
/// log's latest root or has signed already (nothing written), `Ok(true)` when its signature was
/// added; the log must verify apart from its signatures.
pub fn sign_checkpoint_with(log_dir: &Path, signer: &mut dyn Signer) -> Result<bool, LogDirError> {
    let (d, root_keys) = read_log_to_sign(log_dir)?;
    let Some(root_keys) = root_keys else {
        return Ok(false);
    };
    let public = signer
        .key()
        .public_key()
        .map_err(|e| LogDirError::Invalid(e.to_string()))?;
    let material = public.material();
    let Some((keyid, _)) = root_keys
        .keys
        .iter()
        .find(|(_, k)| k.public_key().is_ok_and(|p| p.material() == material))
    else {
        return Ok(false);
    };
    let keyid = keyid.clone();
    let mut cp = d.checkpoint.clone();
    let kid = crate::transparency::note::note_key_id(&cp.checkpoint.origin, &public)
        .map_err(|e| LogDirError::Invalid(e.to_string()))?;
    if cp.signatures.iter().any(|s| s.key_id == kid) {
        return Ok(false);
    }
    sign_note(&mut cp, signer).map_err(|e| {
        LogDirError::Invalid(format!("the token's signature: {e}; nothing written"))
    })?;
    if !cp.count(&root_keys).signed.contains(&keyid) {
        return Err(LogDirError::Invalid(format!(
            "internal error: the new signature does not count for root key {keyid}; nothing written"
        )));
    }
    write_checkpoint(log_dir, &cp)?;
    Ok(true)
}

/// Verify a log directory: against an older view of it (a checkpoint file or an older log
/// directory) and a trusted root, if given. Returns the log as read and the verification.
pub fn verify_dir(
    log: &Path,
    previous: Option<&Path>,
    trusted_root: Option<&Path>,
) -> Result<(LogDir, Verification), LogDirError> {
    let d = read_log_dir(log)?;
    let previous = match previous {
        None => None,
        Some(p) if p.is_dir() => {
            let old = read_log_dir(p)?;
            Some(Previous::Log(
                p.display().to_string(),
                old.log,
                old.checkpoint,
            ))
        }
        Some(p) => Some(Previous::Checkpoint(
            p.display().to_string(),
            read_checkpoint(p)?,
        )),
    };
    let trusted = match trusted_root {
        None => None,
        Some(p) => {
            let bytes = read(p)?;
            // It must verify by its own root keys before its keys decide anything.
            crate::tuf::verify::trust_root(&p.display().to_string(), &bytes).map_err(|e| {
                LogDirError::Invalid(format!("the trusted root does not verify: {e}"))
            })?;
            Some(
                Published::<Root>::from_bytes(&bytes)
                    .map_err(|e| LogDirError::Invalid(format!("{}: {e}", p.display())))?,
            )
        }
    };
    let v = verify(
        &d.log,
        &d.checkpoint,
        &d.history,
        previous.as_ref(),
        trusted.as_ref(),
    );
    Ok((d, v))
}
