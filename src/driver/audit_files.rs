//! The files an auditor's `conclave transcript verify` reads, read once for the command and for
//! the checks a ceremony makes of its own output: both then give them to the same pure verdict
//! ([`crate::ceremony::conformance::verify_transcript`]), so every VALID Conclave prints after a
//! ceremony comes from exactly the auditor's code.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::ceremony::conformance::{AuditInput, LogInput, verify_transcript};
use crate::folder::{FolderSource, read_limited};
use crate::transcript::audit::Audit;
use crate::transcript::details::FileDigest;
use crate::transparency::dir::LogDir;
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::repository::{
    MetadataSource as _, Report, file_version, verify_repository_keeping,
};
use crate::tuf::verify::TrustedSet;

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
        let folder = paths
            .artifacts
            .as_deref()
            .map(|dir| {
                RepositoryFolder::open(dir, DEFAULT_MAX_FILE_SIZE)
                    .map_err(|e| AuditFilesError::Io(format!("--artifacts {e}")))
            })
            .transpose()?;
        let exported_roots = match &folder {
            Some(f) if trusted_root.is_some() => f.roots()?,
            _ => Vec::new(),
        };
        let payloads = match &folder {
            Some(f) => f.payloads()?,
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

/// A repository folder (a ceremony's `export/`, an auditor's `--repo` or `--artifacts`), read
/// the one way `conclave verify` reads it: opened once as a metadata source
/// ([`crate::folder::FolderSource`]: only regular files directly inside it, a symbolic link
/// only when it resolves inside the folder, every file bounded by the size limit), its
/// versioned files listed by [`file_version`] (`N.ROLE.json`, `N` as a client asks for it).
/// `conclave verify`, `conclave transcript verify --artifacts`, the checks of a finished
/// ceremony and the ceremony's loading of the current metadata all read through it, so none
/// of them calls good a folder another refuses.
#[derive(Debug, Clone)]
pub struct RepositoryFolder {
    dir: PathBuf,
    src: FolderSource,
    max_file_size: u64,
}

impl RepositoryFolder {
    /// Open the folder `dir`, refusing files over `max_file_size` bytes when they are read.
    /// The error names the folder.
    pub fn open(dir: &Path, max_file_size: u64) -> Result<Self, AuditFilesError> {
        let src = FolderSource::new(dir, max_file_size)
            .map_err(|e| AuditFilesError::Io(format!("{}: {e}", dir.display())))?;
        Ok(RepositoryFolder {
            dir: dir.to_path_buf(),
            src,
            max_file_size,
        })
    }

    /// The path of the file `name` in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The versions of `role` in the folder (`N.ROLE.json`, [`file_version`]), oldest first,
    /// each with its file name.
    pub fn versions(&self, role: &str) -> Vec<(u64, String)> {
        let mut found: Vec<(u64, String)> = self
            .src
            .names()
            .into_iter()
            .filter_map(|n| Some((file_version(&n, role)?, n)))
            .collect();
        found.sort_unstable();
        found
    }

    /// The newest version of `role` in the folder and its file name.
    pub fn latest(&self, role: &str) -> Option<(u64, String)> {
        self.versions(role).pop()
    }

    /// The bytes of the file `name`, read as the verifier reads it; `None` when it is absent.
    /// A file that is refused (over the limit, a link out of the folder, not a regular file)
    /// or cannot be read is an error naming it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, AuditFilesError> {
        self.src
            .read(name)
            .map_err(|e| AuditFilesError::Io(e.to_string()))
    }

    /// The root files of the folder (`N.root.json`): the links of the root chain between a
    /// trusted root and a later root, each read as [`RepositoryFolder::read`] reads it.
    pub fn roots(&self) -> Result<Vec<(String, Vec<u8>)>, AuditFilesError> {
        let mut roots = Vec::new();
        for (_, name) in self.versions("root") {
            if let Some(bytes) = self.read(&name)? {
                roots.push((name, bytes));
            }
        }
        Ok(roots)
    }

    /// The folder's RSTUF ceremony payload (`ceremony-payload.json`), when it has one.
    pub fn payloads(&self) -> Result<Vec<(String, Vec<u8>)>, AuditFilesError> {
        let name = crate::tuf::rstuf::CEREMONY_PAYLOAD;
        Ok(self
            .read(name)?
            .map(|bytes| (name.to_string(), bytes))
            .into_iter()
            .collect())
    }

    /// `conclave verify`'s verdict on the folder at `now`, from the trusted root at
    /// `trusted_root` (read whole but bounded by the folder's limit; the report names it as
    /// `trusted_root` is written) ([`crate::tuf::repository::verify_repository_keeping`]), and
    /// what was verified when everything was.
    pub fn verify(
        &self,
        trusted_root: &Path,
        now: time::OffsetDateTime,
    ) -> Result<(Report, Option<TrustedSet>), AuditFilesError> {
        let trusted =
            read_limited(trusted_root, self.max_file_size).map_err(AuditFilesError::Io)?;
        Ok(verify_repository_keeping(
            &trusted_root.display().to_string(),
            &trusted,
            &self.src,
            now,
        ))
    }
}

