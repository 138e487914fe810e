//! Reading metadata from a folder (the edge between the pure verifier and the filesystem).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::tuf::repository::{MetadataSource, is_safe_file_name};

/// A folder of metadata files. Only regular files directly inside it are read; a symbolic link
/// is followed only when it resolves inside the folder; files over the size limit are refused.
#[derive(Debug, Clone)]
pub struct FolderSource {
    dir: PathBuf,
    canonical_dir: PathBuf,
    max_size: u64,
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
        Ok(FolderSource {
            dir: dir.to_path_buf(),
            canonical_dir,
            max_size,
        })
    }
}

/// Read a whole file, refusing one larger than `max_size` bytes (checked before and while
/// reading, so a growing file cannot exhaust memory).
pub fn read_limited(path: &Path, max_size: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    if len > max_size {
        return Err(format!(
            "{} is {len} bytes, over the size limit of {max_size} bytes",
            path.display()
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.take(max_size + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > max_size {
        return Err(format!(
            "{} is over the size limit of {max_size} bytes",
            path.display()
        ));
    }
    Ok(buf)
}

impl MetadataSource for FolderSource {
    fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        if !is_safe_file_name(name) {
            return Err(format!(
                "refusing unsafe file name \"{}\"",
                name.escape_debug()
            ));
        }
        let path = self.dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(None);
        };
        if meta.file_type().is_symlink() {
            let target = path
                .canonicalize()
                .map_err(|e| format!("cannot resolve link {}: {e}", path.display()))?;
            if target.parent() != Some(self.canonical_dir.as_path()) {
                return Err(format!(
                    "{} is a link to {}, outside the folder",
                    path.display(),
                    target.display()
                ));
            }
        } else if !meta.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        read_limited(&path, self.max_size).map(Some)
    }
}
