//! Unit tests of the engine: whole ceremonies run through events, and the policy refusals.

#![cfg(test)]

use super::*;
use crate::signer::Signer;
use crate::signer::software::SoftwareSigner;
use crate::tuf::canonical::Value;
use crate::tuf::compat::Client;
use crate::tuf::edit::{self, RoleKeys};
use crate::tuf::key::Algorithm;
use crate::tuf::key::KeyId;
use crate::tuf::metadata::{Expires, RoleType};
use crate::tuf::verify::trust_root;

fn script() -> Script {
    let text = std::fs::read_to_string(format!(
        "{}/ceremony-scripts/bootstrap-root.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Script::parse("bootstrap-root.toml", &text).unwrap()
}

struct Room {
    signers: Vec<(String, SoftwareSigner)>,
    online: SoftwareSigner,
    /// The online key object as the input media carry it.
    online_key: Value,
    /// Parameter values the administrator enters.
    params: BTreeMap<String, ParamJson>,
    /// The current root and targets the input media carry (ceremonies that load them).
    current: Option<(Value, Value)>,
    /// Developers' key requests on the input media.
    requests: Vec<Value>,
    /// publish-targets: the manifest and the files (target path to base64) on the input
    /// media.
    publish: Option<(Value, BTreeMap<String, String>)>,
    /// The time the clock step confirms.
    clock: &'static str,
}

/// Three keyholders with Ed25519 and P-256 keys (what every client profile reads).
fn room() -> Room {
    room_with([
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP256,
    ])
}

fn room_with(algs: [Algorithm; 3]) -> Room {
    let online = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 48]).unwrap();
    Room {
        online_key: online.key().to_value(),
        params: BTreeMap::new(),
        current: None,
        requests: Vec::new(),
        publish: None,
        clock: "2026-11-23T10:00:00Z",
        signers: ["alice", "bob", "carol"]
            .iter()
            .zip(algs)
            .enumerate()
            .map(|(i, (n, a))| {
                (
                    n.to_string(),
                    SoftwareSigner::from_seed(a, &[i as u8 + 1; 48]).unwrap(),
                )
            })
            .collect(),
        online,
    }
}

/// Drive the engine through a whole bootstrap as a runner would; returns the events.
fn run(engine: &mut Engine, room: &mut Room, stop_after: usize) -> Vec<Event> {
    try_run(engine, room, stop_after).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"))
}

/// As [`run`], but the first refused event ends the run with the refusal. Warnings are
/// acknowledged as events, as the runners do.
fn try_run(
    engine: &mut Engine,
    room: &mut Room,
    stop_after: usize,
) -> Result<Vec<Event>, (&'static str, EngineError)> {
    let mut events = Vec::new();
    while events.len() < stop_after {
        let step = engine.current_step().unwrap_or("end").to_string();
        let ev = match engine.need() {
            Need::Parameters => Event::Parameters {
                values: room.params.clone(),
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
                time: room.clock.into(),
                confirmation: None,
            },
            Need::RollCall { .. } => Event::RollCall {
                step,
                administrator: "ada".into(),
                keyholders: room.signers.iter().map(|(n, _)| n.clone()).collect(),
                witnesses: vec!["wendy".into()],
            },
            Need::ImportKeys { .. } => Event::KeysImported {
                step,
                keys: [
                    ("snapshot".to_string(), room.online_key.clone()),
                    ("timestamp".to_string(), room.online_key.clone()),
                ]
                .into_iter()
                .collect(),
            },
            Need::GenerateKey { keyholder, .. } => {
                let (_, (_, s)) = room
                    .signers
                    .iter()
                    .enumerate()
                    .find(|(_, (n, _))| *n == keyholder)
                    .unwrap();
                // Every token has the same serial, as on tpm2-pkcs11: the token's identity
                // (module, serial, label) tells them apart.
                Event::KeyGenerated {
                    step,
                    token: Some(format!(
                        "serial 0000000000000000 label \"{keyholder}\" in /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so"
                    )),
                    keyholder,
                    token_serial: "0000000000000000".into(),
                    advisories: Vec::new(),
                    existing: false,
                    piv_slot: None,
                    key: s.key().to_value(),
                }
            }
            Need::Propose => Event::Proposed {
                step,
                digests: engine.proposal().unwrap().digests(),
            },
            Need::Review { digests } => Event::Approved {
                step,
                digests,
                request_set_sha256: engine.request_set_sha256(),
            },
            Need::Sign { pending, .. } => match pending.first() {
                None => Event::SigningClosed { step },
                Some(who) => {
                    let p = engine.proposal().unwrap();
                    let (_, s) = room.signers.iter_mut().find(|(n, _)| n == who).unwrap();
                    let material = s.key().public_key().unwrap().material();
                    let keyid = engine.key_for_material(&material).unwrap();
                    let role = if p
                        .root
                        .as_ref()
                        .is_none_or(|r| r.signatures.iter().any(|x| x.keyid == keyid))
                    {
                        "targets"
                    } else {
                        "root"
                    };
                    let bytes = if role == "root" {
                        p.root.unwrap().signed_bytes().to_vec()
                    } else {
                        p.targets.unwrap().signed_bytes().to_vec()
                    };
                    Event::Signed {
                        step,
                        keyholder: who.clone(),
                        role: role.into(),
                        keyid: keyid.0,
                        sig: hex::encode(s.sign(&bytes).unwrap()),
                    }
                }
            },
            Need::Verify => Event::Verified { step },
            Need::Export { files } => {
                use sha2::Digest;
                Event::Exported {
                    step,
                    files: files
                        .iter()
                        .map(|(n, b)| (n.clone(), hex::encode(sha2::Sha256::digest(b))))
                        .collect(),
                    destination: "export".into(),
                    rstuf_settings: engine.rstuf_settings_record(),
                }
            }
            Need::Seal => Event::Sealed { step },
            Need::LoadMetadata => {
                let (root, targets) = room.current.clone().expect("current metadata");
                Event::MetadataLoaded {
                    step,
                    root,
                    targets,
                    not_before: None,
                }
            }
            Need::ImportRequests => Event::RequestsImported {
                step,
                requests: room.requests.clone(),
                sources: Vec::new(),
            },
            Need::ImportLayout { .. } => panic!("these tests import no layout"),
            Need::ImportPending { .. } => panic!("these tests import no RSTUF pending file"),
            Need::ImportEvent { .. } => panic!("these tests import no tuf-on-ci event"),
            Need::ImportTargets => {
                let (manifest, files) = room.publish.clone().expect("a publish manifest");
                Event::TargetsImported {
                    step,
                    manifest,
                    files,
                }
            }
            Need::Done => break,
        };
        let warnings = match engine.apply(&ev) {
            Ok(w) => w,
            Err(e) => return Err((ev.action(), e)),
        };
        // Every event survives the trip through transcript details.
        assert_eq!(Event::from_value(&ev.to_value()).unwrap(), ev);
        events.push(ev);
        for warning in warnings {
            let ack = Event::WarningAcknowledged {
                step: engine.current_step().unwrap_or("end").to_string(),
                warning,
            };
            engine.apply(&ack).unwrap();
            events.push(ack);
        }
    }
    Ok(events)
}