/// `conclave verify`: the repository folder `repo` opened ([`RepositoryFolder`]) and verified
/// from the trusted root at `trusted_root` ([`RepositoryFolder::verify`]). The checks of a
/// finished ceremony call exactly this.
pub fn verify_repository_folder(
    trusted_root: &Path,
    repo: &Path,
    max_file_size: u64,
    now: time::OffsetDateTime,
) -> Result<(Report, Option<TrustedSet>), AuditFilesError> {
    let folder = RepositoryFolder::open(repo, max_file_size)
        .map_err(|e| AuditFilesError::Io(format!("--repo {e}")))?;
    folder.verify(trusted_root, now)
}

/// Every regular file below `dir` (relative names with `/`), with SHA-256 and length, read by
/// the rule [`RepositoryFolder`] reads its files by: a symbolic link is followed only when it
/// resolves to a regular file inside `dir` ([`crate::folder::link_inside`]), and is then read
/// as the file it names (under its own name); a named pipe is never waited on, and only
/// regular files and folders are taken ([`crate::folder::open_regular_nofollow`]). Any other
/// entry (a link out of the folder or to a folder, a named pipe, a device, a socket) is an
/// error naming it, never skipped: the auditor hears of it. At most 16 levels deep.
pub fn read_artifact_dir(dir: &Path) -> Result<Vec<FileDigest>, String> {
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    walk(&root, dir, "", 0, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<FileDigest>,
) -> Result<(), String> {
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
            walk(root, &path, &rel, depth + 1, out)?;
            continue;
        }
        let mut file = if lmeta.file_type().is_symlink() {
            let target = crate::folder::link_inside(&path, root).map_err(|e| e.to_string())?;
            crate::folder::open_regular_nofollow(&target)
                .map_err(|e| format!("{} (a link to {}) {e}", path.display(), target.display()))?
        } else {
            crate::folder::open_regular_nofollow(&path)
                .map_err(|e| format!("{} {e}", path.display()))?
        };
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
pub(super) mod tests {
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

    use crate::signer::Signer as _;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{RoleKeys, new_root, new_targets};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::{Metadata, RoleType, SignedPayload};

    fn signed<T: SignedPayload>(payload: T, by: Option<&mut SoftwareSigner>) -> Metadata<T> {
        let mut m = Metadata::new(payload);
        if let Some(s) = by {
            let sig = s.sign(m.signed_bytes()).unwrap();
            m.add_signature(s.key().key_id(), &sig);
        }
        m
    }

    /// A folder as a ceremony exports it: `1.root.json` (one key for every role) and
    /// `1.targets.json`, signed by that key when `sign_targets`; both returned.
    pub(in crate::driver) fn export_folder(
        dir: &Path,
        sign_targets: bool,
    ) -> (
        Metadata<crate::tuf::metadata::Root>,
        Metadata<crate::tuf::metadata::Targets>,
    ) {
        let mut s = SoftwareSigner::from_seed(Algorithm::Ed25519, &[7; 32]).unwrap();
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![s.key().clone()],
                threshold: 1,
            })
            .collect();
        let expires = time::macros::datetime!(2040-01-01 0:00 UTC);
        let root = signed(new_root(&roles, expires).unwrap(), Some(&mut s));
        std::fs::write(dir.join("1.root.json"), root.to_file_bytes()).unwrap();
        let targets = signed(new_targets(expires), sign_targets.then_some(&mut s));
        std::fs::write(dir.join("1.targets.json"), targets.to_file_bytes()).unwrap();
        (root, targets)
    }

    /// A version is a file name as a client asks for it. The verifier read `+2.targets.json` as
    /// version 2, looked for `2.targets.json`, found none and reported targets "not present":
    /// an unsigned `1.targets.json` beside it was never checked and `conclave verify` said
    /// VALID (and the ceremony's `latest` took `+2.targets.json` as the newest targets). Now
    /// such a name is no version for any reader, and the unsigned targets fail.
    #[test]
    fn a_version_is_written_as_a_client_asks_for_it() {
        let dir = tempfile::tempdir().unwrap();
        export_folder(dir.path(), false);
        std::fs::write(dir.path().join("+2.targets.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("02.root.json"), b"{}").unwrap();
        let now = time::macros::datetime!(2030-01-01 0:00 UTC);
        let trusted = dir.path().join("1.root.json");
        let (report, kept) =
            verify_repository_folder(&trusted, dir.path(), DEFAULT_MAX_FILE_SIZE, now).unwrap();
        assert!(kept.is_none());
        let error = report.error.unwrap_or_default();
        assert!(error.contains("1.targets.json"), "{error}");
        let folder = RepositoryFolder::open(dir.path(), DEFAULT_MAX_FILE_SIZE).unwrap();
        assert_eq!(folder.latest("targets"), Some((1, "1.targets.json".into())));
        assert_eq!(folder.versions("root"), vec![(1, "1.root.json".into())]);
        let roots: Vec<String> = folder
            .roots()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(roots, ["1.root.json"]);
        // Signed, the same folder verifies (the stray names are no link of the chain and no
        // version of targets), and what was verified is kept.
        export_folder(dir.path(), true);
        let (report, kept) =
            verify_repository_folder(&trusted, dir.path(), DEFAULT_MAX_FILE_SIZE, now).unwrap();
        assert!(report.is_valid(), "{:?}", report.error);
        assert!(kept.is_some_and(|k| k.targets("targets").is_some()));
    }

    /// Every reader of a repository folder reads it as `conclave verify` does. The exported
    /// roots `transcript verify --artifacts` read followed a symbolic link anywhere (`verify`
    /// refused it as a link out of the folder), and a payload that is no regular file was
    /// taken for none.
    #[test]
    fn links_out_of_the_folder_and_special_files_are_refused_by_every_reader() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        export_folder(dir.path(), true);
        let elsewhere = outside.path().join("2.root.json");
        std::fs::write(&elsewhere, b"{}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("2.root.json")).unwrap();
        let now = time::macros::datetime!(2030-01-01 0:00 UTC);
        let trusted = dir.path().join("1.root.json");
        let (report, _) =
            verify_repository_folder(&trusted, dir.path(), DEFAULT_MAX_FILE_SIZE, now).unwrap();
        let error = report.error.unwrap_or_default();
        assert!(error.contains("outside the folder"), "{error}");
        let folder = RepositoryFolder::open(dir.path(), DEFAULT_MAX_FILE_SIZE).unwrap();
        let Err(AuditFilesError::Io(m)) = folder.roots() else {
            panic!("a root linked from outside the folder was read");
        };
        assert!(m.contains("outside the folder"), "{m}");
        let paths = AuditPaths {
            transcript: dir.path().join("1.root.json"),
            artifacts: Some(dir.path().to_path_buf()),
            trusted_root: Some(trusted.clone()),
            log: None,
        };
        let Err(AuditFilesError::Io(m)) = AuditFiles::read(&paths) else {
            panic!("transcript verify read a root linked from outside the folder");
        };
        // The artifacts' walk meets the link first: refused by the same rule, named.
        assert!(
            m.contains("2.root.json is a link to ") && m.contains("outside the folder"),
            "{m}"
        );
        // A named pipe where RSTUF's payload belongs is refused, not skipped.
        std::fs::remove_file(dir.path().join("2.root.json")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join(crate::tuf::rstuf::CEREMONY_PAYLOAD))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let Err(AuditFilesError::Io(m)) = AuditFiles::read(&paths) else {
            panic!("a named pipe was taken for no payload");
        };
        assert!(m.contains("not a regular file"), "{m}");
        // An oversized root is refused by the folder's limit, as by the verifier's.
        let small = RepositoryFolder::open(dir.path(), 10).unwrap();
        let Err(AuditFilesError::Io(m)) = small.roots() else {
            panic!("a root over the limit was read");
        };
        assert!(m.contains("over the size limit"), "{m}");
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

    /// The artifacts folder is read by the repository folder's rule: a symbolic link that
    /// resolves to a file inside the folder is read as that file (by both readers); a link out
    /// of the folder (to a file or to a folder), a link to a folder, a named pipe and a socket
    /// are refused naming them, never skipped nor waited on.
    #[test]
    fn artifact_folder_links_and_special_files_are_refused_naming_them() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"elsewhere").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.root.json"), b"{}").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x"), b"abc").unwrap();
        let link = dir.path().join("sub/linked");
        let refused = |e: &str, what: &str| {
            assert!(
                e.contains(&link.display().to_string()) && e.contains(what),
                "{e}"
            );
        };
        // Inside the folder: read as the file it names, under the link's name, by both readers.
        std::os::unix::fs::symlink("../1.root.json", &link).unwrap();
        let top = dir.path().join("root.json");
        std::os::unix::fs::symlink(dir.path().join("sub/x"), &top).unwrap();
        assert_eq!(
            read_artifact_dir(dir.path()).unwrap(),
            vec![
                FileDigest::of("1.root.json", b"{}"),
                FileDigest::of("root.json", b"abc"),
                FileDigest::of("sub/linked", b"{}"),
                FileDigest::of("sub/x", b"abc"),
            ]
        );
        let folder = RepositoryFolder::open(dir.path(), DEFAULT_MAX_FILE_SIZE).unwrap();
        assert_eq!(folder.read("root.json").unwrap(), Some(b"abc".to_vec()));
        std::fs::remove_file(&top).unwrap();
        // Out of the folder, to a file or to a folder: refused, named.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), &link).unwrap();
        refused(
            &read_artifact_dir(dir.path()).unwrap_err(),
            "outside the folder",
        );
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        refused(
            &read_artifact_dir(dir.path()).unwrap_err(),
            "outside the folder",
        );
        // To the folder itself, and to a folder inside it: no file, refused.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("..", &link).unwrap();
        refused(
            &read_artifact_dir(dir.path()).unwrap_err(),
            "outside the folder",
        );
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(".", &link).unwrap();
        refused(&read_artifact_dir(dir.path()).unwrap_err(), "is a folder");
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_file(dir.path().join("sub/x")).unwrap();
        let fifo = dir.path().join("sub/pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // A link inside the folder to a named pipe: refused as the pipe, never waited on.
        std::os::unix::fs::symlink("pipe", &link).unwrap();
        let e = read_artifact_dir(dir.path()).unwrap_err();
        assert!(e.contains("is a named pipe"), "{e}");
        std::fs::remove_file(&link).unwrap();
        let e = read_artifact_dir(dir.path()).unwrap_err();
        assert!(
            e.contains(&fifo.display().to_string()) && e.contains("is a named pipe"),
            "{e}"
        );
        // Through `transcript verify --artifacts`, the refusal names the option and the entry.
        let paths = AuditPaths {
            transcript: dir.path().join("1.root.json"),
            artifacts: Some(dir.path().to_path_buf()),
            trusted_root: None,
            log: None,
        };
        let Err(AuditFilesError::Io(m)) = AuditFiles::read(&paths) else {
            panic!("transcript verify skipped a named pipe in the artifacts");
        };
        assert!(
            m.starts_with("--artifacts: ") && m.contains(&fifo.display().to_string()),
            "{m}"
        );
        std::fs::remove_file(&fifo).unwrap();
        // A socket: refused, named.
        let sock = dir.path().join("sub/sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read_artifact_dir(dir.path()).unwrap_err();
        assert!(
            e.contains(&sock.display().to_string()) && e.contains("is a socket"),
            "{e}"
        );
        std::fs::remove_file(&sock).unwrap();
        assert_eq!(
            read_artifact_dir(dir.path()).unwrap(),
            vec![FileDigest::of("1.root.json", b"{}")]
        );
    }
}
