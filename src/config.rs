//! The appliance's configuration file (TOML): which PKCS#11 module to load.
//!
//! ```toml
//! [pkcs11]
//! module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"   # this one, nothing else
//! # or candidates of its own (the one module with a token present is used, see src/driver/module.rs):
//! # modules = ["/usr/lib/x86_64-linux-gnu/libykcs11.so", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"]
//! ```
//!
//! Where it is read from: `--config FILE`, else `$CONCLAVE_CONFIG`, else
//! [`DEFAULT_PATH`]. A missing default file is fine (built-in defaults); a file named by the flag
//! or the environment must exist. Module precedence: `--module` > `pkcs11.module` >
//! `pkcs11.modules` > the built-in search list.
//!
//! Parsing is pure ([`Config::parse`] takes the text); [`load`] reads the file and
//! [`Config::allow_input_module`] resolves a module path named by input (it loads nothing).
//! Errors name the file, the line and the field.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// Where the configuration is read from when neither `--config` nor `CONCLAVE_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/conclave/config.toml";
/// Environment variable naming the configuration file.
pub const ENV_VAR: &str = "CONCLAVE_CONFIG";
/// Largest configuration file read (it is a few lines; anything bigger is a mistake).
const MAX_SIZE: u64 = 64 * 1024;

/// A mistake in the configuration file, with its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {field}: {message}", .file.display(), if *.line > 0 { format!(":{}", .line) } else { String::new() })]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line, 0 when not known (e.g. the file cannot be read).
    pub line: usize,
    /// The field (`pkcs11.module`), or `config` for the file as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A value from the configuration file, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The field, e.g. `pkcs11.module`.
    pub field: &'static str,
}

impl<T> Located<T> {
    /// `FILE:LINE (FIELD)`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{} ({})", self.file.display(), self.line, self.field)
    }
}

/// The parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from (`None`: built-in defaults, no file).
    pub file: Option<PathBuf>,
    /// `pkcs11.module`: the one module to load.
    pub module: Option<Located<PathBuf>>,
    /// `pkcs11.modules`: a search list replacing the built-in one.
    pub modules: Option<Located<Vec<PathBuf>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pkcs11: Option<RawPkcs11>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPkcs11 {
    module: Option<Spanned<String>>,
    modules: Option<Spanned<Vec<Spanned<String>>>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted field a parse error points at: the last `[table]` header above the line, and the
/// key on the line (`pkcs11.module`); `config` when there is none.
fn field_at(text: &str, line: usize) -> String {
    let mut table = String::new();
    let mut key = String::new();
    for (i, l) in text.lines().enumerate() {
        if i + 1 > line {
            break;
        }
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            table = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            key.clear();
        }
        if i + 1 == line {
            key = t
                .split('=')
                .next()
                .filter(|_| t.contains('='))
                .unwrap_or("")
                .trim()
                .to_string();
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (false, true) => table,
        (true, true) => "config".into(),
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

impl Config {
    /// Parse and check configuration text; `file` is used in errors and kept in the result.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |line: usize, field: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            line,
            field: field.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            let field = if line > 0 {
                field_at(text, line)
            } else {
                "config".into()
            };
            err(line, &field, e.message().trim().to_string())
        })?;
        let mut config = Config {
            file: Some(file.to_path_buf()),
            ..Config::default()
        };
        let Some(p) = raw.pkcs11 else {
            return Ok(config);
        };
        let check = |field: &'static str, s: &Spanned<String>| -> Result<PathBuf, ConfigError> {
            let line = line_of(text, s.span().start);
            let v = s.get_ref();
            if v.is_empty() {
                return Err(err(line, field, "must not be empty".into()));
            }
            let path = PathBuf::from(v);
            if !path.is_absolute() {
                return Err(err(
                    line,
                    field,
                    format!("\"{v}\" is not an absolute path (write the module's full path)"),
                ));
            }
            Ok(path)
        };
        if let Some(m) = &p.module {
            config.module = Some(Located {
                value: check("pkcs11.module", m)?,
                file: file.to_path_buf(),
                line: line_of(text, m.span().start),
                field: "pkcs11.module",
            });
        }
        if let Some(list) = &p.modules {
            let line = line_of(text, list.span().start);
            if list.get_ref().is_empty() {
                return Err(err(
                    line,
                    "pkcs11.modules",
                    "is empty; list at least one module path or remove it".into(),
                ));
            }
            let mut paths = Vec::new();
            for s in list.get_ref() {
                paths.push(check("pkcs11.modules", s)?);
            }
            config.modules = Some(Located {
                value: paths,
                file: file.to_path_buf(),
                line,
                field: "pkcs11.modules",
            });
        }
        if let (Some(m), Some(l)) = (&config.module, &config.modules) {
            return Err(err(
                m.line.max(l.line),
                "pkcs11",
                format!(
                    "both pkcs11.module (line {}) and pkcs11.modules (line {}) are set; keep one",
                    m.line, l.line
                ),
            ));
        }
        Ok(config)
    }
}

