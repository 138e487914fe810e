//! publish-targets: target files brought on the input media with their `custom` metadata
//! (added, replaced or removed), and optionally a delegation to a role signed online (a key
//! with `x-tuf-on-ci-online-uri`, as sigstore's `registry.npmjs.org`). Pure: the manifest and
//! the files' bytes arrive in the `targets-imported` event; this module checks them, builds
//! the next targets version's entries, the review lines and the consistent-snapshot file names
//! the registry publishes.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest;

use crate::text::show;
use crate::tuf::canonical::Value;
use crate::tuf::edit;
use crate::tuf::key::Key;
use crate::tuf::metadata::{TargetFile, Targets, key_from_value};
use crate::tuf::parse::{Fields, index_path};

/// `_type` of the manifest on the input media.
pub const MANIFEST_TYPE: &str = "conclave-publish-targets";

/// The manifest's place on the input media (below `input/`).
pub const MANIFEST_FILE: &str = "publish-targets/manifest.json";

/// Where the files the manifest names lie on the input media (below `input/`): the target path
/// below this folder.
pub const FILES_DIR: &str = "publish-targets/files";

/// The key field naming where an online key lives (tuf-on-ci's; sigstore's npm delegation).
pub const ONLINE_URI_FIELD: &str = "x-tuf-on-ci-online-uri";

/// The parameter bounding each file's size (bytes).
pub const MAX_TARGET_BYTES: &str = "max_target_bytes";

/// The file size limit when a script does not set [`MAX_TARGET_BYTES`]: 4 MiB.
pub const DEFAULT_MAX_TARGET_BYTES: u64 = 4 * 1024 * 1024;

/// The file size limit in force, from the parameter's value (0 or less: not set).
pub fn max_target_bytes(param: i64) -> u64 {
    u64::try_from(param)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_TARGET_BYTES)
}

/// All files of one ceremony together (bytes): they travel in the transcript.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// Largest `custom` object (bytes of its canonical form): the review shows it whole.
pub const MAX_CUSTOM_BYTES: usize = 900;

/// Most entries one manifest may list.
pub const MAX_ENTRIES: usize = 1000;

/// Longest target path (bytes), and longest part of one (bytes): a part becomes
/// `SHA512HEX.PART` (129 + 64 bytes) on the export media, under its 200-byte name limit.
pub const MAX_PATH_BYTES: usize = 255;
const MAX_PART_BYTES: usize = 64;

/// What an entry does to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new target path.
    Add,
    /// A target path listed already gets new bytes and custom.
    Replace,
    /// A target path listed already is removed.
    Remove,
}

impl Change {
    /// As written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Replace => "replace",
            Change::Remove => "remove",
        }
    }
}

/// One entry of the manifest, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetChange {
    /// Target path.
    pub path: String,
    /// What happens to it.
    pub change: Change,
    /// The `custom` object (add, replace).
    pub custom: Option<Value>,
    /// The file's bytes (add, replace; empty for remove).
    pub bytes: Vec<u8>,
}

/// A delegation from targets to a role signed online.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnlineDelegation {
    /// Role name.
    pub name: String,
    /// Path patterns.
    pub paths: Vec<String>,
    /// Stop the search at this role.
    pub terminating: bool,
    /// Signatures required.
    pub threshold: u64,
    /// The online keys (each with [`ONLINE_URI_FIELD`]).
    pub keys: Vec<Key>,
}

/// What a publish-targets ceremony changes, as read from the input media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The target files, in manifest order.
    pub changes: Vec<TargetChange>,
    /// The delegation to an online role, when the manifest has one.
    pub delegation: Option<OnlineDelegation>,
}

fn field(e: impl std::fmt::Display) -> String {
    format!("{MANIFEST_FILE}: {e}")
}

/// Check a target path: a relative URL path of printable ASCII letters, digits and `._-+@~`
/// parts (no empty, `.` or `..` part, no leading `/`), bounded in length. With `pattern`, `*`
/// and `?` are allowed too (delegation paths).
pub fn check_target_path(path: &str, pattern: bool) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("is longer than {MAX_PATH_BYTES} bytes"));
    }
    let ok_char = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-' | '+' | '@' | '~' | '/')
            || (pattern && matches!(c, '*' | '?'))
    };
    if let Some(c) = path.chars().find(|c| !ok_char(*c)) {
        return Err(format!(
            "has the character {c:?}: target paths here are ASCII letters, digits and ._-+@~ parts separated by /"
        ));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(
                "has an empty, \".\" or \"..\" part (no traversal, no leading or doubled /)".into(),
            );
        }
        if part.len() > MAX_PART_BYTES {
            return Err(format!("has a part longer than {MAX_PART_BYTES} bytes"));
        }
    }
    Ok(())
}

