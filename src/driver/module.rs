//! Which PKCS#11 module a command loads: one choice for every command (`sign`, `token`, `log
//! sign`, `bundle`, `intoto`, `tui`, `rehearse`, `ceremony run`).
//!
//! Precedence: `--module` (or the answers file's `module` for `ceremony run`, which comes from
//! the input media and is loaded only when the configuration names it or it lies in one of the
//! image's module directories, checked before anything is loaded), else
//! `pkcs11.module` / `pkcs11.modules` of the configuration file (`--config`, else
//! `CONCLAVE_CONFIG`, else /etc/conclave/config.toml), else the built-in search. A module that
//! is named but missing is an error everywhere, never a fallback. The built-in search depends on
//! what the module is for: a rehearsal's practice tokens are SoftHSM2 files in the workspace, so
//! it uses SoftHSM2 (and ignores the configuration, which names the keyholders' module); a real
//! ceremony never falls back to SoftHSM2.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ModuleChoice};
use crate::signer::pkcs11::{KNOWN_MODULES, MODULE_DIRS, Module, TokenError};

/// The file name of the SoftHSM2 module.
const SOFTHSM2: &str = "libsofthsm2.so";

/// What the module is loaded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleUse {
    /// A rehearsal (`conclave rehearse`): SoftHSM2 practice tokens in the workspace.
    Rehearsal,
    /// A ceremony on the keyholders' tokens (`conclave ceremony run`, `conclave tui`); a
    /// practice ceremony on them (`practice`) may use SoftHSM2 tokens, a real one never falls
    /// back to SoftHSM2.
    Ceremony {
        /// Marked practice (training on the keyholders' tokens or on SoftHSM2).
        practice: bool,
    },
    /// A single-purpose command (`sign`, `token`, `log sign`, `bundle`, `intoto`): the whole
    /// built-in list.
    Tool,
}

/// Why no module could be chosen or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The configuration file could not be read or is not valid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The module named (or every module searched) is missing or cannot be loaded.
    #[error("{source}{}", chosen_by.as_ref().map(|c| format!(" (module chosen by {c})")).unwrap_or_default())]
    Token {
        /// What the token layer says.
        source: Box<TokenError>,
        /// What named the module (`None`: `--module` or the built-in search).
        chosen_by: Option<String>,
    },
    /// The answers file names a module that neither the appliance's configuration names nor
    /// the image's module directories hold: code from the input media is never loaded.
    #[error("{}: module: refused: {}", file.display(), crate::text::show_message(why))]
    Refused {
        /// The answers file.
        file: PathBuf,
        /// Why ([`crate::config::Config::allow_input_module`]).
        why: String,
    },
    /// No module of the configuration's list exists.
    #[error("none of the PKCS#11 modules listed in {place} exists: {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoneListed {
        /// `FILE:LINE (FIELD)`.
        place: String,
        /// The modules listed.
        paths: Vec<PathBuf>,
    },
}

impl ModuleError {
    /// The exit code at the command line: 1 for a token error that says so, else 2.
    pub fn exit_code(&self) -> u8 {
        match self {
            ModuleError::Token { source, .. } => source.exit_code(),
            _ => 2,
        }
    }