#[test]
fn bootstrap_runs_to_the_end_and_replays_to_the_same_state() {
    let mut room = room();
    let mut engine = Engine::new(script()).unwrap();
    let events = run(&mut engine, &mut room, usize::MAX);
    assert_eq!(engine.need(), Need::Done);
    let files = engine.export_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["1.root.json", "1.targets.json"]);
    // The exported root verifies as a client's trusted root; the keys are the keyholders'.
    let (root, self_count) = trust_root("1.root.json", &files[0].1).unwrap();
    assert_eq!(self_count.signed.len(), 3);
    assert_eq!(root.root().role(RoleType::Root).threshold, 2);
    // Replay from the events gives the same result (resume after a power cut).
    let again = Engine::replay(script(), &events).unwrap();
    assert_eq!(again.need(), Need::Done);
    assert_eq!(again.export_files(), files);
    // Replaying a prefix resumes at the right step: parameters, steps 1-5, two keys made.
    let half = Engine::replay(script(), &events[..8]).unwrap();
    assert_eq!(half.current_step(), Some("6"));
    assert!(matches!(half.need(), Need::GenerateKey { keyholder, .. } if keyholder == "carol"));
    // A replay that skips an event stops at it, naming the event's position.
    let mut gap = events.clone();
    gap.remove(3);
    let (at, err) = Engine::replay(script(), &gap).unwrap_err();
    assert_eq!(at, 3, "{err}");
}

