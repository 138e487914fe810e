//! The auditor's report: what an auditor files after checking a transcript, as Markdown or as a
//! self-contained HTML page. Pure: builds one document from an [`Audit`] and renders it.

use std::fmt::Write as _;

use super::audit::Audit;
use super::details::BeginDetails;
use super::display::{clean, hex_groups, pgp_word_lines};

/// What the report says about script conformance in this version.
pub const CONFORMANCE: &str = "Script conformance (each step against the script, metadata signatures and thresholds, the exported result): not checked, because the hash chain did not verify.";

/// A piece of text with its style.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Span {
    Text(String),
    Code(String),
    Strong(String),
}

type Cell = Vec<Span>;

/// One block of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Block {
    Heading(String),
    Para(Cell),
    Table {
        header: Vec<&'static str>,
        rows: Vec<Vec<Cell>>,
    },
    Pre(Vec<String>),
    List(Vec<Cell>),
}

fn text(s: impl Into<String>) -> Cell {
    vec![Span::Text(s.into())]
}

fn code(s: impl Into<String>) -> Cell {
    vec![Span::Code(s.into())]
}

/// Build the report. `transcript_sha256` is the SHA-256 of the transcript file as read.
fn document(
    name: &str,
    transcript_sha256: &[u8; 32],
    artifacts_dir: Option<&str>,
    a: &Audit,
) -> Vec<Block> {
    let mut doc = Vec::new();
    let (word, why) = a.verdict_text();
    let mut verdict = vec![Span::Strong(word.into())];
    if !why.is_empty() {
        verdict.push(Span::Text(format!(": {why}")));
    }
    // First what decides: the verdict, the key-event log, the anchor, practice or not, the
    // air-gap, the warnings and exceptions.
    let mut first = vec![vec![text("Verdict"), verdict]];
    first.push(vec![
        text("Key-event log"),
        match &a.log {
            None => text("not checked (no --log DIR given)"),
            Some(l) if l.passed => vec![
                Span::Strong("VALID".into()),
                Span::Text(format!(
                    ": {} verifies with the ceremony's root and carries this transcript's seal",
                    l.name
                )),
            ],
            Some(l) => vec![
                Span::Strong("INVALID".into()),
                Span::Text(format!(
                    ": {}: {}",
                    l.name,
                    l.failure.as_deref().unwrap_or("does not verify")
                )),
            ],
        },
    ]);
    first.push(vec![
        text("Anchor"),
        match &a.anchor {
            None => vec![
                Span::Strong("none".into()),
                Span::Text(
                    ": no trusted root was given; the seal's signers are not checked against the registry's keys"
                        .into(),
                ),
            ],
            Some(an) => {
                let mut c = text(format!("trusted root {}", an.trusted));
                if let Some(v) = an.root_version {
                    c.push(Span::Text(format!(
                        "; root in force at the end: version {v}"
                    )));
                }
                if let Some(n) = &an.count {
                    c.push(Span::Text(format!("; seal: {}", n.summary())));
                }
                if let Some(e) = &an.error {
                    c.push(Span::Strong(" NOT ANCHORED".into()));
                    c.push(Span::Text(format!(": {e}")));
                }
                c
            }
        },
    ]);
    match &a.room {
        None => {
            first.push(vec![
                text("Practice"),
                text("unknown (the events were not replayed)"),
            ]);
            first.push(vec![
                text("Air-gap"),
                text("unknown (the events were not replayed)"),
            ]);
        }
        Some(room) => {
            first.push(vec![
                text("Practice"),
                if room.practice {
                    vec![
                        Span::Strong("PRACTICE".into()),
                        Span::Text(
                            ": a rehearsal on practice tokens, not a ceremony of the registry"
                                .into(),
                        ),
                    ]
                } else {
                    text("no: a ceremony on the keyholders' tokens")
                },
            ]);
            first.push(vec![
                text("Air-gap"),
                match &room.airgap {
                    None => text("not recorded"),
                    Some((i, r)) if i.is_empty() && r.is_empty() => {
                        text("air-gapped (no network interface other than lo, no radio)")
                    }
                    Some((i, r)) => vec![
                        Span::Strong("NOT air-gapped".into()),
                        Span::Text(format!(
                            ": interfaces {}; radios {}",
                            if i.is_empty() {
                                "none".into()
                            } else {
                                i.join(", ")
                            },
                            if r.is_empty() {
                                "none".into()
                            } else {
                                r.join(", ")
                            }
                        )),
                    ],
                },
            ]);
            first.push(vec![
                text("Warnings and exceptions"),
                text(room.notes.len().to_string()),
            ]);
        }
    }
    doc.push(Block::Table {
        header: vec!["", ""],
        rows: first,
    });
    if let Some(room) = &a.room {
        doc.push(Block::Heading("Warnings and exceptions".into()));
        if room.notes.is_empty() {
            doc.push(Block::Para(text("None were recorded.")));
        } else {
            doc.push(Block::Table {
                header: vec!["seq", "time (UTC)", "who", "step", "kind", "what"],
                rows: room
                    .notes
                    .iter()
                    .map(|n| {
                        vec![
                            text(n.seq.to_string()),
                            text(n.time.clone()),
                            text(n.who.clone()),
                            text(n.step.clone()),
                            vec![Span::Strong(n.kind.to_uppercase())],
                            text(n.text.clone()),
                        ]
                    })
                    .collect(),
            });
        }
    }
    if let Some(an) = &a.anchor
        && !an.signers.is_empty()
    {
        doc.push(Block::Heading(
            "Seal signatures against the trusted root".into(),
        ));
        for step in &an.chain {
            doc.push(Block::Para(text(format!("Root chain: {step}"))));
        }
        doc.push(Block::Table {
            header: vec![
                "seq",
                "labelled",
                "held by (transcript)",
                "token key id (seal record)",
                "root key id (metadata)",
            ],
            rows: an
                .signers
                .iter()
                .map(|s| {
                    vec![
                        text(s.seq.to_string()),
                        text(s.actor.clone()),
                        text(s.holder.clone().unwrap_or_else(|| "not named".into())),
                        code(s.keyid.clone()),
                        match &s.root_keyid {
                            Some(id) => code(id.clone()),
                            None => text("not a root key (not counted)"),
                        },
                    ]
                })
                .collect(),
        });
    }
    if let Some(l) = &a.log {
        doc.push(Block::Heading("Key-event log".into()));
        doc.push(Block::List(
            l.lines.iter().map(|x| text(x.clone())).collect(),
        ));
    }
    let mut facts = vec![
        vec![text("Transcript"), code(name)],
        vec![
            text("Transcript SHA-256"),
            code(hex::encode(transcript_sha256)),
        ],
    ];
    if let Some(b) = a
        .records
        .first()
        .and_then(|r| BeginDetails::from_value(r.details.clone(), "details").ok())
    {
        facts.push(vec![text("Script"), text(b.script.name)]);
        facts.push(vec![
            text("Script SHA-256"),
            code(hex::encode(b.script.sha256)),
        ]);
        facts.push(vec![text("Conclave version"), text(b.conclave_version)]);
        for i in &b.inputs {
            facts.push(vec![
                text("Input"),
                vec![
                    Span::Text(format!("{} ", i.name)),
                    Span::Code(hex::encode(i.sha256)),
                    Span::Text(format!(" {} bytes", i.length)),
                ],
            ]);
        }
    }
    if let Some(h) = a.head {
        facts.push(vec![
            text("Head (last verified record)"),
            code(hex_groups(&h)),
        ]);
    }
    doc.push(Block::Table {
        header: vec!["", ""],
        rows: facts,
    });
    doc.push(Block::Para(text(
        a.conformance.as_deref().unwrap_or(CONFORMANCE),
    )));

    let people = people_and_tokens(&a.records, &|id| a.metadata_key_id(id).to_string());
    if !people.is_empty() {
        doc.push(Block::Heading("People and tokens".into()));
        doc.push(Block::Table {
            header: vec![
                "person",
                "as",
                "tokens (serial)",
                "signatures (role: key id)",
            ],
            rows: people
                .into_iter()
                .map(|p| {
                    vec![
                        text(p.name),
                        text(p.roles.join(", ")),
                        text(p.tokens.join(", ")),
                        text(p.signatures.join("; ")),
                    ]
                })
                .collect(),
        });
    }
    if !a.keys.is_empty() {
        doc.push(Block::Heading("Keys before and after".into()));
        let mut rows = Vec::new();
        for r in &a.keys {
            let thr = |t: Option<u64>| t.map_or_else(|| "—".to_string(), |t| t.to_string());
            let role = format!(
                "{} (threshold {} → {})",
                r.role,
                thr(r.threshold_before),
                thr(r.threshold_after)
            );
            for k in &r.keys {
                rows.push(vec![
                    text(role.clone()),
                    code(k.keyid.clone()),
                    text(k.scheme.clone()),
                    text(k.owner.clone().unwrap_or_default()),
                    text(if k.before { "yes" } else { "—" }),
                    text(if k.after { "yes" } else { "—" }),
                    text(change(k)),
                ]);
            }
        }
        doc.push(Block::Table {
            header: vec![
                "role", "key id", "type", "owner", "before", "after", "change",
            ],
            rows,
        });
    }

    doc.push(Block::Heading("Timeline".into()));
    let people = people_and_tokens(&a.records, &|id| a.metadata_key_id(id).to_string());
    let role_of = |actor: &str| {
        people
            .iter()
            .find(|p| p.name == actor)
            .map(|p| p.roles.join(", "))
            .unwrap_or_default()
    };
    doc.push(Block::Table {
        header: vec![
            "seq",
            "time (UTC)",
            "actor",
            "as",
            "step",
            "action",
            "what happened",
        ],
        rows: a
            .records
            .iter()
            .map(|r| {
                vec![
                    text(r.seq.to_string()),
                    text(r.time.to_string()),
                    text(r.actor.clone()),
                    text(role_of(&r.actor)),
                    text(r.step.clone().unwrap_or_default()),
                    text(r.action.clone()),
                    text(a.record_summary(r)),
                ]
            })
            .collect(),
    });
    if let Some(e) = &a.chain_error {
        doc.push(Block::Para(vec![
            Span::Strong("First bad record".into()),
            Span::Text(format!(": {name}: {e}")),
        ]));
    }
    if let Some(t) = &a.torn {
        doc.push(Block::Para(vec![
            Span::Text(format!(
                "A torn last line of {} bytes at byte {} was ignored (SHA-256 ",
                t.bytes, t.offset
            )),
            Span::Code(hex::encode(t.sha256)),
            Span::Text(").".into()),
        ]));
    }

    doc.push(Block::Heading("Seal".into()));
    match &a.seal {
        None => doc.push(Block::Para(text("Not checked: the chain did not verify."))),
        Some(Err(e)) => doc.push(Block::Para(text(e.to_string()))),
        Some(Ok(s)) => {
            doc.push(Block::Para(text(format!(
                "Seal record seq {}. The seal hash is what the keyholders signed and the witnesses wrote down:",
                s.seal_seq
            ))));
            let mut pre = vec![hex_groups(&s.seal_hash), String::new()];
            pre.extend(pgp_word_lines(&s.seal_hash));
            doc.push(Block::Pre(pre));
            doc.push(Block::Table {
                header: vec!["key id", "keyholder", "scheme", "seq"],
                rows: s
                    .signers
                    .iter()
                    .map(|k| {
                        vec![
                            code(a.metadata_key_id(&k.keyid.0).to_string()),
                            text(k.actor.clone()),
                            text(k.key.scheme.clone()),
                            text(k.seq.to_string()),
                        ]
                    })
                    .collect(),
            });
            if !s.withdrawals.is_empty() {
                doc.push(Block::Para(text(
                    "Withdrawn from an earlier seal (the administrator recorded why; a new seal over the same artifacts lists the other signers, every one of whom signed it, so the transcript still cannot be cut short unnoticed):",
                )));
                doc.push(Block::Table {
                    header: vec![
                        "key id",
                        "reason",
                        "recorded by",
                        "seq",
                        "superseded seal seq",
                        "signatures before",
                    ],
                    rows: s
                        .withdrawals
                        .iter()
                        .map(|w| {
                            vec![
                                code(a.metadata_key_id(&w.keyid.0).to_string()),
                                text(w.reason.clone()),
                                text(w.actor.clone()),
                                text(w.seq.to_string()),
                                text(w.seal_seq.to_string()),
                                text(w.signed.len().to_string()),
                            ]
                        })
                        .collect(),
                });
            }
            doc.push(Block::Heading("Artifacts".into()));
            let rows = s
                .details
                .artifacts
                .iter()
                .map(|art| {
                    let status = match &a.artifacts {
                        None => text("not checked"),
                        Some(c) if c.matching.contains(&art.name) => text("ok"),
                        Some(c) if c.missing.iter().any(|m| m.name == art.name) => {
                            vec![Span::Strong("MISSING".into())]
                        }
                        Some(c) => c
                            .mismatched
                            .iter()
                            .find(|m| m.expected.name == art.name)
                            .map(|m| {
                                vec![
                                    Span::Strong("CHANGED".into()),
                                    Span::Text(format!(" {} bytes, ", m.found.length)),
                                    Span::Code(hex::encode(m.found.sha256)),
                                ]
                            })
                            .unwrap_or_default(),
                    };
                    vec![
                        text(art.name.clone()),
                        code(hex::encode(art.sha256)),
                        text(art.length.to_string()),
                        status,
                    ]
                })
                .collect();
            doc.push(Block::Table {
                header: vec!["name", "SHA-256", "bytes", "in the folder"],
                rows,
            });
            match (artifacts_dir, &a.artifacts) {
                (Some(dir), Some(c)) => {
                    doc.push(Block::Para(vec![
                        Span::Text("Folder checked: ".into()),
                        Span::Code(dir.to_string()),
                    ]));
                    if !c.unlisted.is_empty() {
                        doc.push(Block::List(
                            c.unlisted
                                .iter()
                                .map(|n| text(format!("unlisted (not in the seal): {n}")))
                                .collect(),
                        ));
                    }
                }
                _ => doc.push(Block::Para(text("No artifacts folder was checked."))),
            }
        }
    }
    doc
}

