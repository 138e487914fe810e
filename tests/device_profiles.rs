//! Conclave on the PKCS#11 modules keyholders actually bring, emulated: each test runs the
//! `conclave` binary against SoftHSM2 tokens seen through the device-profile module
//! (`tests/pkcs11-profile/`), which imposes the documented behaviour of `yubihsm_pkcs11`,
//! `ykcs11`, OpenSC with a Nitrokey HSM, opencryptoki, tpm2-pkcs11 or a PIN-pad reader (the
//! vendor source each profile follows is named in its `src/lib.rs` and in docs/hsm.md). These
//! are emulations over SoftHSM2: none of this ran on the physical devices.

mod common;

use std::path::Path;

use common::profile::{
    Bench, ceremony_files, check_bootstrap, check_rotation, python_accepts,
    python_accepts_every_key, root_file, root_key_ids, root_key_schemes, rotation_answers,
    with_log_origin,
};
use conclave::tuf::canonical::Value;
use conclave::tuf::key::Key;
use conclave::tuf::metadata::key_from_value;

/// The token list as JSON.
fn tokens(b: &Bench) -> Vec<serde_json::Value> {
    let run = b.conclave(&["token", "list", "--module", "MODULE", "--json"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    run.json()["tokens"].as_array().unwrap().clone()
}

/// `token keygen --json` on `token`; returns the TUF key.
fn keygen(b: &Bench, token: &str, ty: &str, label: &str, stdin: &str, extra: &[&str]) -> Key {
    let mut args = vec![
        "token",
        "keygen",
        "--module",
        "MODULE",
        "--token",
        token,
        "--type",
        ty,
        "--label",
        label,
        "--pin-stdin",
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = b.conclave(&args, stdin);
    assert_eq!(run.code(), 0, "keygen failed: {run:?}");
    let text = serde_json::to_string(&run.json()["key"]).unwrap();
    key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap()
}

/// `conclave sign` in place.
fn sign(b: &Bench, token: Option<&str>, key: &str, file: &Path, stdin: &str) -> common::Run {
    let f = file.to_str().unwrap();
    let mut args = vec![
        "sign", "--module", "MODULE", "--key", key, "--in", f, "--out", f,
    ];
    if let Some(t) = token {
        args.extend_from_slice(&["--token", t]);
    }
    args.push("--pin-stdin");
    b.conclave(&args, stdin)
}

/// Without a profile the module is transparent; each profile shows its vendor's token
/// information, cleaned (no NUL padding) and with Yubico firmware decoded (5.43 is 5.4.3), so
/// the YSA-2024-03 advisory fires where it applies.
#[test]
fn each_profile_shows_its_vendors_token_information() {
    let mut b = Bench::new("alice,bob", "none");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("token \"alice\"") && run.stdout.contains("token \"bob\""),
        "{run:?}"
    );

    b.set("CONCLAVE_PROFILE", "opensc-nitrokey");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice (UserPIN)\""), "{run:?}");
    assert!(run.stdout.contains("www.CardContact.de"), "{run:?}");

    b.set("CONCLAVE_PROFILE", "yubihsm");
    let t = tokens(&b);
    assert_eq!(t[0]["label"], "YubiHSM");
    assert_eq!(t[0]["firmware"], "2.3.1", "{t:?}");
    assert_eq!(t[0]["advisories"][0]["id"], "YSA-2024-03", "{t:?}");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "2.4.0");
    let t = tokens(&b);
    assert_eq!(t[0]["firmware"], "2.4.0");
    assert!(t[0]["advisories"].as_array().unwrap().is_empty(), "{t:?}");

    b.set("CONCLAVE_PROFILE", "ykcs11");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "5.4.3");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"YubiKey PIV #"), "{run:?}");
    assert!(run.stdout.contains("firmware      5.4.3"), "{run:?}");
    assert!(
        run.stdout.contains("WARNING       YSA-2024-03 (ECDSA)"),
        "{run:?}"
    );

    b.set("CONCLAVE_PROFILE", "tpm");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(
        run.stdout.matches("serial        0000000000000000").count(),
        2,
        "{run:?}"
    );
    // The NUL padding is gone; the run of spaces inside the model is shown counted, as every
    // string from a token or input is (no padding can push text onto a line of its own).
    assert!(
        run.stdout.contains("model         SW\\x20{3}TPM\n"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains('\0'),
        "NUL bytes reach the terminal: {run:?}"
    );
}

/// opencryptoki (profile `opencryptoki`: `CKF_CLOCK_ON_TOKEN` with a blank token clock, which
/// cryptoki refuses to parse): the tokens are listed with the clock shown as unknown, keys of
/// every key type are generated and sign, python-tuf accepts the root. (opencryptoki's own
/// soft token has no EC at all; the EC mechanisms here are SoftHSM2's, under the clock.)
#[test]
fn opencryptoki_tokens_with_an_unknown_clock_list_generate_and_sign() {
    let b = Bench::new("alice,bob", "opencryptoki");
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    for who in ["alice", "bob"] {
        assert!(run.stdout.contains(&format!("token \"{who}\"")), "{run:?}");
    }
    assert_eq!(
        run.stdout
            .matches("token clock unknown (it does not read as a time)")
            .count(),
        2,
        "{run:?}"
    );
    assert!(!run.stdout.contains("cannot be read"), "{run:?}");
    let t = tokens(&b);
    let mut on_clock: Vec<_> = t
        .iter()
        .filter(|t| t["flags"]["token_initialized"] == true)
        .map(|t| (t["label"].as_str(), t["clock"].as_str()))
        .collect();
    on_clock.sort();
    assert_eq!(
        on_clock,
        [
            (Some("alice"), Some("unknown")),
            (Some("bob"), Some("unknown"))
        ],
        "{t:?}"
    );

    let alice_pin = format!("{}\n", b.pin("alice"));
    let bob_pin = format!("{}\n", b.pin("bob"));
    let keys = [
        keygen(&b, "alice", "ed25519", "alice-ed", &alice_pin, &[]),
        keygen(&b, "bob", "ecdsa-p256", "bob-p256", &bob_pin, &[]),
        keygen(&b, "alice", "ecdsa-p384", "alice-p384", &alice_pin, &[]),
    ];
    let root = root_file(&b.root, &keys);
    for (token, key, pin) in [
        ("alice", "alice-ed", &alice_pin),
        ("bob", "bob-p256", &bob_pin),
        ("alice", "alice-p384", &alice_pin),
    ] {
        let run = sign(&b, Some(token), key, &root, pin);
        assert_eq!(run.code(), 0, "sign with {key}: {run:?}");
    }
    let mut schemes = root_key_schemes(&root);
    schemes.sort();
    assert_eq!(
        schemes,
        ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ed25519"]
    );
    python_accepts_every_key(&root);
}

