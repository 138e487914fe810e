//! Failpoints for the fault-injection suite (`tests/faults.rs`): a named point at every durable
//! boundary of a ceremony (each file write, fsync, rename, folder made or removed, transcript
//! append, export file, key-event log file, copy of the practice token store, and each token
//! object operation: C_InitToken, C_InitPIN, key pair generation, attribute change, object
//! destruction, signature).
//!
//! Compiled only into debug builds (what `cargo test` builds); a release build has an empty
//! inline function and reads no environment. In a debug build, with
//! `CONCLAVE_TEST_FAULT_LOG=FILE` set, every point passed appends a line `ORDINAL NAME` to FILE
//! (the ordinal counts across the processes of one command: a rehearsal's parent and child
//! append to the same file); with `CONCLAVE_TEST_FAULT_KILL_AT=N` as well, the process kills
//! itself with `SIGKILL` at the Nth point, before the operation the point names: a simulated
//! power cut (no destructor runs, no buffer is flushed, no lock is released by the program).

/// Environment variable naming the file the points passed are appended to.
pub const FAULT_LOG: &str = "CONCLAVE_TEST_FAULT_LOG";
/// Environment variable giving the ordinal of the point at which the process kills itself.
pub const FAULT_KILL_AT: &str = "CONCLAVE_TEST_FAULT_KILL_AT";

/// A durable boundary named `name` is about to be crossed (test builds only: see the module
/// documentation).
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    imp::point(name);
}

/// A durable boundary (a no-op in release builds).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}

#[cfg(debug_assertions)]
mod imp {
    use std::io::{Read, Seek, SeekFrom, Write};

    pub(super) fn point(name: &str) {
        let Some(log) = std::env::var_os(super::FAULT_LOG) else {
            return;
        };
        let kill_at = std::env::var(super::FAULT_KILL_AT)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let ordinal = match append(std::path::Path::new(&log), name) {
            Ok(n) => n,
            Err(e) => {
                // A test harness that asked for the log and cannot have it would count wrongly.
                eprintln!(
                    "conclave: fault log {}: {e}",
                    std::path::Path::new(&log).display()
                );
                std::process::abort();
            }
        };
        if kill_at == Some(ordinal) {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
            std::process::abort();
        }
    }

    /// Append `name` with its ordinal (the lines already in the file, plus one); the ordinal.
    fn append(log: &std::path::Path, name: &str) -> std::io::Result<u64> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .open(log)?;
        // One process of a command runs at a time (a rehearsal's parent waits for its child);
        // the lock keeps the count right even if two did.
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
        let mut text = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut text)?;
        let ordinal = text.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let clean: String = name
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // No fsync: a SIGKILL loses nothing the kernel already has.
        f.write_all(format!("{ordinal} {clean}\n").as_bytes())?;
        Ok(ordinal)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn ordinals_count_the_lines_already_in_the_log() {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("faults.log");
            assert_eq!(super::append(&log, "a").unwrap(), 1);
            assert_eq!(super::append(&log, "b c\n").unwrap(), 2);
            assert_eq!(
                std::fs::read_to_string(&log).unwrap(),
                "1 a\n2 b c_\n",
                "one line per point, names kept printable"
            );
        }
    }
}
