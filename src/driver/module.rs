//! Which PKCS#11 module a command loads: one choice for every command (`sign`, `token`, `log
//! sign`, `bundle`, `intoto`, `tui`, `rehearse`, `ceremony run`).
//!
//! Precedence: `--module` (or the answers file's `module` for `ceremony run`, which comes from
//! the input media and is loaded only when the configuration names it or it lies in one of the
//! image's module directories, checked before anything is loaded), else
//! `pkcs11.module` / `pkcs11.modules` of the configuration file (`--config`, else
//! `CONCLAVE_CONFIG`, else /etc/conclave/config.toml), else the built-in search. A module that
//! is named but missing is an error everywhere, never a fallback. When nothing names one module
//! (a configured list, or the built-in search) and several candidates exist, each is loaded and
//! its tokens listed ([`probe`]); the one module with a token present is chosen ([`decide`]),
//! several are refused, each named with its tokens. The built-in search depends on
//! what the module is for: a rehearsal's practice tokens are SoftHSM2 files in the workspace, so
//! it uses SoftHSM2 (and ignores the configuration, which names the keyholders' module); a real
//! ceremony never falls back to SoftHSM2.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::config::{ConfigError, ModuleChoice};
use crate::signer::pkcs11::{KNOWN_MODULES, MODULE_DIRS, Module, TokenDesc, TokenError};
use crate::text::show;

/// The file name of the SoftHSM2 module.
const SOFTHSM2: &str = "libsofthsm2.so";
/// The file name of Yubico's PIV module.
const YKCS11: &str = "libykcs11.so";
/// The file name of OpenSC's module.
const OPENSC: &str = "opensc-pkcs11.so";

/// How long one candidate module may take to load and list its tokens before it is named and
/// skipped ([`probe`]).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Several candidate modules have a token present and nothing says which to use.
    #[error(
        "several PKCS#11 modules have a token present ({chosen_by}): {}; name the one to use \
         with --module PATH or with pkcs11.module in the configuration file",
        modules.iter().map(|(p, t)| format!("{} ({})", p.display(), t.join(", "))).collect::<Vec<_>>().join("; ")
    )]
    Ambiguous {
        /// What listed the candidates (the configuration's `FILE:LINE (FIELD)` or the
        /// built-in search list).
        chosen_by: String,
        /// Each module with a token present, and its tokens (shown).
        modules: Vec<(PathBuf, Vec<String>)>,
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
    /// Why this one of several candidates ([`decide`]); `None` when it was the only one.
    pub why: Option<String>,
}

/// `(chosen by BY)`, or `(chosen by BY: WHY)` when the module was picked among several
/// candidates: how every report names what chose a module ([`ChosenModule::describe`],
/// `token list`).
pub fn chosen_by_text(by: &str, why: Option<&str>) -> String {
    match why {
        Some(why) => format!("(chosen by {by}: {why})"),
        None => format!("(chosen by {by})"),
    }
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
        format!(
            "{} {}",
            self.path.display(),
            chosen_by_text(&by, self.why.as_deref())
        )
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
        why: None,
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
        ModuleChoice::ConfigList(ref l) => {
            let existing = distinct(l.value.iter().filter(|p| p.is_file()).cloned(), false);
            if existing.is_empty() {
                return Err(ModuleError::NoneListed {
                    place: l.place(),
                    paths: l.value.clone(),
                });
            }
            choose_among(existing, choice.clone(), purpose)
        }
        ModuleChoice::BuiltIn => {
            let searched = builtin_candidates(purpose);
            let existing = distinct(searched.iter().filter(|p| p.is_file()).cloned(), true);
            if existing.is_empty() {
                return Err(ModuleError::Token {
                    source: Box::new(TokenError::NoModule { searched }),
                    chosen_by: None,
                });
            }
            choose_among(existing, ModuleChoice::BuiltIn, purpose)
        }
    }
}

/// The files of `paths` without repeats: the same file reached twice (a link, or, with
/// `by_name`, the same module file name in two of the built-in search's directories) counts
/// once, first place kept.
fn distinct(paths: impl Iterator<Item = PathBuf>, by_name: bool) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in paths {
        let key = if by_name {
            p.file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| p.clone())
        } else {
            std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone())
        };
        if !seen.contains(&key) {
            seen.push(key);
            out.push(p);
        }
    }
    out
}