impl Publication {
    /// Read and check the manifest and the files' bytes (target path to base64, as the event
    /// carries them): paths valid and distinct, actions known, `custom` a JSON object, every
    /// file present and within `max_bytes`, nothing left over; the delegation's name, paths,
    /// threshold and online keys. Errors name the manifest, the JSON path of the field and the
    /// target path.
    pub fn read(
        manifest: &Value,
        files: &BTreeMap<String, String>,
        max_bytes: u64,
    ) -> Result<Publication, String> {
        let mut f = Fields::new(manifest.clone(), "$").map_err(field)?;
        let ty = f.string("_type").map_err(field)?;
        if ty != MANIFEST_TYPE {
            return Err(field(format!(
                "$._type: expected \"{MANIFEST_TYPE}\", found \"{}\"",
                show(&ty)
            )));
        }
        let tp = f.child("targets");
        let entries = match f.take_opt("targets") {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(field(format!(
                    "{tp}: expected an array, found {}",
                    other.type_name()
                )));
            }
        };
        if entries.len() > MAX_ENTRIES {
            return Err(field(format!(
                "{tp}: {} entries, more than {MAX_ENTRIES}",
                entries.len()
            )));
        }
        let mut changes: Vec<TargetChange> = Vec::new();
        let mut total = 0u64;
        for (i, v) in entries.into_iter().enumerate() {
            let at = index_path(&tp, i);
            let c = read_entry(v, &at, files, max_bytes)?;
            if changes.iter().any(|o| o.path == c.path) {
                return Err(field(format!(
                    "{at}.path: \"{}\" is listed twice",
                    show(&c.path)
                )));
            }
            total += c.bytes.len() as u64;
            if total > MAX_TOTAL_BYTES {
                return Err(field(format!(
                    "{at} ({}): the files together are more than {MAX_TOTAL_BYTES} bytes",
                    show(&c.path)
                )));
            }
            changes.push(c);
        }
        if let Some(extra) = files.keys().find(|k| {
            !changes
                .iter()
                .any(|c| &c.path == *k && c.change != Change::Remove)
        }) {
            return Err(format!(
                "the file for \"{}\" is not an add or replace entry of {MANIFEST_FILE}",
                show(extra)
            ));
        }
        let delegation = match f.take_opt("delegation") {
            None => None,
            Some(v) => Some(read_delegation(v, &f.child("delegation"))?),
        };
        let rest = f.rest();
        if let Some(k) = rest.keys().next() {
            return Err(field(format!("$.{}: unknown field", show(k))));
        }
        if changes.is_empty() && delegation.is_none() {
            return Err(field(
                "$: no target file and no delegation: nothing to publish",
            ));
        }
        Ok(Publication {
            changes,
            delegation,
        })
    }

    /// Check the entries against the current targets: an added path is not listed yet, a
    /// replaced or removed one is; a delegation's role is not delegated yet.
    pub fn check_against(&self, current: &Targets) -> Result<(), String> {
        for (i, c) in self.changes.iter().enumerate() {
            let listed = current.targets.contains_key(&c.path);
            let at = format!("$.targets[{i}]");
            match (c.change, listed) {
                (Change::Add, true) => {
                    return Err(field(format!(
                        "{at}.action: \"{}\" is listed in targets already: use \"replace\"",
                        show(&c.path)
                    )));
                }
                (Change::Replace | Change::Remove, false) => {
                    return Err(field(format!(
                        "{at}.action: \"{}\" is not listed in targets: it cannot be {}d",
                        show(&c.path),
                        c.change.as_str().trim_end_matches('e')
                    )));
                }
                _ => {}
            }
        }
        if let Some(d) = &self.delegation
            && current
                .delegations
                .as_ref()
                .is_some_and(|x| x.role_for(&d.name).is_some())
        {
            return Err(field(format!(
                "$.delegation.name: \"{}\" is delegated already",
                show(&d.name)
            )));
        }
        Ok(())
    }

    /// Apply to the next targets version: entries set or removed, the delegation added.
    /// `sha512`: entries get a SHA-512 too (the repository uses it).
    pub fn apply(&self, targets: &mut Targets, sha512: bool) -> Result<(), String> {
        for c in &self.changes {
            match c.change {
                Change::Remove => {
                    targets.targets.remove(&c.path);
                }
                Change::Add | Change::Replace => {
                    edit::set_target(targets, &c.path, entry(c, sha512))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        if let Some(d) = &self.delegation {
            edit::add_delegation(
                targets,
                &edit::NewDelegation {
                    name: d.name.clone(),
                    keys: d.keys.clone(),
                    threshold: d.threshold,
                    paths: d.paths.clone(),
                    terminating: d.terminating,
                },
            )
            .map_err(|e| format!("$.delegation: {e}"))?;
        }
        Ok(())
    }

    /// The review, file by file: path, length, hashes and custom of what is added or replaced
    /// (with what it replaces), what is removed, and the delegation's online keys. Every
    /// string from the media goes through the untrusted-string renderer.
    pub fn review_lines(&self, current: &Targets, sha512: bool) -> Vec<String> {
        let mut out = Vec::new();
        let count = |c: Change| self.changes.iter().filter(|x| x.change == c).count();
        out.push(format!(
            "target files: {} added, {} replaced, {} removed",
            count(Change::Add),
            count(Change::Replace),
            count(Change::Remove)
        ));
        let describe = |t: &TargetFile| {
            let hashes = t
                .hashes
                .iter()
                .map(|(a, h)| format!("{} {}", show(a), show(h)))
                .collect::<Vec<_>>()
                .join(", ");
            let custom = t
                .unrecognized
                .get("custom")
                .map(|c| {
                    format!(
                        ", custom {}",
                        crate::text::show_message(&String::from_utf8_lossy(&c.canonical_bytes()))
                    )
                })
                .unwrap_or_else(|| ", no custom".into());
            format!("{} bytes, {hashes}{custom}", t.length)
        };
        for c in &self.changes {
            let before = current.target(&c.path);
            match c.change {
                Change::Add | Change::Replace => {
                    let mark = if c.change == Change::Add { "+" } else { "~" };
                    out.push(format!(
                        "  {mark} {} {}: {}",
                        c.change.as_str(),
                        show(&c.path),
                        describe(&entry(c, sha512))
                    ));
                    if let Some(b) = before {
                        out.push(format!("      was {}", describe(&b)));
                    }
                }
                Change::Remove => out.push(format!(
                    "  - remove {}{}",
                    show(&c.path),
                    before
                        .map(|b| format!(": was {}", describe(&b)))
                        .unwrap_or_default()
                )),
            }
        }
        if let Some(d) = &self.delegation {
            out.push(format!(
                "  delegation \"{}\" is signed online (not by this ceremony's keyholders):",
                show(&d.name)
            ));
            for k in &d.keys {
                let uri = k
                    .unrecognized
                    .get(ONLINE_URI_FIELD)
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(format!(
                    "      online key {} at {}",
                    show(&k.key_id().0),
                    crate::text::show_message(uri)
                ));
            }
        }
        out
    }

    /// The files the registry publishes beside the metadata (`targets/` folder): every added
    /// or replaced file under each consistent-snapshot name a client fetches — `DIR/HASH.NAME`
    /// for each of its hashes (python-tuf, tuf-js) and `HASH.DIR/NAME` (tough).
    pub fn target_files(&self, sha512: bool) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for c in &self.changes {
            if c.change == Change::Remove {
                continue;
            }
            for name in consistent_names(&c.path, &entry(c, sha512)) {
                let name = format!("targets/{name}");
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, c.bytes.clone()));
                }
            }
        }
        out
    }
}

