//! `conclave usb list|export|import` through the binary, on temporary folders (the library's
//! fault and vfat tests are in `tests/transport_usb.rs`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Run, run_with_timeout};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_conclave");

fn conclave(args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_with_timeout(&mut cmd, b"", Duration::from_secs(60))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ROOT: &str = r#"{"signatures": [], "signed": {"_type": "root", "version": 3, "spec_version": "1.0.31", "expires": "2030-01-01T00:00:00Z", "consistent_snapshot": true, "keys": {}, "roles": {}}}"#;
const BUNDLE: &str = r#"{"_type": "conclave-signature-bundle", "role": "root", "version": 3, "signed_sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "keyid": "k1", "sig": "00", "time": "2026-11-23T10:00:00Z"}"#;

#[test]
fn export_reads_back_refuses_conflicts_and_import_lists_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let stick = tmp.path().join("stick");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&stick).unwrap();
    let root = work.join("3.root.json");
    let bundle = work.join("alice.bundle.json");
    std::fs::write(&root, ROOT).unwrap();
    std::fs::write(&bundle, BUNDLE).unwrap();

    let run = conclave(&["usb", "export", "--to", s(&stick), s(&root), s(&bundle)]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("it is safe to remove the media now"),
        "{run:?}"
    );
    for (name, text) in [("3.root.json", ROOT), ("alice.bundle.json", BUNDLE)] {
        assert_eq!(std::fs::read_to_string(stick.join(name)).unwrap(), text);
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        assert!(run.stdout.contains(&digest), "{name}: {run:?}");
    }
    let sums = std::fs::read_to_string(stick.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2, "{sums}");

    // The same files again: already present, nothing rewritten.
    let run = conclave(&["usb", "export", "--to", s(&stick), s(&root), s(&bundle)]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("already present"), "{run:?}");

    // Changed content under the same name: refused, nothing written, unless --overwrite.
    std::fs::write(&root, ROOT.replace("\"version\": 3", "\"version\": 4")).unwrap();
    let run = conclave(&["usb", "export", "--to", s(&stick), s(&root), s(&bundle)]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("3.root.json: exists with different content; nothing was written"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(stick.join("3.root.json")).unwrap(),
        ROOT
    );

    // Import: what each file is, and the checksums.
    let run = conclave(&["usb", "import", s(&stick)]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("root v3"), "{run:?}");
    assert!(
        run.stdout.contains("signature bundle: root v3 by k1"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("SHA256SUMS: all 2 files match"),
        "{run:?}"
    );

    // A file changed on the media after export: import says so and exits 1.
    std::fs::write(stick.join("alice.bundle.json"), BUNDLE.replace("k1", "k2")).unwrap();
    let run = conclave(&["usb", "import", s(&stick)]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stdout.contains("SHA256SUMS MISMATCH alice.bundle.json"),
        "{run:?}"
    );

    // --overwrite replaces, then everything matches again.
    let run = conclave(&[
        "usb",
        "export",
        "--overwrite",
        "--to",
        s(&stick),
        s(&root),
        s(&bundle),
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("replaced"), "{run:?}");
    let run = conclave(&["usb", "import", s(&stick)]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("root v4"), "{run:?}");

    // Not a folder; a missing input file.
    let run = conclave(&["usb", "export", "--to", s(&root), s(&bundle)]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("not a folder"), "{run:?}");
    let missing = work.join("missing.json");
    let run = conclave(&["usb", "export", "--to", s(&stick), s(&missing)]);
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("missing.json"), "{run:?}");
}

#[test]
fn list_names_media_or_says_there_are_none() {
    let run = conclave(&["usb", "list"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    if run.stdout.starts_with("no removable or USB media mounted") {
        assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    } else {
        // Every listed mount point is really mounted.
        for line in run.stdout.lines().filter(|l| !l.starts_with(' ')) {
            let mount_point = line.split("  ").next().unwrap();
            assert!(
                mounts
                    .lines()
                    .any(|m| m.split(' ').nth(1) == Some(mount_point)),
                "{mount_point} is not in /proc/mounts"
            );
        }
    }
}

/// Peak resident memory (kB) of `conclave ARGS`, measured by GNU time (`time -v`), with its
/// standard output and standard error.
fn peak_rss_kb(args: &[&str]) -> (u64, String) {
    let out = Command::new("time")
        .arg("-v")
        .arg(BIN)
        .args(args)
        .output()
        .expect("GNU time (Debian package time) runs the binary");
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let kb = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {err}"));
    (kb, err)
}

/// A large JSON file of tiny values (`[0,0,...]`, 64 MiB: one value per 2 bytes) on the media
/// and as the metadata of `bundle merge`. Before, each built a tree 17 times the file's size
/// (4.46 GB for 256 MiB), locked in RAM. Now `usb import` reads what the file is without a tree
/// and `bundle merge` refuses it by its value budget, saying why; both stay within a small
/// multiple of the file.
#[test]
fn a_large_file_of_tiny_values_is_read_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let big = media.join("big.json");
    let n: usize = 32 * 1024 * 1024;
    let mut text = Vec::with_capacity(2 * n + 1);
    text.extend_from_slice(b"[0");
    for _ in 1..n {
        text.extend_from_slice(b",0");
    }
    text.push(b']');
    let size_kb = text.len() as u64 / 1024;
    std::fs::write(&big, &text).unwrap();
    drop(text);
    std::fs::write(tmp.path().join("b.json"), BUNDLE).unwrap();

    let (import_kb, err) = peak_rss_kb(&["usb", "import", s(&media)]);
    assert!(
        err.contains("big.json") && err.contains("unknown") && err.contains("Exit status: 0"),
        "{err}"
    );
    assert!(
        import_kb < 2 * size_kb + 64 * 1024,
        "usb import peaked at {import_kb} kB for a {size_kb} kB file"
    );

    let out = tmp.path().join("out.json");
    let (merge_kb, err) = peak_rss_kb(&[
        "bundle",
        "merge",
        "--metadata",
        s(&big),
        "--out",
        s(&out),
        s(&tmp.path().join("b.json")),
    ]);
    assert!(
        err.contains("more JSON values than a file of this size may hold")
            && err.contains("big.json"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(
        merge_kb < 8 * size_kb,
        "bundle merge peaked at {merge_kb} kB for a {size_kb} kB file"
    );
    eprintln!("64 MiB of [0,0,...]: usb import {import_kb} kB, bundle merge {merge_kb} kB peak");
}