#[test]
fn policy_refuses_what_a_careful_room_would_refuse() {
    let mut room = room();
    let mut engine = Engine::new(script()).unwrap();
    // Up to the air-gap check: parameters and acknowledgement.
    run(&mut engine, &mut room, 2);
    let e = engine
        .apply(&Event::AirgapChecked {
            step: "2".into(),
            interfaces: vec!["eth0".into()],
            radios: vec![],
        })
        .unwrap_err();
    assert!(e.to_string().contains("not air-gapped"), "{e}");
    // An event for another step is refused.
    let e = engine
        .apply(&Event::Verified { step: "10".into() })
        .unwrap_err();
    assert!(matches!(e, EngineError::WrongEvent { .. }), "{e}");
    run(&mut engine, &mut room, 2); // air-gap, clock
    let e = engine
        .apply(&Event::RollCall {
            step: "4".into(),
            administrator: "ada".into(),
            keyholders: vec!["alice".into(), "bob".into()],
            witnesses: vec!["wendy".into()],
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("2 keyholder(s) present, the script requires 3"),
        "{e}"
    );
    let e = engine
        .apply(&Event::RollCall {
            step: "4".into(),
            administrator: "ada".into(),
            keyholders: vec!["alice".into(), "bob".into(), "alice".into()],
            witnesses: vec!["wendy".into()],
        })
        .unwrap_err();
    assert!(e.to_string().contains("named once"), "{e}");
}

/// Every parameter rule is checked when the values are recorded, before any key exists
/// (before: `hash_bins = 3` was accepted and refused at the proposal, after three keys were
/// generated); a threshold above the keyholders is refused as soon as they are known, and a
/// recorded value is corrected (an event) until the first key is generated.
#[test]
fn parameters_are_checked_when_recorded_and_corrected_before_any_key() {
    let params = |pairs: &[(&str, ParamJson)]| -> BTreeMap<String, ParamJson> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let refused = |engine: &mut Engine, ev: &Event| engine.apply(ev).unwrap_err().to_string();
    let mut engine = Engine::new(script()).unwrap();
    let bins = Event::Parameters {
        values: params(&[
            ("hash_bins", ParamJson::Integer(3)),
            ("accept_client_loss", ParamJson::Text("tough".into())),
        ]),
        practice: false,
    };
    let e = refused(&mut engine, &bins);
    assert!(e.contains("hash_bins = 3 is not a power of two"), "{e}");
    // The ranges and choices are said.
    let e = refused(
        &mut engine,
        &Event::Parameters {
            values: params(&[("root_expiry_days", ParamJson::Integer(4000))]),
            practice: false,
        },
    );
    assert!(e.contains("a whole number from 1 to 1830"), "{e}");
    let e = refused(
        &mut engine,
        &Event::Parameters {
            values: params(&[("key_type", ParamJson::Text("rsa".into()))]),
            practice: false,
        },
    );
    assert!(e.contains("one of ed25519, ecdsa-p256, ecdsa-p384"), "{e}");
    // Who will come is known to the caller (an answers file): checked before recording.
    let five = params(&[("root_threshold", ParamJson::Integer(5))]);
    let e = engine
        .check_parameters(&five, Some(3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("root_threshold = 5 is more than the 3 keyholders present"),
        "{e}"
    );
    // Recorded without knowing: the roll call refuses it and says how to correct it.
    let mut room = room();
    room.params = five;
    run(&mut engine, &mut room, 4);
    assert!(matches!(engine.need(), Need::RollCall { .. }));
    let roll = Event::RollCall {
        step: "4".into(),
        administrator: "ada".into(),
        keyholders: vec!["alice".into(), "bob".into(), "carol".into()],
        witnesses: vec!["wendy".into()],
    };
    let e = refused(&mut engine, &roll);
    assert!(e.contains("correct the parameter"), "{e}");
    let fix = |step: &str, t: i64| Event::ParametersCorrected {
        step: step.into(),
        values: params(&[("root_threshold", ParamJson::Integer(t))]),
        reason: None,
    };
    assert!(refused(&mut engine, &fix("3", 2)).contains("belongs to the current step"));
    engine.apply(&fix("4", 2)).unwrap();
    engine.apply(&roll).unwrap();
    // Once the roll call is known, a correction is checked against it.
    let e = refused(&mut engine, &fix("5", 4));
    assert!(e.contains("more than the 3 keyholders present"), "{e}");
    // After the first key, nothing is corrected.
    run(&mut engine, &mut room, 2);
    assert!(!engine.generated_keys().is_empty());
    let e = refused(&mut engine, &fix("6", 3));
    assert!(e.contains("only before the first key is generated"), "{e}");
    // The correction is shown in the transcript display.
    assert_eq!(
        crate::transcript::display::describe(&fix("4", 2)),
        "PARAMETERS CORRECTED: root_threshold = 2"
    );
}

#[test]
fn expiry_inside_the_scripts_window_is_never_signed() {
    let text = std::fs::read_to_string(format!(
        "{}/ceremony-scripts/bootstrap-root.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // The shipped window: at least a week.
    let mut engine = Engine::new(script()).unwrap();
    let mut values = BTreeMap::new();
    values.insert("targets_expiry_days".to_string(), ParamJson::Integer(3));
    let e = engine
        .apply(&Event::Parameters {
            values: values.clone(),
            practice: false,
        })
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "targets_expiry_days = 3 is inside the script's minimum expiry window of 7 days"
        ),
        "{e}"
    );
    // A script that allows at most 400 days refuses 500 for root.
    let bounded = text.replace(
        "kind = \"bootstrap-root\"",
        "kind = \"bootstrap-root\"\nmax_expiry_days = 400",
    );
    let bounded = Script::parse("bounded.toml", &bounded).unwrap();
    assert_eq!(bounded.max_expiry_days, Some(400));
    let mut engine = Engine::new(bounded).unwrap();
    values.clear();
    values.insert("root_expiry_days".to_string(), ParamJson::Integer(500));
    let e = engine
        .apply(&Event::Parameters {
            values,
            practice: false,
        })
        .unwrap_err();
    assert!(e.to_string().contains("beyond the script's maximum"), "{e}");
    // At exactly the minimum the ceremony runs to the end.
    let mut engine = Engine::new(script()).unwrap();
    let mut values = BTreeMap::new();
    values.insert("targets_expiry_days".to_string(), ParamJson::Integer(7));
    engine
        .apply(&Event::Parameters {
            values,
            practice: false,
        })
        .unwrap();
    let mut room = room();
    run(&mut engine, &mut room, 100);
    assert_eq!(engine.need(), Need::Done);
}

/// Drive a refresh-expiry ceremony up to its proposal: clock at `clock`, the bootstrap's
/// signed root and targets loaded.
fn refresh_until_proposal(
    script: Script,
    values: BTreeMap<String, ParamJson>,
    clock: &str,
    root: &[u8],
    targets: &[u8],
    not_before: Option<&str>,
) -> Result<Vec<String>, EngineError> {
    let mut engine = Engine::new(script)?;
    engine.apply(&Event::Parameters {
        values,
        practice: false,
    })?;
    loop {
        let step = engine.current_step().unwrap_or("end").to_string();
        let ev = match engine.need() {
            Need::Acknowledge { .. } => Event::Acknowledged {
                step,
                value: Some("BAG-0002".into()),
            },
            Need::AirgapCheck => Event::AirgapChecked {
                step,
                interfaces: vec![],
                radios: vec![],
            },
            Need::ClockConfirm => Event::ClockConfirmed {
                step,
                time: clock.into(),
                confirmation: None,
            },
            Need::RollCall { .. } => Event::RollCall {
                step,
                administrator: "ada".into(),
                keyholders: vec!["alice".into(), "bob".into(), "carol".into()],
                witnesses: vec!["wendy".into()],
            },
            Need::LoadMetadata => Event::MetadataLoaded {
                step,
                root: Value::parse(root).unwrap(),
                targets: Value::parse(targets).unwrap(),
                not_before: not_before.map(str::to_string),
            },
            Need::Propose => {
                let digests = engine.proposal()?.digests();
                return engine.apply(&Event::Proposed { step, digests });
            }
            other => panic!("refresh-expiry before its proposal: {other:?}"),
        };
        engine.apply(&ev)?;
    }
}

#[test]
fn a_new_version_must_expire_later_than_the_one_it_replaces() {
    // Root v1 and targets v1 made with the clock at 2026-11-23.
    let mut engine = Engine::new(script()).unwrap();
    let mut room = room();
    run(&mut engine, &mut room, 100);
    let files = engine.export_files();
    let root = &files.iter().find(|(n, _)| n == "1.root.json").unwrap().1;
    let targets = &files.iter().find(|(n, _)| n == "1.targets.json").unwrap().1;
    let text = std::fs::read_to_string(format!(
        "{}/ceremony-scripts/refresh-expiry.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let refresh = Script::parse("refresh-expiry.toml", &text).unwrap();
    // The clock three years back: root v2 would expire before root v1.
    let e = refresh_until_proposal(
        refresh.clone(),
        BTreeMap::new(),
        "2023-11-23T10:00:00Z",
        root,
        targets,
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "root v2 would expire at 2024-11-22T10:00:00Z, earlier than v1 it replaces (expires 2027-11-23T10:00:00Z): check the clock"
        ),
        "{e}"
    );
    // The right clock: later than v1, accepted.
    refresh_until_proposal(
        refresh.clone(),
        BTreeMap::new(),
        "2027-01-10T10:00:00Z",
        root,
        targets,
        None,
    )
    .unwrap();
    // Shorter targets expiry than what it replaces is refused as well.
    let mut short = BTreeMap::new();
    short.insert("targets_expiry_days".to_string(), ParamJson::Integer(7));
    let e = refresh_until_proposal(
        refresh.clone(),
        short.clone(),
        "2026-11-24T10:00:00Z",
        root,
        targets,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("targets v2 would expire at"), "{e}");
    // A script that declares the parameter, with the room's "yes" recorded: allowed.
    let allowing = Script::parse(
        "refresh-expiry.toml",
        &text.replace(
            "[parameters]\n",
            "[parameters]\nallow_earlier_expiry = { default = \"no\", choices = [\"no\", \"yes\"], description = \"Allow a new version to expire no later than the one it replaces\" }\n",
        ),
    )
    .unwrap();
    let e = refresh_until_proposal(
        allowing.clone(),
        short.clone(),
        "2026-11-24T10:00:00Z",
        root,
        targets,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("targets v2 would expire at"), "{e}");
    short.insert(
        ALLOW_EARLIER_EXPIRY.to_string(),
        ParamJson::Text("yes".into()),
    );
    refresh_until_proposal(allowing, short, "2026-11-24T10:00:00Z", root, targets, None).unwrap();

    // A clock earlier than the last time the previous ceremony's transcript recorded is
    // refused when the metadata is loaded; at or after it, the ceremony goes on.
    let e = refresh_until_proposal(
        refresh.clone(),
        BTreeMap::new(),
        "2027-01-10T10:00:00Z",
        root,
        targets,
        Some("2027-01-10T10:00:01Z"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "the confirmed clock (2027-01-10T10:00:00Z) is earlier than 2027-01-10T10:00:01Z, the last time the previous ceremony's transcript recorded"
        ),
        "{e}"
    );
    refresh_until_proposal(
        refresh,
        BTreeMap::new(),
        "2027-01-10T10:00:00Z",
        root,
        targets,
        Some("2027-01-10T10:00:00Z"),
    )
    .unwrap();
}

/// Confirm the clock of a fresh bootstrap engine (parameters, acknowledgement and air-gap
/// check recorded) with `confirmation`.
fn confirm_clock(
    practice: bool,
    time: &str,
    confirmation: Option<ClockConfirmation>,
) -> Result<Engine, EngineError> {
    let mut engine = Engine::new(script()).unwrap();
    engine
        .apply(&Event::Parameters {
            values: BTreeMap::new(),
            practice,
        })
        .unwrap();
    while engine.need() != Need::ClockConfirm {
        let step = engine.current_step().unwrap().to_string();
        let ev = match engine.need() {
            Need::Acknowledge { .. } => Event::Acknowledged {
                step,
                value: Some("BAG-0001".into()),
            },
            Need::AirgapCheck => Event::AirgapChecked {
                step,
                interfaces: vec![],
                radios: vec![],
            },
            other => panic!("{other:?}"),
        };
        engine.apply(&ev).unwrap();
    }
    let step = engine.current_step().unwrap().to_string();
    engine.apply(&Event::ClockConfirmed {
        step,
        time: time.into(),
        confirmation,
    })?;
    Ok(engine)
}

#[test]
fn the_clock_is_confirmed_against_a_reference_time() {
    let reference = |r: &str, d: i64| {
        Some(ClockConfirmation::Reference {
            reference: r.into(),
            difference_seconds: d,
        })
    };
    // Within five minutes of the reference: confirmed.
    confirm_clock(
        false,
        "2026-11-23T10:03:00Z",
        reference("2026-11-23T10:00:00Z", 180),
    )
    .unwrap();
    // The machine clock three years back from the room's reference: refused, with the
    // difference named.
    let e = confirm_clock(
        false,
        "2023-11-23T10:00:00Z",
        reference("2026-11-23T10:00:00Z", -94_694_400),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "is off: 1096 days 0 h 0 min 0 s behind the reference time (2026-11-23T10:00:00Z), more than 5 minutes: set the machine clock"
        ),
        "{e}"
    );
    // A recorded difference that is not the two times' difference is refused.
    let e = confirm_clock(
        false,
        "2026-11-23T10:03:00Z",
        reference("2026-11-23T10:00:00Z", 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("recorded difference"), "{e}");
    // Only a practice run takes the machine clock without a reference.
    let e = confirm_clock(
        false,
        "2026-11-23T10:00:00Z",
        Some(ClockConfirmation::Practice),
    )
    .unwrap_err();
    assert!(e.to_string().contains("only a practice run"), "{e}");
    confirm_clock(
        true,
        "2026-11-23T10:00:00Z",
        Some(ClockConfirmation::Practice),
    )
    .unwrap();
    // Transcripts written before the confirmation was recorded still replay.
    let old: Event = serde_json::from_str(
        r#"{"event":"clock-confirmed","step":"3","time":"2026-11-23T10:00:00Z"}"#,
    )
    .unwrap();
    assert!(matches!(
        old,
        Event::ClockConfirmed {
            confirmation: None,
            ..
        }
    ));
    confirm_clock(false, "2026-11-23T10:00:00Z", None).unwrap();
    // The confirmation is recorded as the transcript's details.
    let ev = Event::ClockConfirmed {
        step: "3".into(),
        time: "2026-11-23T10:03:00Z".into(),
        confirmation: reference("2026-11-23T10:00:00Z", 180),
    };
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["confirmation"]["by"], "reference");
    assert_eq!(v["confirmation"]["difference_seconds"], 180);
}

#[test]
fn reference_times_are_typed_in_utc() {
    let t = parse_reference_time("2026-11-23 10:05").unwrap();
    assert_eq!(t.unix_timestamp(), 1_795_428_300);
    for same in [
        "2026-11-23T10:05",
        "2026-11-23 10:05:00Z",
        " 2026-11-23 10:05 UTC ",
    ] {
        assert_eq!(parse_reference_time(same).unwrap(), t, "{same}");
    }
    for bad in [
        "",
        "10:05",
        "2026-11-23",
        "2026-13-01 10:00",
        "2026-11-23 25:00",
        "23/11/2026 10:05",
        "2026-11-23 10:05+01:00",
    ] {
        let e = parse_reference_time(bad).unwrap_err();
        assert!(e.contains("YYYY-MM-DD HH:MM"), "{bad}: {e}");
    }
    assert_eq!(
        show_clock_difference(-94_694_400),
        "1096 days 0 h 0 min 0 s behind"
    );
    assert_eq!(show_clock_difference(400), "6 min 40 s ahead");
}

#[test]
fn a_resumed_clock_that_jumped_is_confirmed_again_and_then_checks_expiry() {
    let at = |s: &str| Expires::parse(s.to_string(), "t").unwrap().time;
    let last = at("2026-11-23T10:00:00Z");
    assert!(!clock_needs_reconfirming(last, at("2026-11-23T12:00:00Z")));
    assert!(!clock_needs_reconfirming(last, last));
    assert!(
        clock_needs_reconfirming(last, at("2026-11-23T09:59:59Z")),
        "backwards"
    );
    assert!(
        clock_needs_reconfirming(last, at("2028-11-23T10:00:00Z")),
        "2 years ahead"
    );
    assert!(
        clock_needs_reconfirming(last, at("2026-11-24T10:00:01Z")),
        "beyond 24 h"
    );

    // A bootstrap interrupted at its sign step, resumed with the clock 2 years ahead.
    let mut room = room();
    let mut engine = Engine::new(script()).unwrap();
    let mut events = run(&mut engine, &mut room, 11);
    assert!(matches!(engine.need(), Need::Sign { .. }));
    let mut resumed = Engine::replay(script(), &events).unwrap();
    resumed.require_clock_confirmation();
    assert_eq!(resumed.need(), Need::ClockConfirm);
    // Nothing else is accepted before the clock is confirmed again.
    let sign_step = resumed.current_step().unwrap().to_string();
    let again = Event::ClockConfirmed {
        step: sign_step.clone(),
        time: "2028-11-23T10:00:00Z".into(),
        confirmation: Some(ClockConfirmation::Reference {
            reference: "2028-11-23T10:00:00Z".into(),
            difference_seconds: 0,
        }),
    };
    resumed.apply(&again).unwrap();
    assert!(matches!(resumed.need(), Need::Sign { .. }));
    assert_eq!(resumed.current_step(), Some(sign_step.as_str()));
    // The confirmation replays from the transcript, and the new time is the one the
    // verification checks: the new root (one year) is already expired.
    events.push(again);
    let mut replayed = Engine::replay(script(), &events).unwrap();
    assert!(matches!(replayed.need(), Need::Sign { .. }));
    let rest = try_run(&mut replayed, &mut room, 10).unwrap_err();
    assert!(
        rest.1
            .to_string()
            .contains("the new root is already expired"),
        "{rest:?}"
    );
    // A clock confirmed again at a step before any clock is refused as out of place.
    let mut fresh = Engine::new(script()).unwrap();
    fresh.require_clock_confirmation();
    assert_eq!(fresh.need(), Need::Parameters);
}

#[test]
fn signatures_over_other_bytes_and_early_closing_are_refused() {
    let mut room = room();
    let mut engine = Engine::new(script()).unwrap();
    // Run up to the sign step (parameters + 8 steps + 3 key events).
    let events = run(&mut engine, &mut room, 11);
    assert!(matches!(engine.need(), Need::Sign { .. }), "{events:?}");
    let e = engine
        .apply(&Event::SigningClosed { step: "9".into() })
        .unwrap_err();
    assert!(e.to_string().contains("signing cannot close yet"), "{e}");
    let (_, alice) = &mut room.signers[0];
    let forged = Event::Signed {
        step: "9".into(),
        keyholder: "alice".into(),
        role: "root".into(),
        keyid: owned_key(alice.key(), "alice").key_id().0,
        sig: hex::encode(alice.sign(b"something else").unwrap()),
    };
    let e = engine.apply(&forged).unwrap_err();
    assert!(e.to_string().contains("root signature"), "{e}");
    let (_, bob) = &mut room.signers[1];
    let wrong_key = Event::Signed {
        step: "9".into(),
        keyholder: "alice".into(),
        role: "root".into(),
        keyid: owned_key(bob.key(), "bob").key_id().0,
        sig: "00".into(),
    };
    assert!(
        engine
            .apply(&wrong_key)
            .unwrap_err()
            .to_string()
            .contains("belongs to bob, not to alice")
    );
}

/// One dead token does not stall the ceremony: the administrator skips its keyholder with
/// a reason (an event), closes signing once every threshold is met, and a keyholder who
/// does not sign the seal is recorded too (before: neither skip was an event, and the TUI
/// only said "skipped (recorded)").
#[test]
fn a_dead_token_is_skipped_with_a_reason_and_signing_closes_once_thresholds_are_met() {
    let mut room = room();
    let mut engine = Engine::new(script()).unwrap();
    run(&mut engine, &mut room, 11);
    let skip = |who: &str, reason: &str| Event::SignerSkipped {
        step: "9".into(),
        keyholder: who.into(),
        reason: reason.into(),
    };
    let refused = |engine: &mut Engine, ev: &Event| engine.apply(ev).unwrap_err().to_string();
    assert!(refused(&mut engine, &skip("alice", " ")).contains("needs a reason"));
    assert!(refused(&mut engine, &skip("mallory", "gone")).contains("not a keyholder"));
    engine
        .apply(&skip("alice", "token does not start"))
        .unwrap();
    assert!(refused(&mut engine, &skip("alice", "again")).contains("skipped already"));
    let Need::Sign { pending, .. } = engine.need() else {
        panic!("the signing step")
    };
    assert_eq!(pending, ["bob", "carol"], "alice is no longer asked");
    // bob signs root and targets: one of two each, signing cannot close yet.
    run(&mut engine, &mut room, 2);
    assert!(
        refused(&mut engine, &Event::SigningClosed { step: "9".into() })
            .contains("signing cannot close yet")
    );
    // A skipped keyholder's signature is refused.
    let p = engine.proposal().unwrap();
    let (_, alice) = &mut room.signers[0];
    let keyid = engine
        .key_for_material(&alice.key().public_key().unwrap().material())
        .unwrap();
    let late = Event::Signed {
        step: "9".into(),
        keyholder: "alice".into(),
        role: "root".into(),
        keyid: keyid.0,
        sig: hex::encode(alice.sign(p.root.unwrap().signed_bytes()).unwrap()),
    };
    assert!(refused(&mut engine, &late).contains("skipped at this signing step"));
    // carol signs: both thresholds met; signing closes and the ceremony goes on.
    run(&mut engine, &mut room, 2);
    engine
        .apply(&Event::SigningClosed { step: "9".into() })
        .unwrap();
    assert!(matches!(engine.need(), Need::Verify));
    assert_eq!(
        engine.signing_skipped(),
        [("alice".to_string(), "token does not start".to_string())]
    );
    // The seal skip: only after the last step.
    let seal_skip = |who: &str| Event::SealSkipped {
        step: "end".into(),
        keyholder: who.into(),
        reason: "token does not start".into(),
    };
    assert!(refused(&mut engine, &seal_skip("alice")).contains("only after the last step"));
    run(&mut engine, &mut room, 4);
    assert_eq!(engine.need(), Need::Done);
    engine.apply(&seal_skip("alice")).unwrap();
    assert!(refused(&mut engine, &seal_skip("alice")).contains("skipped already"));
    assert_eq!(engine.seal_skipped().len(), 1);
    // Both are shown in the transcript display.
    let shown = crate::transcript::display::describe(&skip("alice", "token does not start"));
    assert_eq!(
        shown,
        "SKIPPED at signing: alice does not sign (token does not start)"
    );
    assert!(
        crate::transcript::display::describe(&seal_skip("alice"))
            .contains("alice does not sign the seal")
    );
}

#[test]
fn a_key_the_ceremony_adds_must_have_its_hash_as_key_id() {
    let a = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 48]).unwrap();
    let roles: Vec<RoleKeys> = RoleType::ALL
        .iter()
        .map(|r| RoleKeys {
            role: *r,
            keys: vec![a.key().clone()],
            threshold: 1,
        })
        .collect();
    let mut root = edit::new_root(&roles, time::macros::datetime!(2030-01-01 0:00 UTC)).unwrap();
    let good = Proposal {
        layout: None,
        tuf_on_ci: Vec::new(),
        root: Some(Metadata::new(root.clone())),
        targets: None,
    };
    assert!(added_key_id_mismatches(None, &good).is_empty());
    // The same key under a label that is not its hash (as sigstore v11 had).
    let label = KeyId("0c87432c".into());
    let old = root.keys[0].0.clone();
    root.keys[0].0 = label.clone();
    for (_, r) in root.roles.iter_mut() {
        r.keyids = vec![label.clone()];
    }
    let bad = Proposal {
        layout: None,
        tuf_on_ci: Vec::new(),
        root: Some(Metadata::new(root.clone())),
        targets: None,
    };
    let w = added_key_id_mismatches(None, &bad);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("0c87432c") && w[0].contains(&old.0) && w[0].contains("tough"),
        "{w:?}"
    );
    // Carried forward from the current root, it is the client profiles' business (tough).
    let current = (
        Metadata::new(root),
        Some(Metadata::new(edit::new_targets(
            time::macros::datetime!(2030-01-01 0:00 UTC),
        ))),
    );
    assert!(added_key_id_mismatches(Some(&current), &bad).is_empty());
    let f = proposal_findings(&bad);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1.rule, "key-id");
    assert_eq!(f[0].1.clients, [Client::Tough]);
}

