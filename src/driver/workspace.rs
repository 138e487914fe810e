//! The workspace folder: where the transcript, the practice tokens, the input media stand-in
//! and the export live.

use std::path::{Path, PathBuf};

use super::error::{DriverError, io};

/// The workspace's files.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The folder.
    pub dir: PathBuf,
}

impl Workspace {
    /// SoftHSM2 configuration of the practice tokens.
    pub fn softhsm_conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }
    /// Practice PINs (practice tokens only; a real ceremony asks people for them).
    pub fn practice_pins(&self) -> PathBuf {
        self.dir.join("practice-tokens.json")
    }
    /// The input media stand-in.
    pub fn input(&self) -> PathBuf {
        self.dir.join("input")
    }
    /// The export media stand-in.
    pub fn export(&self) -> PathBuf {
        self.dir.join("export")
    }
    /// The transcript.
    pub fn transcript(&self, script: &str) -> PathBuf {
        self.dir.join(format!("{script}.transcript.jsonl"))
    }
}

/// Prepare the workspace folder and its SoftHSM2 configuration (in the parent process, before
/// the module is loaded with that configuration).
pub fn prepare(dir: &Path) -> Result<Workspace, DriverError> {
    if !dir.exists() {
        crate::fault::point("mkdir workspace");
    }
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(io(format!("cannot resolve {}", dir.display())))?;
    let ws = Workspace { dir };
    let tokens = ws.dir.join("tokens");
    crate::folder::create_dir_all_mode(&tokens, crate::folder::PRIVATE_DIR_MODE)
        .map_err(io(format!("cannot create {}", tokens.display())))?;
    // Always this workspace's own token folder: a copied or moved workspace must not keep
    // using the tokens of the one it was copied from (SoftHSM2 wants an absolute path).
    let text = format!(
        "# SoftHSM2 practice tokens of a Conclave rehearsal. Practice only.\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    if std::fs::read(ws.softhsm_conf()).ok().as_deref() != Some(text.as_bytes()) {
        crate::folder::write_private_file(&ws.softhsm_conf(), text.as_bytes())
            .map_err(io(format!("cannot write {}", ws.softhsm_conf().display())))?;
    }
    Ok(ws)
}

/// What an interrupted run can leave in the workspace, and what this run removes before it
/// touches anything else (the workspace lock held): temporary files of an atomic write
/// (`.NAME.conclave-tmp-PID`, also a key-event log's checkpoint being replaced) and of an export
/// (`.NAME.conclave-tmp`), a key-event log directory that was being written
/// (`export/.log-NNN.partial-PID`), and in the saved copy of the practice
/// tokens anything that is not a token file (temporary files of an earlier version: `*.tmp`) and
/// empty folders. Returns one line for each removal, for the transcript.
pub(super) fn sweep_leftovers(ws: &Workspace) -> Result<Vec<String>, DriverError> {
    let mut removed = Vec::new();
    let temporary = |name: &str| {
        name.starts_with('.') && (name.contains(".conclave-tmp") || name.contains(".partial-"))
    };
    // The workspace, its input and export folders, and the key-event logs in the export (a
    // checkpoint being replaced).
    let mut dirs = vec![
        ws.dir.clone(),
        ws.input(),
        ws.input().join("requests"),
        ws.export(),
    ];
    dirs.extend(entries(&ws.export())?.into_iter().filter(|p| {
        p.symlink_metadata().is_ok_and(|m| m.is_dir())
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !temporary(n))
    }));
    for dir in dirs {
        for path in entries(&dir)? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !temporary(name) {
                continue;
            }
            remove(&path)?;
            removed.push(format!(
                "a temporary {} of an interrupted write ({})",
                if path.is_dir() { "folder" } else { "file" },
                path.display()
            ));
        }
    }
    let saved = super::token_store::saved(ws);
    for dir in entries(&saved)?.into_iter().filter(|p| p.is_dir()) {
        let files = entries(&dir)?;
        for f in &files {
            if f.extension().is_some_and(|e| e == "object") {
                continue;
            }
            remove(f)?;
            removed.push(format!(
                "a temporary file of the saved token copy ({})",
                f.display()
            ));
        }
        if entries(&dir)?.is_empty() {
            remove(&dir)?;
            removed.push(format!(
                "an empty folder of the saved token copy ({})",
                dir.display()
            ));
        }
    }
    Ok(removed)
}

/// The entries of a folder (none when it does not exist), sorted.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, DriverError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir.display())(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(io(dir.display()))?.path());
    }
    out.sort();
    Ok(out)
}

/// Remove a file, or a folder with what it holds (without following a link).
fn remove(path: &Path) -> Result<(), DriverError> {
    crate::fault::point(&format!(
        "remove leftover {}",
        crate::folder::fault_name(path)
    ));
    let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
    if is_dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .map_err(io(format!("removing {}", path.display())))
}