/// Which file to read, and whether it was named explicitly (flag or environment).
pub fn config_path(flag: Option<&Path>, env: Option<&OsStr>) -> (PathBuf, bool) {
    if let Some(p) = flag {
        return (p.to_path_buf(), true);
    }
    match env {
        Some(v) if !v.is_empty() => (PathBuf::from(v), true),
        _ => (PathBuf::from(DEFAULT_PATH), false),
    }
}

/// Read the configuration: `flag`, else `env` (the value of [`ENV_VAR`]), else [`DEFAULT_PATH`].
/// A missing default file gives the built-in defaults; a missing named file is an error.
pub fn load(flag: Option<&Path>, env: Option<&OsStr>) -> Result<Config, ConfigError> {
    let (path, named) = config_path(flag, env);
    let io_err = |message: String| ConfigError {
        file: path.clone(),
        line: 0,
        field: "config".into(),
        message,
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
            return Ok(Config::default());
        }
        Err(e) => {
            let how = if flag.is_some() {
                "named by --config".to_string()
            } else {
                format!("named by {ENV_VAR}")
            };
            return Err(io_err(format!(
                "cannot read the configuration file ({how}): {e}"
            )));
        }
    };
    if !meta.is_file() {
        return Err(io_err("is not a regular file".into()));
    }
    if meta.len() > MAX_SIZE {
        return Err(io_err(format!(
            "is {} bytes; a configuration file is at most {MAX_SIZE}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io_err(format!("cannot read the configuration file: {e}")))?;
    Config::parse(&path, &text)
}

/// How the PKCS#11 module is chosen, in precedence order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleChoice {
    /// `--module PATH`.
    Flag(PathBuf),
    /// `module` in the answers file of `conclave ceremony run`.
    Answers(PathBuf),
    /// `pkcs11.module` in the configuration file.
    Config(Located<PathBuf>),
    /// `pkcs11.modules` in the configuration file: candidates, the one with a token present.
    ConfigList(Located<Vec<PathBuf>>),
    /// Nothing given: the built-in search list.
    BuiltIn,
}

impl fmt::Display for ModuleChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleChoice::Flag(_) => write!(f, "--module"),
            ModuleChoice::Answers(_) => write!(f, "the answers file"),
            ModuleChoice::Config(l) => write!(f, "{}", l.place()),
            ModuleChoice::ConfigList(l) => write!(f, "{}", l.place()),
            ModuleChoice::BuiltIn => write!(f, "the built-in search list"),
        }
    }
}

impl Config {
    /// Apply the precedence `--module` > `pkcs11.module` > `pkcs11.modules` > built-in.
    pub fn module_choice(&self, flag: Option<&Path>) -> ModuleChoice {
        if let Some(p) = flag {
            ModuleChoice::Flag(p.to_path_buf())
        } else if let Some(m) = &self.module {
            ModuleChoice::Config(m.clone())
        } else if let Some(l) = &self.modules {
            ModuleChoice::ConfigList(l.clone())
        } else {
            ModuleChoice::BuiltIn
        }
    }
}