fn with_params(mut room: Room, params: &[(&str, ParamJson)]) -> Room {
    for (n, v) in params {
        room.params.insert(n.to_string(), v.clone());
    }
    room
}

fn text(s: &str) -> ParamJson {
    ParamJson::Text(s.into())
}

/// alice's token handed to bob at his key generation: the refusal says whose token it is
/// and which one is expected (before: "the key of bob is already in the ceremony").
#[test]
fn a_token_of_another_keyholder_is_named_with_its_owner() {
    let mut room = room();
    let alice = room.signers[0].1.key().to_value();
    room.signers[1].1 = SoftwareSigner::from_seed(Algorithm::Ed25519, &[1; 48]).unwrap();
    assert_eq!(
        room.signers[1].1.key().to_value(),
        alice,
        "bob's token holds alice's key"
    );
    let mut engine = Engine::new(script()).unwrap();
    let (_, e) = try_run(&mut engine, &mut room, usize::MAX).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("holds the key of alice"), "{e}");
    assert!(
        e.contains("label \"alice\""),
        "the owner's token is named: {e}"
    );
    assert!(e.contains("bob's own token is expected"), "{e}");
}

/// The refusal of a run that must fail, and the events accepted before it.
fn refusal(kind: &str, room: &mut Room) -> (Vec<String>, String) {
    let mut engine = Engine::new(script_named(kind)).unwrap();
    let mut before = Vec::new();
    match try_run(&mut engine, room, usize::MAX) {
        Ok(_) => panic!("{kind}: the ceremony ran to the end"),
        Err((ev, e)) => {
            before.push(ev.to_string());
            before.extend(
                engine
                    .generated_keys()
                    .iter()
                    .map(|(who, _, _)| format!("key of {who}")),
            );
            (before, e.to_string())
        }
    }
}

