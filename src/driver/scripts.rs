//! The ceremony scripts shipped in the binary, and finding a script by name.

use std::path::{Path, PathBuf};

use crate::ceremony::script::Script;

/// Largest script file accepted (`ceremony check`, `ceremony run`, `tui --script FILE`); the
/// answers file of `ceremony run` has the same bound.
pub const MAX_SCRIPT: u64 = 1024 * 1024;

/// Names of the scripts shipped in the binary, in the order a registry usually needs them.
pub const SHIPPED_SCRIPTS: [&str; 15] = [
    "bootstrap-root",
    "rotate-root-keys",
    "refresh-expiry",
    "rotate-online-keys",
    "rotate-targets-keys",
    "delegate-claimed-projects",
    "sign-intoto-layout",
    "publish-targets",
    "bootstrap-rstuf",
    "rotate-rstuf-root-keys",
    "refresh-rstuf-expiry",
    "rotate-rstuf-online-key",
    "sign-tuf-on-ci-event",
    "accept-tuf-on-ci-invite",
    "sign-rstuf-pending-root",
];

/// The scripts shipped in the binary (the appliance has no source tree).
pub fn shipped_script(name: &str) -> Option<&'static str> {
    Some(match name {
        "bootstrap-root" => include_str!("../../ceremony-scripts/bootstrap-root.toml"),
        "rotate-root-keys" => include_str!("../../ceremony-scripts/rotate-root-keys.toml"),
        "rotate-targets-keys" => include_str!("../../ceremony-scripts/rotate-targets-keys.toml"),
        "refresh-expiry" => include_str!("../../ceremony-scripts/refresh-expiry.toml"),
        "rotate-online-keys" => include_str!("../../ceremony-scripts/rotate-online-keys.toml"),
        "delegate-claimed-projects" => {
            include_str!("../../ceremony-scripts/delegate-claimed-projects.toml")
        }
        "sign-intoto-layout" => include_str!("../../ceremony-scripts/sign-intoto-layout.toml"),
        "publish-targets" => include_str!("../../ceremony-scripts/publish-targets.toml"),
        "bootstrap-rstuf" => include_str!("../../ceremony-scripts/bootstrap-rstuf.toml"),
        "rotate-rstuf-root-keys" => {
            include_str!("../../ceremony-scripts/rotate-rstuf-root-keys.toml")
        }
        "refresh-rstuf-expiry" => include_str!("../../ceremony-scripts/refresh-rstuf-expiry.toml"),
        "rotate-rstuf-online-key" => {
            include_str!("../../ceremony-scripts/rotate-rstuf-online-key.toml")
        }
        "sign-tuf-on-ci-event" => include_str!("../../ceremony-scripts/sign-tuf-on-ci-event.toml"),
        "accept-tuf-on-ci-invite" => {
            include_str!("../../ceremony-scripts/accept-tuf-on-ci-invite.toml")
        }
        "sign-rstuf-pending-root" => {
            include_str!("../../ceremony-scripts/sign-rstuf-pending-root.toml")
        }
        _ => return None,
    })
}

/// The shipped scripts with their titles and purposes (name, title, purpose on one line, text),
/// for the script choice.
pub fn script_list() -> Vec<(String, String, String, &'static str)> {
    SHIPPED_SCRIPTS
        .iter()
        .filter_map(|name| {
            let text = shipped_script(name)?;
            let s = Script::parse(&format!("{name}.toml"), text).ok()?;
            let purpose = s.purpose.split_whitespace().collect::<Vec<_>>().join(" ");
            Some((name.to_string(), s.title, purpose, text))
        })
        .collect()
}

/// Why a script named on the command line could not be used. Unreadable is exit 2; a file
/// that was read but is no valid script (not UTF-8, not TOML, invalid) is refused input, exit 1.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFileError {
    /// It could not be read (missing, not a regular file, over [`MAX_SCRIPT`]; a name that is
    /// no shipped script and no file).
    #[error("{0}")]
    Unreadable(String),
    /// It is not UTF-8 text.
    #[error("{}: not UTF-8 text", .0.display())]
    NotText(std::path::PathBuf),
    /// It is not a valid script: one line per mistake, naming the file, the line and the field.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A script file: read bounded ([`MAX_SCRIPT`]; a FIFO or a device is refused, not waited
/// on), once, and parsed. Returns the script and its text (recorded in the transcript).
fn read_script_file(path: &Path) -> Result<(Script, String), ScriptFileError> {
    let bytes =
        crate::folder::read_limited(path, MAX_SCRIPT).map_err(ScriptFileError::Unreadable)?;
    let text =
        String::from_utf8(bytes).map_err(|_| ScriptFileError::NotText(path.to_path_buf()))?;
    let script = parse(&path.display().to_string(), &text)?;
    Ok((script, text))
}

