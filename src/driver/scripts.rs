//! The ceremony scripts shipped in the binary, and finding a script by name.

use std::path::Path;

use super::DriverError;
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

/// A ceremony script by name: a shipped script, else a script file (named by its file stem).
/// Returns (name, text).
pub fn script_text(name: &str) -> Result<(String, String), DriverError> {
    if let Some(t) = shipped_script(name) {
        return Ok((name.to_string(), t.to_string()));
    }
    let path = Path::new(name);
    // Bounded, like `ceremony check`: a hostile-size file (or a FIFO, a device) is refused
    // before it is read into memory.
    let bytes = crate::folder::read_limited(path, MAX_SCRIPT).map_err(|e| {
        DriverError::Io(format!(
            "{name}: not a shipped script and not readable: {e}"
        ))
    })?;
    let text =
        String::from_utf8(bytes).map_err(|_| DriverError::Io(format!("{name}: not UTF-8 text")))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("ceremony")
        .to_string();
    Ok((stem, text))
}

/// Why a script file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFileError {
    /// It could not be read (missing, not a regular file, over [`MAX_SCRIPT`]).
    #[error("{0}")]
    Unreadable(String),
    /// It is not UTF-8 text.
    #[error("{}: not UTF-8 text", .0.display())]
    NotText(std::path::PathBuf),
    /// It is not a valid script: one line per mistake, naming the line and the field.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A script file (`ceremony check`, `ceremony print`, `ceremony run FILE`): read bounded
/// ([`MAX_SCRIPT`]; a FIFO or a device is refused, not waited on), once, and parsed. Returns
/// the script and its text (recorded in the transcript).
pub fn read_script_file(path: &Path) -> Result<(Script, String), ScriptFileError> {
    let bytes =
        crate::folder::read_limited(path, MAX_SCRIPT).map_err(ScriptFileError::Unreadable)?;
    let text =
        String::from_utf8(bytes).map_err(|_| ScriptFileError::NotText(path.to_path_buf()))?;
    let script = Script::parse(&path.display().to_string(), &text).map_err(|errors| {
        ScriptFileError::Invalid(
            errors
                .iter()
                .map(|e| crate::text::show_message(&e.to_string()))
                .collect(),
        )
    })?;
    Ok((script, text))
}

/// The script `conclave ceremony run` takes: a script file when one exists at `name`, else the
/// shipped script of that name. Returns (the script's name, its text).
pub fn script_for_run(name: &str) -> Result<(String, String), ScriptFileError> {
    let path = Path::new(name);
    match shipped_script(name) {
        Some(t) if !path.exists() => Ok((name.to_string(), t.to_string())),
        _ => read_script_file(path).map(|(script, text)| (script.name, text)),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        MAX_SCRIPT, SHIPPED_SCRIPTS, ScriptFileError, read_script_file, script_for_run,
        script_text, shipped_script,
    };

    /// A script file is read once, bounded, and parsed; each kind of failure is its own value
    /// naming the file.
    #[test]
    fn a_script_file_is_read_bounded_and_parsed() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, shipped_script("bootstrap-root").expect("shipped")).expect("write");
        let (script, text) = read_script_file(&path).expect("a shipped script's text parses");
        assert_eq!(script.name, "bootstrap-root");
        assert_eq!(text, shipped_script("bootstrap-root").expect("shipped"));
        // ceremony run: the file wins when it exists, else the shipped script.
        let (name, _) = script_for_run(&path.display().to_string()).expect("file");
        assert_eq!(name, "bootstrap-root");
        assert_eq!(
            script_for_run("refresh-expiry").expect("shipped").0,
            "refresh-expiry"
        );
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(matches!(
            read_script_file(&path),
            Err(ScriptFileError::NotText(p)) if p == path
        ));
        std::fs::write(&path, "name = 1\n").expect("write");
        let Err(ScriptFileError::Invalid(lines)) = read_script_file(&path) else {
            panic!("an invalid script parsed");
        };
        assert!(!lines.is_empty());
        let big = std::fs::File::create(&path).expect("create");
        big.set_len(MAX_SCRIPT + 1).expect("grow (sparse)");
        let Err(ScriptFileError::Unreadable(m)) = read_script_file(&path) else {
            panic!("a file over the limit was read");
        };
        assert!(m.contains("over the size limit"), "{m}");
    }

    /// `conclave tui --script FILE` reads the file bounded, as `ceremony check` does: one byte
    /// over the limit is refused with the file named (before: an unbounded `read_to_string`).
    #[test]
    fn a_script_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("big.toml");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_SCRIPT + 1).expect("grow (sparse)");
        let name = path.display().to_string();
        let err = script_text(&name).expect_err("over the limit").to_string();
        assert!(err.contains(&name), "names the file: {err}");
        assert!(err.contains("over the size limit"), "{err}");

        // A small file is read; the name is the file stem.
        let ok = dir.path().join("mine.toml");
        std::fs::write(&ok, "x = 1\n").expect("write");
        let (stem, text) = script_text(&ok.display().to_string()).expect("small file");
        assert_eq!((stem.as_str(), text.as_str()), ("mine", "x = 1\n"));

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, [0xff, 0xfe]).expect("write");
        let err = script_text(&bad.display().to_string()).expect_err("not UTF-8");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
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