fn script_named(name: &str) -> Script {
    let text = std::fs::read_to_string(format!(
        "{}/ceremony-scripts/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Script::parse(&format!("{name}.toml"), &text).unwrap()
}

#[test]
fn ecdsa_p384_and_hash_bins_are_refused_with_the_parameters_before_any_key_exists() {
    for (params, clients, field) in [
        (
            vec![("key_type", text("ecdsa-p384"))],
            "tough and tuf-js clients reject it",
            "key_type = \"ecdsa-p384\"",
        ),
        (
            vec![("hash_bins", ParamJson::Integer(4))],
            "tough clients reject it",
            "hash_bins = 4",
        ),
        (
            // Accepting one of the two is not enough.
            vec![
                ("key_type", text("ecdsa-p384")),
                ("accept_client_loss", text("tuf-js")),
            ],
            "tough clients reject it",
            "key_type",
        ),
        (
            vec![("accept_client_loss", text("rust-tuf"))],
            "\"rust-tuf\" is not a client profile",
            "accept_client_loss",
        ),
    ] {
        let mut room = with_params(room(), &params);
        let (at, e) = refusal("bootstrap-root", &mut room);
        assert_eq!(at, ["parameters"], "{e}");
        assert!(e.contains(clients) && e.contains(field), "{e}");
    }
}

#[test]
fn an_accepted_loss_is_shown_on_the_review_and_recorded() {
    let mut room = with_params(
        room_with([Algorithm::EcdsaP384; 3]),
        &[
            ("key_type", text("ecdsa-p384")),
            ("accept_client_loss", text("tuf-js, tough")),
        ],
    );
    let mut engine = Engine::new(script()).unwrap();
    let events = run(&mut engine, &mut room, usize::MAX);
    assert_eq!(engine.need(), Need::Done);
    let line = "tough and tuf-js clients will reject this root: $.signed.keys.";
    assert!(
        engine.review_lines().iter().any(|l| l.starts_with(line)),
        "{:#?}",
        engine.review_lines()
    );
    let recorded: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::WarningAcknowledged { warning, .. } => Some(warning.as_str()),
            _ => None,
        })
        .collect();
    // One per P-384 key, recorded at the proposal (before anything is signed).
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    assert!(recorded.iter().all(|w| w.starts_with(line)), "{recorded:?}");
    let propose = events
        .iter()
        .position(|e| matches!(e, Event::Proposed { .. }))
        .unwrap();
    assert!(matches!(
        events[propose + 1],
        Event::WarningAcknowledged { .. }
    ));
    // Without the parameter the same keys are refused at the proposal, naming both clients.
    let mut room = with_params(
        room_with([Algorithm::EcdsaP384; 3]),
        &[("key_type", text("ed25519"))],
    );
    let (at, e) = refusal("bootstrap-root", &mut room);
    assert_eq!(at[0], "proposed", "{e}");
    assert!(
        e.contains("tough and tuf-js clients reject it") && e.contains(".scheme"),
        "{e}"
    );
}

