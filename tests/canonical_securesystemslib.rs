//! Canonical JSON bytes equal securesystemslib's (what python-tuf signs and verifies) for
//! generated inputs: non-ASCII and non-NFC strings, escapes, control characters, large integers,
//! deep and wide nesting. Documents that Conclave refuses are refused by securesystemslib too,
//! except the documented cases where Conclave is stricter (integers beyond 64 bits, -0).

mod common;

use conclave::tuf::canonical::{Map, Value};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn string_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.-]{0,12}",
        // Quotes, backslashes, controls, DEL, and characters around the surrogate range.
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('/'),
                (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or(' ')),
                Just('\u{7f}'),
                Just('\u{d7ff}'),
                Just('\u{e000}'),
                Just('\u{fffd}'),
                Just('\u{feff}'),
                any::<char>(),
            ],
            0..10
        )
        .prop_map(|v| v.into_iter().collect()),
        // Non-NFC: decomposed forms and combining marks that NFC would change.
        prop_oneof![
            Just("e\u{301}".to_string()),
            Just("\u{212b}".to_string()), // ANGSTROM SIGN, NFC gives U+00C5
            Just("A\u{30a}".to_string()),
            Just("\u{1100}\u{1161}".to_string()), // Hangul jamo, NFC composes
            Just("o\u{308}\u{301}".to_string()),
            Just("\u{fb01}".to_string()), // ligature (NFKC would change it, NFC not)
            Just("\u{1f600}\u{1f468}\u{200d}\u{1f469}".to_string()),
        ],
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Int(i128::from(i))),
        any::<u64>().prop_map(|i| Value::Int(i128::from(i))),
        (0i64..1000).prop_map(|i| Value::Int(i128::from(i))),
        string_strategy().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((string_strategy(), inner), 0..6)
                .prop_map(|entries| Value::Object(Map::from_entries(entries))),
        ]
    })
}

/// JSON text for a value, sometimes with every non-ASCII character written as \u escapes (as
/// python-tuf's writer does), so both parsers see both spellings.
fn to_text(v: &Value, ascii_escape: bool) -> String {
    let text = serde_json::to_string(v).unwrap();
    if !ascii_escape {
        return text;
    }
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[test]
fn canonical_bytes_equal_securesystemslib_on_generated_documents() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = value_strategy();
    let mut docs = Vec::new();
    let mut values = Vec::new();
    for i in 0..1500 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        docs.push(to_text(&v, i % 3 == 0));
        values.push(v);
    }
    let python = common::securesystemslib_canonical(&docs);
    let mut compared = 0;
    for ((doc, v), py) in docs.iter().zip(&values).zip(python) {
        let ours = Value::parse(doc.as_bytes()).expect("generated documents parse");
        assert_eq!(&ours, v, "parse of {doc}");
        let py = py.unwrap_or_else(|e| panic!("securesystemslib refused {doc}: {e}"));
        assert_eq!(
            ours.canonical_bytes(),
            py,
            "canonical bytes differ for {doc}:\nours   {}\ntheirs {}",
            String::from_utf8_lossy(&ours.canonical_bytes()),
            String::from_utf8_lossy(&py)
        );
        compared += 1;
    }
    assert_eq!(compared, 1500);
}

#[test]
fn refusals_agree_with_securesystemslib() {
    // Both refuse: floats, exponents, lone surrogates.
    let both = [
        r#"{"a": 1.5}"#,
        r#"[1e3]"#,
        r#"{"version": 1.0}"#,
        r#""\ud800""#,
        r#"{"k": "\udc00x"}"#,
    ];
    let docs: Vec<String> = both.iter().map(|s| s.to_string()).collect();
    for (doc, py) in docs.iter().zip(common::securesystemslib_canonical(&docs)) {
        assert!(
            Value::parse(doc.as_bytes()).is_err(),
            "Conclave accepted {doc}"
        );
        assert!(py.is_err(), "securesystemslib accepted {doc}");
    }
    // Conclave is stricter (documented): integers beyond 64 bits, negative zero, duplicate
    // members (Python keeps the last one silently).
    let stricter = [
        "[18446744073709551616]",
        "[-9223372036854775809]",
        "[-0]",
        r#"{"a": 1, "a": 2}"#,
    ];
    let docs: Vec<String> = stricter.iter().map(|s| s.to_string()).collect();
    for (doc, py) in docs.iter().zip(common::securesystemslib_canonical(&docs)) {
        assert!(
            Value::parse(doc.as_bytes()).is_err(),
            "Conclave accepted {doc}"
        );
        assert!(py.is_ok(), "securesystemslib refused {doc}: {py:?}");
    }
}