impl Config {
    /// A PKCS#11 module named by input (an answers file's `module = PATH`) is loaded only when it
    /// is this configuration's module (`pkcs11.module`, or one of `pkcs11.modules`) or lies
    /// directly in one of the image's module directories `dirs` (the built-in search's,
    /// [`crate::signer::pkcs11::MODULE_DIRS`]); never from the input media, whose shared object
    /// would run code inside Conclave as soon as it is loaded. Decided on the path before
    /// anything is loaded; links and `..` are resolved first, so a link in a module directory to
    /// a file elsewhere is refused too. Returns the resolved path, the one to load.
    ///
    /// Besides [`load`], this is the one function here that touches the disk (it resolves
    /// paths, it reads no file).
    pub fn allow_input_module(&self, path: &Path, dirs: &[&str]) -> Result<PathBuf, String> {
        let resolved = std::fs::canonicalize(path)
            .map_err(|e| format!("\"{}\" cannot be resolved: {e}", path.display()))?;
        if !resolved.is_file() {
            return Err(format!("\"{}\" is not a file", path.display()));
        }
        let same = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c == resolved);
        let configured = self.module.as_ref().is_some_and(|m| same(&m.value))
            || self
                .modules
                .as_ref()
                .is_some_and(|l| l.value.iter().any(|m| same(m)));
        let in_image_dir = resolved.parent().is_some_and(|parent| {
            dirs.iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .any(|d| d == parent)
        });
        if configured || in_image_dir {
            return Ok(resolved);
        }
        Err(format!(
            "\"{}\" is neither the appliance's configured module ({}) nor in one of the image's \
             module directories ({}); a module from the input media is never loaded",
            path.display(),
            match (&self.module, &self.modules) {
                (Some(m), _) => m.place(),
                (None, Some(l)) => l.place(),
                (None, None) => "none configured".to_string(),
            },
            dirs.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/conclave/config.toml"), text)
    }

    #[test]
    fn a_module_from_input_is_allowed_only_from_the_config_or_the_image_dirs() {
        let tmp = std::env::temp_dir().join(format!("conclave-config-{}", std::process::id()));
        let (image, stick) = (tmp.join("image"), tmp.join("stick"));
        std::fs::create_dir_all(&image).unwrap();
        std::fs::create_dir_all(&stick).unwrap();
        let (good, evil) = (image.join("libgood.so"), stick.join("libevil.so"));
        std::fs::write(&good, b"").unwrap();
        std::fs::write(&evil, b"").unwrap();
        let link = image.join("liblink.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&evil, &link).unwrap();
        let dirs = [image.to_str().unwrap()];
        let none = Config::default();
        assert_eq!(none.allow_input_module(&good, &dirs).unwrap(), good);
        let e = none.allow_input_module(&evil, &dirs).unwrap_err();
        assert!(
            e.contains("never loaded") && e.contains("libevil.so"),
            "{e}"
        );
        // A link in an image directory to the stick, and `..` out of it, are refused too.
        assert!(none.allow_input_module(&link, &dirs).is_err());
        let dotdot = image.join("../stick/libevil.so");
        assert!(none.allow_input_module(&dotdot, &dirs).is_err());
        assert!(
            none.allow_input_module(&stick.join("missing.so"), &dirs)
                .is_err()
        );
        // The appliance's own configuration may name a module anywhere.
        let text = format!("[pkcs11]\nmodule = \"{}\"\n", evil.display());
        let configured = parse(&text).unwrap();
        assert_eq!(configured.allow_input_module(&evil, &dirs).unwrap(), evil);
        let text = format!("[pkcs11]\nmodules = [\"{}\"]\n", evil.display());
        assert!(
            parse(&text)
                .unwrap()
                .allow_input_module(&evil, &dirs)
                .is_ok()
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn module_with_its_line() {
        let c =
            parse("# appliance\n[pkcs11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n").unwrap();
        let m = c.module.as_ref().unwrap();
        assert_eq!(m.value, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert_eq!(m.line, 3);
        assert_eq!(m.place(), "/etc/conclave/config.toml:3 (pkcs11.module)");
        assert_eq!(
            c.module_choice(None),
            ModuleChoice::Config(m.clone()),
            "the config's module when no flag"
        );
        assert_eq!(
            c.module_choice(Some(Path::new("/x.so"))),
            ModuleChoice::Flag("/x.so".into()),
            "--module wins over the config"
        );
    }

    #[test]
    fn search_list_and_empty_config() {
        let c =
            parse("[pkcs11]\nmodules = [\n  \"/a/libykcs11.so\",\n  \"/b/opensc-pkcs11.so\",\n]\n")
                .unwrap();
        let l = c.modules.as_ref().unwrap();
        assert_eq!(l.value.len(), 2);
        assert_eq!(l.line, 2);
        assert!(matches!(c.module_choice(None), ModuleChoice::ConfigList(_)));
        let empty = parse("").unwrap();
        assert_eq!(empty.module_choice(None), ModuleChoice::BuiltIn);
        assert_eq!(
            parse("[pkcs11]\n").unwrap().module_choice(None),
            ModuleChoice::BuiltIn
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse("[pkcs11]\nmodul = \"/x.so\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "pkcs11.modul"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(
            e.to_string()
                .starts_with("/etc/conclave/config.toml:2: pkcs11.modul: "),
            "{e}"
        );

        let e = parse("[pkcs11]\n\nmodule = 5\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "pkcs11.module"), "{e}");

        let e = parse("[pkcs11]\nmodule = \"lib/softhsm2.so\"\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "pkcs11.module"), "{e}");
        assert!(e.message.contains("not an absolute path"), "{e}");

        let e = parse("[pkcs11]\nmodule = \"\"\n").unwrap_err();
        assert!(e.message.contains("must not be empty"), "{e}");

        let e = parse("[pkcs11]\nmodules = [\"/a.so\",\n \"b.so\"]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "pkcs11.modules"), "{e}");

        let e = parse("[pkcs11]\nmodules = []\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "pkcs11.modules"), "{e}");

        let e = parse("[pkcs11]\nmodule = \"/a.so\"\nmodules = [\"/b.so\"]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "pkcs11"), "{e}");

        let e = parse("[hsm]\nmodule = \"/a.so\"\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("unknown field"), "{e}");

        let e = parse("[pkcs11\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn which_file_is_read() {
        let flag = Path::new("/tmp/c.toml");
        assert_eq!(
            config_path(Some(flag), Some(OsStr::new("/env.toml"))),
            (flag.to_path_buf(), true)
        );
        assert_eq!(
            config_path(None, Some(OsStr::new("/env.toml"))),
            (PathBuf::from("/env.toml"), true)
        );
        assert_eq!(
            config_path(None, Some(OsStr::new(""))),
            (PathBuf::from(DEFAULT_PATH), false)
        );
        assert_eq!(
            config_path(None, None),
            (PathBuf::from(DEFAULT_PATH), false)
        );
    }

    #[test]
    fn a_named_file_must_exist_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = load(Some(&missing), None).unwrap_err();
        assert!(e.to_string().contains("nope.toml"), "{e}");
        assert!(e.message.contains("--config"), "{e}");
        let e = load(None, Some(missing.as_os_str())).unwrap_err();
        assert!(e.message.contains(ENV_VAR), "{e}");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[pkcs11]\nmodule = \"/opt/m.so\"\n").unwrap();
        let c = load(None, Some(f.as_os_str())).unwrap();
        assert_eq!(c.file.as_deref(), Some(f.as_path()));
        assert_eq!(c.module.unwrap().value, PathBuf::from("/opt/m.so"));
        let e = load(Some(dir.path()), None).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }
}
