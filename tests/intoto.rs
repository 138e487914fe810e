//! in-toto layouts signed by Conclave on SoftHSM2 tokens, verified by the in-toto reference
//! implementation (PyPI `in-toto` 3.1.0, tests/python/intoto_check.py): a supply chain of one
//! step whose layout (classic metablock, and DSSE envelope) two targets keyholders sign.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(ws: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .env("SOFTHSM2_CONF", ws.join("softhsm2.conf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check(args: &[&str]) -> common::Run {
    common::run_python("intoto_check.py", args, Duration::from_secs(120))
}

#[test]
fn in_toto_verifies_layouts_two_keyholders_signed_on_their_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let (code, out, err) = run(&ws, &["rehearse", "--headless", "--workspace", s(&ws)], "");
    assert_eq!(code, 0, "{out}{err}");
    let root = ws.join("export/1.root.json");
    let pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("practice-tokens.json")).unwrap()).unwrap();
    let root_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    let keyid_of = |who: &str| -> String {
        root_json["signed"]["keys"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, k)| k["x-tuf-on-ci-keyowner"] == who)
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let chain = tmp.path().join("chain");
    let made = check(&["make", s(&chain)]);
    assert_eq!(made.code(), 0, "{made:?}");
    for name in ["root.layout", "root.dsse.layout"] {
        let unsigned = chain.join(name);
        let (code, shown, err) = run(&ws, &["intoto", "show", s(&unsigned)], "");
        assert_eq!(code, 0, "{err}");
        assert!(
            shown.contains("build: `true`, 1 of 1 functionary key(s)")
                && shown.contains("signatures: 0"),
            "{shown}"
        );
        let mut input = unsigned.clone();
        for who in ["alice", "bob"] {
            let out_file = chain.join(format!("{name}.{who}"));
            let pin = format!("{}\n", pins[who].as_str().unwrap());
            let (code, out, err) = run(
                &ws,
                &[
                    "intoto",
                    "sign",
                    "--in",
                    s(&input),
                    "--out",
                    s(&out_file),
                    "--trusted-root",
                    s(&root),
                    "--token",
                    who,
                    "--key",
                    "conclave-bootstrap-root",
                    "--keyholder",
                    who,
                    "--pin-stdin",
                ],
                &pin,
            );
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains("written to"), "{out}");
            assert!(!out.contains(pins[who].as_str().unwrap()), "PIN printed");
            input = out_file;
        }
        let (a, b) = (keyid_of("alice"), keyid_of("bob"));
        // The reference implementation verifies the supply chain against the signed layout,
        // with both keyholders' keys as layout keys.
        let ok = check(&["verify", s(&chain), s(&input), s(&root), &a, &b]);
        assert_eq!(ok.code(), 0, "{name}: {ok:?}");
        assert!(ok.stdout.contains("VERIFIED"), "{ok:?}");
        // Carol did not sign: with her key as a layout key, in-toto refuses.
        let carol = keyid_of("carol");
        let no = check(&["verify", s(&chain), s(&input), s(&root), &a, &carol]);
        assert_eq!(no.code(), 1, "{name}: {no:?}");
        // A changed layout (another expected command) is refused.
        let text = std::fs::read_to_string(&input).unwrap();
        let tampered = chain.join(format!("{name}.tampered"));
        let changed = if name == "root.layout" {
            text.replacen("\"true\"", "\"false\"", 1)
        } else {
            // The DSSE payload is base64: change a signature's byte instead.
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut v = v.clone();
            let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
            let flipped = if sig.starts_with('M') {
                sig.replacen('M', "N", 1)
            } else {
                format!("M{}", &sig[1..])
            };
            v["signatures"][0]["sig"] = serde_json::Value::String(flipped);
            serde_json::to_string(&v).unwrap()
        };
        assert_ne!(changed, text);
        std::fs::write(&tampered, changed).unwrap();
        let no = check(&["verify", s(&chain), s(&tampered), s(&root), &a, &b]);
        assert_eq!(no.code(), 1, "{name}: {no:?}");
    }
    // A key that is not a targets key of the trusted root is refused before the PIN.
    let alice_pin = format!("{}\n", pins["alice"].as_str().unwrap());
    let (code, out, err) = run(
        &ws,
        &[
            "token",
            "keygen",
            "--token",
            "alice",
            "--type",
            "ecdsa-p256",
            "--label",
            "stranger",
            "--pin-stdin",
        ],
        &alice_pin,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(
        &ws,
        &[
            "intoto",
            "sign",
            "--in",
            s(&chain.join("root.layout")),
            "--out",
            s(&chain.join("x")),
            "--trusted-root",
            s(&root),
            "--token",
            "alice",
            "--key",
            "stranger",
            "--pin-stdin",
        ],
        &alice_pin,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is not a targets key of the trusted root"),
        "{err}"
    );
    assert!(!err.contains("PIN for"), "asked for the PIN first: {err}");
    assert!(!chain.join("x").exists());
}