    /// The typed token error, if that is what failed.
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            ModuleError::Token { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The module chosen: its file and what chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenModule {
    /// The module file (exists when chosen).
    pub path: PathBuf,
    /// What chose it.
    pub chosen_by: ModuleChoice,
    /// What it is loaded for.
    pub purpose: ModuleUse,
}

impl ChosenModule {
    /// One line for people: `PATH (chosen by ...)`.
    pub fn describe(&self) -> String {
        let by = match (&self.chosen_by, self.purpose) {
            (ModuleChoice::BuiltIn, ModuleUse::Rehearsal) => {
                "the built-in search for SoftHSM2 (practice tokens)".to_string()
            }
            (ModuleChoice::BuiltIn, ModuleUse::Ceremony { practice: false }) => {
                "the built-in search, SoftHSM2 left out in a real ceremony".to_string()
            }
            (c, _) => c.to_string(),
        };
        format!("{} (chosen by {by})", self.path.display())
    }

    /// Load the module.
    pub fn open(&self) -> Result<Module, ModuleError> {
        Module::open(Some(&self.path)).map_err(|source| ModuleError::Token {
            source: Box::new(source),
            chosen_by: match &self.chosen_by {
                ModuleChoice::Config(l) => Some(l.place()),
                ModuleChoice::ConfigList(l) => Some(l.place()),
                ModuleChoice::Answers(_) => Some(self.chosen_by.to_string()),
                ModuleChoice::Flag(_) | ModuleChoice::BuiltIn => None,
            },
        })
    }
}

/// The paths the built-in search tries for `purpose`, in order.
pub fn builtin_candidates(purpose: ModuleUse) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (_, file) in KNOWN_MODULES {
        let keep = match purpose {
            ModuleUse::Rehearsal => *file == SOFTHSM2,
            ModuleUse::Ceremony { practice: false } => *file != SOFTHSM2,
            ModuleUse::Ceremony { practice: true } | ModuleUse::Tool => true,
        };
        if keep {
            out.extend(MODULE_DIRS.iter().map(|dir| Path::new(dir).join(file)));
        }
    }
    out
}

/// Who named a module, if anyone did.
#[derive(Debug, Clone, Copy)]
pub enum Named<'a> {
    /// Nobody: the configuration file, else the built-in search.
    Nothing,
    /// `--module PATH` on the command line (the operator's own choice).
    Flag(&'a Path),
    /// `module = PATH` in an answers file (`file`), which lies on the input media.
    Answers {
        /// The answers file.
        file: &'a Path,
        /// The module it names.
        module: &'a Path,
    },
}

impl<'a> Named<'a> {
    /// `--module`, when given.
    pub fn flag(path: Option<&'a Path>) -> Named<'a> {
        path.map_or(Named::Nothing, Named::Flag)
    }

    /// The answers file `file`'s `module`, when it names one.
    pub fn answers(file: &'a Path, module: Option<&'a Path>) -> Named<'a> {
        module.map_or(Named::Nothing, |module| Named::Answers { file, module })
    }
}

/// Choose the module, for every command: `named` (`--module`; or the answers file's module,
/// refused unless the configuration names it or it lies in the image's module directories),
/// else the configuration file (`config`: `--config`; `env`: the value of `CONCLAVE_CONFIG`),
/// else the built-in search for `purpose`. A rehearsal reads no configuration. A module that
/// is named but missing is an error, never a fallback.
pub fn choose_module(
    named: Named<'_>,
    config: Option<&Path>,
    env: Option<&OsStr>,
    purpose: ModuleUse,
) -> Result<ChosenModule, ModuleError> {
    let choice = match (named, purpose) {
        (Named::Answers { file, module }, _) => {
            let allowed = crate::config::load(config, env)?
                .allow_input_module(module, MODULE_DIRS)
                .map_err(|why| ModuleError::Refused {
                    file: file.to_path_buf(),
                    why,
                })?;
            ModuleChoice::Answers(allowed)
        }
        (Named::Flag(p), _) => ModuleChoice::Flag(p.to_path_buf()),
        (Named::Nothing, ModuleUse::Rehearsal) => ModuleChoice::BuiltIn,
        (Named::Nothing, _) => crate::config::load(config, env)?.module_choice(None),
    };
    let chosen = |path: PathBuf, chosen_by: ModuleChoice| ChosenModule {
        path,
        chosen_by,
        purpose,
    };
    match choice {
        ModuleChoice::Flag(ref p) | ModuleChoice::Answers(ref p) if !p.is_file() => {
            Err(ModuleError::Token {
                source: Box::new(TokenError::ModuleMissing { path: p.clone() }),
                chosen_by: matches!(choice, ModuleChoice::Answers(_)).then(|| choice.to_string()),
            })
        }
        ModuleChoice::Flag(ref p) | ModuleChoice::Answers(ref p) => {
            Ok(chosen(p.clone(), choice.clone()))
        }
        ModuleChoice::Config(ref l) => {
            if l.value.is_file() {
                Ok(chosen(l.value.clone(), choice.clone()))
            } else {
                Err(ModuleError::Token {
                    source: Box::new(TokenError::ModuleMissing {
                        path: l.value.clone(),
                    }),
                    chosen_by: Some(l.place()),
                })
            }
        }
        ModuleChoice::ConfigList(ref l) => match l.value.iter().find(|p| p.is_file()) {
            Some(p) => Ok(chosen(p.clone(), choice.clone())),
            None => Err(ModuleError::NoneListed {
                place: l.place(),
                paths: l.value.clone(),
            }),
        },
        ModuleChoice::BuiltIn => {
            let searched = builtin_candidates(purpose);
            match searched.iter().find(|p| p.is_file()) {
                Some(p) => Ok(chosen(p.clone(), ModuleChoice::BuiltIn)),
                None => Err(ModuleError::Token {
                    source: Box::new(TokenError::NoModule { searched }),
                    chosen_by: None,
                }),
            }
        }
    }
}

/// [`choose_module`] with `CONCLAVE_CONFIG` from this process's environment.
pub fn choose_module_here(
    named: Named<'_>,
    config: Option<&Path>,
    purpose: ModuleUse,
) -> Result<ChosenModule, ModuleError> {
    let env = std::env::var_os(crate::config::ENV_VAR);
    choose_module(named, config, env.as_deref(), purpose)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: ModuleUse = ModuleUse::Ceremony { practice: false };
    const ALL: [ModuleUse; 4] = [
        ModuleUse::Rehearsal,
        ModuleUse::Ceremony { practice: false },
        ModuleUse::Ceremony { practice: true },
        ModuleUse::Tool,
    ];

    fn config(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("config.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn a_named_module_that_is_missing_is_an_error_for_every_use() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.so");
        for purpose in ALL {
            let e = choose_module(Named::Flag(&missing), None, None, purpose).unwrap_err();
            assert!(
                matches!(e.token_error(), Some(TokenError::ModuleMissing { .. })),
                "{purpose:?}: {e}"
            );
            // An answers file's module that does not exist is refused before anything else.
            let answers = Named::Answers {
                file: Path::new("answers.toml"),
                module: &missing,
            };
            let e = choose_module(answers, None, None, purpose).unwrap_err();
            assert!(matches!(e, ModuleError::Refused { .. }), "{e}");
            assert!(
                e.to_string().starts_with("answers.toml: module: refused"),
                "{e}"
            );
        }
        let cfg = config(
            dir.path(),
            &format!("[pkcs11]\nmodule = \"{}\"\n", missing.display()),
        );
        for purpose in [
            REAL,
            ModuleUse::Ceremony { practice: true },
            ModuleUse::Tool,
        ] {
            let e = choose_module(Named::Nothing, Some(&cfg), None, purpose).unwrap_err();
            assert!(
                e.to_string().contains("config.toml:2"),
                "{purpose:?} names the configuration line: {e}"
            );
            // Through CONCLAVE_CONFIG too.
            let e =
                choose_module(Named::Nothing, None, Some(cfg.as_os_str()), purpose).unwrap_err();
            assert!(e.to_string().contains("config.toml:2"), "{e}");
        }
        let cfg = config(
            dir.path(),
            &format!("[pkcs11]\nmodules = [\"{}\"]\n", missing.display()),
        );
        let e = choose_module(Named::Nothing, Some(&cfg), None, REAL).unwrap_err();
        assert!(matches!(e, ModuleError::NoneListed { .. }), "{e}");
    }

    /// `ceremony run`'s answers file lies on the input media: its module is loaded only when
    /// the appliance's configuration names it (or it lies in an image module directory).
    #[test]
    fn an_answers_files_module_is_loaded_only_when_the_appliance_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let stick = dir.path().join("stick");
        std::fs::create_dir_all(&stick).unwrap();
        let module = stick.join("vendor-pkcs11.so");
        std::fs::write(&module, b"").unwrap();
        let answers = Named::Answers {
            file: Path::new("/media/stick/answers.toml"),
            module: &module,
        };
        let none = config(dir.path(), "");
        for practice in [false, true] {
            let e = choose_module(answers, Some(&none), None, ModuleUse::Ceremony { practice })
                .unwrap_err();
            assert!(matches!(e, ModuleError::Refused { .. }), "{e}");
            assert!(
                e.to_string()
                    .starts_with("/media/stick/answers.toml: module: refused")
                    && e.to_string().contains("never loaded"),
                "{e}"
            );
        }
        let cfg = config(
            dir.path(),
            &format!("[pkcs11]\nmodule = \"{}\"\n", module.display()),
        );
        let c = choose_module(answers, Some(&cfg), None, REAL).unwrap();
        assert_eq!(c.path, module.canonicalize().unwrap());
        assert!(
            c.describe().contains("the answers file"),
            "{}",
            c.describe()
        );
    }