/// Text for Markdown: one line, control characters shown escaped, Markdown and HTML syntax
/// escaped so a record cannot break the table or add markup.
/// One person of the ceremony as the records name them.
#[derive(Debug, Default, PartialEq, Eq)]
struct PersonRow {
    name: String,
    roles: Vec<String>,
    tokens: Vec<String>,
    signatures: Vec<String>,
}

/// People from the roll call, the tokens their keys were generated in, and what each signed
/// (metadata and the seal), read from the records' details.
fn people_and_tokens(
    records: &[crate::transcript::record::Record],
    metadata_id: &dyn Fn(&str) -> String,
) -> Vec<PersonRow> {
    let mut rows: Vec<PersonRow> = Vec::new();
    fn row<'a>(rows: &'a mut Vec<PersonRow>, name: &str) -> &'a mut PersonRow {
        if let Some(i) = rows.iter().position(|r| r.name == name) {
            &mut rows[i]
        } else {
            rows.push(PersonRow {
                name: name.to_string(),
                ..PersonRow::default()
            });
            let last = rows.len() - 1;
            &mut rows[last]
        }
    }
    let str_of = |v: Option<&crate::tuf::canonical::Value>| {
        v.and_then(crate::tuf::canonical::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for r in records {
        let Some(d) = r.details.as_object() else {
            continue;
        };
        match r.action.as_str() {
            "roll-call" => {
                let admin = str_of(d.get("administrator"));
                if !admin.is_empty() {
                    row(&mut rows, &admin).roles.push("administrator".into());
                }
                for (field, role) in [("keyholders", "keyholder"), ("witnesses", "witness")] {
                    if let Some(crate::tuf::canonical::Value::Array(names)) = d.get(field) {
                        for n in names.iter().filter_map(|n| n.as_str()) {
                            row(&mut rows, n).roles.push(role.into());
                        }
                    }
                }
            }
            "key-generated" => {
                let who = str_of(d.get("keyholder"));
                // The token's identity (module, serial, label) where recorded, else its serial.
                let mut token = match d.get("token").and_then(|v| v.as_str()) {
                    Some(t) => t.to_string(),
                    None => str_of(d.get("token_serial")),
                };
                if let Some(slot) = d.get("piv_slot").and_then(|v| v.as_str()) {
                    token.push_str(&format!(", PIV slot {slot}"));
                }
                if matches!(
                    d.get("existing"),
                    Some(crate::tuf::canonical::Value::Bool(true))
                ) {
                    token.push_str(" (EXISTING key taken, not generated in this ceremony)");
                }
                if let Some(crate::tuf::canonical::Value::Array(adv)) = d.get("advisories") {
                    for a in adv.iter().filter_map(|a| a.as_str()) {
                        token.push_str(&format!(" [advisory {a}]"));
                    }
                }
                let p = row(&mut rows, &who);
                if !p.tokens.contains(&token) {
                    p.tokens.push(token);
                }
            }
            "signed" => {
                let who = str_of(d.get("keyholder"));
                let role = str_of(d.get("role"));
                let keyid = str_of(d.get("keyid"));
                row(&mut rows, &who)
                    .signatures
                    .push(format!("{role}: {keyid}"));
            }
            "seal-signature" => {
                let keyid = str_of(d.get("keyid"));
                let keyid = metadata_id(&keyid);
                row(&mut rows, &r.actor)
                    .signatures
                    .push(format!("seal: {keyid}"));
            }
            _ => {}
        }
    }
    rows
}

fn change(k: &crate::ceremony::engine::KeyRow) -> &'static str {
    match (k.before, k.after) {
        (false, true) => "added",
        (true, false) => "removed",
        _ => "kept",
    }
}