/// A token pulled while the slots are listed: the other tokens are listed and used, the odd
/// slot is named with why, and signing on the pulled one says it is gone.
#[test]
fn one_odd_slot_does_not_hide_the_others() {
    let b = Bench::new("alice,bob", "none");
    let alice = keygen(
        &b,
        "alice",
        "ecdsa-p256",
        "alice",
        &format!("{}\n", b.pin("alice")),
        &[],
    );
    let root = root_file(&b.root, &[alice]);

    // bob pulled (his slot stays listed, C_GetTokenInfo says CKR_TOKEN_NOT_PRESENT).
    b.pull("bob", true);
    let run = b.conclave(&["token", "list", "--module", "MODULE"], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("token \"alice\""), "{run:?}");
    assert!(
        run.stdout.contains(
            "was removed or is not present (C_GetTokenInfo returned CKR_TOKEN_NOT_PRESENT)"
        ),
        "{run:?}"
    );
    let run = sign(&b, Some("bob"), "bob", &root, "000000\n");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("CKR_TOKEN_NOT_PRESENT"), "{run:?}");
    assert!(!run.stderr.contains("holds no key"), "{run:?}");
    let run = sign(&b, None, "alice", &root, &format!("{}\n", b.pin("alice")));
    assert_eq!(run.code(), 0, "{run:?}");
    python_accepts(&root);
}

/// yubihsm_pkcs11 shows no key before login: the token is identified by its serial, the PIN
/// asked, then the key looked up; with or without --token. A PIN shorter than the module's
/// minimum (8) is refused before it is sent, not reported as wrong.
#[test]
fn yubihsm_keys_hidden_before_login_are_found_after_it() {
    let b = Bench::new("alice", "yubihsm");
    let serial = tokens(&b)[0]["serial"].as_str().unwrap().to_string();
    let pin = format!("0001{}\n", b.pin("alice"));
    let key = keygen(&b, &serial, "ed25519", "root-alice", &pin, &[]);
    let root = root_file(&b.root, &[key]);
    let run = sign(&b, Some(&serial), "root-alice", &root, &pin);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr.contains("it shows its keys only after login"),
        "{run:?}"
    );
    let run = sign(&b, None, "root-alice", &root, &pin);
    assert_eq!(run.code(), 0, "{run:?}");
    python_accepts(&root);

    let run = sign(&b, Some(&serial), "root-alice", &root, "0001\n");
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains("has 4 bytes; this token takes 8 to 64 (not sent to the token"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("wrong PIN"), "{run:?}");
}

/// A PIN-pad reader: no PIN is read, C_Login goes without one (the pad), keygen (P-384 and
/// Ed25519) and signing work.
#[test]
fn a_pin_pad_reader_logs_in_without_a_typed_pin() {
    let b = Bench::new("alice", "pinpad");
    let keys = [
        keygen(&b, "alice", "ecdsa-p384", "alice-p384", "", &[]),
        keygen(&b, "alice", "ed25519", "alice-ed", "", &[]),
    ];
    let root = root_file(&b.root, &keys);
    for key in ["alice-p384", "alice-ed"] {
        let run = sign(&b, Some("alice"), key, &root, "");
        assert_eq!(run.code(), 0, "{run:?}");
        assert!(
            run.stderr
                .contains("has a PIN pad: enter the PIN on the reader"),
            "{run:?}"
        );
    }
    let mut schemes = root_key_schemes(&root);
    schemes.sort();
    assert_eq!(schemes, ["ecdsa-sha2-nistp384", "ed25519"]);
    python_accepts_every_key(&root);
}

