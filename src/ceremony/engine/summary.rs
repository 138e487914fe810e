//! The summary-first review of a large claimed-project ceremony (issue 17): above
//! [`SUMMARY_FIRST_ABOVE_LINES`] review lines, the room first reads a summary (counts per kind of
//! change, the policy checks the engine ran on the requests and their outcome, the SHA-256 of
//! the request set) and the full list stays behind it. What changes a key or a threshold of a
//! top-level role is never folded into the summary: those lines are part of it, read line by
//! line. The approval of a summary-first review carries the room's confirmation that the request
//! set's SHA-256 matches the value the registry published before the ceremony
//! ([`super::Event::Approved`]'s `request_set_sha256`); the engine refuses it otherwise, so the UI and
//! the headless runner cannot disagree.

use std::collections::{BTreeMap, HashSet};

use super::{Engine, EngineError, accepted_loss_line, int_param, proposal_findings};
use crate::ceremony::script::ParamValue;
use crate::text::show;
use crate::tuf::compat;
use crate::tuf::metadata::{DelegatedRole, Delegations};

/// A review with a key request set and more lines than this opens with the summary. 200 lines
/// are about 40 claimed projects (a project takes a line, its request file and SHA-256, and a
/// line per key): about seven screens at 80x24, beyond which a room reads a list less carefully
/// than a summary and a digest it compares with the published value.
pub const SUMMARY_FIRST_ABOVE_LINES: usize = 200;

/// The summary the room reads before the full list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewSummary {
    /// Lines in the full list (what [`Engine::review_lines`] gives).
    pub total_lines: usize,
    /// The new versions (e.g. "targets v3 -> v4, expires ...").
    pub versions: Vec<String>,
    /// (kind of change, count), every kind listed, zeros included.
    pub counts: Vec<(&'static str, usize)>,
    /// The checks the engine ran on the requests and the proposal, with their outcome.
    pub policy: Vec<String>,
    /// Request files in the set.
    pub request_files: usize,
    /// SHA-256 of the request set (hex), as `sha256sum *.json | sha256sum` prints it.
    pub request_set_sha256: String,
    /// The review's lines that change a key or a threshold of a top-level role, whole and in
    /// order: never folded into the summary.
    pub line_by_line: Vec<String>,
}

/// The lines of a review (as [`Engine::review_lines`] writes them) that belong to a top-level
/// role's keys and thresholds: the root section (its version line and every indented line
/// under it: each role's threshold, keys added and removed, key sets now and after).
pub fn top_level_lines(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in lines {
        if !l.starts_with(' ') {
            inside = l.starts_with("root v");
        }
        if inside {
            out.push(l.clone());
        }
    }
    out
}

/// Delegated roles by name.
fn roles_of(d: Option<&Delegations>) -> BTreeMap<&str, &DelegatedRole> {
    d.and_then(|d| d.roles.as_ref())
        .map(|roles| roles.iter().map(|r| (r.name.as_str(), r)).collect())
        .unwrap_or_default()
}

/// Key ids the delegations list.
fn key_ids_of(d: Option<&Delegations>) -> HashSet<&str> {
    d.map(|d| d.keys.iter().map(|(id, _)| id.0.as_str()).collect())
        .unwrap_or_default()
}

impl Engine {
    /// SHA-256 of the imported request set (`None` without key requests or without their file
    /// names and hashes, as in transcripts written before they were recorded).
    pub fn request_set_sha256(&self) -> Option<String> {
        (!self.request_sources.is_empty()).then(|| super::request_set_digest(&self.request_sources))
    }

    /// The summary the review opens with, when the review is summary-first: a proposal from key
    /// requests whose review has more than [`SUMMARY_FIRST_ABOVE_LINES`] lines.
    pub fn review_summary(&self) -> Option<ReviewSummary> {
        self.review_summary_of(&self.review_lines())
    }

