//! The seal anchored in the root the auditor trusts (issue 18, item 1). A real practice ceremony
//! (`conclave rehearse --headless`: SoftHSM2 practice tokens, the transcript and the export on
//! disk), then every forgery the issue names, each checked with `conclave transcript verify
//! --trusted-root`: records edited with the chain recomputed and the seal signed again by keys of
//! the forger's own; all seal signatures replaced; one real keyholder's token and two foreign keys;
//! the keys of another registry's root; seal signatures relabelled or reordered after the seal.
//! Each fails naming the reason; the genuine transcript passes, with and without its key-event log.

use std::path::{Path, PathBuf};
use std::process::Command;

use conclave::driver::transcript_file::sign_seal;
use conclave::signer::software::SoftwareSigner;
use conclave::transcript::record::{GENESIS_PREV, Record};
use conclave::transcript::seal::{SealDetails, SealSignature};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Algorithm;

const TRANSCRIPT: &str = "bootstrap-root.transcript.jsonl";
/// Set in a child of this test binary: sign the seal record in this file with a practice token.
const CHILD: &str = "CONCLAVE_TEST_ANCHOR_SIGN";

fn conclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
}

/// A finished practice bootstrap ceremony in its own workspace (a registry of its own).
struct Registry {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
}

impl Registry {
    fn new() -> Registry {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let out = conclave()
            .args(["rehearse", "--headless", "--workspace"])
            .arg(&ws)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Registry { _tmp: tmp, ws }
    }

    fn records(&self) -> Vec<Record> {
        std::fs::read_to_string(self.ws.join(TRANSCRIPT))
            .unwrap()
            .lines()
            .map(|l| Record::parse_line(l.as_bytes()).unwrap())
            .collect()
    }

    fn root(&self) -> PathBuf {
        self.ws.join("export/1.root.json")
    }

    /// `who`'s practice token signs the seal record (in a child process, so that SoftHSM2 reads
    /// this workspace's `SOFTHSM2_CONF`).
    fn token_sign(&self, who: &str, seal: &Record) -> SealSignature {
        let seal_file = self.ws.join(format!("seal-for-{who}.json"));
        std::fs::write(&seal_file, seal.to_line()).unwrap();
        let pins: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.ws.join("practice-tokens.json")).unwrap(),
        )
        .unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "forged_transcripts_fail_against_the_trusted_root_and_the_genuine_one_passes",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, &seal_file)
            .env("CONCLAVE_TEST_ANCHOR_WHO", who)
            .env("CONCLAVE_TEST_ANCHOR_PIN", pins[who].as_str().unwrap())
            .env("SOFTHSM2_CONF", self.ws.join("softhsm2.conf"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("seal-signature: "))
            .unwrap_or_else(|| panic!("the child did not sign: {text}"));
        let bytes = hex::decode(line.trim()).unwrap();
        SealSignature::from_value(Value::parse(&bytes).unwrap(), "details").unwrap()
    }
}

/// In the child process of [`Registry::token_sign`]: sign and print the seal signature.
fn token_signer_child(seal_file: std::ffi::OsString) {
    use conclave::signer::pkcs11::Module;
    let who = std::env::var("CONCLAVE_TEST_ANCHOR_WHO").unwrap();
    let pin = zeroize::Zeroizing::new(std::env::var("CONCLAVE_TEST_ANCHOR_PIN").unwrap());
    let seal = std::fs::read_to_string(seal_file).unwrap();
    let seal = Record::parse_line(seal.trim_end().as_bytes()).unwrap();
    let m = Module::open(None).unwrap();
    let t = m.find_token(&who).unwrap();
    let s = m.open_session(&t, false).unwrap();
    s.login(&pin).unwrap();
    let key = s.keys().unwrap().into_iter().next().unwrap();
    let mut signer = s.signer(&key).unwrap();
    let sig = sign_seal(&mut signer, &seal).unwrap();
    println!(
        "\nseal-signature: {}",
        hex::encode(conclave::transcript::record::compact(&sig.to_value()))
    );
}

/// Renumber and rechain every record (what a forger does after editing).
fn rechain(records: &mut [Record]) {
    let mut prev = GENESIS_PREV;
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = i as u64;
        r.prev = prev;
        r.hash = r.compute_hash();
        prev = r.hash;
    }
}

fn seal_index(records: &[Record]) -> usize {
    records.iter().position(|r| r.action == "seal").unwrap()
}

