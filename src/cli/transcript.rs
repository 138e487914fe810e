//! `conclave transcript verify`: the auditor's check of a ceremony transcript.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::driver::audit_files::{AuditFiles, AuditFilesError, AuditPaths};
use crate::transcript::audit::{Audit, UNANCHORED_WHY, Verdict};
use crate::transcript::display::{clean, hex_groups, pgp_word_lines, pgp_words};
use crate::transcript::record::sha256;
use crate::transcript::report::{html, markdown};

use super::{CliError, Outcome};

/// What script conformance this version checks (printed, so nobody assumes more).
pub const CONFORMANCE_NOTE: &str =
    "script conformance: not checked (the hash chain is broken, so the events cannot be replayed)";

/// Subcommands of `conclave transcript`.
#[derive(Debug, clap::Subcommand)]
pub enum TranscriptCommand {
    /// Verify a ceremony transcript: hash chain, sequence, times, seal signatures, artifacts.
    Verify(VerifyTranscriptArgs),
}

/// Arguments of `conclave transcript verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyTranscriptArgs {
    /// The transcript (`*.jsonl`).
    pub transcript: PathBuf,
    /// Folder with the exported artifacts: each one the seal lists must be there, unchanged.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Accept a transcript that is not sealed yet (or whose last line is torn) and report how far
    /// it got.
    #[arg(long)]
    pub partial: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the auditor's report to this new file: Markdown (`.md`) or one self-contained
    /// HTML page (`.html`); an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The root you trust (obtained independently of the transcript). The root chain is
    /// verified from it to the root in force at the end of the ceremony (exported roots are read
    /// from `--artifacts DIR`), and the seal must be signed by a threshold of that root's root
    /// keys, each labelled with its keyholder. Without it the verdict is at best UNANCHORED
    /// (exit 1).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The key-event log directory: it must verify with the ceremony's root as its latest root
    /// and carry this transcript's seal (needs `--trusted-root`).
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,
}

/// Run `conclave transcript ...`.
pub fn run(command: &TranscriptCommand) -> Result<Outcome, CliError> {
    match command {
        TranscriptCommand::Verify(a) => run_verify(a),
    }
}

/// Run `conclave transcript verify`.
pub fn run_verify(args: &VerifyTranscriptArgs) -> Result<Outcome, CliError> {
    let report_html = match &args.report {
        None => false,
        Some(r) => match r.extension().and_then(|e| e.to_str()) {
            Some("md") => false,
            Some("html") => true,
            _ => {
                return Err(CliError::Usage(format!(
                    "--report {}: the name must end in .md (Markdown) or .html (one self-contained page)",
                    r.display()
                )));
            }
        },
    };
    let files = AuditFiles::read(&AuditPaths {
        transcript: args.transcript.clone(),
        artifacts: args.artifacts.clone(),
        trusted_root: args.trusted_root.clone(),
        log: args.log.clone(),
    })
    .map_err(|e| match e {
        AuditFilesError::Io(m) => CliError::Io(m),
        AuditFilesError::Usage(m) => CliError::Usage(m),
        AuditFilesError::Invalid(m) => CliError::Invalid(m),
    })?;
    let file_sha256 = sha256(&files.transcript);
    let result = files.verify(args.partial);
    let name = args.transcript.display().to_string();
    let mut stdout = if args.json {
        render_json(&name, &file_sha256, args.artifacts.as_deref(), &result)
    } else {
        render_text(&name, &file_sha256, args.artifacts.as_deref(), &result)
    };
    if let Some(path) = &args.report {
        let dir = args.artifacts.as_ref().map(|d| d.display().to_string());
        let page = if report_html {
            html(&name, &file_sha256, dir.as_deref(), &result)
        } else {
            markdown(&name, &file_sha256, dir.as_deref(), &result)
        };
        write_new(path, page.as_bytes())?;
        if !args.json {
            stdout.push_str(&format!("Report written to {}\n", path.display()));
        }
    }
    Ok(Outcome {
        stdout,
        success: result.passed(),
    })
}

/// Write the report as a new file (never overwriting one).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    crate::folder::write_new_file(path, bytes)
        .map_err(|e| CliError::Io(format!("--report {}: {e}", path.display())))
}