fn is_file_named(p: &Path, name: &str) -> bool {
    p.file_name().is_some_and(|f| f == name)
}

/// One module of the existing candidates `existing` (listed by `chosen_by`, not empty): the
/// only one, else the one with a token present ([`probe`] each, [`decide`]). A real ceremony
/// never loads SoftHSM2 when there is another candidate (a list naming nothing else keeps it:
/// its tokens are refused later, saying why).
fn choose_among(
    mut existing: Vec<PathBuf>,
    chosen_by: ModuleChoice,
    purpose: ModuleUse,
) -> Result<ChosenModule, ModuleError> {
    if purpose == (ModuleUse::Ceremony { practice: false })
        && existing.iter().any(|p| !is_file_named(p, SOFTHSM2))
    {
        existing.retain(|p| !is_file_named(p, SOFTHSM2));
    }
    let (path, why) = match existing.as_slice() {
        [only] => (only.clone(), None),
        _ => {
            let probed: Vec<(PathBuf, Probe)> = existing
                .iter()
                .map(|p| (p.clone(), probe(p, PROBE_TIMEOUT)))
                .collect();
            let (path, why) = decide(&probed, &chosen_by.to_string())?;
            (path, Some(why))
        }
    };
    Ok(ChosenModule {
        path,
        chosen_by,
        purpose,
        why,
    })
}

/// What loading a candidate module and listing its tokens gave ([`probe`]).
#[derive(Debug, Clone)]
pub enum Probe {
    /// It loaded; the tokens it lists.
    Tokens(Vec<TokenDesc>),
    /// It could not be loaded or could not list its tokens, or did not answer in time: why.
    Failed(String),
}

/// Load the module `path` and list its tokens, in a thread of its own: a module that fails is
/// [`Probe::Failed`] with the reason, one that takes longer than `timeout` (a hung driver) is
/// left behind and named as hung, never a crash nor a wait without end. The module is
/// finalised afterwards; the chosen one is loaded again by [`ChosenModule::open`].
///
/// A thread stuck in a module's C code cannot be stopped safely, so a hung probe's thread stays
/// parked, holding the module loaded, until the process ends (docs/hsm.md). It is never joined
/// by a second one: while it has not finished, probing the same module file again (the same
/// file however named) does not load it again and fails at once, naming the earlier probe.
pub fn probe(path: &Path, timeout: Duration) -> Probe {
    let owned = path.to_path_buf();
    probe_with(path, timeout, move || {
        Module::open(Some(&owned)).and_then(|m| m.tokens())
    })
}

/// The result channel of a probe that did not answer in time, by module file
/// ([`std::fs::canonicalize`]d), and when it was started.
type Parked = Vec<(PathBuf, std::time::Instant, mpsc::Receiver<Listed>)>;

/// What a probe's thread sends back.
type Listed = Result<Vec<TokenDesc>, TokenError>;

/// The probes left behind in this process ([`probe`]).
static PARKED: std::sync::Mutex<Parked> = std::sync::Mutex::new(Vec::new());

