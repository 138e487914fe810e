//! Client profiles: what the TUF clients in use refuse, checked on metadata before it is signed.
//!
//! Each profile is a list of rules taken from the client's source and measured against the real
//! client (tests/client_gate.rs gives one mutation per rule to python-tuf, tough and tuf-js and
//! checks that the clients refuse exactly what the profile says). A rule names the JSON field it
//! looks at; [`check_root`] and [`check_targets`] return one [`Finding`] per field and rule, with
//! the clients that reject it. Pure: no I/O.
//!
//! | rule | what | rejected by |
//! |---|---|---|
//! | `key-type` | a key type or scheme the client does not verify (P-384 in tough and tuf-js; keytype `ecdsa-sha2-nistp384` in go-tuf; RSA `rsa-pkcs1v15-sha256` in tough, tuf-js and go-tuf) | per client |
//! | `ecdsa-encoding` | an ECDSA public key that is not PEM (hex SEC1) | python-tuf, go-tuf |
//! | `key-id` | a key id that is not the SHA-256 of the canonical key object | tough |
//! | `consistent-snapshot` | root without `consistent_snapshot` (required by tough and tuf-js; go-tuf re-serializes it: signatures break) | tough, tuf-js, go-tuf |
//! | `expires` | `expires` not in the form `YYYY-MM-DDTHH:MM:SSZ` | python-tuf; tough and go-tuf when their re-serialization differs (an offset; a fraction not in groups of 3 digits for tough, ending in 0 for go-tuf) |
//! | `succinct-roles` | TAP 15 hash bins | tough |
//! | `delegation-fields` | unknown fields in `delegations` or a delegated role (dropped in re-serialization) | tough |
//! | `big-integer` | an integer above 2^53 in signed metadata (read as a float: re-serialized differently) | tuf-js, go-tuf |

use std::fmt;

use super::canonical::Value;
use super::key::{Algorithm, Key, KeyId};
use super::metadata::{Expires, KeyMap, Root, SignedPayload, Targets};

/// A TUF client whose behaviour a profile describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// python-tuf 7 (pip's future client, sigstore-python, tuf-on-ci).
    PythonTuf,
    /// tough 0.24 (Bottlerocket, sigstore-rs).
    Tough,
    /// tuf-js 4 and 5 (npm, sigstore-js through @sigstore/tuf).
    TufJs,
    /// go-tuf v2 (cosign, sigstore-go); rules from its source only (not run here).
    GoTuf,
}

impl Client {
    /// Every profile.
    pub const ALL: [Client; 4] = [
        Client::PythonTuf,
        Client::Tough,
        Client::TufJs,
        Client::GoTuf,
    ];

    /// The client's name as parameters and messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Client::PythonTuf => "python-tuf",
            Client::Tough => "tough",
            Client::TufJs => "tuf-js",
            Client::GoTuf => "go-tuf",
        }
    }

    /// The versions and the tools that use the client.
    pub fn profile(self) -> &'static str {
        match self {
            Client::PythonTuf => "python-tuf 7 (pip, sigstore-python, tuf-on-ci)",
            Client::Tough => "tough 0.24 (Bottlerocket, sigstore-rs)",
            Client::TufJs => "tuf-js 4/5 (npm, sigstore-js)",
            Client::GoTuf => "go-tuf v2 (cosign, sigstore-go)",
        }
    }

    /// The client named `s` (case-insensitive), if any.
    pub fn parse(s: &str) -> Option<Client> {
        Client::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Clients as people read them: "tough", "tough and tuf-js", "python-tuf, tough and tuf-js".
pub fn client_list(clients: &[Client]) -> String {
    let names: Vec<&str> = clients.iter().map(|c| c.name()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Read a comma-separated list of client names (a ceremony parameter); an unknown name is an
/// error naming it.
pub fn parse_client_list(text: &str) -> Result<Vec<Client>, String> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let c = Client::parse(name).ok_or_else(|| {
            format!(
                "\"{name}\" is not a client profile (one of {})",
                client_list(&Client::ALL)
            )
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.sort();
    Ok(out)
}

/// One rule broken at one field, with the clients that reject the metadata for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule's name (see the module's table).
    pub rule: &'static str,
    /// JSON path of the field (`$.signed.keys.ID.scheme`).
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
    /// The clients that reject it (sorted, at least one).
    pub clients: Vec<Client>,
}

impl Finding {
    /// The clients of this finding not in `accepted`.
    pub fn refused_by(&self, accepted: &[Client]) -> Vec<Client> {
        self.clients
            .iter()
            .copied()
            .filter(|c| !accepted.contains(c))
            .collect()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clients reject {}: {}",
            client_list(&self.clients),
            self.field,
            self.problem
        )
    }
}

/// Collects findings, one per (rule, field).
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, rule: &'static str, field: &str, problem: &str, clients: &[Client]) {
        if clients.is_empty() {
            return;
        }
        let mut clients = clients.to_vec();
        clients.sort();
        clients.dedup();
        self.0.push(Finding {
            rule,
            field: field.to_string(),
            problem: problem.to_string(),
            clients,
        });
    }
}