/// The `Verdict:` line's text.
pub fn verdict_line(name: &str, a: &Audit) -> String {
    let (word, why) = a.verdict_text();
    match &a.verdict {
        Verdict::Valid | Verdict::Partial { .. } => format!("{word} ({})", clean(&why)),
        Verdict::Unanchored => format!("{word}: {}", clean(&why)),
        Verdict::Invalid(_) => format!("{word}: {name}: {}", clean(&why)),
    }
}

fn render_text(
    name: &str,
    file_sha256: &[u8; 32],
    artifacts_dir: Option<&Path>,
    a: &Audit,
) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Transcript: {name} (sha256 {})",
        hex::encode(file_sha256)
    );
    if let Some(first) = a.records.first()
        && let Ok(b) =
            crate::transcript::details::BeginDetails::from_value(first.details.clone(), "details")
    {
        let _ = writeln!(
            o,
            "Script: {} (sha256 {}{})",
            clean(&b.script.name),
            hex::encode(b.script.sha256),
            if b.script.text.is_some() {
                ", text carried in the transcript"
            } else {
                ""
            }
        );
        let _ = writeln!(o, "Written by: Conclave {}", clean(&b.conclave_version));
        for i in &b.inputs {
            let _ = writeln!(
                o,
                "Input: {}  sha256 {}  {} bytes",
                clean(&i.name),
                hex::encode(i.sha256),
                i.length
            );
        }
    }
    let _ = writeln!(o, "\nTimeline ({} verified records):", a.records.len());
    let _ = writeln!(
        o,
        "  {:>4}  {:<20}  {:<16}  {:<6}  {:<16}  summary",
        "seq", "time (UTC)", "actor", "step", "action"
    );
    for r in &a.records {
        let _ = writeln!(
            o,
            "  {:>4}  {:<20}  {:<16}  {:<6}  {:<16}  {}",
            r.seq,
            r.time.to_string(),
            clean(&r.actor),
            clean(r.step.as_deref().unwrap_or("-")),
            r.action,
            a.record_summary(r)
        );
    }
    if let Some(e) = &a.chain_error {
        let _ = writeln!(o, "  FIRST BAD RECORD: {name}: {}", clean(&e.to_string()));
    }
    if let Some(t) = &a.torn {
        let _ = writeln!(
            o,
            "  torn last line at byte {}: {} bytes without a newline (sha256 {}), ignored",
            t.offset,
            t.bytes,
            hex::encode(t.sha256)
        );
    }
    match &a.seal {
        None => {}
        Some(Ok(s)) => {
            let _ = writeln!(o, "\nSeal (seq {}):", s.seal_seq);
            let _ = writeln!(o, "  seal hash: {}", hex_groups(&s.seal_hash));
            let _ = writeln!(
                o,
                "  as PGP words (read aloud, compare with the paper form):"
            );
            for line in pgp_word_lines(&s.seal_hash) {
                let _ = writeln!(o, "    {line}");
            }
            let _ = writeln!(o, "  seals head: {}", hex::encode(s.details.head));
            let _ = writeln!(o, "  signed by {} keyholder(s):", s.signers.len());
            for k in &s.signers {
                let _ = writeln!(
                    o,
                    "    {}  {}  ({}, seq {})",
                    clean(a.metadata_key_id(&k.keyid.0)),
                    clean(&k.actor),
                    clean(&k.key.scheme),
                    k.seq
                );
            }
            for w in &s.withdrawals {
                let _ = writeln!(
                    o,
                    "  WITHDRAWN: key {} by {} at seq {}, reason: \"{}\"; the seal of seq {} (signed by {} of its signers before) was superseded by a new seal listing the others, which all signed it",
                    clean(a.metadata_key_id(&w.keyid.0)),
                    clean(&w.actor),
                    w.seq,
                    clean(&w.reason),
                    w.seal_seq,
                    w.signed.len()
                );
            }
            let _ = writeln!(o, "  artifacts listed: {}", s.details.artifacts.len());
            for art in &s.details.artifacts {
                let _ = writeln!(
                    o,
                    "    {}  sha256 {}  {} bytes",
                    clean(&art.name),
                    hex::encode(art.sha256),
                    art.length
                );
            }
        }
        Some(Err(e)) => {
            let _ = writeln!(o, "\nSeal: {}", clean(&e.to_string()));
        }
    }
    match (artifacts_dir, &a.artifacts) {
        (None, _) => {
            let _ = writeln!(o, "\nArtifacts: not checked (no --artifacts DIR given)");
        }
        (Some(dir), None) => {
            let _ = writeln!(
                o,
                "\nArtifacts in {}: not checked (no verified seal to compare with)",
                dir.display()
            );
        }
        (Some(dir), Some(c)) => {
            let _ = writeln!(o, "\nArtifacts in {}:", dir.display());
            for n in &c.matching {
                let _ = writeln!(o, "  ok        {}", clean(n));
            }
            for m in &c.missing {
                let _ = writeln!(o, "  MISSING   {}", clean(&m.name));
            }
            for m in &c.mismatched {
                let _ = writeln!(
                    o,
                    "  CHANGED   {} (sealed {} bytes sha256 {}, found {} bytes sha256 {})",
                    clean(&m.expected.name),
                    m.expected.length,
                    hex::encode(m.expected.sha256),
                    m.found.length,
                    hex::encode(m.found.sha256)
                );
            }
            for n in &c.unlisted {
                let _ = writeln!(o, "  unlisted  {} (not in the seal)", clean(n));
            }
        }
    }
    let _ = writeln!(
        o,
        "\n{}",
        a.conformance.as_deref().unwrap_or(CONFORMANCE_NOTE)
    );
    render_anchor(&mut o, a);
    if !a.keys.is_empty() {
        let _ = writeln!(o, "\nKeys before and after the ceremony:");
        for line in crate::transcript::report::key_table_lines(&a.keys) {
            let _ = writeln!(o, "  {}", clean(&line));
        }
    }
    if let Some(h) = a.head {
        let _ = writeln!(o, "Head hash (last verified record): {}", hex_groups(&h));
    }
    let _ = writeln!(o, "Verdict: {}", verdict_line(name, a));
    o
}

