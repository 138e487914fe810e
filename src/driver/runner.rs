//! The headless runner (`conclave rehearse --headless`, `conclave ceremony run`): every step
//! answered from the plan, then the seal by every keyholder's token.

use std::path::Path;

use crate::ceremony::engine::Need;

use super::error::DriverError;
use super::plan::{Plan, Start};
use super::report::CeremonyReport;
use super::scripts::shipped_script;
use super::session::{Opened, Session};
use super::workspace::Workspace;

/// Run (or continue, or report: [`Start`]) a headless rehearsal of `script_name` in the
/// workspace. Must run in a process whose `SOFTHSM2_CONF` is the workspace's configuration.
pub fn run(
    ws: &Workspace,
    script_name: &str,
    sys: &Path,
    start: Start,
) -> Result<CeremonyReport, DriverError> {
    let text = shipped_script(script_name).ok_or_else(|| {
        DriverError::Io(format!(
            "no shipped ceremony script named \"{script_name}\""
        ))
    })?;
    run_script(ws, script_name, text, sys, None, start)
}

/// Why a ceremony on real tokens without a reference time is refused.
pub const REFERENCE_TIME_MISSING: &str =
    "a ceremony on real tokens confirms the machine clock against a reference time";

/// Run (or continue, or report: [`Start`]) a ceremony on real tokens, answered by `plan`
/// (`conclave ceremony run`): the online keys and key requests must be on the input media
/// (`WORKSPACE/input/`).
pub fn run_real(
    ws: &Workspace,
    script_name: &str,
    text: &str,
    sys: &Path,
    plan: Plan,
    start: Start,
) -> Result<CeremonyReport, DriverError> {
    if !plan.practice && plan.reference_time.is_none() {
        return Err(DriverError::Refused(format!(
            "{REFERENCE_TIME_MISSING}: add reference_time = \"YYYY-MM-DD HH:MM\" (UTC, read from a reference clock such as a phone or radio clock) to the answers file"
        )));
    }
    run_script(ws, script_name, text, sys, Some(plan), start)
}

/// The headless runner: every step answered from the plan, then the seal by every keyholder's
/// token.
pub(super) fn run_script(
    ws: &Workspace,
    script_name: &str,
    text: &str,
    sys: &Path,
    real: Option<Plan>,
    start: Start,
) -> Result<CeremonyReport, DriverError> {
    match Session::open(ws, script_name, text, sys, real, start)? {
        Opened::Finished(report) => Ok(*report),
        Opened::Running(s) => run_session(*s),
    }
}

/// Every step of an open ceremony answered from its plan, then the seal by every keyholder's
/// token (or, after an interruption, what is left of it).
pub(super) fn run_session(mut session: Session) -> Result<CeremonyReport, DriverError> {
    loop {
        let need = session.need();
        if need == Need::Done {
            break;
        }
        let (actor, event) = match session.answer(need, None) {
            Ok(answer) => answer,
            Err(e) => {
                // The attempt is recorded; the error it records is the one reported, with what
                // was left in which token.
                let _ = session.record_failure(&e);
                return Err(match session.abandoned_note() {
                    Some(note) => e.with_hint(note),
                    None => e,
                });
            }
        };
        // A device's firmware advisories are said when its key is generated (the transcript
        // records them with the key).
        if let Some(warning) = crate::transcript::display::advisory_warning(&event) {
            eprintln!("{warning}");
        }
        // Not written: the step, the record and why; a failed write says the same command
        // continues from the last record on disk.
        if let Err(e) = session.record_step(&actor, event) {
            let e = DriverError::from(e);
            return Err(match session.abandoned_note() {
                Some(note) => e.with_hint(note),
                None => e,
            });
        }
    }
    let mut signers = Vec::new();
    // A seal written before an interruption stands: its listed signers sign it, or are
    // withdrawn by the answers (a new seal then lists the others).
    let written = session.seal_state()?;
    for who in session.sealers() {
        // Signed the seal before an interruption: logs in again only to sign the key-event
        // log's checkpoint, and only with a key of the root in force after the ceremony.
        let signed_earlier = written.is_some() && seal_signed_by(&session, &who)?;
        if signed_earlier && !session.signs_checkpoint(&who) {
            continue;
        }
        // Everyone present whose token holds a key of this ceremony seals; a keyholder the
        // answers skip, or whose token cannot sign, is skipped and that is recorded.
        if session.engine.seal_skipped().iter().any(|(k, _)| *k == who) {
            continue;
        }
        let answered = session
            .plan
            .skip
            .get(&who)
            .or_else(|| session.plan.withdraw.get(&who))
            .cloned();
        if let (Some(_), Some(reason)) = (&written, session.plan.withdraw.get(&who).cloned())
            && session.seal_lists(&who, None)
        {
            if !seal_signed_by(&session, &who)? {
                session.withdraw_sealer(&who, None, &reason)?;
            }
            continue;
        }
        let reason = match answered {
            Some(reason) => reason,
            None => match session.seal_signer(&who, None) {
                Ok((signer, _)) => {
                    signers.push((who, signer));
                    continue;
                }
                Err(e) if signed_earlier => {
                    return Err(DriverError::Refused(format!(
                        "{who} signed the seal before the interruption and holds a root key, but \
                         their token could not sign the key-event log's checkpoint: {e}. To \
                         finish without {who}'s checkpoint signature, add [skip] {who} = \
                         \"REASON\" to the answers and run again"
                    )));
                }
                Err(e) if written.is_some() && session.seal_lists(&who, None) => {
                    return Err(DriverError::Refused(format!(
                        "the seal is written and lists {who}, whose token could not sign it: {e}. \
                         To finish without {who}, add [withdraw] {who} = \"REASON\" to the answers \
                         and run again: the withdrawal is recorded and a new seal lists the others"
                    )));
                }
                Err(e) => format!("their token could not sign the seal: {e}"),
            },
        };
        session.skip_sealer(&who, &reason)?;
    }
    session.seal(signers)
}