    /// [`Engine::review_summary`] over review lines already built.
    pub fn review_summary_of(&self, lines: &[String]) -> Option<ReviewSummary> {
        let digest = self.request_set_sha256()?;
        let p = self.proposal.as_ref()?;
        if lines.len() <= SUMMARY_FIRST_ABOVE_LINES {
            return None;
        }
        let old_targets = self
            .current
            .as_ref()
            .and_then(|(_, t)| t.as_ref())
            .map(|t| t.signed());
        let new_targets = p.targets.as_ref().map(|t| t.signed());
        let old_d = old_targets.and_then(|t| t.delegations.as_ref());
        let new_d = new_targets.and_then(|t| t.delegations.as_ref());
        let (before, after) = (roles_of(old_d), roles_of(new_d));
        let added = after.keys().filter(|n| !before.contains_key(*n)).count();
        let removed = before.keys().filter(|n| !after.contains_key(*n)).count();
        let mut changed = 0;
        let mut thresholds = 0;
        for (name, new) in &after {
            if let Some(old) = before.get(name) {
                if old.role.threshold != new.role.threshold {
                    thresholds += 1;
                }
                if old.role.keyids != new.role.keyids
                    || old.role.threshold != new.role.threshold
                    || old.paths != new.paths
                    || old.path_hash_prefixes != new.path_hash_prefixes
                    || old.terminating != new.terminating
                {
                    changed += 1;
                }
            }
        }
        let (old_keys, new_keys) = (key_ids_of(old_d), key_ids_of(new_d));
        let keys_added = new_keys.difference(&old_keys).count();
        let keys_removed = old_keys.difference(&new_keys).count();
        // Top-level roles: keys and thresholds that change in root.
        let (mut top_keys, mut top_thresholds) = (0, 0);
        if let (Some(new_root), Some((old_root, _))) = (&p.root, &self.current) {
            for ty in crate::tuf::metadata::RoleType::ALL {
                let (o, n) = (old_root.signed().role(ty), new_root.signed().role(ty));
                top_keys += n.keyids.iter().filter(|id| !o.keyids.contains(id)).count();
                top_keys += o.keyids.iter().filter(|id| !n.keyids.contains(id)).count();
                top_thresholds += usize::from(o.threshold != n.threshold);
            }
        }
        let counts = vec![
            ("projects added", added),
            ("projects removed", removed),
            ("projects changed", changed),
            ("developer keys added", keys_added),
            ("developer keys removed", keys_removed),
            ("project threshold changes", thresholds),
            ("top-level role keys added or removed", top_keys),
            ("top-level role threshold changes", top_thresholds),
        ];
        let versions = lines
            .iter()
            .filter(|l| l.starts_with("targets v"))
            .cloned()
            .collect();
        Some(ReviewSummary {
            total_lines: lines.len(),
            versions,
            counts,
            policy: self.policy_results(),
            request_files: self.request_sources.len(),
            request_set_sha256: digest,
            line_by_line: top_level_lines(lines),
        })
    }

    /// The checks the engine ran on the imported requests and on the proposal built from them,
    /// with their outcome. Each is a refusal when it fails (the import or the proposal is not
    /// recorded), so at the review every one has passed; what passed only because the registry
    /// accepts losing a client is said.
    fn policy_results(&self) -> Vec<String> {
        let n = self.requests.len();
        let max = int_param(&self.params, "max_requests").max(1);
        let keys: usize = self.requests.iter().map(|r| r.keys.len()).sum();
        let lossy_keys = self
            .requests
            .iter()
            .flat_map(|r| &r.keys)
            .filter(|k| !compat::check_key(&k.key_id(), k, "").is_empty())
            .count();
        let accepted = match self.params.get(super::ACCEPT_CLIENT_LOSS) {
            Some(ParamValue::Text(t)) if !t.trim().is_empty() => show(t),
            _ => "none".into(),
        };
        let mut out = vec![
            format!("{n} request(s), at most max_requests = {max}: passed"),
            format!(
                "each request: project name usable as a role name, paths inside the project, keys usable and distinct, owner names printable, threshold reachable: {n} of {n} passed"
            ),
            "no project requested twice, none delegated already: passed".to_string(),
            if lossy_keys == 0 {
                format!(
                    "{keys} developer key(s) against the client profiles: every client reads them: passed"
                )
            } else {
                format!(
                    "{keys} developer key(s) against the client profiles: {lossy_keys} rejected only by clients the registry accepts losing ({accepted}): passed"
                )
            },
            "key ids of added keys are the SHA-256 of their key objects: passed".to_string(),
        ];
        if let Some(p) = &self.proposal {
            out.extend(
                proposal_findings(p)
                    .into_iter()
                    .map(|(role, f)| accepted_loss_line(role, &f)),
            );
        }
        out
    }

