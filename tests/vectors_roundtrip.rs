//! Every real metadata file in tests/data/vectors loads, and saving it changes nothing in its
//! `signed` part: the canonical bytes after a load/save round trip equal the original's.

use std::path::{Path, PathBuf};

use conclave::tuf::canonical::Value;
use conclave::tuf::metadata::{AnyMetadata, Metadata, Root, Snapshot, Targets, Timestamp};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

fn vectors() -> Vec<PathBuf> {
    let mut v = Vec::new();
    json_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors"),
        &mut v,
    );
    v.sort();
    v
}

#[test]
fn every_real_metadata_file_round_trips_its_signed_part() {
    let files = vectors();
    assert!(files.len() > 100, "vectors missing: {}", files.len());
    let mut loaded = 0;
    let mut refused = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let Ok(original) = Value::parse(&bytes) else {
            refused.push(format!("{}: not strict JSON", path.display()));
            continue;
        };
        let Some(signed) = original.as_object().and_then(|m| m.get("signed")) else {
            continue; // not a metadata file (e.g. a target)
        };
        match AnyMetadata::from_bytes(&bytes) {
            Ok(md) => {
                loaded += 1;
                assert_eq!(
                    md.signed_bytes(),
                    signed.canonical_bytes().as_slice(),
                    "{}",
                    path.display()
                );
                let again = match &md {
                    AnyMetadata::Root(m) => m.to_value(),
                    AnyMetadata::Targets(m) => m.to_value(),
                    AnyMetadata::Snapshot(m) => m.to_value(),
                    AnyMetadata::Timestamp(m) => m.to_value(),
                };
                let again_signed = again.as_object().unwrap().get("signed").unwrap();
                assert_eq!(again_signed, signed, "{}", path.display());
                // And the written file loads to the same canonical bytes.
                let written = again.to_pretty_json();
                let md2 = AnyMetadata::from_bytes(written.as_bytes()).unwrap();
                assert_eq!(md2.signed_bytes(), md.signed_bytes());
            }
            Err(e) => refused.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!("loaded {loaded}; refused:\n{}", refused.join("\n"));
    assert!(loaded > 150, "{loaded}");
    // Only tough's three malicious files are refused at load, each for its own reason.
    assert_eq!(refused.len(), 3, "{refused:#?}");
    assert!(refused[0].contains("duplicate-keyid/root.json: not strict JSON"));
    assert!(
        refused[1].contains("duplicate-sig-keys/root.json: $.signatures[1]: multiple signatures")
    );
    assert!(refused[2].contains("duplicate-sigs/root.json: $.signatures[1]: multiple signatures"));
    let _ = (
        Metadata::<Root>::from_bytes,
        Metadata::<Targets>::from_bytes,
        Metadata::<Snapshot>::from_bytes,
        Metadata::<Timestamp>::from_bytes,
    );
}