#[test]
fn online_keys_from_the_input_media_must_be_pem_whatever_the_parameters() {
    let p256 = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[8; 48]).unwrap();
    let mut hex_key = p256.key().clone();
    let Ok(crate::tuf::key::PublicKey::EcdsaP256(vk)) = hex_key.public_key() else {
        unreachable!()
    };
    hex_key.public = hex::encode(vk.to_encoded_point(false).as_bytes());
    let mut room = with_params(room(), &[("accept_client_loss", text("python-tuf,go-tuf"))]);
    room.online_key = hex_key.to_value();
    let (at, e) = refusal("bootstrap-root", &mut room);
    assert_eq!(at, ["keys-imported"], "{e}");
    assert!(
        e.contains("python-tuf and go-tuf clients cannot read it") && e.contains("PEM"),
        "{e}"
    );
    // An online P-384 key: tough and tuf-js, refused unless accepted.
    let mut room = self::room();
    room.online_key = SoftwareSigner::from_seed(Algorithm::EcdsaP384, &[8; 48])
        .unwrap()
        .key()
        .to_value();
    let (at, e) = refusal("bootstrap-root", &mut room);
    assert_eq!(at, ["keys-imported"], "{e}");
    assert!(e.contains("tough and tuf-js clients reject it"), "{e}");
}

/// The exported root and targets of a bootstrap by `room`, as the next ceremony's input.
fn bootstrapped(room: &mut Room) -> (Metadata<Root>, Metadata<Targets>) {
    let mut engine = Engine::new(script()).unwrap();
    run(&mut engine, room, usize::MAX);
    let files = engine.export_files();
    (
        Metadata::from_bytes(&files[0].1).unwrap(),
        Metadata::from_bytes(&files[1].1).unwrap(),
    )
}

/// `signed` changed and signed again by the room's keyholders (as another tool would).
fn resigned<T: crate::tuf::metadata::SignedPayload>(
    room: &mut Room,
    root: &Root,
    signed: T,
) -> Value {
    let mut md = Metadata::new(signed);
    for (_, s) in room.signers.iter_mut() {
        let m = s.key().public_key().unwrap().material();
        let id = root
            .keys
            .iter()
            .find(|(_, k)| k.public_key().is_ok_and(|p| p.material() == m))
            .map(|(id, _)| id.clone())
            .unwrap();
        let sig = s.sign(md.signed_bytes()).unwrap();
        md.add_signature(id, &sig);
    }
    md.to_value()
}

#[test]
fn a_current_root_without_consistent_snapshot_is_refused_when_loaded() {
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    // The next ceremony, a day later: its root expires later than the bootstrap's.
    room.clock = "2026-11-24T10:00:00Z";
    let mut r = root.signed().clone();
    r.consistent_snapshot = None;
    let root_value = resigned(&mut room, &r, r.clone());
    room.current = Some((root_value, targets.to_value()));
    let (at, e) = refusal("refresh-expiry", &mut room);
    assert_eq!(at, ["metadata-loaded"], "{e}");
    assert!(
        e.contains("tough, tuf-js and go-tuf clients reject it")
            && e.contains("consistent_snapshot"),
        "{e}"
    );
    // Accepted: the next root carries it over, the review says so.
    room.params
        .insert("accept_client_loss".into(), text("tough,tuf-js,go-tuf"));
    let mut engine = Engine::new(script_named("refresh-expiry")).unwrap();
    try_run(&mut engine, &mut room, usize::MAX).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"));
    assert!(
        engine.review_lines()[0].starts_with(
            "go-tuf, tough and tuf-js clients will reject this root: $.signed.consistent_snapshot"
        ) || engine.review_lines()[0].starts_with(
            "tough, tuf-js and go-tuf clients will reject this root: $.signed.consistent_snapshot"
        ),
        "{:?}",
        engine.review_lines()
    );
}

/// A rotation of the online keys names each online key in the key sets now and after by the
/// roles it serves, as its added and removed lines do (before: "keys now:   key 1a2b...").
#[test]
fn online_keys_in_the_key_sets_are_named_by_their_roles() {
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    room.current = Some((root.to_value(), targets.to_value()));
    room.clock = "2026-11-24T10:00:00Z";
    room.online_key = SoftwareSigner::from_seed(Algorithm::Ed25519, &[7; 48])
        .unwrap()
        .key()
        .to_value();
    let mut engine = Engine::new(script_named("rotate-online-keys")).unwrap();
    try_run(&mut engine, &mut room, usize::MAX).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"));
    let lines = engine.review_lines();
    let all = lines.join("\n");
    let old_id = root.signed().role(RoleType::Timestamp).keyids[0].0.clone();
    for role in ["snapshot", "timestamp"] {
        let sets: Vec<&String> = lines
            .iter()
            .skip_while(|l| !l.trim_start().starts_with(&format!("{role}: threshold")))
            .filter(|l| l.contains("keys now:") || l.contains("keys after:"))
            .take(2)
            .collect();
        assert_eq!(sets.len(), 2, "{all}");
        for set in sets {
            assert!(
                set.contains("online key of timestamp and snapshot "),
                "{set}\n{all}"
            );
            assert!(!set.contains(": key "), "{set}");
        }
    }
    assert!(
        all.contains(&format!(
            "online key of timestamp and snapshot {}",
            &old_id[..16]
        )),
        "{all}"
    );
    // The same name on the added and removed lines.
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("+ ")
            && l.contains("online key of timestamp and snapshot)")),
        "{all}"
    );
}