fn parse(file: &str, text: &str) -> Result<Script, ScriptFileError> {
    Script::parse(file, text).map_err(|errors| {
        ScriptFileError::Invalid(
            errors
                .iter()
                .map(|e| crate::text::show_message(&e.to_string()))
                .collect(),
        )
    })
}

/// Where a script named on the command line comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOrigin {
    /// Shipped in the binary.
    Shipped,
    /// A script file.
    File(PathBuf),
}

/// A ceremony script named on the command line ([`find_script`]), read and parsed.
#[derive(Debug)]
pub struct NamedScript {
    /// The script; its name ([`NamedScript::name`]) is the one inside it.
    pub script: Script,
    /// Its text (recorded in the transcript's `begin`).
    pub text: String,
    /// Where it came from.
    pub origin: ScriptOrigin,
    /// A file in the current folder named like the shipped script used instead of it (as the
    /// argument named it).
    pub passed_over: Option<PathBuf>,
}

impl NamedScript {
    /// The script's name: the one inside it, which the transcript's `begin` records and names
    /// the transcript file by (`NAME-vN.transcript.jsonl`); a shipped script's is its name.
    pub fn name(&self) -> &str {
        &self.script.name
    }

    /// Said on standard error when a file of a shipped script's name is in the current
    /// folder: which one is used, and how to name the file instead.
    pub fn clash_note(&self) -> Option<String> {
        let file = self.passed_over.as_ref()?;
        let arg = file.display().to_string();
        Some(format!(
            "\"{}\" is the shipped script; the file {} in the current folder is not used (to use the file, name it ./{})",
            crate::text::show(&arg),
            crate::text::show(&arg),
            crate::text::show(&arg)
        ))
    }
}

/// Whether a script argument names a file whatever the shipped scripts are: it contains `/` or
/// ends in `.toml`.
fn looks_like_a_path(arg: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = arg.as_os_str().as_bytes();
    bytes.contains(&b'/') || bytes.ends_with(b".toml")
}

/// The script a command names (`ceremony run`, `check`, `print`, `tui --script`), by one rule:
/// an argument that looks like a path (contains `/` or ends in `.toml`) is always a file;
/// otherwise a shipped script of that name wins (a file of the same name in the current folder
/// is noted in [`NamedScript::passed_over`]); a name that is no shipped script is read as a
/// file. A file is read bounded, once, and parsed ([`MAX_SCRIPT`]): unreadable is
/// [`ScriptFileError::Unreadable`], read but not a valid script (not UTF-8, not TOML, invalid)
/// is [`ScriptFileError::NotText`] or [`ScriptFileError::Invalid`], each naming the file.
pub fn find_script(arg: &Path) -> Result<NamedScript, ScriptFileError> {
    // Joined to "", a relative argument stays as given: read from the current folder.
    find_script_in(Path::new(""), arg)
}