fn render_anchor(o: &mut String, a: &Audit) {
    match &a.anchor {
        None => {
            if matches!(a.verdict, Verdict::Unanchored) {
                let _ = writeln!(
                    o,
                    "\nAnchor: none (no --trusted-root): the seal's signers are not checked against the registry's keys"
                );
            }
        }
        Some(an) => {
            let _ = writeln!(o, "\nAnchor: trusted root {}", clean(&an.trusted));
            for step in &an.chain {
                let _ = writeln!(o, "  root chain: {}", clean(step));
            }
            if let Some(v) = an.root_version {
                let _ = writeln!(o, "  root in force at the end of the ceremony: version {v}");
            }
            for s in &an.signers {
                let _ = writeln!(
                    o,
                    "  seal signature seq {}: key {} by \"{}\" (transcript: held by {}; token key id in the seal record: {}){}",
                    s.seq,
                    clean(
                        s.root_keyid
                            .as_deref()
                            .unwrap_or_else(|| a.metadata_key_id(&s.keyid))
                    ),
                    clean(&s.actor),
                    s.holder
                        .as_deref()
                        .map_or_else(|| "nobody named".into(), clean),
                    clean(&s.keyid),
                    match &s.root_keyid {
                        Some(_) => ", a root key of that root",
                        None => ", not a root key of that root (not counted)",
                    }
                );
            }
            if let Some(c) = &an.count {
                let _ = writeln!(o, "  seal counted against the root role: {}", c.summary());
            }
            match &an.error {
                None => {
                    let _ = writeln!(o, "  anchored: yes");
                }
                Some(e) => {
                    let _ = writeln!(o, "  anchored: NO: {}", clean(e));
                }
            }
        }
    }
    if let Some(l) = &a.log {
        let _ = writeln!(
            o,
            "\nKey-event log {}: {}",
            clean(&l.name),
            if l.passed { "VALID" } else { "INVALID" }
        );
        for line in &l.lines {
            let _ = writeln!(o, "  {}", clean(line));
        }
        if let Some(f) = &l.failure {
            let _ = writeln!(o, "  first failure: {}", clean(f));
        }
    }
}