/// [`probe`] with the loading and listing given as `list`, run in the probe's thread.
fn probe_with(
    path: &Path,
    timeout: Duration,
    list: impl FnOnce() -> Listed + Send + 'static,
) -> Probe {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A poisoned lock only means another probe panicked; the list itself stays whole.
    let mut parked = PARKED.lock().unwrap_or_else(|e| e.into_inner());
    // A parked probe that has finished since (answered or gone) frees its module file.
    parked.retain(|(_, _, rx)| matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
    if let Some((_, since, _)) = parked.iter().find(|(k, _, _)| *k == key) {
        return Probe::Failed(format!(
            "an earlier probe of it, {} s ago, has still not finished loading it or listing \
             its tokens; it is not loaded a second time",
            since.elapsed().as_secs()
        ));
    }
    drop(parked);
    let (tx, rx) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name("module-probe".into())
        .spawn(move || {
            // Nobody listens any more when the wait ran out: nothing to tell.
            let _ = tx.send(list());
        });
    if let Err(e) = started {
        return Probe::Failed(format!("cannot start loading it: {e}"));
    }
    let since = std::time::Instant::now();
    match rx.recv_timeout(timeout) {
        Ok(Ok(tokens)) => Probe::Tokens(tokens),
        Ok(Err(e)) => Probe::Failed(e.to_string()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            PARKED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((key, since, rx));
            Probe::Failed(format!(
                "loading it or listing its tokens did not finish within {} s",
                timeout.as_secs()
            ))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Probe::Failed("it stopped while loading or listing its tokens".into())
        }
    }
}

/// A token as named in the choice: its label and serial number (shown).
fn token_name(t: &TokenDesc) -> String {
    format!("{} (serial {})", show(&t.label), show(&t.serial))
}

/// An OpenSC token of its PIV card driver: a YubiKey's PIV application seen through OpenSC
/// looks like this. OpenSC's `sc_pkcs15emu_piv_init` (`src/libopensc/pkcs15-piv.c`) sets the
/// manufacturer to `MANU_ID` `"piv_II "` (cleaned: `piv_II`) and the label to `PIV_II`, which
/// the common name of the card's first certificate replaces when there is one
/// (`framework-pkcs15.c` may then add the PIN label); the model is `PKCS#15 emulated` and the
/// firmware 0.0 (`pkcs15_init_token_info`: `card-piv.c` reads the YubiKey's version only for
/// its own quirks and never sets the card's version). So the manufacturer is what tells it.
fn is_opensc_piv(t: &TokenDesc) -> bool {
    t.manufacturer.eq_ignore_ascii_case("piv_II") || t.label.starts_with("PIV_II")
}

/// The pure decision among candidate modules, each loaded and listed (`probed`, in the search
/// order; `listed_by`: what listed them, for the refusal). A token is present when it is
/// initialised (SoftHSM2 always shows an empty slot, which is no device). Returns the module
/// and one line saying why:
/// - the one module with a token present;
/// - ykcs11 when it and OpenSC are the two with tokens and every OpenSC token is a PIV card
///   no more numerous than ykcs11's (the same YubiKeys: ykcs11 has the PIV handling);
/// - several modules with tokens otherwise: refused ([`ModuleError::Ambiguous`]), each named
///   with its tokens;
/// - no module with a token: the first that loads (else the first), so what the command does
///   next (list, initialise, or say that no token is present) happens on it.
///
/// Modules that failed or hung are named in the line as skipped.
pub fn decide(
    probed: &[(PathBuf, Probe)],
    listed_by: &str,
) -> Result<(PathBuf, String), ModuleError> {
    let present: Vec<(&PathBuf, Vec<&TokenDesc>)> = probed
        .iter()
        .filter_map(|(p, r)| match r {
            Probe::Tokens(ts) => Some((p, ts.iter().filter(|t| t.initialized).collect())),
            Probe::Failed(_) => None,
        })
        .filter(|(_, ts): &(&PathBuf, Vec<&TokenDesc>)| !ts.is_empty())
        .collect();
    let skipped: Vec<String> = probed
        .iter()
        .filter_map(|(p, r)| match r {
            Probe::Failed(why) => Some(format!(
                "{} skipped: {}",
                p.display(),
                crate::text::show_message(why)
            )),
            Probe::Tokens(_) => None,
        })
        .collect();
    let with_skipped = |why: String| {
        if skipped.is_empty() {
            why
        } else {
            format!("{why}; {}", skipped.join("; "))
        }
    };
    let names = |ts: &[&TokenDesc]| ts.iter().map(|t| token_name(t)).collect::<Vec<_>>();
    match present.as_slice() {
        [(path, ts)] => Ok((
            (*path).clone(),
            with_skipped(format!(
                "the only one with a token present: {}",
                names(ts).join(", ")
            )),
        )),
        [] => {
            let first_loaded = probed
                .iter()
                .find(|(_, r)| matches!(r, Probe::Tokens(_)))
                .or_else(|| probed.first());
            match first_loaded {
                Some((path, _)) => Ok((
                    path.clone(),
                    with_skipped("no module has a token present; the first that loads".into()),
                )),
                None => Err(ModuleError::Token {
                    source: Box::new(TokenError::NoModule {
                        searched: Vec::new(),
                    }),
                    chosen_by: Some(listed_by.to_string()),
                }),
            }
        }
        several => {
            let yk = several.iter().find(|(p, _)| is_file_named(p, YKCS11));
            let sc = several.iter().find(|(p, _)| is_file_named(p, OPENSC));
            if let (2, Some((yk_path, yk_ts)), Some((_, sc_ts))) = (several.len(), yk, sc)
                && sc_ts.iter().all(|t| is_opensc_piv(t))
                && sc_ts.len() <= yk_ts.len()
            {
                return Ok((
                    (*yk_path).clone(),
                    with_skipped(format!(
                        "YubiKey PIV through ykcs11 (OpenSC shows the same YubiKey, \
                         without PIV handling): {}",
                        names(yk_ts).join(", ")
                    )),
                ));
            }
            Err(ModuleError::Ambiguous {
                chosen_by: listed_by.to_string(),
                modules: several
                    .iter()
                    .map(|(p, ts)| ((*p).clone(), names(ts)))
                    .collect(),
            })
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

    // Fakes for the pure decision: what `probe` returns for modules that were never loaded.
    fn token(label: &str, serial: &str) -> TokenDesc {
        TokenDesc::example(label, serial)
    }

    fn opensc_piv(serial: &str) -> TokenDesc {
        let mut t = token("PIV_II (PIV Card Holder pin)", serial);
        t.manufacturer = "piv_II".into();
        t.model = "PKCS#15 emulated".into();
        t
    }

    const YK: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";
    const SC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
    const HSM: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so";

    fn probed(entries: Vec<(&str, Probe)>) -> Vec<(PathBuf, Probe)> {
        entries
            .into_iter()
            .map(|(p, r)| (PathBuf::from(p), r))
            .collect()
    }

    #[test]
    fn the_one_module_with_a_token_present_is_chosen_and_said() {
        let mut empty_slot = token("", "");
        empty_slot.initialized = false;
        let probed = probed(vec![
            (YK, Probe::Tokens(vec![])),
            (SC, Probe::Tokens(vec![empty_slot])),
            (HSM, Probe::Tokens(vec![token("YubiHSM", "0012345678")])),
        ]);
        let (path, why) = decide(&probed, "the built-in search list").unwrap();
        assert_eq!(path, Path::new(HSM));
        assert_eq!(
            why,
            "the only one with a token present: YubiHSM (serial 0012345678)"
        );
    }

    #[test]
    fn a_module_that_fails_or_hangs_is_named_and_skipped() {
        let probed = probed(vec![
            (
                HSM,
                Probe::Failed("loading it or listing its tokens did not finish within 15 s".into()),
            ),
            (SC, Probe::Failed("no reader\nforged line".into())),
            (YK, Probe::Tokens(vec![token("YubiKey PIV #123", "123")])),
        ]);
        let (path, why) = decide(&probed, "the built-in search list").unwrap();
        assert_eq!(path, Path::new(YK));
        assert!(
            why.starts_with("the only one with a token present: YubiKey PIV #123"),
            "{why}"
        );
        assert!(why.contains(&format!("{HSM} skipped: loading it")), "{why}");
        assert!(
            why.contains(&format!("{SC} skipped: no reader\\nforged")),
            "shown: {why}"
        );
        assert!(!why.contains('\n'), "{why}");
    }

    #[test]
    fn several_modules_with_tokens_are_refused_naming_each_and_how_to_choose() {
        let probed = probed(vec![
            (YK, Probe::Tokens(vec![token("YubiKey PIV #123", "123")])),
            (
                HSM,
                Probe::Tokens(vec![token("YubiHSM", "7"), token("YubiHSM", "8")]),
            ),
        ]);
        let e = decide(&probed, "/etc/conclave/config.toml:2 (pkcs11.modules)").unwrap_err();
        assert!(matches!(e, ModuleError::Ambiguous { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            format!(
                "several PKCS#11 modules have a token present (/etc/conclave/config.toml:2 \
                 (pkcs11.modules)): {YK} (YubiKey PIV #123 (serial 123)); {HSM} (YubiHSM \
                 (serial 7), YubiHSM (serial 8)); name the one to use with --module PATH or \
                 with pkcs11.module in the configuration file"
            )
        );
    }

    /// OpenSC's PIV driver shows a YubiKey too (manufacturer `piv_II`): ykcs11 is preferred;
    /// an OpenSC token that is no PIV card (a Nitrokey HSM) keeps the choice ambiguous.
    #[test]
    fn ykcs11_is_preferred_when_opensc_sees_the_same_yubikey() {
        let yk = token("YubiKey PIV #123", "123");
        let both = probed(vec![
            (SC, Probe::Tokens(vec![opensc_piv("00000000")])),
            (YK, Probe::Tokens(vec![yk.clone()])),
        ]);
        let (path, why) = decide(&both, "the built-in search list").unwrap();
        assert_eq!(path, Path::new(YK));
        assert!(why.contains("OpenSC shows the same YubiKey"), "{why}");
        let mut nitrokey = token("alice (UserPIN)", "DENK0100001");
        nitrokey.manufacturer = "www.CardContact.de".into();
        let mixed = probed(vec![
            (SC, Probe::Tokens(vec![opensc_piv("00000000"), nitrokey])),
            (YK, Probe::Tokens(vec![yk])),
        ]);
        assert!(matches!(
            decide(&mixed, "the built-in search list"),
            Err(ModuleError::Ambiguous { .. })
        ));
    }

    #[test]
    fn with_no_token_anywhere_the_first_module_that_loads_is_used() {
        let probed = probed(vec![
            (YK, Probe::Failed("no PC/SC service".into())),
            (SC, Probe::Tokens(vec![])),
            (HSM, Probe::Tokens(vec![])),
        ]);
        let (path, why) = decide(&probed, "the built-in search list").unwrap();
        assert_eq!(path, Path::new(SC));
        assert!(
            why.starts_with("no module has a token present; the first that loads"),
            "{why}"
        );
        assert!(
            why.contains(&format!("{YK} skipped: no PC/SC service")),
            "{why}"
        );
        let none = probed_failed();
        assert_eq!(decide(&none, "x").unwrap().0, Path::new(YK));
    }

    fn probed_failed() -> Vec<(PathBuf, Probe)> {
        probed(vec![
            (YK, Probe::Failed("a".into())),
            (SC, Probe::Failed("b".into())),
        ])
    }

    #[test]
    fn the_built_in_list_tries_ykcs11_before_opensc() {
        let list = builtin_candidates(ModuleUse::Tool);
        let first = |name: &str| list.iter().position(|p| p.ends_with(name)).unwrap();
        assert!(first(YKCS11) < first(OPENSC));
    }

    /// A module that hangs leaves one parked thread, never two: probing the same file again
    /// (also by another name) fails at once without loading it, until the hung probe ends;
    /// then it is probed afresh.
    #[test]
    fn a_hung_module_is_not_probed_again_while_its_probe_is_parked() {
        let dir = tempfile::tempdir().unwrap();
        let hung = dir.path().join("hung.so");
        std::fs::write(&hung, b"").unwrap();
        let alias = dir.path().join("alias.so");
        std::os::unix::fs::symlink(&hung, &alias).unwrap();
        let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, wait) = mpsc::channel::<()>();
        let counted = loads.clone();
        let first = probe_with(&hung, Duration::from_millis(50), move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = wait.recv();
            Ok(Vec::new())
        });
        let Probe::Failed(why) = first else {
            panic!("a hung probe answered");
        };
        assert!(why.contains("did not finish within 0 s"), "{why}");
        for again in [&hung, &alias] {
            let counted = loads.clone();
            let second = probe_with(again, Duration::from_secs(5), move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Vec::new())
            });
            let Probe::Failed(why) = second else {
                panic!("a hung module was loaded a second time");
            };
            assert!(why.contains("an earlier probe of it"), "{why}");
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The hung probe ends: the module is probed again.
        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let third = loop {
            let counted = loads.clone();
            match probe_with(&hung, Duration::from_secs(5), move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(vec![token("alice", "1")])
            }) {
                Probe::Failed(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => break other,
            }
        };
        assert!(matches!(third, Probe::Tokens(t) if t.len() == 1));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A module file that is not a module: named and skipped, never a crash.
    #[test]
    fn probing_a_file_that_is_no_module_fails_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("bogus.so");
        std::fs::write(&bogus, b"not a shared object").unwrap();
        match probe(&bogus, PROBE_TIMEOUT) {
            Probe::Failed(why) => assert!(why.contains("bogus.so"), "{why}"),
            Probe::Tokens(t) => panic!("tokens from a bogus module: {t:?}"),
        }
    }
}
