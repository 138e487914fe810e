//! The files an auditor's `conclave transcript verify` reads, read once for the command and for
//! the checks a ceremony makes of its own output: both then give them to the same pure verdict
//! ([`crate::ceremony::conformance::verify_transcript`]), so every VALID Conclave prints after a
//! ceremony comes from exactly the auditor's code.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::ceremony::conformance::{AuditInput, LogInput, verify_transcript};
use crate::folder::read_limited;
use crate::transcript::audit::Audit;
use crate::transcript::details::FileDigest;
use crate::transparency::dir::LogDir;
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;

use super::log_dir::{LogDirError, read_log_dir};

/// Why the files could not be read; the message names the file or option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFilesError {
    /// A file or folder could not be read.
    #[error("{0}")]
    Io(String),
    /// The options do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A file is not what it must be (the key-event log).
    #[error("{0}")]
    Invalid(String),
}

/// Where the auditor's inputs are.
#[derive(Debug, Clone)]
pub struct AuditPaths {
    /// The transcript (`*.jsonl`).
    pub transcript: PathBuf,
    /// `--artifacts DIR`.
    pub artifacts: Option<PathBuf>,
    /// `--trusted-root FILE`.
    pub trusted_root: Option<PathBuf>,
    /// `--log DIR`.
    pub log: Option<PathBuf>,
}

/// The auditor's inputs, read.
#[derive(Debug)]
pub struct AuditFiles {
    /// The transcript's bytes.
    pub transcript: Vec<u8>,
    /// The artifacts found (the transcript itself left out when it lies in the folder).
    pub artifacts: Option<Vec<FileDigest>>,
    /// The trusted root: its name as given and its bytes.
    pub trusted_root: Option<(String, Vec<u8>)>,
    /// The exported roots (`N.root.json`) of the artifacts folder, when anchored.
    pub exported_roots: Vec<(String, Vec<u8>)>,
    /// The key-event log: its name as given and its contents.
    pub log: Option<(String, LogDir)>,
    /// The artifacts folder's RSTUF ceremony payload (`ceremony-payload.json`), when there is
    /// one: its settings are compared with the transcript's.
    pub payloads: Vec<(String, Vec<u8>)>,
}

impl AuditFiles {
    /// Read what `paths` name.
    pub fn read(paths: &AuditPaths) -> Result<AuditFiles, AuditFilesError> {
        if paths.log.is_some() && paths.trusted_root.is_none() {
            return Err(AuditFilesError::Usage(
                "--log needs --trusted-root: the checkpoint must be signed by the keys of the root the transcript is anchored in".into(),
            ));
        }
        let transcript =
            read_limited(&paths.transcript, DEFAULT_MAX_FILE_SIZE).map_err(AuditFilesError::Io)?;
        let artifacts = match &paths.artifacts {
            None => None,
            Some(dir) => {
                let mut found = read_artifact_dir(dir)
                    .map_err(|e| AuditFilesError::Io(format!("--artifacts: {e}")))?;
                if let Some(own) = own_name_in(dir, &paths.transcript) {
                    found.retain(|f| f.name != own);
                }
                Some(found)
            }
        };
        let trusted_root = match &paths.trusted_root {
            None => None,
            Some(p) => Some((
                p.display().to_string(),
                read_limited(p, DEFAULT_MAX_FILE_SIZE)
                    .map_err(|e| AuditFilesError::Io(format!("--trusted-root: {e}")))?,
            )),
        };
        let exported_roots = match &paths.artifacts {
            Some(dir) if trusted_root.is_some() => read_roots(dir)?,
            _ => Vec::new(),
        };
        let payloads = match &paths.artifacts {
            Some(dir) => read_payloads(dir)?,
            None => Vec::new(),
        };
        let log = paths.log.as_deref().map(read_log).transpose()?;
        Ok(AuditFiles {
            transcript,
            artifacts,
            trusted_root,
            exported_roots,
            log,
            payloads,
        })
    }

    /// The auditor's verdict on these files.
    pub fn verify(&self, partial: bool) -> Audit {
        verify_transcript(&AuditInput {
            transcript: &self.transcript,
            artifacts: self.artifacts.as_deref(),
            partial,
            trusted_root: self
                .trusted_root
                .as_ref()
                .map(|(n, b)| (n.as_str(), b.as_slice())),
            exported_roots: &self.exported_roots,
            log: self.log.as_ref().map(|(name, d)| LogInput {
                name,
                log: &d.log,
                checkpoint: &d.checkpoint,
                history: &d.history,
            }),
            payloads: &self.payloads,
        })
    }
}

/// The key-event log directory `dir` (`--log`): its name as given and its contents.
pub(super) fn read_log(dir: &Path) -> Result<(String, LogDir), AuditFilesError> {
    let log = read_log_dir(dir).map_err(|e| match e {
        LogDirError::Io(m) => AuditFilesError::Io(m),
        LogDirError::Invalid(m) => AuditFilesError::Invalid(m),
        LogDirError::Usage(m) => AuditFilesError::Usage(m),
    })?;
    Ok((dir.display().to_string(), log))
}

