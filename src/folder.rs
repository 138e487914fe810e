//! Reading metadata from a folder (the edge between the pure verifier and the filesystem).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustix::fs::{FileType, Mode, OFlags};

use crate::tuf::repository::{MetadataSource, SourceError, is_safe_file_name};

/// A folder of metadata files. Only regular files directly inside it are read; a symbolic link
/// is followed only when it resolves inside the folder; files over the size limit are refused.
///
/// The folder is opened once and its files are opened relative to it, without following links
/// (one path component to look up instead of the whole path); what kind each entry is comes
/// from the folder's listing ([`MetadataSource::names`]), so a regular file costs no `stat`
/// before its `open`. Entries that the listing does not show as regular files (links, devices,
/// pipes, files added since) take the slower path that looks before opening.
#[derive(Debug, Clone)]
pub struct FolderSource {
    dir: PathBuf,
    canonical_dir: PathBuf,
    handle: Arc<OwnedFd>,
    listing: Arc<RwLock<HashMap<String, EntryKind>>>,
    max_size: u64,
}

/// What the folder's listing says an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    File,
    Other,
}

impl FolderSource {
    /// Open a folder, refusing files larger than `max_size` bytes.
    pub fn new(dir: &Path, max_size: u64) -> std::io::Result<Self> {
        let canonical_dir = dir.canonicalize()?;
        if !canonical_dir.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a folder",
                dir.display()
            )));
        }
        // A path handle: it needs no permission to list the folder (files are opened by name
        // through it, as by path before; a folder that cannot be listed reads as before).
        let handle = rustix::fs::open(
            &canonical_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(FolderSource {
            dir: dir.to_path_buf(),
            canonical_dir,
            handle: Arc::new(handle),
            listing: Arc::default(),
            max_size,
        })
    }

    /// The folder's entries and their kinds, read through the open folder.
    fn list(&self) -> std::io::Result<HashMap<String, EntryKind>> {
        let mut out = HashMap::new();
        let folder = rustix::fs::openat(
            &*self.handle,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for entry in rustix::fs::Dir::new(folder)? {
            // An entry that cannot be read is left out, as `std::fs::read_dir` users do.
            let Ok(entry) = entry else {
                continue;
            };
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::RegularFile => EntryKind::File,
                // Filesystems that do not say: the slower path looks at it when it is read.
                _ => EntryKind::Other,
            };
            out.insert(name.to_string(), kind);
        }
        Ok(out)
    }

    /// Read `name` when the listing showed a regular file: opened relative to the folder,
    /// refusing to follow a link (one put there since the listing takes the slower path).
    fn read_listed_file(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self.dir.join(name);
        match rustix::fs::openat(
            &*self.handle,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => read_open_file(File::from(fd), &path, self.max_size).map(Some),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(rustix::io::Errno::LOOP) => self.read_by_path(name),
            Err(e) => Err(SourceError::Io(format!(
                "cannot open {}: {}",
                path.display(),
                std::io::Error::from(e)
            ))),
        }
    }

    /// Read `name` by its path, looking at what it is before opening it.
    fn read_by_path(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self.dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(None);
        };
        if meta.file_type().is_symlink() {
            link_inside(&path, &self.canonical_dir)?;
        } else if !meta.is_file() {
            return Err(SourceError::Refused(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        read_limited_kind(&path, self.max_size).map(Some)
    }
}

/// Where the symbolic link `path` leads, when it resolves inside the folder `root` (given
/// canonical): the resolved path, free of links. A link that cannot be resolved, or that leads
/// out of the folder (or to the folder itself), is refused, named. The one rule of every reader
/// of an audited folder: [`FolderSource`] (`conclave verify`) and the artifacts folder of
/// `conclave transcript verify --artifacts`.
pub fn link_inside(path: &Path, root: &Path) -> Result<PathBuf, SourceError> {
    let target = path.canonicalize().map_err(|e| {
        SourceError::Refused(format!("cannot resolve link {}: {e}", path.display()))
    })?;
    if target == root || !target.starts_with(root) {
        return Err(SourceError::Refused(format!(
            "{} is a link to {}, outside the folder",
            path.display(),
            target.display()
        )));
    }
    Ok(target)
}

/// Read a whole regular file, refusing one larger than `max_size` bytes (checked before and
/// while reading, so a growing file cannot exhaust memory) and anything that is not a regular
/// file once opened (a named pipe, a device: they could block or never end).
pub fn read_limited(path: &Path, max_size: u64) -> Result<Vec<u8>, String> {
    read_limited_kind(path, max_size).map_err(|e| e.to_string())
}

fn read_limited_kind(path: &Path, max_size: u64) -> Result<Vec<u8>, SourceError> {
    // Non-blocking open: a named pipe (or a device) put where a file belongs would otherwise
    // block the open forever (slow retrieval, offline); it is refused below once opened. The
    // flag does not change reads from regular files.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| SourceError::Io(format!("cannot open {}: {e}", path.display())))?;
    read_open_file(file, path, max_size)
}

/// Read an opened file (named `path` in messages) whole, refusing anything that is not a
/// regular file and anything over `max_size` bytes.
fn read_open_file(file: File, path: &Path, max_size: u64) -> Result<Vec<u8>, SourceError> {
    let io = |what: &str, e: std::io::Error| {
        SourceError::Io(format!("cannot {what} {}: {e}", path.display()))
    };
    let meta = file.metadata().map_err(|e| io("stat", e))?;
    if !meta.is_file() {
        return Err(SourceError::Refused(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let len = meta.len();
    if len > max_size {
        return Err(SourceError::Refused(format!(
            "{} is {len} bytes, over the size limit of {max_size} bytes",
            path.display()
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    crate::memory::advise_huge_pages(&mut buf);
    file.take(max_size + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io("read", e))?;
    if buf.len() as u64 > max_size {
        return Err(SourceError::Refused(format!(
            "{} is over the size limit of {max_size} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Open `path` for reading as removable media and other untrusted folders need it: without
/// following a symbolic link at the last component (`O_NOFOLLOW`), without blocking
/// (`O_NONBLOCK`: a named pipe would otherwise hang the open), and only when, once opened, it is
/// a regular file (`fstat`). Anything else is an error that says what the entry is.
pub fn open_regular_nofollow(path: &Path) -> std::io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a symbolic link (links are not followed here)",
        ),
        // Opening a socket fails so: say what it is.
        rustix::io::Errno::NXIO
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) =>
        {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a socket, not a regular file",
            )
        }
        e => std::io::Error::from(e),
    })?;
    let file = File::from(fd);
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a folder"
        } else if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {what}, not a regular file"),
        ));
    }
    Ok(file)
}

/// Read a regular file whole through [`open_regular_nofollow`], at most `limit` bytes: a larger
/// file (also one that grows while being read) is an error of kind
/// [`std::io::ErrorKind::FileTooLarge`], after reading at most `limit + 1` bytes.
pub fn read_regular_nofollow(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular_nofollow(path)?;
    let len = file.metadata()?.len();
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("is over the limit of {limit} bytes"),
        )
    };
    if len > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

impl MetadataSource for FolderSource {
    fn names(&self) -> Vec<String> {
        let listing = self.list().unwrap_or_default();
        let names = listing.keys().cloned().collect();
        if let Ok(mut kept) = self.listing.write() {
            *kept = listing;
        }
        names
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        if !is_safe_file_name(name) {
            return Err(SourceError::Refused(format!(
                "refusing unsafe file name \"{}\"",
                crate::text::show(name)
            )));
        }
        let listed = self.listing.read().ok().and_then(|l| l.get(name).copied());
        match listed {
            Some(EntryKind::File) => self.read_listed_file(name),
            _ => self.read_by_path(name),
        }
    }
}

/// Mode of the files Conclave writes (metadata, exports, transcripts, the key-event log):
/// readable by everyone, written by the owner only, whatever the caller's umask.
pub const FILE_MODE: u32 = 0o644;
/// Mode of files next to secrets (a SoftHSM2 configuration, practice PINs): the owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the folders Conclave creates.
pub const DIR_MODE: u32 = 0o755;
/// Mode of folders that hold tokens: the owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// A path as a failpoint names it: its last two components (the same in every workspace).
pub fn fault_name(path: &Path) -> String {
    let mut parts: Vec<String> = path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}

/// Sets `file`'s mode to exactly `mode` (`fchmod`: the umask applies only to `open`).
pub fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Creates `path` and any missing folders above it, each created one getting exactly `mode`
/// (folders that exist already are left as they are).
pub fn create_dir_all_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_err()) {
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    if !missing.is_empty() {
        crate::fault::point(&format!("mkdir {}", fault_name(path)));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)?;
    for p in missing {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Write `data` to `path` as a file only its owner reads ([`PRIVATE_FILE_MODE`]), replacing
/// what is there atomically (as [`write_replacing`]).
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, data, PRIVATE_FILE_MODE, |tmp, path| {
        std::fs::rename(tmp, path)
    })
}

/// Write `data` to `path` only if nothing exists there: a temporary name in the same folder,
/// fsync, then a rename that refuses to replace (a hard link, so a file that appeared meanwhile is
/// not overwritten either), fsync of the folder. On any error nothing is left under `path`.
pub fn write_new_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists already; Conclave never overwrites",
                path.display()
            ),
        ));
    }
    write_via_temp(path, data, FILE_MODE, |tmp, path| {
        match std::fs::hard_link(tmp, path) {
            Ok(()) => {
                crate::fault::point(&format!("remove temporary {}", fault_name(path)));
                std::fs::remove_file(tmp)
            }
            // vfat and exFAT (most USB sticks) have no hard links: rename(2) with
            // RENAME_NOREPLACE refuses to replace in the same way.
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error())
                    || e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) =>
            {
                rename_noreplace(tmp, path)
            }
            Err(e) => Err(e),
        }
    })
}

