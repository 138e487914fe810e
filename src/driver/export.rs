//! Where a ceremony's export goes, and the sealed transcript travelling with it.

use std::path::{Path, PathBuf};

use crate::transport::usb::{ExportFile, ExportOptions, StdFs, export_files};

use super::error::{DriverError, io};
use super::workspace::Workspace;

/// Where the export goes: the workspace's `export/` folder and, when given and different, the
/// folder on removable media.
pub(super) fn export_places(ws: &Workspace, medium: Option<&Path>) -> Vec<PathBuf> {
    let export = ws.export();
    let mut places = vec![export.clone()];
    if let Some(m) = medium
        && m != export
    {
        places.push(m.to_path_buf());
    }
    places
}

/// After the seal: the sealed transcript travels with the export. It is written into every
/// export place by the export's own writer, which writes the folder's manifest (`SHA256SUMS`)
/// again, after the seal, now listing the transcript too. Idempotent: a copy with the same bytes
/// is left as it is (a ceremony continued after this step writes nothing new).
pub(super) fn export_transcript(
    ws: &Workspace,
    medium: Option<&Path>,
    tpath: &Path,
) -> Result<(), DriverError> {
    let name = tpath
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| DriverError::Io(format!("{}: no file name", tpath.display())))?;
    let data = std::fs::read(tpath).map_err(io(tpath.display()))?;
    let file = [ExportFile {
        name: name.to_string(),
        data,
    }];
    for dir in export_places(ws, medium) {
        crate::folder::create_dir_all_mode(&dir, crate::folder::DIR_MODE)
            .map_err(io(dir.display()))?;
        export_files(&StdFs, &dir, &file, ExportOptions::default())
            .map_err(io(format!("the sealed transcript to {}", dir.display())))?;
    }
    Ok(())
}

/// Whether the sealed transcript `tpath` travelled with the workspace's export: `export/NAME`
/// holds its bytes and `SHA256SUMS` lists it with their digest ([`export_transcript`] wrote both).
/// A ceremony cut during those last writes is not finished: the same command completes them
/// and reports it.
pub(super) fn transcript_exported(ws: &Workspace, tpath: &Path) -> bool {
    let Some(name) = tpath.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let limit = crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
    let (Ok(ours), Ok(copy), Ok(sums)) = (
        crate::folder::read_limited(tpath, limit),
        crate::folder::read_limited(&ws.export().join(name), limit),
        crate::folder::read_limited(&ws.export().join(crate::transport::usb::SUMS_NAME), limit),
    ) else {
        return false;
    };
    let digest = hex::encode(crate::transcript::record::sha256(&ours));
    ours == copy
        && crate::transport::usb::parse_sums(&String::from_utf8_lossy(&sums))
            .0
            .iter()
            .any(|(n, d)| n == name && *d == digest)
}

/// The latest record time of the sealed transcripts (`*.transcript.jsonl` whose chain verifies)
/// in these folders: the previous ceremonies' record proves the time was at least that.
pub(super) fn previous_transcript_time(dirs: &[PathBuf]) -> Option<String> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".transcript.jsonl")
        })
        .filter_map(|e| {
            let bytes = crate::folder::read_limited(
                &e.path(),
                crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE,
            )
            .ok()?;
            let t = crate::transcript::chain::verify_chain(&bytes).ok()?;
            t.seal_index()?;
            t.records().last().map(|r| r.time)
        })
        .max()
        .map(|t| t.to_string())
}

/// Export files grouped by folder: a name `a/b/NAME` goes to the folder `a/b` as `NAME`; the
/// top-level files come first. Every folder part must be a plain name (no `.`, `..` or
/// separators: checked like a file name).
pub(super) fn by_folder(files: &[ExportFile]) -> Result<Vec<(PathBuf, Vec<ExportFile>)>, String> {
    let mut groups: Vec<(PathBuf, Vec<ExportFile>)> = vec![(PathBuf::new(), Vec::new())];
    for f in files {
        let (folder, name) = match f.name.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", f.name.as_str()),
        };
        let mut sub = PathBuf::new();
        for part in folder.split('/').filter(|_| !folder.is_empty()) {
            crate::transport::usb::check_name(part).map_err(|e| e.to_string())?;
            sub.push(part);
        }
        let file = ExportFile {
            name: name.to_string(),
            data: f.data.clone(),
        };
        match groups.iter_mut().find(|(d, _)| *d == sub) {
            Some((_, g)) => g.push(file),
            None => groups.push((sub, vec![file])),
        }
    }
    groups.retain(|(d, g)| !g.is_empty() || d.as_os_str().is_empty());
    Ok(groups)
}