/// The exported root files (`N.root.json`) in a folder: the links of the root chain between the
/// trusted root and the root the ceremony loaded.
fn read_roots(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, AuditFilesError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| AuditFilesError::Io(format!("--artifacts {}: {e}", dir.display())))?;
    let mut roots = Vec::new();
    for e in rd {
        let e =
            e.map_err(|e| AuditFilesError::Io(format!("--artifacts {}: {e}", dir.display())))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Some(v) = name.strip_suffix(".root.json") else {
            continue;
        };
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let bytes = read_limited(&e.path(), DEFAULT_MAX_FILE_SIZE).map_err(AuditFilesError::Io)?;
        roots.push((name, bytes));
    }
    Ok(roots)
}

/// The RSTUF ceremony payload of a folder (`ceremony-payload.json`), when it has one.
fn read_payloads(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, AuditFilesError> {
    let name = crate::tuf::rstuf::CEREMONY_PAYLOAD;
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bytes = read_limited(&path, DEFAULT_MAX_FILE_SIZE)
        .map_err(|e| AuditFilesError::Io(format!("--artifacts: {e}")))?;
    Ok(vec![(name.to_string(), bytes)])
}

/// The transcript's name relative to the artifacts folder when it lies inside it (so it is not
/// reported as an unlisted artifact: it cannot list itself).
fn own_name_in(dir: &Path, transcript: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let t = transcript.canonicalize().ok()?;
    let rel = t.strip_prefix(&dir).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// `conclave verify`: the trusted root read whole but bounded (`max_file_size`), the
/// repository folder opened as a metadata source (its files are read bounded as the
/// verification asks for them: [`crate::folder::FolderSource`]), and the repository verified
/// at `now` ([`crate::tuf::repository::verify_repository_keeping`]). The report names the
/// trusted root as `trusted_root` is written.
pub fn verify_repository_folder(
    trusted_root: &Path,
    repo: &Path,
    max_file_size: u64,
    now: time::OffsetDateTime,
) -> Result<
    (
        crate::tuf::repository::Report,
        Option<crate::tuf::verify::TrustedSet>,
    ),
    AuditFilesError,
> {
    let trusted = read_limited(trusted_root, max_file_size).map_err(AuditFilesError::Io)?;
    let src = crate::folder::FolderSource::new(repo, max_file_size)
        .map_err(|e| AuditFilesError::Io(format!("--repo {}: {e}", repo.display())))?;
    Ok(crate::tuf::repository::verify_repository_keeping(
        &trusted_root.display().to_string(),
        &trusted,
        &src,
        now,
    ))
}

/// Every regular file below `dir` (relative names with `/`), with SHA-256 and length. Symbolic
/// links to directories are not followed; at most 16 levels deep.
pub fn read_artifact_dir(dir: &Path) -> Result<Vec<FileDigest>, String> {
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<FileDigest>) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{}: folders nested too deep", dir.display()));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let lmeta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if lmeta.is_dir() {
            walk(&path, &rel, depth + 1, out)?;
            continue;
        }
        let meta =
            std::fs::metadata(&path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if !meta.is_file() {
            continue;
        }
        let mut file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut hasher = Sha256::new();
        let length = std::io::copy(&mut file, &mut hasher)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        out.push(FileDigest {
            name: rel,
            sha256: hasher.finalize().into(),
            length,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `conclave verify`'s inputs: a trusted root that cannot be read and a repository that is
    /// not a folder are I/O errors naming them; a readable pair gives a report naming the root.
    #[test]
    fn verify_reads_the_trusted_root_bounded_and_opens_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("1.root.json");
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let Err(AuditFilesError::Io(m)) = verify_repository_folder(&root, dir.path(), 100, now)
        else {
            panic!("verified without a trusted root");
        };
        assert!(m.contains("1.root.json"), "{m}");
        std::fs::write(&root, vec![b' '; 101]).unwrap();
        let Err(AuditFilesError::Io(m)) = verify_repository_folder(&root, dir.path(), 100, now)
        else {
            panic!("read a trusted root over the limit");
        };
        assert!(m.contains("over the size limit"), "{m}");
        std::fs::write(&root, b"{}").unwrap();
        let Err(AuditFilesError::Io(m)) = verify_repository_folder(&root, &root, 100, now) else {
            panic!("a file was taken as the repository folder");
        };
        assert!(m.starts_with("--repo "), "{m}");
        let (report, kept) = verify_repository_folder(&root, dir.path(), 100, now).unwrap();
        assert!(!report.is_valid() && kept.is_none(), "{{}} is no root");
    }

    #[test]
    fn artifact_folder_is_read_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.root.json"), b"{}").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x"), b"abc").unwrap();
        let found = read_artifact_dir(dir.path()).unwrap();
        assert_eq!(
            found,
            vec![
                FileDigest::of("1.root.json", b"{}"),
                FileDigest::of("sub/x", b"abc")
            ]
        );
        assert!(read_artifact_dir(&dir.path().join("none")).is_err());
    }
}