    #[test]
    fn the_configured_module_is_used_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("vendor-pkcs11.so");
        std::fs::write(&module, b"").unwrap();
        let cfg = config(
            dir.path(),
            &format!("[pkcs11]\nmodule = \"{}\"\n", module.display()),
        );
        let c = choose_module(Named::Nothing, Some(&cfg), None, REAL).unwrap();
        assert_eq!(c.path, module);
        assert!(c.describe().contains("config.toml:2"), "{}", c.describe());
        // --module wins over the configuration.
        let other = dir.path().join("other.so");
        std::fs::write(&other, b"").unwrap();
        let c = choose_module(Named::Flag(&other), Some(&cfg), None, REAL).unwrap();
        assert_eq!(c.path, other);
        assert_eq!(
            c.describe(),
            format!("{} (chosen by --module)", other.display())
        );
    }

    #[test]
    fn a_rehearsal_uses_softhsm2_and_a_real_ceremony_never_falls_back_to_it() {
        let rehearsal = builtin_candidates(ModuleUse::Rehearsal);
        assert!(!rehearsal.is_empty());
        assert!(rehearsal.iter().all(|p| p.ends_with(SOFTHSM2)));
        assert!(
            builtin_candidates(REAL)
                .iter()
                .all(|p| !p.ends_with(SOFTHSM2))
        );
        assert!(
            builtin_candidates(ModuleUse::Tool)
                .iter()
                .any(|p| p.ends_with(SOFTHSM2))
        );
        // A rehearsal reads no configuration: a broken one does not stop it.
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "[pkcs11]\nmodule = 3\n");
        match choose_module(Named::Nothing, Some(&cfg), None, ModuleUse::Rehearsal) {
            Ok(c) => assert!(c.path.ends_with(SOFTHSM2), "{}", c.describe()),
            Err(e) => assert!(
                matches!(e.token_error(), Some(TokenError::NoModule { .. })),
                "{e}"
            ),
        }
        assert!(choose_module(Named::Nothing, Some(&cfg), None, REAL).is_err());
        // On this machine (SoftHSM2 installed; maybe OpenSC): a real ceremony's built-in search
        // finds another module or none, never SoftHSM2.
        let none = config(dir.path(), "");
        match choose_module(Named::Nothing, Some(&none), None, REAL) {
            Ok(c) => {
                assert!(!c.path.ends_with(SOFTHSM2), "{}", c.describe());
                assert!(
                    c.describe().contains("SoftHSM2 left out"),
                    "{}",
                    c.describe()
                );
            }
            Err(e) => assert!(
                e.to_string().contains("no PKCS#11 module")
                    || matches!(e.token_error(), Some(TokenError::NoModule { .. })),
                "{e}"
            ),
        }
    }
}