fn member(path: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        format!("{path}.{name}")
    } else {
        format!("{path}[{}]", serde_json::Value::String(name.to_string()))
    }
}

/// The clients that cannot verify signatures of this key: for python-tuf and tuf-js the key
/// does not count (a role that needs it fails), for tough and go-tuf the whole file or role
/// fails. Returns the findings for the key at `path` listed under `id`.
pub fn check_key(id: &KeyId, key: &Key, path: &str) -> Vec<Finding> {
    let mut out = Findings(Vec::new());
    key_findings(&mut out, id, key, path);
    out.0
}

fn key_findings(out: &mut Findings, id: &KeyId, key: &Key, path: &str) {
    let pk = match key.public_key() {
        Ok(pk) => pk,
        Err(e) => {
            out.add(
                "key-type",
                &member(path, "keyval"),
                &format!("the key cannot be used: {e}"),
                &Client::ALL,
            );
            return;
        }
    };
    let keytype = key.keytype.as_str();
    match pk.algorithm() {
        Algorithm::EcdsaP384 => {
            let mut clients = algorithm_rejected_by(Algorithm::EcdsaP384);
            // go-tuf reads keytype "ecdsa" (and "ecdsa-sha2-nistp256") with either curve.
            if !matches!(keytype, "ecdsa" | "ecdsa-sha2-nistp256") {
                clients.push(Client::GoTuf);
            }
            out.add(
                "key-type",
                &member(path, "scheme"),
                "an ECDSA P-384 key (ecdsa-sha2-nistp384): tough cannot parse it, tuf-js checks every ECDSA signature with SHA-256 so it never verifies",
                &clients,
            );
        }
        Algorithm::EcdsaP256 => {
            if !matches!(keytype, "ecdsa" | "ecdsa-sha2-nistp256") {
                out.add(
                    "key-type",
                    &member(path, "keytype"),
                    &format!("keytype \"{keytype}\" for a P-256 key"),
                    &[Client::Tough, Client::GoTuf],
                );
            }
        }
        Algorithm::RsaPkcs1v15Sha256 => out.add(
            "key-type",
            &member(path, "scheme"),
            "an RSA key with scheme rsa-pkcs1v15-sha256: tough and tuf-js verify RSA only as rsassa-pss-sha256, go-tuf checks every RSA signature as PSS",
            &algorithm_rejected_by(Algorithm::RsaPkcs1v15Sha256),
        ),
        Algorithm::RsaPssSha256 | Algorithm::Ed25519 => {}
    }
    let ecdsa = matches!(pk.algorithm(), Algorithm::EcdsaP256 | Algorithm::EcdsaP384);
    if ecdsa && !key.public.starts_with("-----BEGIN PUBLIC KEY-----") {
        out.add(
            "ecdsa-encoding",
            &member(&member(path, "keyval"), "public"),
            "an ECDSA public key that is not PEM (python-tuf and go-tuf read ECDSA keys only as PEM)",
            &[Client::PythonTuf, Client::GoTuf],
        );
    }
    if key.key_id() != *id {
        out.add(
            "key-id",
            path,
            &format!(
                "key id {id} is not the SHA-256 of its key ({}): tough refuses the whole file",
                key.key_id()
            ),
            &[Client::Tough],
        );
    }
}

/// The clients that cannot verify keys of this algorithm as Conclave writes them (keytype
/// `ed25519` with hex, `ecdsa` with PEM): P-384 is lost on tough (cannot parse it) and tuf-js
/// (checks ECDSA with SHA-256 whatever the curve).
pub fn algorithm_rejected_by(alg: Algorithm) -> Vec<Client> {
    match alg {
        Algorithm::EcdsaP384 => vec![Client::Tough, Client::TufJs],
        Algorithm::RsaPkcs1v15Sha256 => vec![Client::Tough, Client::TufJs, Client::GoTuf],
        Algorithm::Ed25519 | Algorithm::EcdsaP256 | Algorithm::RsaPssSha256 => Vec::new(),
    }
}

