//! The workspace lock: one run at a time on a workspace. An open ceremony holds an exclusive
//! `flock` on `WORKSPACE/conclave.lock` for its whole life; a second run is refused, naming the
//! holder (pid, command, since when). The kernel releases the lock when the holder's process
//! ends, also after `kill -9` or a power cut, so a stale lock never blocks: the file's text is
//! only what the last holder wrote about itself.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::clock::{Clock, timestamp};
use super::error::DriverError;

/// The lock file's name in the workspace.
pub const LOCK_FILE: &str = "conclave.lock";

/// Largest holder description read back (it is one short line per field).
const MAX_HOLDER: u64 = 4096;

/// An exclusive lock on a workspace, held until dropped.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: File,
    path: PathBuf,
}

impl WorkspaceLock {
    /// Take the workspace's lock, or say who holds it.
    pub fn acquire(dir: &Path, clock: &dyn Clock) -> Result<WorkspaceLock, DriverError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| DriverError::Io(format!("cannot open {}: {e}", path.display())))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = (&file).take(MAX_HOLDER).read_to_string(&mut text);
                return Err(DriverError::InUse(format!(
                    "the workspace {} is in use by another conclave run ({}); wait until it ends, or stop it, then run the same command again",
                    dir.display(),
                    describe_holder(&text)
                )));
            }
            Err(e) => {
                return Err(DriverError::Io(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // Ours now: say who holds it, for a second run to name.
        let command: Vec<String> = std::env::args().collect();
        let holder = format!(
            "pid {}\ncommand {}\nsince {}\n",
            std::process::id(),
            command.join(" "),
            timestamp(clock)
        );
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(holder.as_bytes())?;
            file.sync_all()
        };
        write(&mut file)
            .map_err(|e| DriverError::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(WorkspaceLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder as the lock file says, on one line, safe for a terminal.
fn describe_holder(text: &str) -> String {
    let fields: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect();
    if fields.is_empty() {
        "the holder did not say who it is yet".to_string()
    } else {
        fields.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::clock::FixedClock;

    #[test]
    fn a_second_run_is_refused_naming_the_holder_and_a_released_lock_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap());
        let first = WorkspaceLock::acquire(dir.path(), &clock).unwrap();
        // flock locks belong to the open file: a second open in the same process conflicts
        // as a second process would.
        let e = WorkspaceLock::acquire(dir.path(), &clock).unwrap_err();
        assert!(matches!(e, DriverError::InUse(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id()))
                && text.contains("since 2026-05-28T20:26:40Z")
                && text.contains("command "),
            "{text}"
        );
        drop(first);
        let again = WorkspaceLock::acquire(dir.path(), &clock).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }

    #[test]
    fn the_holder_text_is_made_safe_for_a_terminal() {
        assert_eq!(
            describe_holder("pid 7\ncommand conclave \u{1b}[2J\n"),
            "pid 7, command conclave ?[2J"
        );
        assert_eq!(describe_holder(""), "the holder did not say who it is yet");
    }
}