/// Marks the temporary name of the atomic writer: `.NAME.conclave-tmp-PID`.
const TEMP_MARK: &str = ".conclave-tmp-";

/// Whether `name` is a temporary name of the atomic writer (`.NAME.conclave-tmp-PID`), which
/// only an interrupted write leaves behind.
pub fn is_interrupted_write(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(TEMP_MARK).is_some_and(|(file, pid)| {
            file.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Remove from `dir` (not below it) the regular files an interrupted atomic write left
/// ([`is_interrupted_write`]; a link or folder of that name is left alone, for the caller's
/// checks to refuse). Returns the paths removed.
pub fn remove_interrupted_writes(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for e in entries {
        let e = e?;
        let is_file = e.file_type()?.is_file();
        if is_file && e.file_name().to_str().is_some_and(is_interrupted_write) {
            found.push(e.path());
        }
    }
    found.sort();
    for p in found {
        remove_file_synced(&p)?;
        removed.push(p);
    }
    Ok(removed)
}

/// Remove the file `path` (not following a link) and sync its folder, so that the removal is
/// on disk before the caller reports it (a fault point before each).
pub fn remove_file_synced(path: &Path) -> std::io::Result<()> {
    crate::fault::point(&format!("remove {}", fault_name(path)));
    std::fs::remove_file(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::fault::point(&format!("fsync folder after removing {}", fault_name(path)));
    File::open(dir)?.sync_all()
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(std::io::Error::from)
}

/// Write `data` to `path`, replacing what is there atomically (temporary file, fsync, rename,
/// fsync of the folder): readers see the old or the new content, never a mix. For signing a
/// file in place; everything else Conclave writes uses [`write_new_file`].
pub fn write_replacing(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, data, FILE_MODE, |tmp, path| {
        std::fs::rename(tmp, path)
    })
}

fn write_via_temp(
    path: &Path,
    data: &[u8],
    mode: u32,
    publish: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.conclave-tmp-{}", std::process::id()));
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        crate::fault::point(&format!("create temporary {name}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        set_mode(&f, mode)?;
        crate::fault::point(&format!("write {name}"));
        f.write_all(data)?;
        crate::fault::point(&format!("fsync {name}"));
        f.sync_all()?;
        drop(f);
        crate::fault::point(&format!("rename {name}"));
        publish(&tmp, path)?;
        crate::fault::point(&format!("fsync folder of {name}"));
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_atomic_writers_temporary_files_are_removed_as_interrupted_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(".root.json.conclave-tmp-123"), b"half").unwrap();
        std::fs::write(d.join("root.json"), b"{}").unwrap();
        std::fs::write(d.join(".signing-event-state"), b"{}").unwrap();
        std::fs::write(d.join(".x.conclave-tmp"), b"an export's, not ours").unwrap();
        std::fs::write(d.join(".x.conclave-tmp-12a"), b"not a pid").unwrap();
        std::fs::create_dir(d.join(".d.conclave-tmp-7")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join(".l.conclave-tmp-8")).unwrap();
        let removed = remove_interrupted_writes(d).unwrap();
        assert_eq!(removed, vec![d.join(".root.json.conclave-tmp-123")]);
        for kept in [
            "root.json",
            ".signing-event-state",
            ".x.conclave-tmp",
            ".x.conclave-tmp-12a",
            ".d.conclave-tmp-7",
            ".l.conclave-tmp-8",
        ] {
            assert!(d.join(kept).symlink_metadata().is_ok(), "{kept} is kept");
        }
        assert!(
            remove_interrupted_writes(&d.join("missing"))
                .unwrap()
                .is_empty()
        );
    }

    use super::*;

    #[test]
    fn rename_noreplace_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"old").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"old");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"new");
        assert!(!a.exists());
    }

    #[test]
    fn write_new_file_never_overwrites_and_leaves_nothing_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.json");
        write_new_file(&p, b"one").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let e = write_new_file(&p, b"two").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let missing = dir.path().join("no/such/dir/x.json");
        assert!(write_new_file(&missing, b"x").is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn folder_source_refuses_escapes_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), b"{}").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            dir.path().join("link.json"),
        )
        .unwrap();
        std::fs::write(dir.path().join("big.json"), vec![b' '; 100]).unwrap();
        std::fs::write(dir.path().join("ok.json"), b"{}").unwrap();
        let src = FolderSource::new(dir.path(), 50).unwrap();
        assert!(
            matches!(src.read("link.json"), Err(SourceError::Refused(m)) if m.contains("outside the folder"))
        );
        assert!(
            matches!(src.read("big.json"), Err(SourceError::Refused(m)) if m.contains("size limit"))
        );
        // A file that cannot be opened is an I/O error, not a verdict.
        std::fs::write(dir.path().join("locked.json"), b"{}").unwrap();
        std::fs::set_permissions(
            dir.path().join("locked.json"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        let locked = src.read("locked.json");
        // root bypasses permissions; only assert when the open really failed.
        if locked.is_err() {
            assert!(matches!(locked, Err(SourceError::Io(_))), "{locked:?}");
        }
        assert!(src.read("../x.json").is_err());
        assert_eq!(src.read("missing.json").unwrap(), None);
        assert_eq!(src.read("ok.json").unwrap(), Some(b"{}".to_vec()));
    }

    /// What the listing said is trusted only as a hint: an entry changed since is read, refused
    /// or missing exactly as if it had never been listed.
    #[test]
    fn folder_source_listing_is_only_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), b"{}").unwrap();
        for name in ["a.json", "b.json", "c.json", "d.json", "e.json"] {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        std::fs::write(dir.path().join("big.json"), vec![b' '; 100]).unwrap();
        std::fs::write(dir.path().join("target.json"), b"[1]").unwrap();
        let src = FolderSource::new(dir.path(), 50).unwrap();
        let mut names = src.names();
        names.sort();
        assert_eq!(
            names,
            [
                "a.json",
                "b.json",
                "big.json",
                "c.json",
                "d.json",
                "e.json",
                "target.json"
            ]
        );
        // Listed regular files, unchanged: read relative to the open folder.
        assert_eq!(src.read("a.json").unwrap(), Some(b"{}".to_vec()));
        assert!(
            matches!(src.read("big.json"), Err(SourceError::Refused(m)) if m.contains("size limit"))
        );
        // Changed after the listing: a link out of the folder, a link inside it, a named pipe,
        // removed, and a file that was not there when listed.
        std::fs::remove_file(dir.path().join("b.json")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            dir.path().join("b.json"),
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("c.json")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("target.json"), dir.path().join("c.json"))
            .unwrap();
        std::fs::remove_file(dir.path().join("d.json")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("d.json"))
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::remove_file(dir.path().join("e.json")).unwrap();
        std::fs::write(dir.path().join("new.json"), b"[2]").unwrap();
        assert!(
            matches!(src.read("b.json"), Err(SourceError::Refused(m)) if m.contains("outside the folder"))
        );
        assert_eq!(src.read("c.json").unwrap(), Some(b"[1]".to_vec()));
        assert!(
            matches!(src.read("d.json"), Err(SourceError::Refused(m)) if m.contains("not a regular file"))
        );
        assert_eq!(src.read("e.json").unwrap(), None);
        assert_eq!(src.read("new.json").unwrap(), Some(b"[2]".to_vec()));
        // A new listing sees the changes; the answers stay the same.
        assert_eq!(src.names().len(), 7);
        assert!(
            matches!(src.read("d.json"), Err(SourceError::Refused(m)) if m.contains("not a regular file"))
        );
        assert_eq!(src.read("c.json").unwrap(), Some(b"[1]".to_vec()));
    }
}