/// The clients that cannot read TAP 15 hash bins (`succinct_roles`).
pub const SUCCINCT_ROLES_REJECTED_BY: [Client; 1] = [Client::Tough];

fn keys_findings(out: &mut Findings, keys: &KeyMap, path: &str) {
    for (id, key) in keys {
        key_findings(out, id, key, &member(path, id.as_str()));
    }
}

/// What python-tuf requires (`%Y-%m-%dT%H:%M:%SZ`), and what tough and go-tuf write back when
/// they re-serialize before verifying: UTC with `Z`, and a fraction without trailing zeros
/// (go-tuf, `time.Time` in RFC 3339 with nanoseconds) or in groups of 3 digits (tough's jiff:
/// `.5` is written `.500`; measured in tests/client_gate.rs).
fn expires_findings(out: &mut Findings, e: &Expires, path: &str) {
    if e.is_strict() {
        return;
    }
    // python-tuf parses only the strict form; tough and go-tuf verify their own
    // re-serialization, which differs from what is written unless the fraction has the digits
    // they write.
    let mut clients = vec![Client::PythonTuf];
    if reserialized(e, 3) != e.raw {
        clients.push(Client::Tough);
    }
    if reserialized(e, 1) != e.raw {
        clients.push(Client::GoTuf);
    }
    out.add(
        "expires",
        path,
        &format!(
            "\"{}\" is not in the form YYYY-MM-DDTHH:MM:SSZ (no fraction, no offset)",
            e.raw
        ),
        &clients,
    );
}

/// `expires` written back in UTC with `Z`, the fraction's trailing zeros dropped in groups of
/// `group` digits (1: go-tuf, 3: tough).
fn reserialized(e: &Expires, group: usize) -> String {
    let strict = Expires::from_time(e.time).raw;
    let nanos = e.time.to_offset(time::UtcOffset::UTC).nanosecond();
    if nanos == 0 {
        return strict;
    }
    let mut frac = format!("{nanos:09}");
    while frac.len() > group && frac.ends_with(&"0".repeat(group)) {
        frac.truncate(frac.len() - group);
    }
    format!("{}.{frac}Z", strict.trim_end_matches('Z'))
}

