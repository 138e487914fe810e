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

pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<(), DriverError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(tmp.display()))?;
    f.write_all(data).map_err(io(tmp.display()))?;
    f.sync_all().map_err(io(tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display()))
}