/// The key table as text lines: per role its threshold change, then each key added, removed
/// or kept with its owner.
pub fn key_table_lines(table: &[crate::ceremony::engine::RoleKeyTable]) -> Vec<String> {
    let thr = |t: Option<u64>| t.map_or_else(|| "none".to_string(), |t| t.to_string());
    let mut out = Vec::new();
    for r in table {
        out.push(format!(
            "{}: threshold {} -> {}",
            r.role,
            thr(r.threshold_before),
            thr(r.threshold_after)
        ));
        for k in &r.keys {
            let sign = match change(k) {
                "added" => "+",
                "removed" => "-",
                _ => "=",
            };
            out.push(format!(
                "  {sign} {} {} {}{}",
                change(k),
                k.keyid,
                k.scheme,
                k.owner
                    .as_ref()
                    .map(|o| format!(", owner {o}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

fn md_cell(cell: &Cell) -> String {
    cell.iter()
        .map(|s| match s {
            Span::Text(t) => md_escape(t),
            // Code spans cannot escape a backquote; hashes and key ids never contain one.
            Span::Code(t) => format!("`{}`", clean(t).replace('`', "'").replace('|', "\\|")),
            Span::Strong(t) => format!("**{}**", md_escape(t)),
        })
        .collect()
}

/// The report as Markdown.
pub fn markdown(
    name: &str,
    transcript_sha256: &[u8; 32],
    artifacts_dir: Option<&str>,
    a: &Audit,
) -> String {
    let mut o = String::from("# Ceremony transcript audit\n");
    for block in document(name, transcript_sha256, artifacts_dir, a) {
        o.push('\n');
        match block {
            Block::Heading(h) => {
                let _ = writeln!(o, "## {}", md_escape(&h));
            }
            Block::Para(p) => {
                let _ = writeln!(o, "{}", md_cell(&p));
            }
            Block::Table { header, rows } => {
                let _ = writeln!(o, "| {} |", header.join(" | "));
                let _ = writeln!(o, "|{}", "---|".repeat(header.len()));
                for row in rows {
                    let cells: Vec<String> = row.iter().map(md_cell).collect();
                    let _ = writeln!(o, "| {} |", cells.join(" | "));
                }
            }
            Block::Pre(lines) => {
                for l in lines {
                    let _ = writeln!(o, "    {}", clean(&l));
                }
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(o, "- {}", md_cell(&i));
                }
            }
        }
    }
    o
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn html_cell(cell: &Cell) -> String {
    cell.iter()
        .map(|s| match s {
            Span::Text(t) => html_escape(t),
            Span::Code(t) => format!("<code>{}</code>", html_escape(t)),
            Span::Strong(t) => format!("<strong>{}</strong>", html_escape(t)),
        })
        .collect()
}

const STYLE: &str = "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.2em .5em;\
text-align:left;vertical-align:top}code,pre{font-family:monospace}pre{background:#f4f4f4;padding:.5em}";

/// The report as one self-contained HTML page (inline style, no scripts, no external resources).
pub fn html(
    name: &str,
    transcript_sha256: &[u8; 32],
    artifacts_dir: Option<&str>,
    a: &Audit,
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Ceremony transcript audit: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Ceremony transcript audit</h1>\n",
        html_escape(name)
    );
    for block in document(name, transcript_sha256, artifacts_dir, a) {
        match block {
            Block::Heading(h) => {
                let _ = writeln!(o, "<h2>{}</h2>", html_escape(&h));
            }
            Block::Para(p) => {
                let _ = writeln!(o, "<p>{}</p>", html_cell(&p));
            }
            Block::Table { header, rows } => {
                o.push_str("<table>");
                if header.iter().any(|h| !h.is_empty()) {
                    o.push_str("<tr>");
                    for h in header {
                        let _ = write!(o, "<th>{}</th>", html_escape(h));
                    }
                    o.push_str("</tr>");
                }
                o.push('\n');
                for row in rows {
                    o.push_str("<tr>");
                    for c in row {
                        let _ = write!(o, "<td>{}</td>", html_cell(&c));
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</table>\n");
            }
            Block::Pre(lines) => {
                let body: Vec<String> = lines.iter().map(|l| html_escape(l)).collect();
                let _ = writeln!(o, "<pre>{}</pre>", body.join("\n"));
            }
            Block::List(items) => {
                o.push_str("<ul>");
                for i in items {
                    let _ = write!(o, "<li>{}</li>", html_cell(&i));
                }
                o.push_str("</ul>\n");
            }
        }
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::record::{GENESIS_PREV, Record, Timestamp};
    use crate::tuf::canonical::Value;

    fn hostile_audit() -> Audit {
        // A record whose text tries to break out of the table and inject markup.
        let begin = crate::transcript::details::BeginDetails::new("practice", b"x", false, vec![]);
        let r0 = Record::new(
            0,
            Timestamp::parse("2026-11-23T06:00:00Z").unwrap(),
            "admin",
            None,
            "begin",
            begin.to_value(),
            GENESIS_PREV,
        );
        let r1 = Record::new(
            1,
            Timestamp::parse("2026-11-23T06:00:01Z").unwrap(),
            "<script>alert(1)</script>|x`*_",
            None,
            "note",
            Value::from("a|b\nc"),
            r0.hash,
        );
        let text = format!("{}{}", r0.to_line(), r1.to_line());
        super::super::audit::audit(text.as_bytes(), None, true)
    }

    #[test]
    fn markdown_cannot_be_broken_by_record_text() {
        let md = markdown("t.jsonl", &[0; 32], None, &hostile_audit());
        assert!(md.contains("**PARTIAL**: verified up to seq 1;"), "{md}");
        let row = md.lines().find(|l| l.starts_with("| 1 |")).unwrap();
        // Every | inside the actor and summary is escaped: the row has exactly 8 separators.
        let separators = row
            .match_indices('|')
            .filter(|(i, _)| *i == 0 || row.as_bytes()[i - 1] != b'\\');
        assert_eq!(separators.count(), 8, "{row}");
        assert!(!md.contains("<script>"), "{md}");
        assert!(md.contains(CONFORMANCE));
    }

    #[test]
    fn html_is_escaped_and_self_contained() {
        let page = html("t<1>.jsonl", &[0; 32], None, &hostile_audit());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("t&lt;1&gt;.jsonl"));
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains(" src="));
        assert!(page.contains("<strong>PARTIAL</strong>"));
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
    }

    #[test]
    fn exceptions_and_warnings_are_listed_with_who_when_and_what_before_the_timeline() {
        use crate::transcript::audit::{Note, Room};
        let mut a = hostile_audit();
        a.room = Some(Room {
            practice: false,
            airgap: Some((Vec::new(), vec!["hci0".into()])),
            notes: vec![
                Note {
                    seq: 5,
                    time: "2026-11-23T06:00:05Z".into(),
                    who: "wendy".into(),
                    step: "7".into(),
                    kind: "exception",
                    text: "bob's token was out of the bag | unsealed".into(),
                },
                Note {
                    seq: 9,
                    time: "2026-11-23T06:00:09Z".into(),
                    who: "administrator".into(),
                    step: "8".into(),
                    kind: "warning",
                    text: "expiry shorter than the policy".into(),
                },
            ],
        });
        let md = markdown("t.jsonl", &[0; 32], None, &a);
        let at = |n: &str| md.find(n).unwrap_or_else(|| panic!("{n:?}:\n{md}"));
        assert!(at("| Practice | no: a ceremony on the keyholders' tokens |") < at("## Timeline"));
        assert!(
            at("| Air-gap | **NOT air-gapped**: interfaces none; radios hci0 |")
                < at("## Timeline")
        );
        assert!(at("| Warnings and exceptions | 2 |") < at("## Timeline"));
        assert!(at("| Key-event log | not checked (no --log DIR given) |") < at("## Timeline"));
        assert!(at("| Anchor | **none**: no trusted root was given") < at("## Timeline"));
        assert!(
            at(
                "| 5 | 2026-11-23T06:00:05Z | wendy | 7 | **EXCEPTION** | bob's token was out of the bag \\| unsealed |"
            ) < at("## Timeline")
        );
        assert!(md.contains("| 9 | 2026-11-23T06:00:09Z | administrator | 8 | **WARNING** | expiry shorter than the policy |"));
        let page = html("t.jsonl", &[0; 32], None, &a);
        assert!(page.contains("<td><strong>EXCEPTION</strong></td><td>bob&#39;s token was out of the bag | unsealed</td>"), "{page}");
    }
}