/// Integers JavaScript and Go's `any` read as floats: above 2^53 they come back changed.
fn big_integer_findings(out: &mut Findings, v: &Value, path: &str) {
    const MAX_SAFE: i128 = (1 << 53) - 1;
    match v {
        Value::Int(i) if i.abs() > MAX_SAFE => out.add(
            "big-integer",
            path,
            &format!("{i} is above 2^53: read as a float, re-serialized differently"),
            &[Client::TufJs, Client::GoTuf],
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                big_integer_findings(out, item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter() {
                big_integer_findings(out, item, &member(path, k));
            }
        }
        // A target entry kept as its canonical bytes: the digits of an integer appear in them
        // as written, so only an entry that has a long run of digits is taken apart.
        Value::Packed(bytes) if bytes.windows(16).any(|w| w.iter().all(u8::is_ascii_digit)) => {
            big_integer_findings(out, &v.clone().unpacked(), path);
        }
        _ => {}
    }
}

/// Every rule of every profile on a root's `signed` part.
pub fn check_root(root: &Root) -> Vec<Finding> {
    let mut out = Findings(Vec::new());
    let path = "$.signed";
    keys_findings(&mut out, &root.keys, &member(path, "keys"));
    if root.consistent_snapshot.is_none() {
        out.add(
            "consistent-snapshot",
            &member(path, "consistent_snapshot"),
            "root has no consistent_snapshot: tough and tuf-js require it, go-tuf writes it back before verifying so the signatures no longer match",
            &[Client::Tough, Client::TufJs, Client::GoTuf],
        );
    }
    expires_findings(&mut out, &root.common.expires, &member(path, "expires"));
    big_integer_findings(&mut out, &root.to_value(), path);
    out.0
}

/// Every rule of every profile on a targets role's `signed` part.
pub fn check_targets(targets: &Targets) -> Vec<Finding> {
    let mut out = Findings(Vec::new());
    let path = "$.signed";
    expires_findings(&mut out, &targets.common.expires, &member(path, "expires"));
    if let Some(d) = &targets.delegations {
        let dpath = member(path, "delegations");
        keys_findings(&mut out, &d.keys, &member(&dpath, "keys"));
        if d.succinct_roles.is_some() {
            out.add(
                "succinct-roles",
                &member(&dpath, "succinct_roles"),
                "TAP 15 hash bins (succinct_roles): tough 0.24 requires delegations.roles",
                &SUCCINCT_ROLES_REJECTED_BY,
            );
        }
        for name in d.unrecognized.keys() {
            out.add(
                "delegation-fields",
                &member(&dpath, name),
                "an unknown field in delegations: tough drops it and verifies its own re-serialization",
                &[Client::Tough],
            );
        }
        for (i, r) in d.roles.iter().flatten().enumerate() {
            let rpath = format!("{dpath}.roles[{i}]");
            for name in r.role.unrecognized.keys() {
                out.add(
                    "delegation-fields",
                    &member(&rpath, name),
                    &format!(
                        "an unknown field in delegated role \"{}\": tough drops it and verifies its own re-serialization",
                        r.name
                    ),
                    &[Client::Tough],
                );
            }
        }
    }
    big_integer_findings(&mut out, &targets.to_value(), path);
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Signer;
    use crate::signer::software::SoftwareSigner;
    use crate::tuf::edit::{self, RoleKeys};
    use crate::tuf::metadata::RoleType;
    use time::macros::datetime;

    fn key(alg: Algorithm, n: u8) -> Key {
        SoftwareSigner::from_seed(alg, &[n; 48])
            .unwrap()
            .key()
            .clone()
    }

    fn root_with(keys: Vec<Key>) -> Root {
        let roles = RoleType::ALL
            .iter()
            .map(|ty| RoleKeys {
                role: *ty,
                keys: keys.clone(),
                threshold: 1,
            })
            .collect::<Vec<_>>();
        edit::new_root(&roles, datetime!(2030-01-01 0:00 UTC)).unwrap()
    }

    fn rules(f: &[Finding]) -> Vec<(&'static str, Vec<Client>)> {
        f.iter().map(|f| (f.rule, f.clients.clone())).collect()
    }

    #[test]
    fn what_conclave_writes_by_default_passes_every_profile() {
        let root = root_with(vec![
            key(Algorithm::EcdsaP256, 1),
            key(Algorithm::Ed25519, 2),
        ]);
        assert_eq!(check_root(&root), []);
        let mut t = edit::new_targets(datetime!(2030-01-01 0:00 UTC));
        edit::add_delegation(
            &mut t,
            &edit::NewDelegation {
                name: "p".into(),
                keys: vec![key(Algorithm::EcdsaP256, 3)],
                threshold: 1,
                paths: vec!["p/*".into()],
                terminating: true,
            },
        )
        .unwrap();
        assert_eq!(check_targets(&t), []);
    }

    #[test]
    fn p384_keys_are_rejected_by_tough_and_tuf_js() {
        let root = root_with(vec![key(Algorithm::EcdsaP384, 1)]);
        let f = check_root(&root);
        assert_eq!(
            rules(&f),
            [("key-type", vec![Client::Tough, Client::TufJs])]
        );
        assert!(f[0].field.ends_with(".scheme"), "{}", f[0].field);
        assert!(
            f[0].to_string()
                .starts_with("tough and tuf-js clients reject $.signed.keys."),
            "{}",
            f[0]
        );
    }

    #[test]
    fn hex_ecdsa_keys_are_rejected_by_python_tuf_and_go_tuf() {
        let mut k = key(Algorithm::EcdsaP256, 1);
        let pk = k.public_key().unwrap();
        let crate::tuf::key::PublicKey::EcdsaP256(vk) = pk else {
            unreachable!()
        };
        k.public = hex::encode(vk.to_encoded_point(false).as_bytes());
        let root = root_with(vec![k]);
        assert_eq!(
            rules(&check_root(&root)),
            [("ecdsa-encoding", vec![Client::PythonTuf, Client::GoTuf])]
        );
    }

    #[test]
    fn a_key_id_that_is_not_the_keys_hash_is_rejected_by_tough() {
        let mut root = root_with(vec![key(Algorithm::Ed25519, 1)]);
        let (id, _) = root.keys[0].clone();
        let other = KeyId("ab".repeat(32));
        root.keys[0].0 = other.clone();
        for (_, r) in root.roles.iter_mut() {
            r.keyids = vec![other.clone()];
        }
        let f = check_root(&root);
        assert_eq!(rules(&f), [("key-id", vec![Client::Tough])]);
        assert!(f[0].problem.contains(id.as_str()));
    }

    #[test]
    fn root_without_consistent_snapshot_and_odd_expiry_forms() {
        let mut root = root_with(vec![key(Algorithm::Ed25519, 1)]);
        root.consistent_snapshot = None;
        root.common.expires = Expires::parse("2030-01-01T00:00:00.5Z".into(), "e").unwrap();
        assert_eq!(
            rules(&check_root(&root)),
            [
                (
                    "consistent-snapshot",
                    vec![Client::Tough, Client::TufJs, Client::GoTuf]
                ),
                ("expires", vec![Client::PythonTuf, Client::Tough]),
            ]
        );
        root.consistent_snapshot = Some(false);
        root.common.expires = Expires::parse("2030-01-01T00:00:00.500Z".into(), "e").unwrap();
        assert_eq!(
            rules(&check_root(&root)),
            [("expires", vec![Client::PythonTuf, Client::GoTuf])]
        );
        root.common.expires = Expires::parse("2030-01-01T01:00:00+01:00".into(), "e").unwrap();
        assert_eq!(
            rules(&check_root(&root)),
            [(
                "expires",
                vec![Client::PythonTuf, Client::Tough, Client::GoTuf]
            )]
        );
    }

    #[test]
    fn hash_bins_and_unknown_delegation_fields_are_rejected_by_tough() {
        let mut t = edit::new_targets(datetime!(2030-01-01 0:00 UTC));
        edit::set_succinct_delegation(&mut t, "bins", 4, &[key(Algorithm::Ed25519, 1)], 1).unwrap();
        assert_eq!(
            rules(&check_targets(&t)),
            [("succinct-roles", vec![Client::Tough])]
        );
        let mut t = edit::new_targets(datetime!(2030-01-01 0:00 UTC));
        edit::add_delegation(
            &mut t,
            &edit::NewDelegation {
                name: "p".into(),
                keys: vec![key(Algorithm::Ed25519, 3)],
                threshold: 1,
                paths: vec!["p/*".into()],
                terminating: true,
            },
        )
        .unwrap();
        let d = t.delegations.as_mut().unwrap();
        d.roles.as_mut().unwrap()[0]
            .role
            .unrecognized
            .insert("x-owner".into(), Value::String("dev".into()));
        let f = check_targets(&t);
        assert_eq!(rules(&f), [("delegation-fields", vec![Client::Tough])]);
        assert_eq!(f[0].field, "$.signed.delegations.roles[0].x-owner");
    }

    #[test]
    fn big_integers_are_rejected_by_tuf_js_and_go_tuf() {
        let mut t = edit::new_targets(datetime!(2030-01-01 0:00 UTC));
        t.common.version = 1 << 54;
        assert_eq!(
            rules(&check_targets(&t)),
            [("big-integer", vec![Client::TufJs, Client::GoTuf])]
        );
    }

    #[test]
    fn big_integers_in_loaded_target_entries_are_found() {
        let text = br#"{"signed": {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": "2030-01-01T00:00:00Z", "targets": {"a.txt": {"length": 1, "hashes": {"sha256": "00"}, "custom": {"x": 9007199254740993, "id": "0123456789012345678"}}}}, "signatures": []}"#;
        let md = crate::tuf::metadata::Metadata::<Targets>::from_bytes(text).unwrap();
        let f = check_targets(md.signed());
        assert_eq!(
            rules(&f),
            [("big-integer", vec![Client::TufJs, Client::GoTuf])]
        );
        assert_eq!(f[0].field, "$.signed.targets[\"a.txt\"].custom.x");
    }

    #[test]
    fn client_lists_read_and_print() {
        assert_eq!(
            parse_client_list(" tough, tuf-js ,tough").unwrap(),
            [Client::Tough, Client::TufJs]
        );
        assert!(
            parse_client_list("rust-tuf")
                .unwrap_err()
                .contains("rust-tuf")
        );
        assert_eq!(
            client_list(&[Client::Tough, Client::TufJs]),
            "tough and tuf-js"
        );
        assert_eq!(
            client_list(&[Client::PythonTuf, Client::Tough, Client::TufJs]),
            "python-tuf, tough and tuf-js"
        );
    }
}