    /// The approval's `request_set_sha256` against the imported request set: a value given must
    /// be the set's SHA-256, and a summary-first review is approved only with it (the room's
    /// confirmation that it matches the value published before the ceremony).
    pub(super) fn check_request_set_confirmation(
        &self,
        confirmed: Option<&str>,
    ) -> Result<(), EngineError> {
        let actual = self.request_set_sha256();
        match (confirmed, actual) {
            (Some(c), Some(a)) if c == a => Ok(()),
            (Some(c), Some(a)) => Err(self.policy(format!(
                "the request set's SHA-256 confirmed at the approval ({}) is not the imported set's ({a}): nothing is signed",
                show(c)
            ))),
            (Some(_), None) => Err(self.policy(
                "a request set's SHA-256 is confirmed, but this ceremony imported no request files",
            )),
            (None, _) => match self.review_summary() {
                Some(s) => Err(self.policy(format!(
                    "this review opens with a summary ({} lines, more than {SUMMARY_FIRST_ABOVE_LINES}): it is approved only with the room's confirmation that the request set's SHA-256 matches the value published before the ceremony",
                    s.total_lines
                ))),
                None => Ok(()),
            },
        }
    }
}

/// The headless runner's answer to a review: the request set's SHA-256 the answers file
/// expects (`request_set_sha256`, the value published before the ceremony) compared with the
/// imported set's before the approval is recorded. Returns what the approval carries; a
/// mismatch, or a summary-first review without an expected value, is refused (before any
/// signature: signing needs the approval).
pub fn answered_request_set(
    engine: &Engine,
    expected: Option<&str>,
) -> Result<Option<String>, String> {
    let actual = engine.request_set_sha256();
    match (expected, actual) {
        (Some(e), Some(a)) if e.eq_ignore_ascii_case(&a) => Ok(Some(a)),
        (Some(e), Some(a)) => Err(format!(
            "request_set_sha256: the answers file expects {}, but the request files on the input media hash to {a} (sha256sum *.json | sha256sum in the request folder): the requests are not the published set; nothing is approved or signed",
            show(e)
        )),
        (Some(_), None) => {
            Err("request_set_sha256: given, but this ceremony imports no request files".to_string())
        }
        (None, _) => match engine.review_summary() {
            Some(s) => Err(format!(
                "request_set_sha256: required: this review has {} lines (more than {SUMMARY_FIRST_ABOVE_LINES}); give the request set's SHA-256 the registry published before the ceremony",
                s.total_lines
            )),
            None => Ok(None),
        },
    }
}

/// An engine at the review of a delegate-claimed-projects ceremony with `n` generated key
/// requests (software keys; the current root and targets signed by one software key), for the
/// summary's tests, the screen's snapshot and the figures of `make bench`.
#[cfg(test)]
pub(crate) mod fixture {
    use super::super::{Engine, Event, Need, ParamJson, RequestSource};
    use crate::ceremony::script::Script;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::canonical::Value;
    use crate::tuf::edit::{self, RoleKeys};
    use crate::tuf::key::Algorithm;
    use crate::tuf::metadata::{Metadata, RoleType};
    use sha2::Digest;

    fn signer(n: u64) -> SoftwareSigner {
        let mut seed = [7u8; 48];
        seed[..8].copy_from_slice(&n.to_le_bytes());
        SoftwareSigner::from_seed(Algorithm::Ed25519, &seed).expect("a software key")
    }

    /// `n` requests, one file each (`project-NNNNN.json`, in file-name order), every third
    /// with two developer keys and threshold 2.
    pub(crate) fn requests(n: usize) -> (Vec<Value>, Vec<RequestSource>) {
        let mut requests = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        for i in 0..n {
            let project = format!("project-{i:05}");
            let two = i % 3 == 0;
            let mut keys = vec![signer(1000 + 2 * i as u64).key().to_value()];
            if two {
                keys.push(signer(1001 + 2 * i as u64).key().to_value());
            }
            let keys: Vec<String> = keys
                .iter()
                .map(|k| String::from_utf8(k.canonical_bytes()).expect("UTF-8"))
                .collect();
            let text = format!(
                r#"{{"_type": "conclave-key-request", "project": "{project}", "paths": ["{project}/*"], "threshold": {}, "keys": [{}]}}"#,
                if two { 2 } else { 1 },
                keys.join(", ")
            );
            sources.push(RequestSource {
                file: format!("{project}.json"),
                sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
            });
            requests.push(Value::parse(text.as_bytes()).expect("request JSON"));
        }
        (requests, sources)
    }