#[test]
fn carried_forward_key_ids_and_delegation_fields_are_refused_at_the_proposal() {
    // A current root listing a keyholder's key under a label (sigstore v11's mistake).
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    let mut r = root.signed().clone();
    let old = r.role(RoleType::Root).keyids[0].clone();
    let label = KeyId("0c87432c".into());
    for (id, _) in r.keys.iter_mut() {
        if *id == old {
            *id = label.clone();
        }
    }
    r.keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, role) in r.roles.iter_mut() {
        for id in role.keyids.iter_mut() {
            if *id == old {
                *id = label.clone();
            }
        }
    }
    let root_value = resigned(&mut room, &r, r.clone());
    let mut t = targets.signed().clone();
    edit::add_delegation(
        &mut t,
        &edit::NewDelegation {
            name: "proj".into(),
            keys: vec![room.online.key().clone()],
            threshold: 1,
            paths: vec!["proj/*".into()],
            terminating: true,
        },
    )
    .unwrap();
    let targets_value = resigned(&mut room, &r, t.clone());
    room.current = Some((root_value, targets_value));
    let (at, e) = refusal("refresh-expiry", &mut room);
    assert_eq!(at[0], "proposed", "{e}");
    assert!(
        e.contains("tough clients reject it") && e.contains("0c87432c"),
        "{e}"
    );
    // Unknown fields in a delegated role, carried into the next targets.
    let mut room = self::room();
    let (root, _) = bootstrapped(&mut room);
    let mut t = edit::new_targets(time::macros::datetime!(2030-01-01 0:00 UTC));
    edit::add_delegation(
        &mut t,
        &edit::NewDelegation {
            name: "proj".into(),
            keys: vec![room.online.key().clone()],
            threshold: 1,
            paths: vec!["proj/*".into()],
            terminating: true,
        },
    )
    .unwrap();
    t.delegations.as_mut().unwrap().roles.as_mut().unwrap()[0]
        .role
        .unrecognized
        .insert("x-owner".into(), Value::String("dev".into()));
    let targets_value = resigned(&mut room, root.signed(), t);
    room.current = Some((root.to_value(), targets_value));
    let (at, e) = refusal("refresh-expiry", &mut room);
    assert_eq!(at[0], "proposed", "{e}");
    assert!(
        e.contains("tough clients reject it")
            && e.contains("$.signed.delegations.roles[0].x-owner"),
        "{e}"
    );
}

#[test]
fn developer_keys_in_requests_are_checked_against_the_profiles() {
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    room.current = Some((root.to_value(), targets.to_value()));
    let request = |key: &Key| {
        let text = format!(
            r#"{{"_type": "conclave-key-request", "project": "proj", "paths": ["proj/*"], "threshold": 1, "keys": [{}]}}"#,
            key.to_value().to_pretty_json()
        );
        Value::parse(text.as_bytes()).unwrap()
    };
    let p384 = SoftwareSigner::from_seed(Algorithm::EcdsaP384, &[7; 48]).unwrap();
    room.requests = vec![request(p384.key())];
    let (at, e) = refusal("delegate-claimed-projects", &mut room);
    assert_eq!(at, ["requests-imported"], "{e}");
    assert!(
        e.contains("request 1 (proj) key 1") && e.contains("tough and tuf-js clients reject it"),
        "{e}"
    );
    let p256 = SoftwareSigner::from_seed(Algorithm::EcdsaP256, &[7; 48]).unwrap();
    let mut hex_key = p256.key().clone();
    let Ok(crate::tuf::key::PublicKey::EcdsaP256(vk)) = hex_key.public_key() else {
        unreachable!()
    };
    hex_key.public = hex::encode(vk.to_encoded_point(false).as_bytes());
    room.requests = vec![request(&hex_key)];
    let (at, e) = refusal("delegate-claimed-projects", &mut room);
    assert_eq!(at, ["requests-imported"], "{e}");
    assert!(
        e.contains("python-tuf and go-tuf clients cannot read it"),
        "{e}"
    );
}

#[test]
fn published_files_and_an_online_delegation_are_reviewed_signed_exported_and_replayed() {
    use base64::Engine as _;
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    room.current = Some((root.to_value(), targets.to_value()));
    let online = |alg: Algorithm| {
        let s = SoftwareSigner::from_seed(alg, &[8; 48]).unwrap();
        let mut v = s.key().to_value();
        if let Value::Object(m) = &mut v {
            m.insert(
                super::super::publish::ONLINE_URI_FIELD.into(),
                Value::String("azurekms://vault/keys/npm".into()),
            );
        }
        v.to_pretty_json()
    };
    let manifest = |key: &str| {
        let text = format!(
            r#"{{"_type": "conclave-publish-targets", "targets": [{{"path": "trusted_root.json", "action": "add", "custom": {{"sigstore": {{"status": "Active", "usage": "Unknown"}}}}}}], "delegation": {{"name": "registry.npmjs.org", "paths": ["registry.npmjs.org/*"], "threshold": 1, "keys": [{key}]}}}}"#
        );
        Value::parse(text.as_bytes()).unwrap()
    };
    let content = b"{\"mediaType\": \"trusted root\"}";
    let files: BTreeMap<String, String> = [(
        "trusted_root.json".to_string(),
        base64::engine::general_purpose::STANDARD.encode(content),
    )]
    .into();
    // An online key a client profile refuses (P-384: tough, tuf-js) is refused at import,
    // before any token signs.
    room.publish = Some((manifest(&online(Algorithm::EcdsaP384)), files.clone()));
    let (at, e) = refusal("publish-targets", &mut room);
    assert_eq!(at, ["targets-imported"], "{e}");
    assert!(
        e.contains("publish-targets/manifest.json: $.delegation.keys[0]")
            && e.contains("tough and tuf-js clients reject it"),
        "{e}"
    );
    room.publish = Some((manifest(&online(Algorithm::EcdsaP256)), files));
    let mut engine = Engine::new(script_named("publish-targets")).unwrap();
    let events = run(&mut engine, &mut room, usize::MAX);
    let lines = engine.review_lines().join("\n");
    assert!(
        lines.contains(&format!(
            "+ add trusted_root.json: {} bytes, sha256 ",
            content.len()
        )) && lines.contains("at azurekms://vault/keys/npm")
            && lines.contains("+ delegation \"registry.npmjs.org\""),
        "{lines}"
    );
    // The delegation's online key is named by the role it serves, as every online key is.
    assert!(
        lines.contains("(ecdsa-sha2-nistp256, online key of \"registry.npmjs.org\")"),
        "{lines}"
    );
    let out = engine.export_files();
    let new_targets = Metadata::<Targets>::from_bytes(&out[0].1).unwrap();
    assert_eq!(out[0].0, "2.targets.json");
    let entry = new_targets.signed().target("trusted_root.json").unwrap();
    assert_eq!(entry.length, content.len() as u64);
    assert_eq!(
        out[1],
        (
            format!("targets/{}.trusted_root.json", entry.hashes[0].1),
            content.to_vec()
        )
    );
    // Signed by the targets keys of the current root; the auditor's replay of the
    // recorded events builds the same files.
    let m = trust_root("root", &root.to_file_bytes()).unwrap().0.count(
        RoleType::Targets,
        new_targets.signed_bytes(),
        &new_targets.signatures,
    );
    assert!(m.verified(), "{}", m.summary());
    let replayed = Engine::replay(script_named("publish-targets"), &events).unwrap();
    assert_eq!(replayed.export_files(), out);
}

