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