    /// The engine at the review step after importing `n` generated requests.
    pub(crate) fn engine_at_review(n: usize) -> Engine {
        let text = include_str!("../../../ceremony-scripts/delegate-claimed-projects.toml");
        let script = Script::parse("delegate-claimed-projects.toml", text).expect("script");
        let mut engine = Engine::new(script).expect("engine");
        let mut online = signer(1);
        let expires = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .expect("a time")
        };
        let root = edit::new_root(
            &RoleType::ALL.map(|role| RoleKeys {
                role,
                keys: vec![online.key().clone()],
                threshold: 1,
            }),
            expires("2027-06-01T00:00:00Z"),
        )
        .expect("root");
        let mut root = Metadata::new(root);
        crate::signer::sign_metadata(&mut root, &mut online).expect("root signed");
        let mut targets = Metadata::new(edit::new_targets(expires("2027-01-01T00:00:00Z")));
        crate::signer::sign_metadata(&mut targets, &mut online).expect("targets signed");
        let (requests, sources) = requests(n);
        let mut imported = Some((requests, sources));
        loop {
            let step = engine.current_step().unwrap_or("end").to_string();
            let ev = match engine.need() {
                Need::Parameters => Event::Parameters {
                    values: [(
                        "max_requests".to_string(),
                        ParamJson::Integer(n.max(1) as i64),
                    )]
                    .into_iter()
                    .collect(),
                    practice: false,
                },
                Need::Acknowledge { .. } => Event::Acknowledged {
                    step,
                    value: Some("BAG-0001".into()),
                },
                Need::AirgapCheck => Event::AirgapChecked {
                    step,
                    interfaces: vec![],
                    radios: vec![],
                },
                Need::ClockConfirm => Event::ClockConfirmed {
                    step,
                    time: "2026-11-23T10:00:00Z".into(),
                    confirmation: None,
                },
                Need::RollCall { .. } => Event::RollCall {
                    step,
                    administrator: "ada".into(),
                    keyholders: vec!["alice".into(), "bob".into()],
                    witnesses: vec!["wendy".into()],
                },
                Need::LoadMetadata => Event::MetadataLoaded {
                    step,
                    root: root.to_value(),
                    targets: targets.to_value(),
                    not_before: None,
                },
                Need::ImportRequests => {
                    let (requests, sources) = imported.take().expect("imported once");
                    Event::RequestsImported {
                        step,
                        requests,
                        sources,
                    }
                }
                Need::Propose => Event::Proposed {
                    step,
                    digests: engine.proposal().expect("a proposal").digests(),
                },
                Need::Review { .. } => return engine,
                other => panic!("unexpected step before the review: {other:?}"),
            };
            let warnings = engine.apply(&ev).expect("accepted");
            for warning in warnings {
                let ack = Event::WarningAcknowledged {
                    step: engine.current_step().unwrap_or("end").to_string(),
                    warning,
                };
                engine.apply(&ack).expect("acknowledged");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::engine_at_review;
    use super::*;
    use crate::ceremony::engine::{Event, Need};

    fn approve(engine: &Engine, request_set_sha256: Option<String>) -> Event {
        let Need::Review { digests } = engine.need() else {
            panic!("not at the review")
        };
        Event::Approved {
            step: engine.current_step().unwrap_or("end").to_string(),
            digests,
            request_set_sha256,
        }
    }

    #[test]
    fn a_large_review_opens_with_counts_checks_and_the_request_set_digest() {
        let engine = engine_at_review(10_000);
        let lines = engine.review_lines();
        let sum = engine.review_summary_of(&lines).expect("summary-first");
        assert_eq!(sum.total_lines, lines.len());
        assert!(sum.total_lines > 40_000, "{}", sum.total_lines);
        let count = |kind: &str| {
            sum.counts
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, n)| *n)
                .expect(kind)
        };
        assert_eq!(count("projects added"), 10_000);
        assert_eq!(count("projects removed"), 0);
        assert_eq!(count("projects changed"), 0);
        // Every third project brings two keys.
        assert_eq!(count("developer keys added"), 10_000 + 3_334);
        assert_eq!(count("top-level role keys added or removed"), 0);
        assert_eq!(sum.request_files, 10_000);
        assert_eq!(
            Some(sum.request_set_sha256.clone()),
            engine.request_set_sha256()
        );
        assert!(
            sum.policy[0].contains("10000 request(s), at most max_requests = 10000: passed"),
            "{:?}",
            sum.policy
        );
        assert!(
            sum.policy.iter().all(|p| p.ends_with("passed")),
            "{:?}",
            sum.policy
        );
        assert!(sum.line_by_line.is_empty(), "{:?}", sum.line_by_line);
        assert_eq!(sum.versions.len(), 1);
        assert!(
            sum.versions[0].starts_with("targets v1 -> v2"),
            "{:?}",
            sum.versions
        );
        // A small review is read line by line: no summary.
        let small = engine_at_review(3);
        assert!(small.review_lines().len() <= SUMMARY_FIRST_ABOVE_LINES);
        assert_eq!(small.review_summary(), None);
    }