/// [`find_script`] with relative file names read in `dir` (the unit tests' folder).
fn find_script_in(dir: &Path, arg: &Path) -> Result<NamedScript, ScriptFileError> {
    let path = dir.join(arg);
    let shipped = if looks_like_a_path(arg) {
        None
    } else {
        arg.to_str()
            .and_then(|name| shipped_script(name).map(|text| (name, text)))
    };
    match shipped {
        Some((name, text)) => Ok(NamedScript {
            script: parse(&format!("{name}.toml"), text)?,
            text: text.to_string(),
            origin: ScriptOrigin::Shipped,
            passed_over: path.symlink_metadata().is_ok().then(|| arg.to_path_buf()),
        }),
        None => {
            let (script, text) = read_script_file(&path).map_err(|e| match e {
                // A bare name: it was looked for among the shipped scripts too.
                ScriptFileError::Unreadable(m) if !looks_like_a_path(arg) => {
                    ScriptFileError::Unreadable(format!(
                        "{m} (and no shipped script is named so: {})",
                        SHIPPED_SCRIPTS.join(", ")
                    ))
                }
                e => e,
            })?;
            Ok(NamedScript {
                script,
                text,
                origin: ScriptOrigin::File(path),
                passed_over: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{
        MAX_SCRIPT, SHIPPED_SCRIPTS, ScriptFileError, ScriptOrigin, find_script, find_script_in,
        read_script_file, shipped_script,
    };

    /// A script file is read once, bounded, and parsed; each kind of failure is its own value
    /// naming the file: unreadable (missing, over the limit) apart from read but no valid
    /// script (not UTF-8, not a script).
    #[test]
    fn a_script_file_is_read_bounded_and_parsed() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, shipped_script("bootstrap-root").expect("shipped")).expect("write");
        let (script, text) = read_script_file(&path).expect("a shipped script's text parses");
        assert_eq!(script.name, "bootstrap-root");
        assert_eq!(text, shipped_script("bootstrap-root").expect("shipped"));
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(matches!(
            find_script(&path),
            Err(ScriptFileError::NotText(p)) if p == path
        ));
        std::fs::write(&path, "name = 1\n").expect("write");
        let Err(ScriptFileError::Invalid(lines)) = find_script(&path) else {
            panic!("an invalid script parsed");
        };
        assert!(!lines.is_empty());
        assert!(
            lines
                .iter()
                .all(|l| l.contains(&path.display().to_string())),
            "{lines:?}"
        );
        let big = std::fs::File::create(&path).expect("create");
        big.set_len(MAX_SCRIPT + 1).expect("grow (sparse)");
        let Err(ScriptFileError::Unreadable(m)) = find_script(&path) else {
            panic!("a file over the limit was read");
        };
        assert!(m.contains("over the size limit"), "{m}");
        assert!(m.contains(&path.display().to_string()), "{m}");
        let Err(ScriptFileError::Unreadable(m)) = find_script(&dir.path().join("none.toml")) else {
            panic!("a missing file was read");
        };
        assert!(m.contains("none.toml"), "{m}");
    }

    /// One rule for every command: a path-like argument (a `/` in it, or ending in `.toml`)
    /// is a file; a shipped script's name wins over a file of that name in the current folder,
    /// which is noted with how to name it; another name is a file. The name is always the one
    /// inside the script (what the transcript records), never the file's stem.
    #[test]
    fn one_rule_names_a_script_and_a_clash_is_said() {
        let dir = tempfile::tempdir().expect("temporary folder");
        // A file named like a shipped script, holding another script.
        let refresh = shipped_script("refresh-expiry").expect("shipped");
        std::fs::write(dir.path().join("bootstrap-root"), refresh).expect("write");
        std::fs::write(dir.path().join("my-ceremony.toml"), refresh).expect("write");
        std::fs::write(dir.path().join("plain"), refresh).expect("write");
        let here = dir.path();
        let find = |arg: &str| find_script_in(here, Path::new(arg));
        {
            let shipped = find("bootstrap-root").expect("shipped");
            assert_eq!(shipped.origin, ScriptOrigin::Shipped);
            assert_eq!(shipped.name(), "bootstrap-root");
            assert_eq!(
                shipped.text,
                shipped_script("bootstrap-root").expect("shipped")
            );
            assert_eq!(
                shipped.clash_note().expect("the clash is said"),
                "\"bootstrap-root\" is the shipped script; the file bootstrap-root in the current \
                 folder is not used (to use the file, name it ./bootstrap-root)"
            );
            // "./NAME" is the file; its name is the one inside it.
            let file = find("./bootstrap-root").expect("the file");
            assert_eq!(
                file.origin,
                ScriptOrigin::File(here.join("./bootstrap-root"))
            );
            assert_eq!(file.name(), "refresh-expiry");
            assert!(file.clash_note().is_none());
            // Ending in .toml: a file, named from inside (not "my-ceremony").
            let toml = find("my-ceremony.toml").expect("the file");
            assert!(matches!(toml.origin, ScriptOrigin::File(_)));
            assert_eq!(toml.name(), "refresh-expiry");
            // No shipped script of that name: the file.
            let plain = find("plain").expect("the file");
            assert_eq!(plain.origin, ScriptOrigin::File(here.join("plain")));
            assert_eq!(plain.name(), "refresh-expiry");
            // No clash: nothing to say.
            let other = find("rotate-root-keys").expect("shipped");
            assert!(other.clash_note().is_none());
            // Neither: unreadable (exit 2), naming the argument and the shipped scripts.
            let Err(ScriptFileError::Unreadable(m)) = find("bootstrap-rot") else {
                panic!("a name that is neither was found");
            };
            assert!(
                m.contains("bootstrap-rot:") && m.contains("no shipped script is named so"),
                "{m}"
            );
        }
        // Every shipped script is found by its name, and named by it.
        for name in SHIPPED_SCRIPTS {
            let s = find_script(Path::new(name)).expect("shipped");
            assert_eq!((s.name(), &s.origin), (name, &ScriptOrigin::Shipped));
        }
    }

    /// One identifier per key: the screens name a key by its key id, so no script tells the
    /// room to compare a "fingerprint" the screen does not show (before: publish-targets and
    /// rotate-rstuf-root-keys still did).
    #[test]
    fn no_script_promises_what_the_screens_do_not_do() {
        for name in SHIPPED_SCRIPTS {
            let text = shipped_script(name).unwrap_or_else(|| panic!("{name} is shipped"));
            assert!(
                !text.to_lowercase().contains("fingerprint"),
                "{name}: a key is named by its key id on every screen"
            );
            // Signing does not stop by itself once the thresholds are met: the administrator
            // closes it (before: "Signing stops when both are met").
            assert!(
                !text.contains("Signing stops when"),
                "{name}: signing is closed by the administrator"
            );
        }
    }
}