fn render_json(
    name: &str,
    file_sha256: &[u8; 32],
    artifacts_dir: Option<&Path>,
    a: &Audit,
) -> String {
    let records: Vec<_> = a
        .records
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "time": r.time.to_string(),
                "actor": r.actor,
                "step": r.step,
                "action": r.action,
                "summary": a.record_summary(r),
                "hash": r.hash_hex(),
            })
        })
        .collect();
    let seal = match &a.seal {
        None => serde_json::Value::Null,
        Some(Ok(s)) => json!({
            "valid": true,
            "seq": s.seal_seq,
            "hash": hex::encode(s.seal_hash),
            "hash_pgp_words": pgp_words(&s.seal_hash),
            "head": hex::encode(s.details.head),
            "signers": s.signers.iter().map(|k| json!({
                "keyid": k.keyid.0, "actor": k.actor, "seq": k.seq, "scheme": k.key.scheme,
            })).collect::<Vec<_>>(),
            "withdrawals": s.withdrawals.iter().map(|w| json!({
                "keyid": w.keyid.0, "actor": w.actor, "seq": w.seq, "reason": w.reason,
                "superseded_seal_seq": w.seal_seq,
                "superseded_seal_hash": hex::encode(w.seal_hash),
                "signed_before": w.signed.iter().map(|k| k.0.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "artifacts": s.details.artifacts.iter().map(|x| json!({
                "name": x.name, "sha256": hex::encode(x.sha256), "length": x.length,
            })).collect::<Vec<_>>(),
        }),
        Some(Err(e)) => json!({"valid": false, "error": e.to_string(), "seq": e.seq()}),
    };
    let artifacts = a.artifacts.as_ref().map(|c| {
        json!({
            "dir": artifacts_dir.map(|d| d.display().to_string()),
            "ok": c.is_ok(),
            "matching": c.matching,
            "missing": c.missing.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "changed": c.mismatched.iter().map(|m| m.expected.name.clone()).collect::<Vec<_>>(),
            "unlisted": c.unlisted,
        })
    });
    let (verdict, reason, last_seq) = match &a.verdict {
        Verdict::Valid => ("valid", None, None),
        Verdict::Unanchored => ("unanchored", Some(UNANCHORED_WHY.to_string()), None),
        Verdict::Partial { last_seq, why } => ("partial", Some(why.clone()), Some(*last_seq)),
        Verdict::Invalid(why) => ("invalid", Some(why.clone()), None),
    };
    let doc = json!({
        "transcript": name,
        "transcript_sha256": hex::encode(file_sha256),
        "verdict": verdict,
        "reason": reason,
        "partial_last_seq": last_seq,
        "first_bad_record": a.chain_error.as_ref().map(|e| json!({
            "line": e.line, "seq": e.seq, "error": e.kind.to_string(),
        })),
        "head": a.head.map(hex::encode),
        "records": records,
        "seal": seal,
        "artifacts": artifacts,
        "script_conformance": a.conformance.as_deref().unwrap_or("not checked"),
        "anchor": a.anchor.as_ref().map(|an| json!({
            "trusted_root": an.trusted,
            "chain": an.chain,
            "root_version": an.root_version,
            "signed": an.count.as_ref().map(|c| c.signed.iter().map(|k| k.0.clone()).collect::<Vec<_>>()),
            "threshold": an.count.as_ref().map(|c| c.threshold),
            "signers": an.signers.iter().map(|s| json!({
                "seq": s.seq, "actor": s.actor, "keyid": s.keyid, "holder": s.holder,
                "root_keyid": s.root_keyid,
            })).collect::<Vec<_>>(),
            "anchored": an.error.is_none(),
            "error": an.error,
        })),
        "log": a.log.as_ref().map(|l| json!({
            "dir": l.name, "valid": l.passed, "checks": l.lines, "first_failure": l.failure,
        })),
        "keys": a.keys.iter().map(|r| json!({
            "role": r.role,
            "threshold_before": r.threshold_before,
            "threshold_after": r.threshold_after,
            "keys": r.keys.iter().map(|k| json!({
                "keyid": k.keyid, "scheme": k.scheme, "owner": k.owner,
                "before": k.before, "after": k.after,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
