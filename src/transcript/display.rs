//! How transcript facts are shown to people: hashes in groups for reading aloud and writing on
//! the paper form, and one-line summaries of records.
//!
//! Hex groups and PGP words are the one spelling everywhere a digest is read aloud or compared by
//! eye (the paper form, the reports, the UI's review and seal screens, the QR transfer's check).

use crate::tuf::canonical::Value;

use super::details::{BeginDetails, ResumeDetails};
use super::record::{Record, compact};
use super::seal::{SealDetails, SealSignature, SealWithdrawal, WITHDRAWAL_ACTION};

/// A digest as hex in groups of four characters, e.g. `e3b0 c442 98fc ...`.
pub fn hex_groups(digest: &[u8]) -> String {
    let hex = hex::encode(digest);
    let mut out = String::with_capacity(hex.len() * 5 / 4);
    for (i, chunk) in hex.as_bytes().chunks(4).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out
}

/// A digest as PGP words: even-position bytes from the two-syllable list, odd from the
/// three-syllable list, so a swapped or dropped word is noticed when read aloud.
pub fn pgp_words(digest: &[u8]) -> Vec<String> {
    pgp_words::to_words(digest)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// PGP words in lines of eight (four bytes of the digest per half line), for the paper form.
pub fn pgp_word_lines(bytes: &[u8]) -> Vec<String> {
    pgp_words(bytes).chunks(8).map(|c| c.join(" ")).collect()
}

/// Text from a transcript made safe for a terminal and for reports:
/// [`crate::text::show_indented`] (control characters, escape sequences, bidi and invisible
/// characters shown escaped, long runs of spaces counted), keeping the indentation of the lines
/// Conclave composes (the key table), with room for a sentence (an error text quoting a record).
pub fn clean(s: &str) -> String {
    crate::text::show_indented(s)
}

/// Shorten to `max` characters, marking the cut with `...`.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// The firmware advisories of the device a key was generated on (recorded with the key), as
/// the warning shown when the key is generated (headless and in the terminal UI), and the key
/// type Conclave proposed at the roll call because of one (a correction with a reason):
/// `None` for any other event, or a device without advisories. Token text is cleaned.
pub fn advisory_warning(e: &crate::ceremony::engine::Event) -> Option<String> {
    match e {
        crate::ceremony::engine::Event::KeyGenerated {
            keyholder,
            token_serial,
            advisories,
            ..
        } if !advisories.is_empty() => Some(clean(&format!(
            "WARNING: firmware advisory on {keyholder}'s token {token_serial} (recorded in the transcript): {}",
            advisories.join("; ")
        ))),
        // The key type Conclave proposed at the roll call in place of the script's default.
        crate::ceremony::engine::Event::ParametersCorrected {
            reason: Some(_), ..
        } => Some(clean(&format!("WARNING: {}", describe(e)))),
        _ => None,
    }
}

/// One-line summary of what a record says.
pub fn summary(r: &Record) -> String {
    let d = r.details.clone();
    let text = match r.action.as_str() {
        "begin" => BeginDetails::from_value(d, "details").ok().map(|b| {
            format!(
                "script {} (sha256 {}), Conclave {}, {} input(s)",
                b.script.name,
                &hex::encode(b.script.sha256)[..16],
                b.conclave_version,
                b.inputs.len()
            )
        }),
        "resume" => ResumeDetails::from_value(d, "details").ok().map(|x| {
            if x.discarded_bytes == 0 {
                "resumed; nothing discarded".to_string()
            } else {
                format!(
                    "resumed; discarded a torn line of {} bytes (sha256 {})",
                    x.discarded_bytes,
                    &hex::encode(x.discarded_sha256)[..16]
                )
            }
        }),
        "seal" => SealDetails::from_value(d, "details").ok().map(|s| {
            format!(
                "sealed head {}; {} artifact(s), {} signer(s)",
                &hex::encode(s.head)[..16],
                s.artifacts.len(),
                s.signers.len()
            )
        }),
        "seal-signature" => SealSignature::from_value(d, "details")
            .ok()
            .map(|s| format!("signed the seal with key {}", s.keyid)),
        WITHDRAWAL_ACTION => SealWithdrawal::from_value(d, "details").ok().map(|w| {
            format!(
                "withdrew key {} from seal {} (reason: {}); a new seal without it follows",
                w.keyid,
                &hex::encode(w.seal)[..16],
                w.reason
            )
        }),
        _ => crate::ceremony::engine::Event::from_value(&d)
            .ok()
            .filter(|e| e.action() == r.action)
            .map(|e| describe(&e)),
    };
    match text {
        Some(t) => clean(&t),
        None => clean(&shorten(
            &match &r.details {
                Value::Null => String::new(),
                other => compact(other),
            },
            100,
        )),
    }
}

/// One line for people about an engine event: who did what, with which key and role.
pub fn describe(e: &crate::ceremony::engine::Event) -> String {
    use crate::ceremony::engine::{ClockConfirmation, Event, ParamJson, show_clock_difference};
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let digests = |d: &std::collections::BTreeMap<String, String>| {
        d.iter()
            .map(|(role, h)| format!("{role} sha256 {h}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let values_text = |values: &std::collections::BTreeMap<String, ParamJson>| {
        values
            .iter()
            .map(|(k, v)| match v {
                ParamJson::Integer(i) => format!("{k} = {i}"),
                ParamJson::Text(t) => format!("{k} = \"{t}\""),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match e {
        Event::ParametersCorrected { values, reason, .. } => match reason {
            None => format!("PARAMETERS CORRECTED: {}", values_text(values)),
            Some(why) => format!(
                "PARAMETERS CORRECTED: {} (proposed by Conclave: {why})",
                values_text(values)
            ),
        },
        Event::Parameters { values, practice } => {
            let v: Vec<String> = values
                .iter()
                .map(|(k, v)| match v {
                    ParamJson::Integer(i) => format!("{k} = {i}"),
                    ParamJson::Text(t) => format!("{k} = \"{t}\""),
                })
                .collect();
            format!(
                "{}parameters: {}",
                if *practice { "PRACTICE run; " } else { "" },
                if v.is_empty() {
                    "the script's defaults".to_string()
                } else {
                    v.join(", ")
                }
            )
        }
        Event::Acknowledged { value, .. } => match value {
            Some(v) => format!("acknowledged, recorded \"{v}\""),
            None => "acknowledged".to_string(),
        },
        Event::AirgapChecked {
            interfaces, radios, ..
        } => {
            if interfaces.is_empty() && radios.is_empty() {
                "air-gap check: air-gapped (no network interface other than lo, no radio)"
                    .to_string()
            } else {
                format!(
                    "air-gap check: NOT air-gapped: interfaces {}; radios {}",
                    list(interfaces),
                    list(radios)
                )
            }
        }
        Event::ClockConfirmed {
            time, confirmation, ..
        } => match confirmation {
            Some(ClockConfirmation::Reference {
                reference,
                difference_seconds,
            }) => format!(
                "clock confirmed: {time} (reference {reference}, machine {})",
                show_clock_difference(*difference_seconds)
            ),
            Some(ClockConfirmation::Practice) => {
                format!("clock confirmed: {time} (practice: machine clock, no reference)")
            }
            None => format!("clock confirmed: {time}"),
        },
        Event::RollCall {
            administrator,
            keyholders,
            witnesses,
            ..
        } => format!(
            "roll call: administrator {administrator}; keyholders {}; witnesses {}",
            list(keyholders),
            list(witnesses)
        ),
        Event::MetadataLoaded { root, targets, .. } => {
            let version = |v: &Value| {
                v.as_object()
                    .and_then(|m| m.get("signed"))
                    .and_then(Value::as_object)
                    .and_then(|m| m.get("version"))
                    .map_or_else(|| "?".to_string(), compact)
            };
            format!(
                "loaded root version {} and targets version {}",
                version(root),
                version(targets)
            )
        }
        Event::RequestsImported {
            requests, sources, ..
        } => {
            if sources.is_empty() {
                format!("imported {} key request(s)", requests.len())
            } else {
                format!(
                    "imported {} key request(s) from {} file(s), request set SHA-256 {}",
                    requests.len(),
                    sources.len(),
                    crate::ceremony::engine::request_set_digest(sources)
                )
            }
        }
        Event::TargetsImported { files, .. } => {
            format!("imported target files to publish ({} file(s))", files.len())
        }
        Event::LayoutImported { file, .. } => {
            format!("imported an in-toto layout ({} bytes)", file.len())
        }
        Event::EventImported {
            files, known_good, ..
        } => format!(
            "imported a tuf-on-ci signing event ({} file(s)) and the known-good metadata ({} file(s))",
            files.len(),
            known_good.len()
        ),
        Event::PendingImported {
            name,
            file,
            trusted_root_name,
            trusted_root,
            workspace_root_name,
            workspace_root,
            ..
        } => format!(
            "imported RSTUF's pending file {} ({} bytes), the root this appliance trusts {} ({} bytes){}",
            clean(name),
            file.len(),
            clean(trusted_root_name),
            trusted_root.len(),
            if workspace_root.is_empty() {
                String::new()
            } else {
                format!(
                    " and this workspace's {} ({} bytes)",
                    clean(workspace_root_name),
                    workspace_root.len()
                )
            }
        ),
        Event::KeysImported { keys, .. } => format!(
            "imported online keys for {}",
            list(&keys.keys().cloned().collect::<Vec<_>>())
        ),
        Event::KeyGenerated {
            keyholder,
            token_serial,
            key,
            piv_slot,
            advisories,
            ..
        } => {
            let k = crate::tuf::metadata::key_from_value(key.clone(), "key").ok();
            format!(
                "{keyholder}'s token {token_serial} generated key {} ({}){}{}",
                k.as_ref().map_or_else(|| "?".into(), |k| k.key_id().0),
                k.as_ref().map_or("?", |k| k.scheme.as_str()),
                piv_slot
                    .as_ref()
                    .map(|s| format!(" in PIV slot {s}"))
                    .unwrap_or_default(),
                advisories
                    .iter()
                    .map(|a| format!(" [advisory {a}]"))
                    .collect::<String>()
            )
        }
        Event::Proposed { digests: d, .. } => format!("proposed: {}", digests(d)),
        Event::Approved { digests: d, .. } => format!("approved: {}", digests(d)),
        Event::Signed {
            keyholder,
            role,
            keyid,
            ..
        } => format!("{keyholder} signed {role} with key {keyid}"),
        Event::SigningClosed { .. } => "signing closed: every signature the ceremony needs is in (every threshold, or the root signatures an RSTUF bootstrap asks for)".to_string(),
        Event::SignerSkipped {
            keyholder, reason, ..
        } => format!("SKIPPED at signing: {keyholder} does not sign ({reason})"),
        Event::SealSkipped {
            keyholder, reason, ..
        } => format!("SKIPPED at the seal: {keyholder} does not sign the seal ({reason})"),
        Event::Verified { .. } => "the signed result verified".to_string(),
        Event::Exported {
            files,
            destination,
            rstuf_settings,
            ..
        } => {
            let mut line = format!(
                "exported {} to {destination}",
                list(&files.keys().cloned().collect::<Vec<_>>())
            );
            if let Some(v) = rstuf_settings {
                line.push_str(&format!(
                    "; RSTUF settings in {}: {}",
                    crate::tuf::rstuf::CEREMONY_PAYLOAD,
                    String::from_utf8_lossy(&v.canonical_bytes())
                ));
            }
            line
        }
        Event::Sealed { .. } => "the last step is done: the seal follows".to_string(),
        Event::Exception { witness, text, .. } => {
            format!("EXCEPTION recorded by {witness}: {text}")
        }
        Event::WarningAcknowledged { warning, .. } => {
            format!("WARNING acknowledged: {warning}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::record::{GENESIS_PREV, Timestamp};

    #[test]
    fn hex_in_groups_of_four_and_pgp_words_in_lines_of_eight() {
        assert_eq!(hex_groups(&[0xa1, 0xb2, 0xc3, 0xd4, 0xe5]), "a1b2 c3d4 e5");
        assert_eq!(hex_groups(&[0; 32]).split(' ').count(), 16);
        let lines = pgp_word_lines(&[0; 32]);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.split(' ').count() == 8));
        // Even positions from the two-syllable list, odd from the three-syllable list.
        assert!(
            lines[0].starts_with("aardvark adroitness aardvark"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_clock_confirmation_says_how_it_was_checked() {
        use crate::ceremony::engine::{ClockConfirmation, Event};
        let ev = |confirmation| Event::ClockConfirmed {
            step: "3".into(),
            time: "2026-11-23T10:03:00Z".into(),
            confirmation,
        };
        assert_eq!(
            describe(&ev(Some(ClockConfirmation::Reference {
                reference: "2026-11-23T10:00:00Z".into(),
                difference_seconds: 180,
            }))),
            "clock confirmed: 2026-11-23T10:03:00Z (reference 2026-11-23T10:00:00Z, machine 3 min 0 s ahead)"
        );
        assert_eq!(
            describe(&ev(Some(ClockConfirmation::Practice))),
            "clock confirmed: 2026-11-23T10:03:00Z (practice: machine clock, no reference)"
        );
        assert_eq!(describe(&ev(None)), "clock confirmed: 2026-11-23T10:03:00Z");
    }

    #[test]
    fn summaries_are_one_clean_line() {
        let details = Value::parse(br#"{"note": "\u001b[2Jline\nnext"}"#).unwrap();
        let r = Record::new(
            3,
            Timestamp::parse("2026-11-23T04:00:00Z").unwrap(),
            "witness",
            None,
            "exception",
            details,
            GENESIS_PREV,
        );
        let s = summary(&r);
        assert!(!s.chars().any(char::is_control), "{s}");
        assert!(s.contains("\\u001b[2J"), "{s}");
        assert_eq!(clean("a\u{7}b"), "a\\x07b");
        assert_eq!(shorten(&"x".repeat(200), 10), "xxxxxxx...");
    }

    #[test]
    fn pgp_words_known_encodings() {
        let words = |b: &[u8]| -> Vec<String> {
            pgp_words(b)
                .iter()
                .map(|w| w.to_ascii_lowercase())
                .collect()
        };
        assert_eq!(words(&[0x00, 0x00]), ["aardvark", "adroitness"]);
        assert_eq!(words(&[0xFF, 0xFF]), ["zulu", "yucatan"]);
        // The example from the PGP word list's description.
        assert_eq!(
            words(&[0xE5, 0x82, 0x94, 0xF2]),
            ["topmost", "istanbul", "pluto", "vagabond"]
        );
    }

    #[test]
    fn pgp_word_lists_are_complete_and_distinct() {
        let mut all = std::collections::BTreeSet::new();
        for b in 0..=255u8 {
            let pair = pgp_words(&[b, b]);
            assert_eq!(pair.len(), 2);
            for w in &pair {
                assert!(w.chars().all(|c| c.is_ascii_alphabetic()), "{b:#04x}: {w}");
                assert!(all.insert(w.to_ascii_lowercase()), "{b:#04x}: {w} twice");
            }
            let back = pgp_words::to_bytes(&pair);
            assert_eq!(back, Some(vec![b, b]));
        }
        assert_eq!(all.len(), 512);
    }

    #[test]
    fn hex_groups_of_four() {
        let d = [0xab; 32];
        let g = hex_groups(&d);
        assert_eq!(g.split(' ').count(), 16);
        assert!(g.starts_with("abab abab "));
    }
}