/// Whether `who`'s key signed the seal in force (before an interruption).
fn seal_signed_by(session: &Session, who: &str) -> Result<bool, DriverError> {
    let signed = session
        .seal_state()?
        .map(|(_, signed)| signed)
        .unwrap_or_default();
    Ok(session.seal_signed(who, &signed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceremony::engine::ParamJson;
    use crate::driver::fake_tokens::{FakeTokens, bootstrap_on_fakes, open_on, opened_on};
    use crate::driver::{DriverError, Start};

    /// The practice rotation of [`FakeTokens`]' bootstrap that removes alice's root key,
    /// opened (or continued) on the fake tokens, PINs in the plan.
    fn rotation_removing_alice(fakes: &FakeTokens, tmp: &tempfile::TempDir) -> Session {
        open_on(
            fakes,
            tmp,
            "rotate-root-keys",
            &[
                ("remove_keyholders", ParamJson::Text("alice".into())),
                ("key_type", ParamJson::Text("ed25519".into())),
            ],
            true,
            Default::default(),
        )
    }

    /// The headless runner says which step's record was not written, and why: the medium
    /// fills up (`/dev/full`, `ENOSPC`) after the first key's record, before the second's: the
    /// runner stops
    /// with a typed [`NotRecorded`](crate::driver::NotRecorded) naming the step and the
    /// key-generated record, whose source is I/O (exit 2), with the key left in the token and
    /// how to continue; nothing more is in the transcript. Runs on the in-memory token test
    /// double.
    #[test]
    fn a_record_not_written_names_its_step_and_record() {
        let fakes = FakeTokens::new();
        let (tmp, mut session) = bootstrap_on_fakes(&fakes, true);
        while !(matches!(session.need(), Need::GenerateKey { .. })
            && session.engine.generated_keys().len() == 1)
        {
            let need = session.need();
            assert_ne!(need, Need::Done, "the bootstrap generates keys");
            let (actor, event) = session.answer(need, None).unwrap();
            session.record(&actor, event).unwrap();
        }
        let step = session.step();
        let transcript = std::fs::read_dir(tmp.path().join("ws"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".transcript.jsonl"))
            .expect("the transcript");
        let before = std::fs::read(&transcript).unwrap();
        session.fill_the_disk();
        let Err(DriverError::NotRecorded(e)) = run_session(session) else {
            panic!("the run went on without its record");
        };
        assert_eq!(e.step, step);
        assert_eq!(e.what, "the key-generated record");
        assert!(e.write_failed(), "{e:?}");
        assert!(matches!(e.source, DriverError::Io(_)), "{e:?}");
        let said = DriverError::NotRecorded(e).to_string();
        assert!(
            said.starts_with(&format!(
                "step {step}: the key-generated record was NOT recorded: writing the transcript: "
            )),
            "{said}"
        );
        assert!(said.contains("No space left on device"), "{said}");
        // The key recorded before stays in its token: said, with the token.
        assert!(
            said.contains("keys generated so far stay in the tokens")
                && said.contains("alice: key "),
            "{said}"
        );
        assert!(said.ends_with(crate::driver::CONTINUES_FROM_DISK), "{said}");
        assert_eq!(std::fs::read(&transcript).unwrap(), before);
    }

    /// The transcript of the workspace in `tmp` (its bytes).
    fn transcript_bytes(tmp: &tempfile::TempDir) -> Vec<u8> {
        let path = std::fs::read_dir(tmp.path().join("ws"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".transcript.jsonl"))
            .expect("the transcript");
        std::fs::read(path).unwrap()
    }

    /// Every step of the bootstrap on the fake tokens recorded: only the seal stage is left.
    fn bootstrap_before_the_seal(fakes: &FakeTokens) -> (tempfile::TempDir, Session) {
        let (tmp, mut session) = bootstrap_on_fakes(fakes, true);
        loop {
            let need = session.need();
            if need == Need::Done {
                break;
            }
            let (actor, event) = session.answer(need, None).unwrap();
            session.record(&actor, event).unwrap();
        }
        (tmp, session)
    }

    /// The medium fills up before the seal record: the headless runner stops with the same
    /// typed [`NotRecorded`](crate::driver::NotRecorded) as a step's record, naming the
    /// script's seal step ("12" in the bootstrap) and the seal record, its source I/O (exit 2),
    /// saying how to continue; the transcript is as it was. Runs on the in-memory token test
    /// double.
    #[test]
    fn a_seal_not_written_names_the_seal_step_and_record() {
        let fakes = FakeTokens::new();
        let (tmp, mut session) = bootstrap_before_the_seal(&fakes);
        assert_eq!(session.seal_step(), "12");
        let before = transcript_bytes(&tmp);
        session.fill_the_disk();
        let Err(DriverError::NotRecorded(e)) = run_session(session) else {
            panic!("the run went on without its seal record");
        };
        assert_eq!(
            (e.step.as_str(), e.what.as_str()),
            ("12", "the seal record")
        );
        assert!(e.write_failed(), "{e:?}");
        assert!(matches!(e.source, DriverError::Io(_)), "{e:?}");
        let said = DriverError::NotRecorded(e).to_string();
        assert!(
            said.starts_with("step 12: the seal record was NOT recorded: sealing the transcript: "),
            "{said}"
        );
        assert!(said.contains("No space left on device"), "{said}");
        assert!(said.ends_with(crate::driver::CONTINUES_FROM_DISK), "{said}");
        assert_eq!(transcript_bytes(&tmp), before);
    }

    /// The answers skip bob at the seal with a blank reason: the engine refuses the
    /// seal-skipped event, and the headless runner stops with a
    /// [`NotRecorded`](crate::driver::NotRecorded) naming the seal step and the seal-skipped
    /// record, its source refused (exit 1, no "continue from disk": nothing failed on disk);
    /// nothing is written. Runs on the in-memory token test double.
    #[test]
    fn a_seal_skip_the_engine_refuses_names_the_seal_step_and_record() {
        let fakes = FakeTokens::new();
        let (tmp, mut session) = bootstrap_before_the_seal(&fakes);
        session.plan.skip.insert("bob".into(), "   ".into());
        let before = transcript_bytes(&tmp);
        let Err(DriverError::NotRecorded(e)) = run_session(session) else {
            panic!("a blank reason skipped bob");
        };
        assert_eq!(
            (e.step.as_str(), e.what.as_str()),
            ("12", "the seal-skipped record")
        );
        assert!(!e.write_failed(), "{e:?}");
        assert!(matches!(e.source, DriverError::Refused(_)), "{e:?}");
        let said = DriverError::NotRecorded(e).to_string();
        assert!(
            said.starts_with("step 12: the seal-skipped record was NOT recorded: ")
                && said.contains("skipping bob needs a reason"),
            "{said}"
        );
        assert!(!said.contains(crate::driver::CONTINUES_FROM_DISK), "{said}");
        assert_eq!(transcript_bytes(&tmp), before);
    }

    /// A headless rerun of a rotation cut short before its key-event log (every seal signature
    /// made): the checkpoint is a signature of the new root's threshold, so only bob and carol,
    /// who hold keys of the new root, log in for it. alice, rotated out of root, is not asked:
    /// before, the rerun logged her in again and, her token gone, refused to finish ("the seal
    /// is written and lists alice, whose token could not sign it"). Runs on the in-memory
    /// token test double ([`crate::driver::fake_tokens`], PKCS#11 login and signing
    /// behaviour).
    #[test]
    fn a_rerun_asks_only_holders_of_a_current_root_key_for_the_checkpoint() {
        let fakes = FakeTokens::new();
        let (tmp, session) = bootstrap_on_fakes(&fakes, true);
        run_session(session).unwrap();
        let report = run_session(rotation_removing_alice(&fakes, &tmp)).unwrap();
        let log = report.key_log.expect("a key-event log step").dir;
        assert!(log.ends_with("log-002"), "{}", log.display());
        // The interruption: the seal is signed by all three, the log step never ran.
        std::fs::remove_dir_all(&log).unwrap();
        fakes.remove("alice");
        let alice_before = fakes.pin_attempts("alice");
        let session = rotation_removing_alice(&fakes, &tmp);
        assert!(!session.signs_checkpoint("alice"));
        assert!(session.signs_checkpoint("bob") && session.signs_checkpoint("carol"));
        let report = run_session(session).unwrap();
        let key_log = report.key_log.expect("the log step finished");
        assert_eq!(key_log.dir, log);
        assert_eq!(key_log.signed_by, ["bob", "carol"]);
        assert!(super::super::log_step::log_signed(&log), "the log verifies");
        assert_eq!(
            fakes.pin_attempts("alice"),
            alice_before,
            "alice's token was not asked"
        );
    }

    /// Every file under `dir` with its bytes (but the lock, whose text names its last holder):
    /// what a refusal must leave as it was.
    fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.ends_with(crate::driver::LOCK_FILE) {
                continue;
            } else if p.is_dir() {
                out.extend(files(&p));
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
        out.sort();
        out
    }

    /// A finished refresh opened again is reported (nothing recorded, no second ceremony), its
    /// report saying how another one starts; `--new` starts the next one (v3); `--new` while
    /// that one is unfinished is refused, naming it, and changes nothing; the same command
    /// without `--new` continues it; a second bootstrap of the workspace is refused.
    #[test]
    fn a_finished_ceremony_is_reported_again_and_a_new_one_only_when_asked() {
        let fakes = FakeTokens::new();
        let (tmp, session) = bootstrap_on_fakes(&fakes, true);
        run_session(session).unwrap();
        let open = |script: &str, start| {
            opened_on(&fakes, &tmp, script, &[], true, Default::default(), start)
        };
        let ws = tmp.path().join("ws");
        let Ok(Opened::Running(s)) = open("refresh-expiry", Start::Continue) else {
            panic!("the first refresh did not start");
        };
        let first = run_session(*s).unwrap();
        let v2 = ws.join("refresh-expiry-v2.transcript.jsonl");
        assert_eq!(first.transcript, v2);
        assert!(!first.already_complete && first.another.is_none());
        let done = files(&ws);

        let again = match open("refresh-expiry", Start::Continue) {
            Ok(Opened::Finished(r)) => r,
            Ok(Opened::Running(s)) => panic!("a new refresh was started: {}", s.tpath.display()),
            Err(e) => panic!("{e}"),
        };
        assert!(again.already_complete);
        assert_eq!((&again.transcript, &again.seal), (&v2, &first.seal));
        assert_eq!(
            again.another.as_deref(),
            Some(
                "to start another refresh-expiry ceremony in this workspace: the same command \
                 with --new"
            )
        );
        assert!(
            crate::driver::check(&again, &crate::driver::SystemClock)
                .unwrap()
                .iter()
                .all(|c| c.passed),
            "the finished refresh verifies again"
        );
        assert_eq!(files(&ws), done, "reporting it changed the workspace");

        // A second bootstrap is refused, whatever is asked.
        let Err(DriverError::Refused(m)) = open("bootstrap-root", Start::New) else {
            panic!("a second bootstrap was not refused");
        };
        assert!(
            m.contains("bootstrap-root.transcript.jsonl")
                && m.contains("another one starts in a new workspace"),
            "{m}"
        );

        let Ok(Opened::Running(s)) = open("refresh-expiry", Start::New) else {
            panic!("--new did not start a refresh");
        };
        let v3 = ws.join("refresh-expiry-v3.transcript.jsonl");
        assert_eq!(s.tpath, v3);
        // Interrupted after its first records.
        drop(s);
        let interrupted = files(&ws);
        let Err(DriverError::Refused(m)) = open("refresh-expiry", Start::New) else {
            panic!("--new over an unfinished refresh was not refused");
        };
        assert!(
            m.contains(&v3.display().to_string()) && m.contains("continue it: run without --new"),
            "{m}"
        );
        assert_eq!(files(&ws), interrupted, "the refusal changed the workspace");

        let Ok(Opened::Running(s)) = open("refresh-expiry", Start::Continue) else {
            panic!("the unfinished refresh was not continued");
        };
        assert!(s.resumed && s.tpath == v3, "{}", s.tpath.display());
        let third = run_session(*s).unwrap();
        assert!(ws.join("export/3.root.json").exists() && third.transcript == v3);
    }
}