/// Whether the repository's targets use SHA-512 (some entry has it): new entries get it too.
pub fn uses_sha512(targets: &Targets) -> bool {
    targets
        .target_files()
        .any(|(_, t)| t.is_some_and(|t| t.hashes.iter().any(|(a, _)| a == "sha512")))
}

/// The target entry for an added or replaced file: length, SHA-256 (and SHA-512), custom.
fn entry(c: &TargetChange, sha512: bool) -> TargetFile {
    let mut t = edit::target_file(&c.bytes, c.custom.clone());
    if sha512 {
        t.hashes
            .push(("sha512".into(), hex::encode(sha2::Sha512::digest(&c.bytes))));
    }
    t
}

/// The consistent-snapshot names of a target: `DIR/HASH.NAME` per hash, and `HASH.DIR/NAME`.
pub fn consistent_names(path: &str, t: &TargetFile) -> Vec<String> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), path),
    };
    let mut out = Vec::new();
    for (_, h) in &t.hashes {
        for n in [format!("{dir}{h}.{name}"), format!("{h}.{path}")] {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

fn read_entry(
    v: Value,
    at: &str,
    files: &BTreeMap<String, String>,
    max_bytes: u64,
) -> Result<TargetChange, String> {
    let mut f = Fields::new(v, at).map_err(field)?;
    let path = f.string("path").map_err(field)?;
    check_target_path(&path, false).map_err(|e| {
        field(format!(
            "{}: the target path \"{}\" {e}",
            f.child("path"),
            show(&path)
        ))
    })?;
    let named = |p: &str| format!("{p} ({})", show(&path));
    let action = f.string("action").map_err(field)?;
    let change = match action.as_str() {
        "add" => Change::Add,
        "replace" => Change::Replace,
        "remove" => Change::Remove,
        other => {
            return Err(field(format!(
                "{}: \"{}\" is not one of add, replace, remove",
                named(&f.child("action")),
                show(other)
            )));
        }
    };
    let cp = f.child("custom");
    let custom = f.take_opt("custom");
    if let Some(c) = &custom {
        if change == Change::Remove {
            return Err(field(format!(
                "{}: a removed target has no custom",
                named(&cp)
            )));
        }
        if c.as_object().is_none() {
            return Err(field(format!(
                "{}: expected a JSON object, found {}",
                named(&cp),
                c.type_name()
            )));
        }
        if c.canonical_len() > MAX_CUSTOM_BYTES {
            return Err(field(format!(
                "{}: {} bytes, more than the {MAX_CUSTOM_BYTES} the review shows whole",
                named(&cp),
                c.canonical_len()
            )));
        }
    }
    if let Some(k) = f.rest().keys().next() {
        return Err(field(format!(
            "{}: unknown field",
            named(&format!("{at}.{}", show(k)))
        )));
    }
    let bytes = match (change, files.get(&path)) {
        (Change::Remove, _) => Vec::new(),
        (_, None) => {
            return Err(field(format!(
                "{}: the file {FILES_DIR}/{} is not on the input media",
                named(at),
                show(&path)
            )));
        }
        (_, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| field(format!("{}: the file's bytes: {e}", named(at))))?,
    };
    if bytes.len() as u64 > max_bytes {
        return Err(field(format!(
            "{}: the file is {} bytes, more than {MAX_TARGET_BYTES} ({max_bytes})",
            named(at),
            bytes.len()
        )));
    }
    Ok(TargetChange {
        path,
        change,
        custom,
        bytes,
    })
}

fn read_delegation(v: Value, at: &str) -> Result<OnlineDelegation, String> {
    let mut f = Fields::new(v, at).map_err(field)?;
    let name = f.string("name").map_err(field)?;
    edit::check_role_name(&name).map_err(|e| field(format!("{}: {e}", f.child("name"))))?;
    let paths = f
        .opt_string_array("paths")
        .map_err(field)?
        .ok_or_else(|| field(format!("{}: required field is missing", f.child("paths"))))?;
    if paths.is_empty() {
        return Err(field(format!(
            "{}: at least one path pattern",
            f.child("paths")
        )));
    }
    for (i, p) in paths.iter().enumerate() {
        check_target_path(p, true).map_err(|e| {
            field(format!(
                "{}: the pattern \"{}\" {e}",
                index_path(&f.child("paths"), i),
                show(p)
            ))
        })?;
    }
    let terminating = f.opt_bool("terminating").map_err(field)?.unwrap_or(true);
    let threshold = f.u64("threshold").map_err(field)?;
    let kp = f.child("keys");
    let keys = f
        .array("keys")
        .map_err(field)?
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let p = index_path(&kp, i);
            let key = key_from_value(k, &p).map_err(field)?;
            key.public_key()
                .map_err(|e| field(format!("{p}: {e}")))?;
            match key.unrecognized.get(ONLINE_URI_FIELD).and_then(Value::as_str) {
                Some(uri) if uri.contains(':') && !uri.chars().any(char::is_control) => Ok(key),
                _ => Err(field(format!(
                    "{p}.{ONLINE_URI_FIELD}: an online key names where it lives (a URI such as gcpkms:..., azurekms://...)"
                ))),
            }
        })
        .collect::<Result<Vec<Key>, String>>()?;
    if threshold < 1 || threshold > keys.len() as u64 {
        return Err(field(format!(
            "{}: {threshold} is not between 1 and the {} key(s)",
            f.child("threshold"),
            keys.len()
        )));
    }
    if let Some(k) = f.rest().keys().next() {
        return Err(field(format!("{at}.{}: unknown field", show(k))));
    }
    Ok(OnlineDelegation {
        name,
        paths,
        terminating,
        threshold,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn manifest(text: &str) -> Value {
        Value::parse(text.as_bytes()).unwrap()
    }

    fn files(list: &[(&str, &[u8])]) -> BTreeMap<String, String> {
        list.iter().map(|(p, b)| (p.to_string(), b64(b))).collect()
    }

    const ONE: &str = r#"{"_type": "conclave-publish-targets", "targets": [{"path": "trusted_root.json", "action": "add", "custom": {"sigstore": {"status": "Active", "usage": "Unknown"}}}]}"#;

    #[test]
    fn a_manifest_with_its_file_is_read_and_applied_with_length_hashes_and_custom() {
        let p = Publication::read(&manifest(ONE), &files(&[("trusted_root.json", b"{}")]), 100)
            .unwrap();
        let mut t = edit::new_targets(time::OffsetDateTime::UNIX_EPOCH);
        p.check_against(&t).unwrap();
        p.apply(&mut t, true).unwrap();
        let e = t.target("trusted_root.json").unwrap();
        assert_eq!(e.length, 2);
        assert_eq!(e.hashes[0].0, "sha256");
        assert_eq!(e.hashes[1].0, "sha512");
        let names: Vec<String> = p.target_files(false).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![format!("targets/{}.trusted_root.json", e.hashes[0].1)]
        );
        let lines = p.review_lines(&edit::new_targets(time::OffsetDateTime::UNIX_EPOCH), false);
        assert!(
            lines[1].contains("+ add trusted_root.json: 2 bytes, sha256 ")
                && lines[1]
                    .contains(r#"custom {"sigstore":{"status":"Active","usage":"Unknown"}}"#),
            "{lines:?}"
        );
        // Added again: refused, the entry and field named.
        let e = p.check_against(&t).unwrap_err();
        assert!(
            e.contains("$.targets[0].action") && e.contains("use \"replace\""),
            "{e}"
        );
    }

    /// Files of a case: (target path, bytes).
    type Files<'a> = &'a [(&'a str, &'a [u8])];

    #[test]
    fn hostile_manifests_are_refused_naming_the_field_and_the_path() {
        let cases: [(&str, Files, &str); 7] = [
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "../etc/passwd", "action": "add"}]}"#,
                &[],
                "$.targets[0].path: the target path \"../etc/passwd\" has an empty",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a.json", "action": "add", "custom": ["x"]}]}"#,
                &[("a.json", b"1")],
                "$.targets[0].custom (a.json): expected a JSON object, found array",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a.json", "action": "add"}]}"#,
                &[],
                "$.targets[0] (a.json): the file publish-targets/files/a.json is not on the input media",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a.json", "action": "add"}]}"#,
                &[("a.json", &[0u8; 101])],
                "$.targets[0] (a.json): the file is 101 bytes, more than max_target_bytes (100)",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a.json", "action": "upload"}]}"#,
                &[],
                "$.targets[0].action (a.json): \"upload\" is not one of",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a\u001b[2J", "action": "add"}]}"#,
                &[],
                "has the character '\\u{1b}'",
            ),
            (
                r#"{"_type": "conclave-publish-targets", "delegation": {"name": "npm", "paths": ["npm/*"], "threshold": 1, "keys": [{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "0000000000000000000000000000000000000000000000000000000000000000"}}]}}"#,
                &[],
                "$.delegation.keys[0]",
            ),
        ];
        for (text, fl, want) in cases {
            let e = Publication::read(&manifest(text), &files(fl), 100).unwrap_err();
            assert!(
                e.starts_with(MANIFEST_FILE) && e.contains(want),
                "{text}: {e}"
            );
        }
    }

    /// Paths and role names a hostile manifest may carry: absolute, traversal, NUL, backslash,
    /// doubled `/`; a delegated role named like a path or a top-level role. Each is refused at
    /// the import, naming the manifest, the field and the value, before any review.
    #[test]
    fn hostile_paths_and_role_names_are_refused_at_the_import() {
        let key = r#"{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "0000000000000000000000000000000000000000000000000000000000000000"}, "x-tuf-on-ci-online-uri": "gcpkms:x"}"#;
        let target = |path: &str| {
            format!(
                r#"{{"_type": "conclave-publish-targets", "targets": [{{"path": {path}, "action": "remove"}}]}}"#
            )
        };
        let delegation = |name: &str, pattern: &str| {
            format!(
                r#"{{"_type": "conclave-publish-targets", "delegation": {{"name": {name}, "paths": [{pattern}], "threshold": 1, "keys": [{key}]}}}}"#
            )
        };
        let cases = [
            (
                target(r#""/etc/passwd""#),
                "$.targets[0].path: the target path \"/etc/passwd\" has an empty",
            ),
            (
                target(r#""a/../../x""#),
                "$.targets[0].path: the target path \"a/../../x\" has an empty",
            ),
            (
                target(r#""a//b""#),
                "$.targets[0].path: the target path \"a//b\" has an empty",
            ),
            (
                target(r#""a\u0000b""#),
                "$.targets[0].path: the target path \"a",
            ),
            (
                target(r#""a\\b""#),
                "$.targets[0].path: the target path \"a",
            ),
            (
                target(r#""C:x""#),
                "$.targets[0].path: the target path \"C:x\" has the character ':'",
            ),
            (
                delegation(r#""npm""#, r#""/npm/*""#),
                "$.delegation.paths[0]: the pattern \"/npm/*\" has an empty",
            ),
            (
                delegation(r#""../x""#, r#""npm/*""#),
                "$.delegation.name: role name \"../x\": must be usable as a file name",
            ),
            (
                delegation(r#""a\u0000b""#, r#""npm/*""#),
                "$.delegation.name: role name \"a",
            ),
            (
                delegation(r#""timestamp""#, r#""npm/*""#),
                "$.delegation.name: role name \"timestamp\": is a top-level role name",
            ),
        ];
        for (text, want) in cases {
            let e = Publication::read(&manifest(&text), &files(&[]), 100).unwrap_err();
            assert!(
                e.starts_with(&format!("{MANIFEST_FILE}: {want}")),
                "{text}:\n{e}"
            );
        }
    }

    #[test]
    fn custom_from_the_media_reaches_the_review_escaped() {
        let text = r#"{"_type": "conclave-publish-targets", "targets": [{"path": "a.json", "action": "add", "custom": {"note": "\u001b[2J\u202eevil"}}]}"#;
        let p = Publication::read(&manifest(text), &files(&[("a.json", b"1")]), 100).unwrap();
        let t = edit::new_targets(time::OffsetDateTime::UNIX_EPOCH);
        let lines = p.review_lines(&t, false).join("\n");
        assert!(lines.contains("custom {\"note\":"), "{lines}");
        assert!(
            !lines.contains('\u{1b}') && !lines.contains('\u{202e}'),
            "{lines:?}"
        );
        // The entry keeps the bytes as the media gave them: what is signed is the custom
        // object itself.
        let mut next = t.clone();
        p.apply(&mut next, false).unwrap();
        let entry = next.target("a.json").unwrap();
        assert!(
            String::from_utf8_lossy(&entry.unrecognized.get("custom").unwrap().canonical_bytes())
                .contains('\u{1b}')
        );
    }

    #[test]
    fn consistent_names_cover_every_client() {
        let t = edit::target_file(b"x", None);
        let h = &t.hashes[0].1;
        assert_eq!(
            consistent_names("registry.npmjs.org/keys.json", &t),
            vec![
                format!("registry.npmjs.org/{h}.keys.json"),
                format!("{h}.registry.npmjs.org/keys.json")
            ]
        );
    }
}
