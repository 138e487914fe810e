//! Shared helpers for scenario tests that talk to the reference implementation, python-tuf 7.0.1,
//! in the virtualenv that `make venv` creates.
//!
//! The interpreter is `$CONCLAVE_PYTHON` (set by `make unit`), or else
//! `$CARGO_MANIFEST_DIR/.venv/bin/python`. When neither works, every helper panics with a message
//! that says what to run: these tests never skip silently.
//!
//! Use from a test crate with `mod common;`.
#![allow(dead_code)] // every test crate uses a different subset of these helpers

pub mod builders;
pub mod profile;
pub mod publish;
pub mod tmux;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A reference time inside the validity of repositories that `make_repo.py` writes by default
/// (they expire 2036-01-01T00:00:00Z).
pub const AT: &str = "2030-01-01T00:00:00Z";

/// The crate's root directory.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a script in `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    manifest_dir().join("tests").join("python").join(name)
}

/// The venv's python, checked once per test binary: it must import python-tuf 7.0.1,
/// securesystemslib and cryptography (without cryptography, ECDSA keys are silently skipped).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let (python, origin) = match std::env::var_os("CONCLAVE_PYTHON") {
            Some(p) if !p.is_empty() => (PathBuf::from(p), "$CONCLAVE_PYTHON"),
            _ => (
                manifest_dir().join(".venv").join("bin").join("python"),
                "$CONCLAVE_PYTHON is unset; fallback .venv/bin/python",
            ),
        };
        let check = "import tuf, securesystemslib, cryptography, tuf.ngclient; \
                     assert tuf.__version__ == '7.0.1', tuf.__version__; \
                     print(tuf.__version__, securesystemslib.__version__, cryptography.__version__)";
        let out = Command::new(&python)
            .args(["-c", check])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => python,
            Ok(out) => panic!(
                "python-tuf venv is broken ({origin}: {}): {}\nrun `make venv`",
                python.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "python-tuf venv not found ({origin}: {}): {e}\nrun `make venv` or set \
                 CONCLAVE_PYTHON to a python with tuf==7.0.1 and securesystemslib[crypto]",
                python.display()
            ),
        }
    })
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// The exit code; panics if the process was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Standard output parsed as JSON; panics with both streams when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs `cmd` with `stdin` as its input, killing it and panicking after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A child that exits early closes the pipe; its exit status tells the story.
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().expect("stdin writer");
    let stdout = String::from_utf8_lossy(&out_reader.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Runs `tests/python/SCRIPT ARGS...` with the venv's python.
pub fn run_python(script: &str, args: &[&str], timeout: Duration) -> Run {
    let mut cmd = Command::new(python());
    cmd.arg(python_script(script)).args(args);
    run_with_timeout(&mut cmd, b"", timeout)
}

/// Builds a repository with `make_repo.py OUT ARGS...` and returns its `repo.json` summary.
/// Panics when the script fails.
pub fn make_repo(out: &Path, args: &[&str]) -> serde_json::Value {
    let out_str = out.to_str().expect("UTF-8 temp path");
    let mut all = vec![out_str];
    all.extend_from_slice(args);
    let run = run_python("make_repo.py", &all, Duration::from_secs(120));
    assert_eq!(run.code(), 0, "make_repo.py failed: {run:?}");
    let summary = std::fs::read_to_string(out.join("repo.json")).expect("repo.json");
    serde_json::from_str(&summary).expect("repo.json is JSON")
}

/// Runs `verify_repo.py METADATA_DIR ARGS...` (python-tuf's verdict: exit 0 valid, 1 invalid,
/// 2 usage error) and returns the finished process.
pub fn verify_repo(metadata_dir: &Path, args: &[&str]) -> Run {
    let dir = metadata_dir.to_str().expect("UTF-8 temp path");
    let mut all = vec![dir, "--timeout", "100"];
    all.extend_from_slice(args);
    run_python("verify_repo.py", &all, Duration::from_secs(120))
}

/// python-tuf follows the root chain in `export` from `1.root.json` (each new root signed by
/// the previous root's threshold and its own); it prints the newest version it reached.
pub fn python_root_chain(export: &Path) -> Run {
    verify_repo(
        export,
        &[
            "--roots-only",
            "--no-client",
            "--trusted-root",
            export
                .join("1.root.json")
                .to_str()
                .expect("UTF-8 temp path"),
        ],
    )
}

/// Canonical JSON bytes of each document as securesystemslib computes them
/// (`encode_canonical(json.loads(doc)).encode("utf-8")`), in one python process.
/// `Err(reason)` when python refuses the document (not JSON, floats, lone surrogates, ...).
pub fn securesystemslib_canonical(docs: &[String]) -> Vec<Result<Vec<u8>, String>> {
    let mut input = String::new();
    for doc in docs {
        // --quoted: each line is a JSON string holding the document, so raw newlines survive.
        input.push_str(&serde_json::to_string(doc).expect("a string serializes"));
        input.push('\n');
    }
    let mut cmd = Command::new(python());
    cmd.arg(python_script("canonical.py")).arg("--quoted");
    let timeout = Duration::from_secs(60 + docs.len() as u64 / 100);
    let run = run_with_timeout(&mut cmd, input.as_bytes(), timeout);
    assert_eq!(run.code(), 0, "canonical.py failed: {}", run.stderr);
    let results: Vec<Result<Vec<u8>, String>> =
        run.stdout
            .lines()
            .map(|line| match line.strip_prefix("ERR ") {
                Some(reason) => Err(reason.to_string()),
                None => Ok(hex::decode(line)
                    .unwrap_or_else(|e| panic!("canonical.py printed {line:?}: {e}"))),
            })
            .collect();
    assert_eq!(
        results.len(),
        docs.len(),
        "canonical.py answered {} lines for {} documents",
        results.len(),
        docs.len()
    );
    results
}

/// Copies a directory tree (repositories are small).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A fake system tree for `CONCLAVE_TEST_SYSTEM_ROOT` (debug builds only) in which `stick`, a
/// real folder, is the mount point of `/dev/sdb1`, a partition of a USB disk (the sysfs layout of
/// a USB stick: `/sys/dev/block/8:17` leads through `usb1`, `/sys/block/sdb/removable` is 1), and
/// `/` is an internal virtio disk. Returns the tree's root (inside `under`).
#[allow(dead_code)]
pub fn fake_usb_system(under: &Path, stick: &Path) -> PathBuf {
    let root = under.join("fake-system");
    let dev = root.join("sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/block/sdb");
    std::fs::create_dir_all(dev.join("sdb1")).unwrap();
    std::fs::write(dev.join("sdb1/partition"), "1\n").unwrap();
    std::fs::create_dir_all(root.join("sys/block/sdb")).unwrap();
    std::fs::write(root.join("sys/block/sdb/removable"), "1\n").unwrap();
    std::fs::create_dir_all(root.join("sys/dev/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/block/sdb/sdb1",
        root.join("sys/dev/block/8:17"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    let stick = stick.canonicalize().unwrap();
    std::fs::write(
        root.join("proc/self/mountinfo"),
        format!(
            "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
             40 22 8:17 / {} rw,nosuid,nodev - vfat /dev/sdb1 rw\n",
            stick.display()
        ),
    )
    .unwrap();
    root
}

/// Whether this test runs as root (effective uid 0): only root reads the memory of a process
/// that marked itself not dumpable, as `conclave` does.
#[allow(dead_code)]
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Waits until process `pid` is stopped (state `T` in /proc/PID/stat), at most `limit`.
#[allow(dead_code)]
pub fn wait_until_stopped(pid: u32, limit: Duration) {
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('T')))
            .unwrap_or(false)
    };
    let start = std::time::Instant::now();
    while !stopped() {
        assert!(start.elapsed() < limit, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Which of `needles` occur in the memory of the stopped process `pid` (read as root through
/// /proc/PID/maps and /proc/PID/mem; regions that cannot be read are skipped).
#[allow(dead_code)]
pub fn found_in_memory(pid: u32, needles: &[&str]) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar") || line.contains("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut region = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut region).is_err() {
            continue;
        }
        for n in needles {
            if region.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{n} in {line}"));
            }
        }
    }
    found
}