/// A keyholder's signature: a foreign software key or a practice token.
enum By<'a> {
    Foreign(u8),
    Token(&'a Registry, &'static str),
}

/// Cut the records at the seal, rechain, write a new seal listing the new signers, and append
/// their signatures labelled with `actor`s.
fn reseal(records: &mut Vec<Record>, signers: Vec<(&str, By<'_>)>) {
    let s = seal_index(records);
    let template = records[s + 1].clone();
    records.truncate(s + 1);
    rechain(records);
    let mut foreign: Vec<Option<SoftwareSigner>> = signers
        .iter()
        .map(|(_, by)| match by {
            By::Foreign(seed) => {
                Some(SoftwareSigner::from_seed(Algorithm::Ed25519, &[*seed; 32]).unwrap())
            }
            By::Token(..) => None,
        })
        .collect();
    // The signers' key ids first (a token's key id: sign once to learn it).
    let mut details = SealDetails::from_value(records[s].details.clone(), "details").unwrap();
    details.head = records[s - 1].hash;
    details.signers = signers
        .iter()
        .zip(&foreign)
        .map(|((_, by), f)| match (by, f) {
            (_, Some(f)) => conclave::signer::Signer::key_id(f),
            (By::Token(reg, who), None) => reg.token_sign(who, &records[s]).keyid,
            _ => unreachable!(),
        })
        .collect();
    records[s].details = details.to_value();
    rechain(records);
    let seal = records[s].clone();
    for ((actor, by), f) in signers.iter().zip(foreign.iter_mut()) {
        let sig = match (by, f) {
            (_, Some(f)) => sign_seal(f, &seal).unwrap(),
            (By::Token(reg, who), None) => reg.token_sign(who, &seal),
            _ => unreachable!(),
        };
        let mut r = template.clone();
        r.actor = actor.to_string();
        r.details = sig.to_value();
        records.push(r);
    }
    rechain(records);
}

/// `conclave transcript verify FORGED --artifacts WS/export --trusted-root ROOT [extra]`.
fn verify(reg: &Registry, records: &[Record], root: &Path, extra: &[&str]) -> (i32, String) {
    let path = reg.ws.join("forged.jsonl");
    let text: String = records.iter().map(Record::to_line).collect();
    std::fs::write(&path, text).unwrap();
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(&path)
        .arg("--artifacts")
        .arg(reg.ws.join("export"))
        .arg("--trusted-root")
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn verdict(out: &str) -> &str {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Verdict: "))
        .unwrap_or_else(|| panic!("no verdict: {out}"))
}

/// Fails with exit 1, an INVALID verdict naming `reason`.
fn refused(reg: &Registry, records: &[Record], root: &Path, reason: &str) -> String {
    let (code, out) = verify(reg, records, root, &[]);
    assert_eq!(code, 1, "{out}");
    let v = verdict(&out);
    assert!(v.starts_with("INVALID") && v.contains(reason), "{v}");
    out
}

#[test]
fn forged_transcripts_fail_against_the_trusted_root_and_the_genuine_one_passes() {
    if let Some(seal_file) = std::env::var_os(CHILD) {
        token_signer_child(seal_file);
        return;
    }
    let reg = Registry::new();
    let genuine = reg.records();
    let root = reg.root();

    // The genuine transcript: anchored, with and without its key-event log.
    let (code, out) = verify(&reg, &genuine, &root, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(verdict(&out).starts_with("VALID (anchored"), "{out}");
    assert!(out.contains("3 of 3 keys signed, threshold 2"), "{out}");
    let log = reg.ws.join("export/log-001");
    let (code, out) = verify(&reg, &genuine, &root, &["--log", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Key-event log") && out.contains(": VALID"),
        "{out}"
    );
    assert!(out.contains("carry this transcript's seal"), "{out}");

    // A trusted root that is not a root signed by its own keys anchors nothing.
    let (code, out) = verify(&reg, &genuine, &reg.ws.join("export/1.targets.json"), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        verdict(&out).contains("the trusted root does not verify"),
        "{out}"
    );

    // Without an anchor: never VALID, exit 1, the chain and the seal said to be intact.
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(reg.ws.join(TRANSCRIPT))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(verdict(&text).starts_with("UNANCHORED: the hash chain and the seal are intact"));

    // 1. Records edited (the witness renamed, the air-gap warning deleted and the interface list
    //    emptied), the chain recomputed, the seal signed by three Ed25519 keys of the forger's.
    let mut forged = genuine.clone();
    for r in &mut forged {
        if r.action == "roll-call" {
            let text = String::from_utf8(r.details.canonical_bytes()).unwrap();
            let text = text.replace("\"witnesses\":[\"", "\"witnesses\":[\"mallory-");
            r.details = Value::parse(text.as_bytes()).unwrap();
        }
        if r.action == "airgap-checked" {
            let text = String::from_utf8(r.details.canonical_bytes()).unwrap();
            let start = text.find("\"interfaces\":[").unwrap() + "\"interfaces\":[".len();
            let end = start + text[start..].find(']').unwrap();
            let text = format!("{}{}", &text[..start], &text[end..]);
            r.details = Value::parse(text.as_bytes()).unwrap();
        }
    }
    forged.retain(|r| r.action != "warning-acknowledged");
    reseal(
        &mut forged,
        vec![
            ("alice", By::Foreign(1)),
            ("bob", By::Foreign(2)),
            ("carol", By::Foreign(3)),
        ],
    );
    let out = refused(&reg, &forged, &root, "(a foreign key)");
    // The forgery follows the script: only the anchor tells it apart.
    assert!(out.contains("every step followed the script"), "{out}");
    let text = std::fs::read_to_string(reg.ws.join("forged.jsonl")).unwrap();
    assert!(text.contains("mallory-") && !text.contains("warning-acknowledged"));

    // 2. No edit, all seal signatures replaced.
    let mut forged = genuine.clone();
    reseal(
        &mut forged,
        vec![
            ("alice", By::Foreign(4)),
            ("bob", By::Foreign(5)),
            ("carol", By::Foreign(6)),
        ],
    );
    let first_sig = seal_index(&genuine) + 1;
    let out = refused(&reg, &forged, &root, "is not a key of this ceremony");
    assert!(
        verdict(&out).contains(&format!("seq {first_sig} (\"alice\")")),
        "{out}"
    );

    // 3. One real keyholder's token and two foreign keys.
    let mut forged = genuine.clone();
    reseal(
        &mut forged,
        vec![
            ("alice", By::Token(&reg, "alice")),
            ("bob", By::Foreign(7)),
            ("carol", By::Foreign(8)),
        ],
    );
    let out = refused(&reg, &forged, &root, "(a foreign key)");
    assert!(
        verdict(&out).contains(&format!("seq {} (\"bob\")", first_sig + 1)),
        "{out}"
    );
    // One real keyholder alone is below the root's threshold.
    let mut forged = genuine.clone();
    reseal(&mut forged, vec![("alice", By::Token(&reg, "alice"))]);
    refused(&reg, &forged, &root, "1 of 3 keys signed, threshold 2");

    // 4. The keys of another registry's root: its keyholders' tokens sign this seal; and its
    //    whole (genuine) transcript offered against this registry's root.
    let other = Registry::new();
    let mut forged = genuine.clone();
    reseal(
        &mut forged,
        vec![
            ("alice", By::Token(&other, "alice")),
            ("bob", By::Token(&other, "bob")),
            ("carol", By::Token(&other, "carol")),
        ],
    );
    refused(&reg, &forged, &root, "(a foreign key)");
    let (code, out) = verify(&other, &other.records(), &root, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        verdict(&out).contains("is not the trusted root")
            && verdict(&out).contains("another registry"),
        "{out}"
    );
    // The other registry's key-event log does not carry this transcript's seal.
    let other_log = other.ws.join("export/log-001");
    let (code, out) = verify(
        &reg,
        &genuine,
        &root,
        &["--log", other_log.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(verdict(&out).contains("key-event log"), "{out}");

    // 5. Seal signatures relabelled after the seal (alice's record says bob and the reverse).
    let s = seal_index(&genuine);
    let mut forged = genuine.clone();
    let (a, b) = (forged[s + 1].actor.clone(), forged[s + 2].actor.clone());
    forged[s + 1].actor = b;
    forged[s + 2].actor = a;
    rechain(&mut forged);
    refused(&reg, &forged, &root, "relabelled after the seal");
    // Reordered after the seal (the records swapped, each keeping its label).
    let mut forged = genuine.clone();
    forged.swap(s + 1, s + 2);
    // The times stay in order (the two signatures can fall in different seconds): the forgery
    // is the order of the signers, which the verdict must name, not a clock going back.
    forged[s + 1].time = genuine[s + 1].time;
    forged[s + 2].time = genuine[s + 2].time;
    rechain(&mut forged);
    refused(&reg, &forged, &root, "signed out of order");

    // --log needs the anchor.
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(reg.ws.join(TRANSCRIPT))
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The auditor's report (issue 18, item 3): the verdict, the key-event log's verdict, the
/// anchor, PRACTICE and the air-gap state come first; every warning with who and when; a timeline
/// of one readable line per event naming the actor, their part and the key.
#[test]
fn the_report_puts_the_verdict_the_log_practice_and_the_air_gap_first() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let reg = Registry::new();
    let records = reg.records();
    let report = reg.ws.join("audit.md");
    let (code, out) = verify(
        &reg,
        &records,
        &reg.root(),
        &[
            "--log",
            reg.ws.join("export/log-001").to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    let at = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} is not in the report:\n{md}"))
    };
    assert!(at("| Verdict | **VALID**: anchored in the trusted root") < at("## Timeline"));
    assert!(at("| Key-event log | **VALID**: ") < at("## Timeline"));
    assert!(at("| Anchor | trusted root ") < at("## Timeline"));
    assert!(at("| Practice | **PRACTICE**: a rehearsal on practice tokens") < at("## Timeline"));
    // The air-gap state as the transcript recorded it, and the warning it gave.
    let airgap = records
        .iter()
        .find(|r| r.action == "airgap-checked")
        .unwrap();
    let details: serde_json::Value =
        serde_json::from_slice(&airgap.details.canonical_bytes()).unwrap();
    let interfaces = details["interfaces"].as_array().unwrap().clone();
    if interfaces.is_empty() {
        assert!(md.contains("| Air-gap | air-gapped"), "{md}");
    } else {
        let first = interfaces[0].as_str().unwrap();
        assert!(
            md.contains(&format!(
                "| Air-gap | **NOT air-gapped**: interfaces {first}"
            )),
            "{md}"
        );
        let warning = records
            .iter()
            .find(|r| r.action == "warning-acknowledged")
            .unwrap();
        // seq, time, who, step, kind, what.
        assert!(
            md.contains(&format!(
                "| {} | {} | {} | {} | **WARNING** | practice run: the appliance is not air-gapped",
                warning.seq,
                warning.time,
                warning.actor,
                warning.step.as_deref().unwrap()
            )),
            "{md}"
        );
        assert!(at("## Warnings and exceptions") < at("## Timeline"));
    }
    // One readable line per event: alice's root and targets signatures are told apart, with the
    // full key id, and her part in the ceremony is named.
    let signed: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("| alice | keyholder |") && l.contains("| signed |"))
        .collect();
    assert_eq!(signed.len(), 2, "{md}");
    assert!(signed[0].contains("alice signed root with key "), "{md}");
    assert!(signed[1].contains("alice signed targets with key "), "{md}");
    assert!(
        !md.contains("{\\\"event\\\""),
        "raw JSON in the timeline:\n{md}"
    );
    assert!(!md.contains("..."), "a cut-off line in the timeline:\n{md}");
    assert!(md.contains("roll call: administrator "), "{md}");
    assert!(
        md.contains("## Seal signatures against the trusted root"),
        "{md}"
    );
}

/// The sealed transcript is in the export (issue 18, item 2): the auditor who receives only the
/// exported folder checks the transcript there, anchored in the exported root, with the log.
#[test]
fn the_exported_transcript_verifies_anchored_in_the_exported_root() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let reg = Registry::new();
    let export = reg.ws.join("export");
    let copy = export.join(TRANSCRIPT);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(reg.ws.join(TRANSCRIPT)).unwrap()
    );
    let sums = std::fs::read_to_string(export.join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&format!("  {TRANSCRIPT}\n")), "{sums}");
    let out = conclave()
        .args(["transcript", "verify"])
        .arg(&copy)
        .arg("--artifacts")
        .arg(&export)
        .arg("--trusted-root")
        .arg(export.join("1.root.json"))
        .arg("--log")
        .arg(export.join("log-001"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(verdict(&text).starts_with("VALID (anchored"), "{text}");
    // The transcript cannot list itself: it is not reported as an unlisted artifact.
    assert!(!text.contains(&format!("unlisted  {TRANSCRIPT}")), "{text}");
}