    #[test]
    fn a_summary_first_review_is_approved_only_with_the_confirmed_request_set_digest() {
        let engine = engine_at_review(300);
        assert!(engine.review_summary().is_some());
        let digest = engine.request_set_sha256().expect("a request set");
        let mut refused = engine.clone();
        let e = refused.apply(&approve(&engine, None)).unwrap_err();
        assert!(
            e.to_string()
                .contains("confirmation that the request set's SHA-256"),
            "{e}"
        );
        let e = refused
            .apply(&approve(&engine, Some("00".repeat(32))))
            .unwrap_err();
        assert!(e.to_string().contains("is not the imported set's"), "{e}");
        let mut approved = engine.clone();
        approved
            .apply(&approve(&engine, Some(digest.clone())))
            .expect("approved with the confirmation");
        assert!(matches!(approved.need(), Need::Sign { .. }));
        // The confirmation is in the recorded event and survives the transcript's round trip.
        let ev = approve(&engine, Some(digest.clone()));
        let v = ev.to_value();
        assert_eq!(Event::from_value(&v).unwrap(), ev);
        assert!(
            String::from_utf8(v.canonical_bytes())
                .unwrap()
                .contains(&format!("\"request_set_sha256\":\"{digest}\""))
        );
        // A small review needs none, and refuses a wrong one.
        let small = engine_at_review(3);
        small
            .clone()
            .apply(&approve(&small, None))
            .expect("no summary, no confirmation");
        assert!(
            small
                .clone()
                .apply(&approve(&small, Some("ab".repeat(32))))
                .is_err()
        );
    }

    #[test]
    fn headless_answers_must_carry_the_published_digest_and_a_mismatch_stops() {
        let engine = engine_at_review(300);
        let digest = engine.request_set_sha256().unwrap();
        let e = answered_request_set(&engine, None).unwrap_err();
        assert!(e.starts_with("request_set_sha256: required"), "{e}");
        assert!(
            !e.contains(&digest),
            "the required value is never offered: {e}"
        );
        let last = if digest.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &digest[..63]);
        let e = answered_request_set(&engine, Some(&wrong)).unwrap_err();
        assert!(
            e.contains("not the published set") && e.contains(&wrong),
            "{e}"
        );
        assert_eq!(
            answered_request_set(&engine, Some(&digest.to_uppercase())),
            Ok(Some(digest))
        );
        assert_eq!(answered_request_set(&engine_at_review(3), None), Ok(None));
    }

    #[test]
    fn top_level_key_and_threshold_lines_are_never_folded() {
        let lines: Vec<String> = [
            "targets: accepted loss",
            "root v1 -> v2, expires a -> b",
            "  root: threshold 2 -> 3 of 4 key(s)",
            "    + abcd (ed25519, owner dave)",
            "    keys after: alice, bob",
            "targets v1 -> v2, expires a -> b",
            "  + delegation \"p\": paths [\"p/*\"], threshold 1 of 1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(top_level_lines(&lines), lines[1..5].to_vec());
    }
}
