//! The workspace folder: where the transcript, the practice tokens, the input media stand-in
//! and the export live.

use std::path::{Path, PathBuf};

use super::clock::Clock;
use super::error::{DriverError, io};
use super::session::rehearsal_unfinished;

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

    /// The workspace folder `dir` as given on the command line (`conclave ceremony run
    /// --workspace`, `conclave tui --workspace`, a rehearsal's): created when missing, taken
    /// by its absolute path.
    pub fn open(dir: &Path) -> Result<Workspace, DriverError> {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("cannot resolve {}", dir.display())))?;
        Ok(Workspace { dir })
    }
}

/// Prepare the workspace folder and its SoftHSM2 configuration (in the parent process, before
/// the module is loaded with that configuration).
pub fn prepare(dir: &Path) -> Result<Workspace, DriverError> {
    if !dir.exists() {
        crate::fault::point("mkdir workspace");
    }
    let ws = Workspace::open(dir)?;
    let tokens = ws.dir.join("tokens");
    crate::folder::create_dir_all_mode(&tokens, crate::folder::PRIVATE_DIR_MODE)
        .map_err(io(format!("cannot create {}", tokens.display())))?;
    // Always this workspace's own token folder: a copied or moved workspace must not keep
    // using the tokens of the one it was copied from (SoftHSM2 wants an absolute path).
    let text = super::practice::softhsm_conf_text("of a Conclave rehearsal", &tokens);
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

/// Whether a folder name is one `conclave rehearse` makes: `rehearsal-YYYYMMDD-HHMMSS`.
fn is_rehearsal_name(name: &str) -> bool {
    let Some(stamp) = name.strip_prefix("rehearsal-") else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// The newest rehearsal folder in `parent` (by its name's time) whose practice ceremony
/// `script` is unfinished. Symbolic links and folders that cannot be read are passed over.
fn last_unfinished(parent: &Path, script: &str) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_rehearsal_name(n))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .into_iter()
        .map(|n| {
            if parent == Path::new(".") {
                PathBuf::from(n)
            } else {
                parent.join(n)
            }
        })
        .find(|d| rehearsal_unfinished(d, script).unwrap_or(false))
}

/// A new rehearsal folder in `parent`: `rehearsal-YYYYMMDD-HHMMSS` at the clock's time.
fn new_rehearsal_dir(parent: &Path, clock: &dyn Clock) -> PathBuf {
    let t = clock.now();
    let name = PathBuf::from(format!(
        "rehearsal-{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ));
    if parent == Path::new(".") {
        name
    } else {
        parent.join(name)
    }
}

/// Where `conclave rehearse` without `--workspace` practises: the newest rehearsal folder in
/// `parent` whose practice ceremony `script` is unfinished (continued: the flag is `true`),
/// unless `new` asks for a new one; else a new folder named after the clock's time.
pub fn rehearsal_workspace(
    parent: &Path,
    script: &str,
    new: bool,
    clock: &dyn Clock,
) -> (PathBuf, bool) {
    match last_unfinished(parent, script).filter(|_| !new) {
        Some(d) => (d, true),
        None => (new_rehearsal_dir(parent, clock), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::FixedClock;

    #[test]
    fn only_the_folders_rehearse_makes_are_candidates() {
        assert!(is_rehearsal_name("rehearsal-20261206-184501"));
        for n in [
            "rehearsal-2026120-184501",
            "rehearsal-20261206184501",
            "rehearsal-20261206-18450a",
            "rehearsal-20261206-1845012",
            "rehearsal-",
            "my-rehearsal-20261206-184501",
            "rehearsal-20261206_184501",
        ] {
            assert!(!is_rehearsal_name(n), "{n}");
        }
    }

    #[test]
    fn a_new_rehearsal_is_named_after_the_clock_and_a_finished_one_is_not_continued() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = FixedClock(time::macros::datetime!(2026-12-06 18:45:01 UTC));
        let fresh = tmp.path().join("rehearsal-20261206-184501");
        assert_eq!(
            rehearsal_workspace(tmp.path(), "bootstrap-root", false, &clock),
            (fresh.clone(), false)
        );
        // A rehearsal folder without a transcript holds no unfinished ceremony.
        std::fs::create_dir(tmp.path().join("rehearsal-20261205-120000")).unwrap();
        assert_eq!(
            rehearsal_workspace(tmp.path(), "bootstrap-root", false, &clock),
            (fresh, false)
        );
        assert_eq!(
            rehearsal_workspace(Path::new("."), "bootstrap-root", true, &clock),
            (PathBuf::from("rehearsal-20261206-184501"), false)
        );
    }
}