#[test]
fn expiry_forms_clients_refuse_never_reach_a_proposal() {
    // A current root with a fraction and an offset (as sigstore's first roots had): every
    // ceremony writes a new expiry in the strict form, so the proposal passes the profiles.
    let mut room = room();
    let (root, targets) = bootstrapped(&mut room);
    // The next ceremony, a day later: its root expires later than the bootstrap's.
    room.clock = "2026-11-24T10:00:00Z";
    let mut r = root.signed().clone();
    r.common.expires = Expires::parse("2027-11-23T11:00:00.500+01:00".into(), "expires").unwrap();
    let root_value = resigned(&mut room, &r, r.clone());
    room.current = Some((root_value, targets.to_value()));
    let mut engine = Engine::new(script_named("refresh-expiry")).unwrap();
    try_run(&mut engine, &mut room, usize::MAX).unwrap_or_else(|(ev, e)| panic!("{ev}: {e}"));
    let p = engine.proposal().unwrap();
    assert!(p.root.as_ref().unwrap().signed().common.expires.is_strict());
    assert_eq!(proposal_findings(&p).len(), 0);
    // Had one reached it, python-tuf and tough would be named.
    let mut bad = p.clone();
    if let Some(r) = bad.root.as_mut() {
        let mut s = r.signed().clone();
        s.common.expires = Expires::parse("2027-11-23T10:00:00.5Z".into(), "e").unwrap();
        r.set_signed(s);
    }
    let f = proposal_findings(&bad);
    assert_eq!(f[0].1.clients, [Client::PythonTuf, Client::Tough]);
}

#[test]
fn key_requests_are_checked() {
    let dev = SoftwareSigner::from_seed(Algorithm::Ed25519, &[4; 48]).unwrap();
    let key = String::from_utf8(dev.key().to_value().canonical_bytes()).unwrap();
    let req = |project: &str, paths: &str, threshold: u64, keys: &str| {
        let text = format!(
            r#"{{"_type": "conclave-key-request", "project": "{project}", "paths": {paths}, "threshold": {threshold}, "keys": {keys}}}"#
        );
        KeyRequest::from_value(&Value::parse(text.as_bytes()).unwrap())
    };
    let one = format!("[{key}]");
    let r = req("example-pkg", r#"["example-pkg/*"]"#, 1, &one).unwrap();
    assert_eq!(r.project, "example-pkg");
    let cases = [
        (
            req("example-pkg", r#"["other/*"]"#, 1, &one),
            "not inside the project",
        ),
        (
            req("example-pkg", r#"["example-pkg/../x"]"#, 1, &one),
            "not inside the project",
        ),
        (
            req("../evil", r#"["../evil/*"]"#, 1, &one),
            "not a usable project name",
        ),
        (req("example-pkg", "[]", 1, &one), "at least one path"),
        (
            req("example-pkg", r#"["example-pkg/*"]"#, 2, &one),
            "threshold",
        ),
        (
            req(
                "example-pkg",
                r#"["example-pkg/*"]"#,
                1,
                &format!("[{key}, {key}]"),
            ),
            "twice",
        ),
    ];
    for (got, why) in cases {
        let e = got.unwrap_err();
        assert!(e.contains(why), "{e}");
    }
    // A developer's key may name its owner; the owner is written into targets, so it is
    // checked like a person's name.
    let owned = |owner: &str| {
        let mut v = Value::parse(key.as_bytes()).unwrap();
        if let Value::Object(m) = &mut v {
            m.insert(OWNER_FIELD.into(), Value::String(owner.into()));
        }
        format!("[{}]", v.to_pretty_json())
    };
    assert!(req("example-pkg", r#"["example-pkg/*"]"#, 1, &owned("dev")).is_ok());
    for (owner, why) in [
        ("dev\u{1b}[2K", "control, bidi or invisible"),
        ("\u{202e}ved", "control, bidi or invisible"),
        ("dev      ", "starts or ends with a space"),
        (&"d".repeat(100_000)[..], "100000 characters long"),
    ] {
        let e = req("example-pkg", r#"["example-pkg/*"]"#, 1, &owned(owner)).unwrap_err();
        assert!(
            e.contains("$.keys[0].x-tuf-on-ci-keyowner: the owner"),
            "{e}"
        );
        assert!(e.contains(why), "{e}");
        assert!(!e.contains('\u{1b}') && !e.contains('\u{202e}'), "{e}");
    }
}

#[test]
fn names_of_people_are_printable_bounded_and_unpadded() {
    let mut room = room();
    for (who, bad, why) in [
        (
            "administrator",
            "ada\u{1b}]0;owned\u{7}",
            "control, bidi or invisible",
        ),
        ("keyholder", "\u{202e}ecila", "control, bidi or invisible"),
        ("keyholder", "bob\u{200b}", "control, bidi or invisible"),
        (
            "keyholder",
            "carol                                         ",
            "starts or ends",
        ),
        ("witness", &"w".repeat(100_000), "more than the 64 allowed"),
        ("witness", "wendy\0", "control, bidi or invisible"),
    ] {
        let mut engine = Engine::new(script()).unwrap();
        run(&mut engine, &mut room, 4); // parameters, acknowledgement, air gap, clock
        let mut people = (
            "ada".to_string(),
            vec!["alice".to_string(), "bob".to_string(), "carol".to_string()],
            vec!["wendy".to_string()],
        );
        match who {
            "administrator" => people.0 = bad.to_string(),
            "keyholder" => people.1[2] = bad.to_string(),
            _ => people.2[0] = bad.to_string(),
        }
        let e = engine
            .apply(&Event::RollCall {
                step: "4".into(),
                administrator: people.0,
                keyholders: people.1,
                witnesses: people.2,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("the {who}'s name")), "{e}");
        assert!(e.contains(why), "{e}");
        assert!(
            !e.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{e:?}"
        );
    }
    // Names in parameters (keyholders joining or leaving a root rotation) too.
    let text = std::fs::read_to_string(format!(
        "{}/ceremony-scripts/rotate-root-keys.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut engine = Engine::new(Script::parse("r.toml", &text).unwrap()).unwrap();
    let mut values = BTreeMap::new();
    values.insert(
        "add_keyholders".to_string(),
        ParamJson::Text("dave, \u{202e}eve".into()),
    );
    let e = engine
        .apply(&Event::Parameters {
            values,
            practice: false,
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("add_keyholders: the name"), "{e}");
    assert!(e.contains("\\u{202e}eve"), "{e}");
}

#[test]
fn every_shipped_kind_has_an_engine() {
    for name in [
        "bootstrap-root",
        "rotate-root-keys",
        "rotate-targets-keys",
        "refresh-expiry",
        "rotate-online-keys",
        "delegate-claimed-projects",
        "publish-targets",
        "sign-tuf-on-ci-event",
        "sign-rstuf-pending-root",
    ] {
        let text = std::fs::read_to_string(format!(
            "{}/ceremony-scripts/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let s = Script::parse(&format!("{name}.toml"), &text).unwrap();
        assert!(Engine::new(s).is_ok(), "{name}");
    }
}
