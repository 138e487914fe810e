//! The auditor's report as Markdown: what an auditor files after checking a transcript. Pure:
//! renders an [`Audit`].

use std::fmt::Write as _;

use super::audit::{Audit, Verdict};
use super::details::BeginDetails;
use super::display::{clean, hex_groups, summary};

/// What the report says about script conformance in this version.
pub const CONFORMANCE: &str = "Script conformance (each step against the script, metadata signatures and thresholds, the result against the previous root): not checked by this version.";

/// Text for a Markdown table cell: one line, `|` and backquotes escaped, control characters shown.
fn cell(s: &str) -> String {
    clean(&s.replace('\\', "\\\\"))
        .replace('|', "\\|")
        .replace('`', "\\`")
        .replace('<', "&lt;")
}

/// Render the report. `transcript_sha256` is the SHA-256 of the transcript file as read.
pub fn markdown(
    name: &str,
    transcript_sha256: &[u8; 32],
    artifacts_dir: Option<&str>,
    a: &Audit,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Ceremony transcript audit\n");
    let verdict = match &a.verdict {
        Verdict::Valid => "**VALID**".to_string(),
        Verdict::Partial { last_seq, why } => {
            format!("**PARTIAL**: verified up to seq {last_seq}; {}", cell(why))
        }
        Verdict::Invalid(why) => format!("**INVALID**: {}", cell(why)),
    };
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Verdict | {verdict} |");
    let _ = writeln!(o, "| Transcript | `{}` |", cell(name));
    let _ = writeln!(
        o,
        "| Transcript SHA-256 | `{}` |",
        hex::encode(transcript_sha256)
    );
    if let Some(b) = a
        .records
        .first()
        .and_then(|r| BeginDetails::from_value(r.details.clone(), "details").ok())
    {
        let _ = writeln!(o, "| Script | {} |", cell(&b.script.name));
        let _ = writeln!(o, "| Script SHA-256 | `{}` |", hex::encode(b.script.sha256));
        let _ = writeln!(o, "| Conclave version | {} |", cell(&b.conclave_version));
        for i in &b.inputs {
            let _ = writeln!(
                o,
                "| Input | {} (`{}`, {} bytes) |",
                cell(&i.name),
                hex::encode(i.sha256),
                i.length
            );
        }
    }
    if let Some(h) = a.head {
        let _ = writeln!(o, "| Head (last verified record) | `{}` |", hex_groups(&h));
    }
    let _ = writeln!(o, "\n{CONFORMANCE}\n");

    let _ = writeln!(o, "## Timeline\n");
    let _ = writeln!(o, "| seq | time (UTC) | actor | step | action | summary |");
    let _ = writeln!(o, "|---:|---|---|---|---|---|");
    for r in &a.records {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            r.seq,
            r.time,
            cell(&r.actor),
            cell(r.step.as_deref().unwrap_or("")),
            r.action,
            cell(&summary(r))
        );
    }
    if let Some(e) = &a.chain_error {
        let _ = writeln!(
            o,
            "\n**First bad record**: {}: {}",
            cell(name),
            cell(&e.to_string())
        );
    }
    if let Some(t) = &a.torn {
        let _ = writeln!(
            o,
            "\nA torn last line of {} bytes (SHA-256 `{}`) at byte {} was ignored.",
            t.bytes,
            hex::encode(t.sha256),
            t.offset
        );
    }

    let _ = writeln!(o, "\n## Seal\n");
    match &a.seal {
        None => {
            let _ = writeln!(o, "Not checked: the chain did not verify.");
        }
        Some(Err(e)) => {
            let _ = writeln!(o, "{}", cell(&e.to_string()));
        }
        Some(Ok(s)) => {
            let _ = writeln!(
                o,
                "Seal record seq {}; seal hash (what the keyholders signed and the witnesses wrote down):\n\n    {}\n",
                s.seal_seq,
                hex_groups(&s.seal_hash)
            );
            let _ = writeln!(o, "As PGP words:\n");
            for line in super::display::pgp_word_lines(&s.seal_hash) {
                let _ = writeln!(o, "    {line}");
            }
            let _ = writeln!(o);
            let _ = writeln!(o, "| key id | keyholder | scheme | seq |");
            let _ = writeln!(o, "|---|---|---|---:|");
            for k in &s.signers {
                let _ = writeln!(
                    o,
                    "| `{}` | {} | {} | {} |",
                    k.keyid,
                    cell(&k.actor),
                    cell(&k.key.scheme),
                    k.seq
                );
            }
            let _ = writeln!(o, "\n## Artifacts\n");
            let _ = writeln!(o, "| name | SHA-256 | bytes | in the folder |");
            let _ = writeln!(o, "|---|---|---:|---|");
            for art in &s.details.artifacts {
                let status = match &a.artifacts {
                    None => "not checked".to_string(),
                    Some(c) if c.matching.contains(&art.name) => "ok".to_string(),
                    Some(c) if c.missing.iter().any(|m| m.name == art.name) => {
                        "**MISSING**".to_string()
                    }
                    Some(c) => c
                        .mismatched
                        .iter()
                        .find(|m| m.expected.name == art.name)
                        .map(|m| {
                            format!(
                                "**CHANGED** (`{}`, {} bytes)",
                                hex::encode(m.found.sha256),
                                m.found.length
                            )
                        })
                        .unwrap_or_default(),
                };
                let _ = writeln!(
                    o,
                    "| {} | `{}` | {} | {} |",
                    cell(&art.name),
                    hex::encode(art.sha256),
                    art.length,
                    status
                );
            }
            match (artifacts_dir, &a.artifacts) {
                (Some(dir), Some(c)) => {
                    let _ = writeln!(o, "\nFolder checked: `{}`.", cell(dir));
                    for n in &c.unlisted {
                        let _ = writeln!(o, "- unlisted (not in the seal): {}", cell(n));
                    }
                }
                _ => {
                    let _ = writeln!(o, "\nNo artifacts folder was checked.");
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(cell("a|b`c\nd<script>"), "a\\|b\\`c\\nd&lt;script>");
    }

    #[test]
    fn an_invalid_audit_says_so_first() {
        let a = super::super::audit::audit(b"{}\n", None, false);
        let md = markdown("t.jsonl", &[0; 32], None, &a);
        assert!(md.contains("| Verdict | **INVALID**: line 1: "), "{md}");
        assert!(
            md.contains("Not checked: the chain did not verify."),
            "{md}"
        );
        assert!(md.contains(CONFORMANCE));
    }
}