/// tpm2-pkcs11: equal serials (tokens told apart by label), no Ed25519, and one lockout for
/// every token of the TPM: the wrong-PIN message says so, and after three wrong PINs in total
/// the other keyholder's token is locked too.
#[test]
fn tpm_tokens_share_a_serial_and_a_lockout() {
    let b = Bench::new("alice,bob", "tpm");
    let alice = keygen(
        &b,
        "alice",
        "ecdsa-p256",
        "alice",
        &format!("{}\n", b.pin("alice")),
        &[],
    );
    let bob = keygen(
        &b,
        "bob",
        "ecdsa-p384",
        "bob",
        &format!("{}\n", b.pin("bob")),
        &[],
    );
    let run = b.conclave(
        &[
            "token",
            "keygen",
            "--module",
            "MODULE",
            "--token",
            "bob",
            "--type",
            "ed25519",
            "--label",
            "e",
            "--pin-stdin",
        ],
        &format!("{}\n", b.pin("bob")),
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("does not support CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        "{run:?}"
    );
    let root = root_file(&b.root, &[alice, bob]);
    let run = sign(
        &b,
        Some("alice"),
        "alice",
        &root,
        &format!("{}\n", b.pin("alice")),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let run = sign(
        &b,
        Some("bob"),
        "bob",
        &root,
        &format!("{}\n", b.pin("bob")),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    python_accepts(&root);

    for who in ["alice", "bob", "alice"] {
        let run = sign(&b, Some(who), who, &root, "99999999\n");
        assert_eq!(run.code(), 1, "{run:?}");
        assert!(
            run.stderr
                .contains("every token on this TPM shares one lockout counter"),
            "{run:?}"
        );
    }
    let run = sign(
        &b,
        Some("bob"),
        "bob",
        &root,
        &format!("{}\n", b.pin("bob")),
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains("is locked (C_Login returned CKR_PIN_LOCKED)"),
        "{run:?}"
    );
}

/// ykcs11: key generation in PIV slot 9c after the management key (the factory key refused
/// outside practice), never over an occupied slot, Ed25519 refused naming the missing
/// mechanism, a P-384 key in slot 9d; the PIN verified again before every signature with the
/// 9c key (PIN policy "always"); python-tuf verifies both signatures.
#[test]
fn yubikey_piv_keys_go_into_a_slot_and_sign_with_the_pin_each_time() {
    let b = Bench::new("alice", "ykcs11");
    let label = tokens(&b)[0]["label"].as_str().unwrap().to_string();
    assert!(label.starts_with("YubiKey PIV #"), "{label}");
    let factory = "010203040506070801020304050607080102030405060708";
    let stdin = format!("{}\n{factory}\n", b.pin("alice"));
    let keygen_args = |extra: &[&str]| {
        let mut a = vec![
            "token",
            "keygen",
            "--module",
            "MODULE",
            "--token",
            &label,
            "--type",
            "ecdsa-p256",
            "--label",
            "ignored",
            "--pin-stdin",
            "--json",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = b.conclave(
        &keygen_args(&[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &stdin,
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("factory-default PIV management key"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains(factory) && !run.stdout.contains(factory),
        "{run:?}"
    );

    let run = b.conclave(
        &keygen_args(&["--practice"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &stdin,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr.contains("YSA-2024-03"),
        "the advisory is shown: {run:?}"
    );
    let v = run.json();
    assert_eq!(v["id"], "02", "slot 9c is CKA_ID 02: {v}");
    assert_eq!(v["label"], "Public key for Digital Signature", "{v}");
    let text = serde_json::to_string(&v["key"]).unwrap();
    let key = key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap();

    // The slot is taken: refused, the key stays.
    let run = b.conclave(
        &keygen_args(&["--practice", "--piv-slot", "9c"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &stdin,
    );
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("a key or certificate in PIV slot 9c"),
        "{run:?}"
    );

    // No EdDSA in ykcs11 2.2: refused naming the mechanism, before the management key is used.
    let run = b.conclave(
        &keygen_args(&["--practice", "--piv-slot", "9a"])
            .iter()
            .map(|a| {
                if a == "ecdsa-p256" {
                    "ed25519"
                } else {
                    a.as_str()
                }
            })
            .collect::<Vec<_>>(),
        &stdin,
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("does not support CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        "{run:?}"
    );
    // P-384 in slot 9d (Key Management: PIN once per session).
    let run = b.conclave(
        &keygen_args(&["--practice", "--piv-slot", "9d"])
            .iter()
            .map(|a| {
                if a == "ecdsa-p256" {
                    "ecdsa-p384"
                } else {
                    a.as_str()
                }
            })
            .collect::<Vec<_>>(),
        &stdin,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["id"], "03", "slot 9d is CKA_ID 03: {v}");
    let text = serde_json::to_string(&v["key"]).unwrap();
    let p384 = key_from_value(Value::parse(text.as_bytes()).unwrap(), "$").unwrap();

    let root = root_file(&b.root, &[key.clone(), p384.clone()]);
    for k in [&key, &p384] {
        let run = sign(
            &b,
            Some(&label),
            &k.key_id().0,
            &root,
            &format!("{}\n", b.pin("alice")),
        );
        assert_eq!(run.code(), 0, "{run:?}");
    }
    let mut schemes = root_key_schemes(&root);
    schemes.sort();
    assert_eq!(schemes, ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"]);
    python_accepts_every_key(&root);
    // Several signatures in one session: the PIN is verified again before each.
    let run = b.conclave(
        &[
            "token",
            "bench",
            "--module",
            "MODULE",
            "--token",
            &label,
            "--key",
            &key.key_id().0,
            "--count",
            "3",
            "--pin-stdin",
        ],
        &format!("{}\n", b.pin("alice")),
    );
    assert_eq!(run.code(), 0, "{run:?}");
}

/// `conclave ceremony run bootstrap-root` on the bench's tokens alice, bob and carol through
/// the profile module.
fn ceremony(b: &Bench, ws_name: &str, key_type: &str) -> common::Run {
    let (ws, answers) = ceremony_files(&b.root, ws_name, b.module(), key_type);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", b.pin(k)))
        .collect();
    bootstrap(b, &ws, &answers, &pins)
}

/// `conclave ceremony run bootstrap-root` in workspace `ws` with `answers`, the PINs on stdin.
fn bootstrap(b: &Bench, ws: &str, answers: &str, pins: &str) -> common::Run {
    b.conclave(
        &[
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            ws,
            "--answers",
            answers,
            "--pin-stdin",
        ],
        pins,
    )
}

/// Whole ceremonies on tpm2-pkcs11-like tokens (profile `tpm`: every serial
/// 0000000000000000, one PIN lockout counter for every token): each keyholder's token is told
/// apart by module + serial + label, and the transcript records each token's identity. A
/// bootstrap-root (P-256, sealed, the key-event log started), then rotate-root-keys in which
/// alice moves to a new token of the same TPM (`[tokens] alice = "alice-new"`, her PINs given as
/// `alice=` and `alice@alice-new=`): no wrong PIN is sent to any token (the lockout counter
/// stays 0). A second bootstrap on the same tokens with another key type makes new keys (never
/// the first ceremony's, found by label).
#[test]
fn whole_ceremonies_on_tpm_tokens_with_equal_serials_make_new_keys_and_a_keyholder_moves() {
    let b = Bench::new("alice,bob,carol,alice-new", "tpm");
    let (ws, answers) = ceremony_files(&b.root, "ws1", b.module(), "ecdsa-p256");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", b.pin(k)))
        .collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    check_bootstrap(&run, &Path::new(&ws).join("export"));
    let first = Path::new(&ws).join("export/1.root.json");
    let transcript =
        std::fs::read_to_string(Path::new(&ws).join("bootstrap-root.transcript.jsonl")).unwrap();
    assert!(
        transcript.contains("serial 0000000000000000 label \\\"bob\\\" in "),
        "the token's identity is recorded: {transcript}"
    );

    let rotation = rotation_answers(&b.root, b.module(), "ecdsa-p256", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", b.pin("alice-new"));
    let run = rotate(&b, &ws, &rotation, &both);
    let on_new = token_entry(&b, "alice-new");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
    assert_eq!(tpm_failed_logins(&b), 0, "a wrong PIN was sent: {run:?}");

    let run = ceremony(&b, "ws2", "ecdsa-p384");
    assert_eq!(run.code(), 0, "{run:?}");
    let second = b.root.join("ws2/export/1.root.json");
    python_accepts(&second);
    let (k1, k2) = (root_key_ids(&first), root_key_ids(&second));
    assert_eq!(k2.len(), 3);
    assert!(
        k2.iter().all(|k| !k1.contains(k)),
        "keys reused: {k1:?} {k2:?}"
    );
    let text = std::fs::read_to_string(&second).unwrap();
    assert_eq!(text.matches("ecdsa-sha2-nistp384").count(), 3, "{text}");
}

/// The emulated TPM's dictionary-attack counter (wrong PINs on any of its tokens so far).
fn tpm_failed_logins(b: &Bench) -> u32 {
    std::fs::read_to_string(b.root.join("profile-state/tpm-da-count"))
        .map_or(0, |s| s.trim().parse().unwrap())
}

/// The emulated TPM (profile `tpm`, one dictionary-attack counter for every token, locked
/// after 3 wrong PINs): in a rotate-root-keys in which alice moves to a new token, a wrong PIN
/// for her new token stops the ceremony and costs the TPM exactly one try (sent to that token
/// only, never tried on another); the second says that ONE more locks every keyholder's token
/// (the first run's wrong PIN counted from the transcript), and the continued run warns before
/// each PIN is sent; with the right PIN the ceremony finishes, bob's and carol's tokens not
/// locked.
#[test]
fn a_wrong_pin_for_a_new_tpm_token_costs_one_shared_try_and_the_last_is_warned() {
    let b = Bench::new("alice,bob,carol,alice-new", "tpm");
    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ecdsa-p256");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", b.pin(k)))
        .collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    check_bootstrap(&run, &Path::new(&ws).join("export"));
    assert_eq!(tpm_failed_logins(&b), 0);

    let rotation = rotation_answers(&b.root, b.module(), "ecdsa-p256", "alice = \"alice-new\"\n");
    let wrong = format!("{pins}alice@alice-new=99999999\n");
    for (n, next) in [
        (1, "a TPM set up as usual locks after 3 wrong PINs in total"),
        (
            2,
            "ONE more wrong PIN on any of its tokens locks EVERY keyholder's token on it",
        ),
    ] {
        let run = rotate(&b, &ws, &rotation, &wrong);
        assert_eq!(run.code(), 1, "wrong PIN {n}: {run:?}");
        assert!(
            run.stderr
                .contains("wrong PIN for token \"alice-new\" (serial 0000000000000000")
                && run.stderr.contains(&format!(
                    "shares one lockout counter ({n} wrong PIN{} here so far)",
                    if n == 1 { "" } else { "s" }
                ))
                && run.stderr.contains(next),
            "wrong PIN {n}: {run:?}"
        );
        assert!(!run.stderr.contains("99999999"), "a PIN printed: {run:?}");
        assert_eq!(tpm_failed_logins(&b), n, "one try per wrong PIN: {run:?}");
    }

    let both = format!("{pins}alice@alice-new={}\n", b.pin("alice-new"));
    let run = rotate(&b, &ws, &rotation, &both);
    assert!(
        run.stderr.contains(
            "WARNING: 2 wrong PINs on this TPM's tokens so far: ONE more wrong PIN on token \"alice-new\" (serial 0000000000000000"
        ),
        "warned before the last try: {run:?}"
    );
    let on_new = token_entry(&b, "alice-new");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
    assert_eq!(tpm_failed_logins(&b), 2, "{run:?}");
}

/// The token list a PIN prompt is opened from (the terminal UI's, `Module::tokens`) carries the
/// TPM's shared wrong-PIN count, so the UI can warn and ask before the last shared try (it
/// read None on every token, and the UI's prompt never warned). On the `tpm` profile (wrong
/// PINs counted across every token of the TPM, as tpm2-pkcs11 on a TPM does). Runs in a child
/// of this test binary so the process's wrong-PIN count starts at zero and is this test's own.
#[test]
fn the_token_list_carries_the_tpm_shared_wrong_pin_count() {
    use conclave::signer::pkcs11::{Module, TokenError};
    const CHILD: &str = "CONCLAVE_TEST_TPM_COUNT_CHILD";
    if let Some(module) = std::env::var_os(CHILD) {
        let m = Module::open(Some(Path::new(&module))).unwrap();
        let count = |label: &str| m.find_token(label).unwrap().pin;
        assert_eq!(count("alice").shared_lockout, Some(0));
        for n in 1..=2 {
            let t = m.find_token("alice").unwrap();
            let s = m.open_session(&t, false).unwrap();
            let wrong = zeroize::Zeroizing::new("99999999".to_string());
            let e = s.login(&wrong).unwrap_err();
            assert!(matches!(e, TokenError::WrongPin { .. }), "{e}");
            // Every token of the TPM, not only the one the wrong PIN went to.
            let bob = count("bob");
            assert_eq!(bob.shared_lockout, Some(n), "after {n} wrong PIN(s)");
            assert_eq!(bob.shared_last_try(), n == 2, "after {n} wrong PIN(s)");
        }
        println!("child checked");
        return;
    }
    let b = Bench::new("alice,bob", "tpm");
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "the_token_list_carries_the_tpm_shared_wrong_pin_count",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, b.module())
    .env_remove("SOFTHSM2_CONF");
    for (k, v) in &b.env {
        cmd.env(k, v);
    }
    let run = common::run_with_timeout(&mut cmd, b"", std::time::Duration::from_secs(120));
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("child checked"), "{run:?}");
    assert_eq!(tpm_failed_logins(&b), 2, "{run:?}");
}

/// The real ykcs11 (Debian's `ykcs11`) loaded with no YubiKey (and no PC/SC service): a clean
/// "no token" message, never a crash, for listing and for signing.
#[test]
fn the_real_ykcs11_with_no_device_says_no_token() {
    const YKCS11: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";
    assert!(
        Path::new(YKCS11).is_file(),
        "{YKCS11} missing: install the Debian package ykcs11 (make deb-deps)"
    );
    let b = Bench::new("alice", "none");
    let run = b.conclave(&["token", "list", "--module", YKCS11], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout.contains("no token present: ") || run.stdout.contains("no tokens present"),
        "{run:?}"
    );
    let key = {
        use conclave::signer::Signer;
        conclave::signer::software::SoftwareSigner::from_seed(
            conclave::tuf::key::Algorithm::Ed25519,
            &[7; 32],
        )
        .unwrap()
        .key()
        .clone()
    };
    let root = root_file(&b.root, &[key]);
    let f = root.to_str().unwrap();
    let run = b.conclave(
        &[
            "sign", "--module", YKCS11, "--key", "k", "--in", f, "--out", f, "--force",
        ],
        "",
    );
    // Exit code 2 with a message (not a signal), whatever PC/SC says.
    assert!(run.status.code().is_some(), "crashed: {run:?}");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("no token present"), "{run:?}");
}

/// A whole ceremony on YubiHSM 2-like tokens (keys hidden until login, every label "YubiHSM",
/// tokens assigned by serial, firmware 2.3.1): ECDSA (P-256, P-384) is refused on that firmware
/// naming YSA-2024-03; Ed25519 goes through, and the transcript records the advisory with each key.
#[test]
fn a_whole_ceremony_on_yubihsm_tokens_records_the_advisory_and_refuses_ecdsa() {
    let mut b = Bench::new("alice,bob,carol", "none");
    // Each keyholder's YubiHSM serial: the profile shows the backing serial as 8 decimals.
    let serials: Vec<(String, String)> = tokens(&b)
        .iter()
        .filter(|t| t["flags"]["token_initialized"] == true)
        .map(|t| {
            let hex = t["serial"].as_str().unwrap();
            let decimal = u64::from_str_radix(hex, 16).unwrap() % 100_000_000;
            (
                t["label"].as_str().unwrap().to_string(),
                format!("{decimal:08}"),
            )
        })
        .collect();
    assert_eq!(serials.len(), 3);
    b.set("CONCLAVE_PROFILE", "yubihsm");
    let run_with = |ws: &str, key_type: &str| {
        let (ws, answers) = ceremony_files(&b.root, ws, b.module(), key_type);
        let mut text = std::fs::read_to_string(&answers).unwrap();
        text.push_str("\n[tokens]\n");
        for (who, serial) in &serials {
            text.push_str(&format!("{who} = \"{serial}\"\n"));
        }
        std::fs::write(&answers, text).unwrap();
        let pins: String = b
            .tokens
            .iter()
            .map(|(l, p)| format!("{l}=0001{p}\n"))
            .collect();
        let run = bootstrap(&b, &ws, &answers, &pins);
        (run, ws)
    };
    // Named by the administrator (the answers' key_type): refused at the roll call, before
    // any key exists and before any PIN, naming the key type safe on the device.
    for (ws, key_type, name) in [
        ("ws-p256", "ecdsa-p256", "P-256"),
        ("ws-p384", "ecdsa-p384", "P-384"),
    ] {
        let (run, ws) = run_with(ws, key_type);
        assert_eq!(run.code(), 1, "{run:?}");
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains(&format!(
                "key type {key_type} refused at the roll call, before any key or PIN"
            )) && all.contains("YSA-2024-03")
                && all.contains(&format!(
                    "No ECDSA {name} key is generated on it; safe on it: ed25519"
                ))
                && all.contains("key_type = \"ed25519\" in the answers file"),
            "{run:?}"
        );
        let transcript =
            std::fs::read_to_string(Path::new(&ws).join("bootstrap-root.transcript.jsonl"))
                .unwrap_or_default();
        assert!(
            !transcript.contains("\"roll-call\"") && !transcript.contains("\"key-generated\""),
            "{transcript}"
        );
    }

    // Left at the script's default (ecdsa-p256): Ed25519, safe on every YubiHSM present, is
    // proposed at the roll call, said and recorded with its reason, and the ceremony goes on.
    let (answers_ws, answers) = ceremony_files(&b.root, "ws-default", b.module(), "ecdsa-p256");
    let text = std::fs::read_to_string(&answers)
        .unwrap()
        .replace("key_type = \"ecdsa-p256\"\n", "");
    let mut text = text;
    text.push_str("\n[tokens]\n");
    for (who, serial) in &serials {
        text.push_str(&format!("{who} = \"{serial}\"\n"));
    }
    std::fs::write(&answers, text).unwrap();
    let pins: String = b
        .tokens
        .iter()
        .map(|(l, p)| format!("{l}=0001{p}\n"))
        .collect();
    let run = bootstrap(&b, &answers_ws, &answers, &pins);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr.contains("WARNING: PARAMETERS CORRECTED: key_type = \"ed25519\" (proposed by Conclave: key_type was left at the script's default ecdsa-p256"),
        "{run:?}"
    );
    let transcript =
        std::fs::read_to_string(Path::new(&answers_ws).join("bootstrap-root.transcript.jsonl"))
            .unwrap();
    let correction = transcript
        .lines()
        .find(|l| l.contains("\"parameters-corrected\""))
        .unwrap_or_else(|| panic!("{transcript}"));
    assert!(
        correction.contains("\"reason\"") && correction.contains("YSA-2024-03"),
        "{correction}"
    );
    let root_file = Path::new(&answers_ws).join("export/1.root.json");
    let root: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&root_file).unwrap()).unwrap();
    let keys = root["signed"]["keys"].as_object().unwrap();
    assert!(
        !keys.is_empty() && keys.values().all(|k| k["keytype"] == "ed25519"),
        "{root}"
    );
    python_accepts(&root_file);

    let (run, ws) = run_with("ws-ed", "ed25519");
    assert_eq!(run.code(), 0, "{run:?}");
    // Said when each key is generated, not only recorded.
    for who in ["alice", "bob", "carol"] {
        assert!(
            run.stderr
                .contains(&format!("WARNING: firmware advisory on {who}'s token"))
                && run.stderr.contains("YSA-2024-03 (ECDSA)"),
            "{run:?}"
        );
    }
    let root = Path::new(&ws).join("export/1.root.json");
    python_accepts(&root);
    let transcript =
        std::fs::read_to_string(Path::new(&ws).join("bootstrap-root.transcript.jsonl")).unwrap();
    assert_eq!(
        transcript.matches("YSA-2024-03 (ECDSA)").count(),
        3,
        "{transcript}"
    );
    // The auditor's report names each keyholder's token by its identity, with the advisory.
    let t = Path::new(&ws).join("bootstrap-root.transcript.jsonl");
    let report = b.root.join("report.md");
    let export = Path::new(&ws).join("export");
    let first = export.join("1.root.json");
    let run = b.conclave(
        &[
            "transcript",
            "verify",
            t.to_str().unwrap(),
            "--artifacts",
            export.to_str().unwrap(),
            "--trusted-root",
            first.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let md = std::fs::read_to_string(&report).unwrap();
    // Each keyholder's token with its advisory, and each key-generated record with it.
    let lines = |what: &str| {
        md.lines()
            .filter(|l| l.contains(what) && l.contains("[advisory YSA-2024-03 (ECDSA)"))
            .count()
    };
    assert_eq!(lines("label \"YubiHSM\" in "), 3, "{md}");
    assert_eq!(lines("| key-generated |"), 3, "{md}");
    assert_eq!(
        md.matches("[advisory YSA-2024-03 (ECDSA)").count(),
        6,
        "{md}"
    );
}

/// YubiKeys as ykcs11 shows them (profile `ykcs11`, which follows yubico-piv-tool's
/// `ykcs11/token.c`: model `YubiKey YK5` for every YubiKey 5, firmware `minor*10+patch`) at
/// firmware 5.4.3: YSA-2024-03 concerns ECDSA there and the PIV application has no Ed25519
/// before 5.7, so no key type Conclave supports is safe. With the key type left at the
/// script's default nothing is proposed: the roll call is refused, saying so, before any key,
/// PIN or management key.
#[test]
fn yubikeys_below_the_fixed_firmware_are_refused_at_the_roll_call_with_no_safe_key_type() {
    let mut b = Bench::new("alice,bob,carol", "ykcs11");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "5.4.3");
    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ecdsa-p256");
    let text = std::fs::read_to_string(&answers)
        .unwrap()
        .replace("key_type = \"ecdsa-p256\"\n", "");
    std::fs::write(&answers, text).unwrap();
    let pins: String = b.tokens.iter().map(|(l, p)| format!("{l}={p}\n")).collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(
        run.stderr.contains("key type ecdsa-p256 (the script's default; no key type is safe on every token present, so none is proposed) refused at the roll call")
            && run.stderr.contains("token \"YubiKey PIV #")
            && run.stderr.contains("has firmware 5.4.3")
            && run.stderr.contains("YubiKey below 5.7.2 (the module does not tell YubiKey 5, 5 FIPS and Bio apart")
            && run.stderr.contains("no key type Conclave supports is safe on it"),
        "{run:?}"
    );
    let transcript =
        std::fs::read_to_string(Path::new(&ws).join("bootstrap-root.transcript.jsonl"))
            .unwrap_or_default();
    assert!(!transcript.contains("\"roll-call\""), "{transcript}");
}

/// The real yubihsm_pkcs11 (bookworm-backports' `yubihsm-pkcs11` 2.6.0) loaded with no
/// YubiHSM 2: without its configuration a clean "not configured" message, with a USB connector
/// configured "no tokens present"; never a crash.
#[test]
fn the_real_yubihsm_pkcs11_with_no_device_says_no_token() {
    const YUBIHSM: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so";
    assert!(
        Path::new(YUBIHSM).is_file(),
        "{YUBIHSM} missing: install yubihsm-pkcs11 from bookworm-backports (make deb-deps)"
    );
    let mut b = Bench::new("alice", "none");
    // No configuration (CKR_ARGUMENTS_BAD), then a configuration file that is missing
    // (CKR_GENERAL_ERROR).
    for conf in ["", "/nonexistent/yubihsm_pkcs11.conf"] {
        if !conf.is_empty() {
            b.set("YUBIHSM_PKCS11_CONF", conf);
        }
        let run = b.conclave(&["token", "list", "--module", YUBIHSM], "");
        assert_eq!(run.code(), 2, "{run:?}");
        assert!(
            run.stderr.contains("no token can be reached: ")
                && run
                    .stderr
                    .contains("could not start (C_Initialize returned CKR_")
                && run.stderr.contains("YUBIHSM_PKCS11_CONF"),
            "{run:?}"
        );
    }
    let conf = b.root.join("yubihsm_pkcs11.conf");
    std::fs::write(&conf, "connector = yhusb://\n").unwrap();
    b.set("YUBIHSM_PKCS11_CONF", conf.to_str().unwrap());
    let run = b.conclave(&["token", "list", "--module", YUBIHSM], "");
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stdout.contains("no tokens present"), "{run:?}");
}

/// `conclave ceremony run rotate-root-keys` in workspace `ws` with `answers`, the PINs on stdin.
fn rotate(b: &Bench, ws: &str, answers: &Path, pins: &str) -> common::Run {
    b.conclave(
        &[
            "ceremony",
            "run",
            "rotate-root-keys",
            "--workspace",
            ws,
            "--answers",
            answers.to_str().unwrap(),
            "--pin-stdin",
        ],
        pins,
    )
}

/// The `token list --json` entry of the token labelled `label`, as text.
fn token_entry(b: &Bench, label: &str) -> String {
    tokens(b)
        .into_iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no token {label}"))
        .to_string()
}

/// OpenSC with a Nitrokey HSM 2 (profile `opensc-nitrokey`: each token labelled "LABEL
/// (UserPIN)", no EdDSA; its EC points DER-wrapped, as SoftHSM2 returns them anyway): a P-256
/// and a P-384 key generated on tokens named by their card label or in full, each signs a
/// root, python-tuf accepts it; Ed25519 is refused naming the missing mechanism.
#[test]
fn nitrokey_tokens_generate_p256_and_p384_keys_that_python_tuf_accepts() {
    let b = Bench::new("alice,bob", "opensc-nitrokey");
    let t = tokens(&b);
    assert!(
        t.iter().any(|t| t["label"] == "alice (UserPIN)")
            && t.iter().any(|t| t["label"] == "bob (UserPIN)"),
        "{t:?}"
    );
    let alice_pin = format!("{}\n", b.pin("alice"));
    let bob_pin = format!("{}\n", b.pin("bob"));
    let p256 = keygen(&b, "alice", "ecdsa-p256", "alice", &alice_pin, &[]);
    let p384 = keygen(&b, "bob (UserPIN)", "ecdsa-p384", "bob", &bob_pin, &[]);
    let run = b.conclave(
        &[
            "token",
            "keygen",
            "--module",
            "MODULE",
            "--token",
            "alice",
            "--type",
            "ed25519",
            "--label",
            "e",
            "--pin-stdin",
        ],
        &alice_pin,
    );
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("does not support CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        "{run:?}"
    );
    // The list shows each key on its token (its public key read from the DER EC point).
    for (label, key) in [("alice (UserPIN)", &p256), ("bob (UserPIN)", &p384)] {
        let entry = token_entry(&b, label);
        assert!(entry.contains(key.key_id().as_str()), "{label}: {entry}");
    }
    let root = root_file(&b.root, &[p256, p384]);
    for (token, pin) in [("alice", &alice_pin), ("bob", &bob_pin)] {
        let run = sign(&b, Some(token), token, &root, pin);
        assert_eq!(run.code(), 0, "sign on {token}: {run:?}");
    }
    let text = std::fs::read_to_string(&root).unwrap();
    for scheme in ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"] {
        assert!(text.contains(&format!("\"{scheme}\"")), "{scheme}: {text}");
    }
    python_accepts(&root);
}

/// A whole bootstrap-root ceremony (P-384) on Nitrokey HSM 2-like tokens through OpenSC
/// (profile `opensc-nitrokey`: every token labelled "LABEL (UserPIN)"), then rotate-root-keys
/// in which alice moves to a new token (`[tokens] alice = "alice-new"`, her PINs given as
/// `alice=` and `alice@alice-new=`): each sealed, each extending the key-event log; python-tuf
/// follows the root chain.
#[test]
fn a_whole_ceremony_on_nitrokey_tokens_then_a_keyholder_moves_to_a_new_token() {
    let b = Bench::new("alice,bob,carol,alice-new", "opensc-nitrokey");
    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ecdsa-p384");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", b.pin(k)))
        .collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    check_bootstrap(&run, &Path::new(&ws).join("export"));

    let rotation = rotation_answers(&b.root, b.module(), "ecdsa-p384", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", b.pin("alice-new"));
    let run = rotate(&b, &ws, &rotation, &both);
    let on_new = token_entry(&b, "alice-new (UserPIN)");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
    assert_eq!(
        root_key_schemes(&Path::new(&ws).join("export/2.root.json")),
        ["ecdsa-sha2-nistp384"; 3]
    );
}

/// A whole bootstrap-root ceremony (Ed25519, sealed, the key-event log started) on opencryptoki
/// tokens (profile `opencryptoki`: `CKF_CLOCK_ON_TOKEN` with a blank clock, which cryptoki
/// refuses to parse): every keyholder's token is used, none skipped; then rotate-root-keys in
/// which alice moves to a new opencryptoki token (`[tokens] alice = "alice-new"`, her PINs
/// given as `alice=` and `alice@alice-new=`); each sealed, each extending the key-event log;
/// python-tuf follows the root chain.
#[test]
fn a_whole_ceremony_on_opencryptoki_tokens_with_an_unknown_clock_then_a_keyholder_moves() {
    let b = Bench::new("alice,bob,carol,alice-new", "opencryptoki");
    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ed25519");
    with_log_origin(&answers);
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|k| format!("{k}={}\n", b.pin(k)))
        .collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    check_bootstrap(&run, &Path::new(&ws).join("export"));
    assert_eq!(
        root_key_schemes(&Path::new(&ws).join("export/1.root.json")),
        ["ed25519"; 3]
    );

    let rotation = rotation_answers(&b.root, b.module(), "ed25519", "alice = \"alice-new\"\n");
    let both = format!("{pins}alice@alice-new={}\n", b.pin("alice-new"));
    let run = rotate(&b, &ws, &rotation, &both);
    let on_new = token_entry(&b, "alice-new");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
}

/// A PIN-pad reader (`CKF_PROTECTED_AUTHENTICATION_PATH`): the list says so, and a whole
/// bootstrap-root ceremony (P-256, sealed, the key-event log started) runs with no PIN typed
/// anywhere (no `--pin-stdin`, no terminal): every login goes through the pad (`C_Login` with
/// no PIN). Then rotate-root-keys in which alice moves to a new PIN-pad token (`[tokens] alice
/// = "alice-new"`), again with no PIN typed: the reader asks for both of alice's PINs.
#[test]
fn a_whole_ceremony_on_pin_pad_readers_types_no_pin_then_a_keyholder_moves() {
    let b = Bench::new("alice,bob,carol,alice-new", "pinpad");
    let t = tokens(&b);
    assert_eq!(
        t.iter()
            .filter(|t| t["flags"]["protected_authentication_path"] == true)
            .count(),
        4,
        "{t:?}"
    );
    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ecdsa-p256");
    with_log_origin(&answers);
    let run = b.conclave(
        &[
            "ceremony",
            "run",
            "bootstrap-root",
            "--workspace",
            &ws,
            "--answers",
            &answers,
        ],
        "",
    );
    check_bootstrap(&run, &Path::new(&ws).join("export"));
    assert!(
        run.stderr
            .contains("has a PIN pad: enter the PIN on the reader"),
        "{run:?}"
    );

    let rotation = rotation_answers(&b.root, b.module(), "ecdsa-p256", "alice = \"alice-new\"\n");
    let run = b.conclave(
        &[
            "ceremony",
            "run",
            "rotate-root-keys",
            "--workspace",
            &ws,
            "--answers",
            rotation.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("token \"alice-new\" (serial ")
                && l.contains("has a PIN pad: enter the PIN on the reader")),
        "the reader of alice's new token asks for her PIN: {run:?}"
    );
    let on_new = token_entry(&b, "alice-new");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
}

/// The device-profile module over kryoptic, profile `yubihsm` with firmware 2.4.0 (not affected
/// by YSA-2024-03): P-256 and P-384 keys generated in a YubiHSM-like token named by its serial
/// (keys hidden before login), each signs a root, python-tuf verifies both signatures.
#[test]
fn yubihsm_over_kryoptic_generates_p256_and_p384_keys_that_python_tuf_accepts() {
    let mut b = Bench::over_kryoptic("alice", "yubihsm");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "2.4.0");
    let listed = tokens(&b);
    assert!(
        listed.len() == 1 && listed[0]["label"] == "YubiHSM",
        "{listed:?}"
    );
    assert!(
        listed[0]["advisories"].as_array().unwrap().is_empty(),
        "{listed:?}"
    );
    let serial = listed[0]["serial"].as_str().unwrap().to_string();
    let pin = format!("0001{}\n", b.pin("alice"));
    let keys = [
        keygen(&b, &serial, "ecdsa-p256", "alice-p256", &pin, &[]),
        keygen(&b, &serial, "ecdsa-p384", "alice-p384", &pin, &[]),
    ];
    let root = root_file(&b.root, &keys);
    for key in ["alice-p256", "alice-p384"] {
        let run = sign(&b, Some(&serial), key, &root, &pin);
        assert_eq!(run.code(), 0, "sign with {key}: {run:?}");
    }
    let mut schemes = root_key_schemes(&root);
    schemes.sort();
    assert_eq!(schemes, ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"]);
    python_accepts_every_key(&root);
}

/// The device-profile module wrapping kryoptic instead of SoftHSM2 (`CONCLAVE_PROFILE_TARGET`),
/// profile `yubihsm` (keys hidden before login, every label "YubiHSM", tokens named by serial,
/// firmware 2.4.0): a whole bootstrap-root ceremony (Ed25519), then rotate-root-keys in which
/// alice moves to a new YubiHSM (named by its serial in `[tokens]` and in her second PIN).
#[test]
fn a_whole_ceremony_on_yubihsm_tokens_over_kryoptic_then_a_keyholder_moves() {
    let mut b = Bench::over_kryoptic("alice,bob,carol,alice-new", "none");
    // Each backing token's slot; the profile shows the token in the same slot as a YubiHSM.
    let slots: Vec<(String, u64)> = tokens(&b)
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_string(),
                t["slot"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(slots.len(), 4, "{slots:?}");
    b.set("CONCLAVE_PROFILE", "yubihsm");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "2.4.0");
    let listed = tokens(&b);
    assert!(
        listed.len() == 4 && listed.iter().all(|t| t["label"] == "YubiHSM"),
        "{listed:?}"
    );
    let serial = |who: &str| -> String {
        let slot = slots.iter().find(|(l, _)| l == who).unwrap().1;
        let t = listed.iter().find(|t| t["slot"] == slot).unwrap();
        t["serial"].as_str().unwrap().to_string()
    };
    let mut all: Vec<String> = ["alice", "bob", "carol", "alice-new"]
        .iter()
        .map(|w| serial(w))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        4,
        "every YubiHSM has a serial of its own: {listed:?}"
    );

    let (ws, answers) = ceremony_files(&b.root, "ws", b.module(), "ed25519");
    with_log_origin(&answers);
    let mut text = std::fs::read_to_string(&answers).unwrap();
    text.push_str("\n[tokens]\n");
    for who in ["alice", "bob", "carol"] {
        text.push_str(&format!("{who} = \"{}\"\n", serial(who)));
    }
    std::fs::write(&answers, text).unwrap();
    // The YubiHSM "PIN": authentication key id 0001, then the password.
    let pins: String = ["alice", "bob", "carol"]
        .iter()
        .map(|w| format!("{w}=0001{}\n", b.pin(w)))
        .collect();
    let run = bootstrap(&b, &ws, &answers, &pins);
    check_bootstrap(&run, &Path::new(&ws).join("export"));

    let new = serial("alice-new");
    let rotation = rotation_answers(
        &b.root,
        b.module(),
        "ed25519",
        &format!(
            "alice = \"{new}\"\nbob = \"{}\"\ncarol = \"{}\"\n",
            serial("bob"),
            serial("carol")
        ),
    );
    // Every token is labelled "YubiHSM" and shows no key before login: alice names both of
    // hers by serial, and Conclave logs in to each to find the key it needs.
    let both = format!(
        "{pins}alice@{}=0001{}\nalice@{new}=0001{}\n",
        serial("alice"),
        b.pin("alice"),
        b.pin("alice-new")
    );
    let run = rotate(&b, &ws, &rotation, &both);
    // The new token's keys, read without the profile (kryoptic shows them before login).
    b.set("CONCLAVE_PROFILE", "none");
    let on_new = token_entry(&b, "alice-new");
    let all: Vec<&str> = b.tokens.iter().map(|(_, p)| p.as_str()).collect();
    check_rotation(&run, Path::new(&ws), &on_new, &all);
}

/// The terminal UI on three YubiHSM 2-like tokens at once (profile `yubihsm`: every label
/// "YubiHSM", keys hidden until login, firmware 2.4.0 so P-256 is allowed), driven in tmux:
/// the room assigns each keyholder's YubiHSM by serial when the key is made; at signing and at
/// the seal the UI names the serial of the token each PIN is for (the one the transcript
/// recorded the key on), and each keyholder's PIN opens their own YubiHSM. Emulated over
/// SoftHSM2; never run on a YubiHSM 2.
#[test]
fn the_terminal_ui_signs_with_each_keyholders_own_yubihsm_found_by_serial() {
    use common::tmux::Tmux;
    let mut b = Bench::new("alice,bob,carol", "none");
    let serials: Vec<(String, String)> = tokens(&b)
        .iter()
        .filter(|t| t["flags"]["token_initialized"] == true)
        .map(|t| {
            let hex = t["serial"].as_str().unwrap();
            let decimal = u64::from_str_radix(hex, 16).unwrap() % 100_000_000;
            (
                t["label"].as_str().unwrap().to_string(),
                format!("{decimal:08}"),
            )
        })
        .collect();
    assert_eq!(serials.len(), 3);
    let serial_of = |who: &str| serials.iter().find(|(w, _)| w == who).unwrap().1.clone();
    b.set("CONCLAVE_PROFILE", "yubihsm");
    b.set("CONCLAVE_PROFILE_FIRMWARE", "2.4.0");
    assert!(
        tokens(&b)
            .iter()
            .filter(|t| t["flags"]["token_initialized"] == true)
            .all(|t| t["label"] == "YubiHSM")
    );
    let (ws, _) = ceremony_files(&b.root, "ws", b.module(), "ecdsa-p256");
    let env: String = b.env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    let t = Tmux::start(
        "yubihsm",
        &format!(
            "env SOFTHSM2_CONF='{}' CONCLAVE_CONFIG='{}' {env}{} tui --practice --workspace '{ws}' --script bootstrap-root",
            b.conf.display(),
            b.root.join("appliance-config.toml").display(),
            env!("CARGO_BIN_EXE_conclave"),
        ),
    );
    t.begin();
    t.open_with_roll_call("BAG-0042", ["ada", "alice, bob, carol", "wendy"]);
    t.wait_for("Public keys of the online roles");
    t.send(&["Enter"]);
    t.wait_for("│ y  yes");
    t.send(&["y"]);
    // The YubiHSM "PIN": authentication key id 0001, then the password.
    let pin = |who: &str| format!("0001{}", b.pin(who));
    for who in ["alice", "bob", "carol"] {
        t.wait_for_words(&format!("Keyholder {who}:"));
        let serial = serial_of(who);
        let mut found = false;
        for _ in 0..4 {
            let before = t.screen();
            t.send(&["t"]);
            let s = t.wait_change(&before);
            if s.contains(&format!("(serial {serial},")) && s.contains("press a") {
                found = true;
                break;
            }
        }
        assert!(found, "{serial} could not be selected:\n{}", t.screen());
        t.send(&["a"]);
        t.wait_for("│ y  yes");
        t.send(&["y"]);
        t.wait_for_words(&format!("is {who}'s for this"));
        t.send(&["Enter"]);
        t.wait_for("│ y  yes");
        t.send(&["y"]);
        t.wait_for(&format!("with serial {serial} (more than"));
        t.type_text(&pin(who));
        t.send(&["Enter"]);
        t.wait_for_words(&format!(
            "Key of {who} generated in the token, self-test passed:"
        ));
    }
    // Signing and the seal: each PIN prompt names the YubiHSM by serial; the keyholder whose
    // YubiHSM it is types their PIN.
    let mut screen = t.screen();
    let mut pins_typed = 0;
    for _ in 0..300 {
        if screen.contains("Sealed: the ceremony is complete") {
            break;
        }
        assert!(!screen.contains("EXIT="), "conclave ended early:\n{screen}");
        assert!(!screen.contains("wrong PIN"), "{screen}");
        let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        if screen.contains("↓ more (PgDn)") {
            t.send(&["PageDown"]);
        } else if screen.contains("PIN: ") {
            let who = ["alice", "bob", "carol"]
                .into_iter()
                .find(|w| screen.contains(&format!("with serial {} (more than", serial_of(w))))
                .unwrap_or_else(|| panic!("which YubiHSM?\n{screen}"));
            assert!(
                flat.contains(&format!("{who}: PIN of token YubiHSM")),
                "{screen}"
            );
            t.type_text(&pin(who));
            std::thread::sleep(std::time::Duration::from_millis(100));
            t.send(&["Enter"]);
            pins_typed += 1;
        } else if screen.contains("│ y  yes") {
            t.send(&["y"]);
        } else {
            t.send(&["Enter"]);
        }
        screen = t.wait_change(&screen);
    }
    assert!(
        pins_typed >= 6,
        "a PIN for each signature and each seal: {pins_typed}"
    );
    assert!(
        screen.contains("Transcript (transcript verify): VALID"),
        "{screen}"
    );
    t.send(&["q"]);
    t.wait_for("EXIT=0");
    python_accepts(&Path::new(&ws).join("export/1.root.json"));
    let transcript =
        std::fs::read_to_string(Path::new(&ws).join("bootstrap-root.transcript.jsonl")).unwrap();
    for who in ["alice", "bob", "carol"] {
        assert!(
            transcript.contains(&format!("serial {} label \\\"YubiHSM\\\"", serial_of(who))),
            "{who}'s YubiHSM recorded: {transcript}"
        );
    }
    assert!(!transcript.contains("wrong PIN"), "{transcript}");
}
