//! Practice tokens of a rehearsal: SoftHSM2 tokens for the practice keyholders, their PINs
//! kept in the workspace, and the saved copy that repairs a token file an interruption emptied.
//! Practice only: a real ceremony's tokens keep their own state and PINs are asked of people.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::ceremony::engine::ParamJson;
use crate::ceremony::script::Kind;
use crate::signer::pkcs11::{EdParams, GeneratedKey, TokenDesc, TokenError};
use crate::text::show;
use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::Algorithm;

use super::error::{DriverError, io};
use super::module::{ModuleError, ModuleUse, Named, choose_module};
use super::token_device::TokenModule;
use super::token_store::{has_user_pin, remove_dir, saved, token_folder, well_formed_object};
use super::workspace::Workspace;

/// The keyholders of a rehearsal.
pub const PRACTICE_KEYHOLDERS: [&str; 3] = ["alice", "bob", "carol"];

/// Who takes part in a rehearsal of this kind, and the parameter values the practice uses: a
/// root rotation adds a fourth keyholder (dave) and removes carol's root key.
pub(super) fn practice_plan(kind: Kind) -> (Vec<String>, BTreeMap<String, ParamJson>) {
    let mut people: Vec<String> = PRACTICE_KEYHOLDERS.iter().map(|s| s.to_string()).collect();
    let mut values = BTreeMap::new();
    if kind == Kind::RotateRootKeys {
        people.push("dave".into());
        values.insert("add_keyholders".into(), ParamJson::Text("dave".into()));
        values.insert("remove_keyholders".into(), ParamJson::Text("carol".into()));
    }
    (people, values)
}

/// The key-event log's name in practice workspaces.
pub const PRACTICE_LOG_ORIGIN: &str = "practice.conclave.invalid/key-events";

/// Environment variable marking the child process that runs with the workspace's SoftHSM2 config.
pub const REHEARSE_CHILD: &str = "CONCLAVE_REHEARSE_CHILD";

/// Environment variable marking the child process of `conclave token init-practice`.
pub const PRACTICE_CHILD: &str = "CONCLAVE_PRACTICE_CONF";

/// Environment variable giving the rehearsal child its parent's pid.
const REHEARSE_PARENT: &str = "CONCLAVE_REHEARSE_PARENT";

/// Whether this process is the child [`run_softhsm_child`] started for `conf`: `marker` and
/// `SOFTHSM2_CONF` both name it.
pub fn in_softhsm_child(marker: &str, conf: &Path) -> bool {
    std::env::var_os(marker).is_some_and(|v| Path::new(&v) == conf)
        && std::env::var_os("SOFTHSM2_CONF").is_some_and(|v| Path::new(&v) == conf)
}

/// How the child process [`run_softhsm_child`] started ended, from its exit status: the
/// command line's exit codes (0 ok, 1 refused, 2 usage or I/O) typed, or the signal that
/// killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It finished (exit 0).
    Finished,
    /// It stopped refusing its input (exit 1: a wrong PIN, a step the policy refuses, a failed
    /// verification); its own message is above on standard error.
    Refused,
    /// It stopped on a usage, I/O or device error (exit 2), or with another exit code (a
    /// panic's 101); its own message is above on standard error.
    Failed(i32),
    /// It was killed by this signal (no message of its own).
    Killed(i32),
}

impl ChildExit {
    /// The exit status, typed.
    pub fn of(status: std::process::ExitStatus) -> ChildExit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => ChildExit::Finished,
            (Some(1), _) => ChildExit::Refused,
            (Some(code), _) => ChildExit::Failed(code),
            (None, Some(signal)) => ChildExit::Killed(signal),
            // Neither an exit code nor a signal: not on Linux; said as a failure.
            (None, None) => ChildExit::Failed(-1),
        }
    }
}

/// "stopped (see above)", or "was killed by signal 9 (SIGKILL)".
impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Finished => f.write_str("finished"),
            ChildExit::Refused | ChildExit::Failed(_) => f.write_str("stopped (see above)"),
            ChildExit::Killed(n) => match signal_name(*n) {
                Some(name) => write!(f, "was killed by signal {n} ({name})"),
                None => write!(f, "was killed by signal {n}"),
            },
        }
    }
}

/// The name of a signal that may end a child (`SIGKILL`), if it is one of those.
fn signal_name(n: i32) -> Option<&'static str> {
    use rustix::process::Signal;
    [
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::SYS, "SIGSYS"),
    ]
    .into_iter()
    .find(|(s, _)| s.as_raw() == n)
    .map(|(_, name)| name)
}

/// Run this executable again with `args`, `SOFTHSM2_CONF` and `marker` set to `conf`, and wait
/// for it: SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised, and this process's
/// environment cannot be changed safely. With `tied`, the child gets this process's pid so
/// that [`die_with_parent`] can tie it to it. Returns how the child ended, typed.
pub fn run_softhsm_child<I, A>(
    args: I,
    conf: &Path,
    marker: &str,
    tied: bool,
) -> Result<ChildExit, DriverError>
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let exe = std::env::current_exe()
        .map_err(|e| DriverError::Io(format!("cannot find the conclave executable: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).env("SOFTHSM2_CONF", conf).env(marker, conf);
    if tied {
        cmd.env(REHEARSE_PARENT, std::process::id().to_string());
    }
    let status = cmd
        .status()
        .map_err(|e| DriverError::Io(format!("cannot run conclave again: {e}")))?;
    Ok(ChildExit::of(status))
}

/// The ceremony child must not outlive the `conclave rehearse` the user started (killed with
/// -9, it would go on to the seal and share the terminal with the next run): the kernel kills
/// it when its parent dies (`PR_SET_PDEATHSIG`), and a parent that died before that was set is
/// noticed here.
pub fn die_with_parent() -> Result<(), DriverError> {
    use rustix::process::{Signal, getppid, set_parent_process_death_signal};
    set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| DriverError::Io(format!("cannot tie the rehearsal to its parent: {e}")))?;
    let expected = std::env::var(REHEARSE_PARENT).ok();
    let parent = getppid().map(|p| p.as_raw_nonzero().get().to_string());
    if expected.is_some() && parent != expected {
        return Err(DriverError::Io(
            "the conclave rehearse that started this run has ended; run the same command again"
                .into(),
        ));
    }
    Ok(())
}

/// `n` random decimal digits (practice PINs), each digit uniform (bytes 250..255 are drawn
/// again, so no digit is more likely than another).
pub fn random_digits(n: usize) -> Zeroizing<String> {
    use rand_core::RngCore;
    let mut out = Zeroizing::new(String::with_capacity(n));
    while out.len() < n {
        let mut b = [0u8; 1];
        rand_core::OsRng.fill_bytes(&mut b);
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    out
}

/// A practice token made by [`init_practice_tokens`], with its PINs (shown once, for practice).
pub struct PracticeToken {
    /// The keyholder (the token's label).
    pub keyholder: String,
    /// The token as the module describes it.
    pub token: TokenDesc,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// The security officer PIN.
    pub so_pin: Zeroizing<String>,
    /// The key generated on it, if a key type was asked for.
    pub key: Option<GeneratedKey>,
}

/// Why practice tokens could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PracticeTokenError {
    /// A token with the keyholder's label is already in the store.
    #[error("a token labelled \"{label}\" already exists in {dir}")]
    Exists {
        /// The label.
        label: String,
        /// The practice folder.
        dir: String,
    },
    /// The token module failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A keyholder's name cannot be a token label.
    #[error(
        "keyholder name \"{}\" must be 1 to 32 printable characters (it becomes the token label)",
        show(.0)
    )]
    Name(String),
    /// No SoftHSM2 module was named or found.
    #[error(
        "SoftHSM2 (libsofthsm2.so) not found; install the Debian package softhsm2 or give --module"
    )]
    NoSoftHsm,
    /// The named module could not be chosen or loaded.
    #[error(transparent)]
    Module(Box<ModuleError>),
    /// The folder already holds a practice setup (its `softhsm2.conf`).
    #[error("{} already exists: {} holds a practice setup; choose another --dir", .conf.display(), .dir.display())]
    SetupExists {
        /// The SoftHSM2 configuration found.
        conf: PathBuf,
        /// The folder.
        dir: PathBuf,
    },
    /// The folder or its configuration could not be made.
    #[error("{0}")]
    Io(String),
    /// The child process that makes the tokens stopped (its own errors are above on standard
    /// error) or was killed (the signal named).
    #[error("practice setup in {} {exit}", .dir.display())]
    Child {
        /// The folder.
        dir: PathBuf,
        /// How the child ended (never [`ChildExit::Finished`]).
        exit: ChildExit,
    },
}

/// `conclave token init-practice`'s request: the folder, the keyholders (one token each,
/// labelled with the name), the key types (cycled; `None` makes no key) and the SoftHSM2
/// module when named (else SoftHSM2 in the usual places; the configuration, which names the
/// keyholders' module, is not read).
#[derive(Debug, Clone, Copy)]
pub struct PracticeRequest<'a> {
    /// The folder for the tokens and their `softhsm2.conf` (created; must not hold one).
    pub dir: &'a Path,
    /// The keyholders.
    pub keyholders: &'a [String],
    /// The key types.
    pub types: &'a [Option<Algorithm>],
    /// `--module`.
    pub module: Option<&'a Path>,
}

/// What [`init_practice`] did.
pub enum PracticeSetup {
    /// This process prepared the folder and a child under its `SOFTHSM2_CONF` made the tokens
    /// (and printed them): nothing more to show.
    MadeByChild,
    /// This process is that child: the tokens it made.
    Made {
        /// The folder (absolute).
        dir: PathBuf,
        /// Its SoftHSM2 configuration.
        conf: PathBuf,
        /// The SoftHSM2 module used.
        module: PathBuf,
        /// The tokens, with their PINs (shown once, for practice).
        tokens: Vec<PracticeToken>,
    },
}

/// The text of a practice `softhsm2.conf` (SoftHSM2 wants the token folder as an absolute
/// path); `made_by` says what made it, in its first line.
pub(super) fn softhsm_conf_text(made_by: &str, tokendir: &Path) -> String {
    format!(
        "# SoftHSM2 practice tokens {made_by}. Practice only.\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokendir.display()
    )
}

/// A keyholder name becomes a token label: 1 to 32 characters, none a control character.
fn check_keyholder_names(names: &[String]) -> Result<(), PracticeTokenError> {
    match names
        .iter()
        .find(|n| n.is_empty() || n.len() > 32 || n.chars().any(char::is_control))
    {
        Some(n) => Err(PracticeTokenError::Name(n.clone())),
        None => Ok(()),
    }
}

/// `conclave token init-practice`: SoftHSM2 practice tokens in a folder of their own. The
/// names are checked and the module chosen first; SoftHSM2 reads `SOFTHSM2_CONF` when the
/// module is initialised and this process's environment cannot be changed safely, so the
/// parent creates the folder, its `tokens/` and `softhsm2.conf` (refusing a folder that holds
/// one), and runs this executable again with `child_args` under it ([`run_softhsm_child`]);
/// that child makes the tokens ([`init_practice_tokens`]) and returns them.
pub fn init_practice<I, A>(
    req: &PracticeRequest<'_>,
    child_args: I,
) -> Result<PracticeSetup, PracticeTokenError>
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    check_keyholder_names(req.keyholders)?;
    let chosen =
        choose_module(Named::flag(req.module), None, None, ModuleUse::Rehearsal).map_err(|e| {
            match e.token_error() {
                Some(TokenError::NoModule { .. }) => PracticeTokenError::NoSoftHsm,
                _ => PracticeTokenError::Module(Box::new(e)),
            }
        })?;
    let io = |what: &str, p: &Path| {
        let what = format!("cannot {what} {}", p.display());
        move |e: std::io::Error| PracticeTokenError::Io(format!("{what}: {e}"))
    };
    std::fs::create_dir_all(req.dir).map_err(io("create", req.dir))?;
    let dir = req.dir.canonicalize().map_err(io("resolve", req.dir))?;
    let conf = dir.join("softhsm2.conf");
    if !in_softhsm_child(PRACTICE_CHILD, &conf) {
        if conf.exists() {
            return Err(PracticeTokenError::SetupExists { conf, dir });
        }
        let tokendir = dir.join("tokens");
        crate::folder::create_dir_all_mode(&tokendir, crate::folder::PRIVATE_DIR_MODE).map_err(
            |e| PracticeTokenError::Io(format!("cannot create {}: {e}", tokendir.display())),
        )?;
        let text = softhsm_conf_text("made by `conclave token init-practice`", &tokendir);
        crate::folder::write_private_file(&conf, text.as_bytes())
            .map_err(|e| PracticeTokenError::Io(format!("cannot write {}: {e}", conf.display())))?;
        let exit = run_softhsm_child(child_args, &conf, PRACTICE_CHILD, false)
            .map_err(|e| PracticeTokenError::Io(e.to_string()))?;
        return match exit {
            ChildExit::Finished => Ok(PracticeSetup::MadeByChild),
            exit => Err(PracticeTokenError::Child { dir, exit }),
        };
    }
    let module = chosen
        .open()
        .map_err(|e| PracticeTokenError::Module(Box::new(e)))?;
    let tokens = init_practice_tokens(&module, &dir, req.keyholders, req.types)?;
    Ok(PracticeSetup::Made {
        dir,
        conf,
        module: chosen.path,
        tokens,
    })
}

/// `conclave token init-practice`'s work, in a process whose `SOFTHSM2_CONF` names the practice
/// folder `dir`: one token per keyholder (label = name, random 6-digit user PIN and 8-digit SO
/// PIN), and on each a key of the type `types` gives it (cycled; `None` makes no key). Stops at
/// the first keyholder whose label is taken.
pub fn init_practice_tokens(
    module: &dyn TokenModule,
    dir: &Path,
    keyholders: &[String],
    types: &[Option<Algorithm>],
) -> Result<Vec<PracticeToken>, PracticeTokenError> {
    let mut made = Vec::new();
    for (i, name) in keyholders.iter().enumerate() {
        if module
            .tokens()?
            .iter()
            .any(|t| t.initialized && &t.label == name)
        {
            return Err(PracticeTokenError::Exists {
                label: name.clone(),
                dir: dir.display().to_string(),
            });
        }
        let so_pin = random_digits(8);
        let pin = random_digits(6);
        let token = module.init_token(name, &so_pin, &pin)?;
        let alg = types.get(i % types.len().max(1)).copied().flatten();
        let mut key = None;
        if let Some(alg) = alg {
            let session = module.open(&token, true)?;
            session.login(&pin)?;
            key = Some(session.generate(alg, name, None, EdParams::Auto)?);
        }
        made.push(PracticeToken {
            keyholder: name.clone(),
            token,
            pin,
            so_pin,
            key,
        });
    }
    Ok(made)
}

/// Practice tokens: create the missing ones and return each keyholder's PIN.
pub(super) fn practice_tokens(
    ws: &Workspace,
    module: &dyn TokenModule,
    people: &[String],
) -> Result<BTreeMap<String, Zeroizing<String>>, DriverError> {
    let mut pins: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(ws.practice_pins()) {
        let v = Value::parse(text.as_bytes()).map_err(io(ws.practice_pins().display()))?;
        if let Some(m) = v.as_object() {
            for (k, p) in m.iter() {
                if let Some(p) = p.as_str() {
                    pins.insert(k.clone(), Zeroizing::new(p.to_string()));
                }
            }
        }
    }
    let tokens = module.tokens().map_err(io("listing tokens"))?;
    for name in people.iter().map(String::as_str) {
        let exists = tokens.iter().any(|t| t.initialized && t.label == name);
        if exists && pins.contains_key(name) {
            continue;
        }
        if let Some(pin) = pins.get(name).filter(|_| token_folder(ws, name).is_none()) {
            // Its PIN was saved, then the run was cut before the token was made.
            let so_pin = random_digits(8);
            module
                .init_token(name, &so_pin, pin)
                .map_err(io(format!("creating the practice token of {name}")))?;
            continue;
        }
        if pins.contains_key(name) {
            return Err(DriverError::Io(format!(
                "the practice token of {name} in {} cannot be read any more (SoftHSM2 left it damaged after an interruption, and no saved copy repaired it); start a new workspace",
                ws.dir.join("tokens").display()
            )));
        }
        if exists {
            return Err(DriverError::Io(format!(
                "token \"{name}\" exists but its practice PIN is not in {}",
                ws.practice_pins().display()
            )));
        }
        let pin = random_digits(6);
        let so_pin = random_digits(8);
        pins.insert(name.to_string(), pin.clone());
        // Written before the token is made: an interruption never leaves a token nobody knows
        // the PIN of (a saved PIN without its token is made on the next run).
        let m: Map = pins
            .iter()
            .map(|(k, p)| (k.clone(), Value::String(p.to_string())))
            .collect();
        let text = Zeroizing::new(Value::Object(m).to_pretty_json());
        crate::folder::write_private_file(&ws.practice_pins(), text.as_bytes())
            .map_err(io(ws.practice_pins().display()))?;
        module
            .init_token(name, &so_pin, &pin)
            .map_err(io(format!("creating the practice token of {name}")))?;
    }
    Ok(pins)
}

/// Before the token module is loaded: remove what an interrupted earlier run left in the
/// practice token store: a practice token made before its PIN was saved, or made but cut before
/// its user PIN was set (nobody can log in to either), with its saved copy; the token is made
/// again by [`practice_tokens`]. Returns what was removed. (Temporary files are removed by the
/// workspace's sweep, [`super::workspace::sweep_leftovers`].)
pub(super) fn clean_practice_leftovers(
    ws: &Workspace,
    people: &[String],
) -> Result<Vec<String>, DriverError> {
    let mut removed = Vec::new();
    let saved_pins: Vec<String> = std::fs::read_to_string(ws.practice_pins())
        .ok()
        .and_then(|t| Value::parse(t.as_bytes()).ok())
        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default();
    for name in people {
        let Some(dir) = token_folder(ws, name) else {
            continue;
        };
        // Cut between C_InitToken and C_InitPIN: the token has no user PIN.
        let without_pin = std::fs::read(dir.join("token.object"))
            .is_ok_and(|b| well_formed_object(&b) && !has_user_pin(&b));
        let why = if without_pin {
            "was made but its PIN was never set (an interruption between C_InitToken and C_InitPIN)"
        } else if !saved_pins.contains(name) {
            "was made before its PIN was saved"
        } else {
            continue;
        };
        // Its saved copy first: it would otherwise bring the token back.
        if let Some(copy) = dir.file_name().map(|n| saved(ws).join(n))
            && copy.exists()
        {
            remove_dir(&copy)?;
        }
        remove_dir(&dir)?;
        removed.push(format!(
            "the practice token of {name} ({}) {why}; it was removed and made again",
            dir.display()
        ));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake_tokens::FakeTokens;
    use crate::driver::token_device::TokenModule;

    /// `conclave token init-practice`'s work on the token seam, driven by the test double
    /// (`driver::fake_tokens`, which makes tokens as SoftHSM2's `C_InitToken` + `C_InitPIN`
    /// do): one token per keyholder with its own PINs, a key where a type is given, and a label
    /// already taken is refused.
    #[test]
    fn practice_tokens_get_their_pins_and_keys_and_a_taken_label_is_refused() {
        let fakes = FakeTokens::new();
        let dir = Path::new("/practice");
        let people = vec!["alice".to_string(), "bob".to_string()];
        let made =
            init_practice_tokens(&fakes, dir, &people, &[Some(Algorithm::Ed25519), None]).unwrap();
        assert_eq!(made.len(), 2);
        let alice = &made[0];
        assert_eq!(alice.token.label, "alice");
        assert_eq!(alice.pin.len(), 6);
        assert_eq!(alice.so_pin.len(), 8);
        let key = alice.key.as_ref().expect("alice gets an Ed25519 key");
        assert_eq!(key.label, "alice");
        assert!(made[1].key.is_none(), "\"none\" makes no key for bob");
        // The user PIN logs in; the key is on the token.
        let session = fakes.open(&alice.token, false).unwrap();
        session.login(&alice.pin).unwrap();
        assert_eq!(session.find_key("alice").unwrap().id, key.id);
        let Err(e) = init_practice_tokens(&fakes, dir, &people[..1], &[None]) else {
            panic!("a second token labelled alice was made");
        };
        assert!(
            matches!(e, PracticeTokenError::Exists { ref label, .. } if label == "alice"),
            "{e}"
        );
    }

    /// A name that cannot be a token label is refused before any module is chosen or folder
    /// made (the folder here would be created otherwise).
    #[test]
    fn init_practice_refuses_a_name_that_cannot_be_a_label_before_touching_anything() {
        let dir = tempfile::tempdir().unwrap();
        let practice = dir.path().join("practice");
        for bad in ["", "a\u{1b}[2Jb", &"x".repeat(33)] {
            let names = vec!["alice".to_string(), bad.to_string()];
            let req = PracticeRequest {
                dir: &practice,
                keyholders: &names,
                types: &[None],
                module: Some(Path::new("/nonexistent/libsofthsm2.so")),
            };
            let Err(e) = init_practice(&req, ["unused"]) else {
                panic!("{bad:?} was taken as a token label");
            };
            assert!(
                matches!(e, PracticeTokenError::Name(ref n) if n == bad),
                "{e}"
            );
            assert!(
                e.to_string()
                    .contains("must be 1 to 32 printable characters"),
                "{e}"
            );
            assert!(!e.to_string().contains('\u{1b}'), "{e}");
        }
        assert!(!practice.exists());
        // 32 characters is a label.
        check_keyholder_names(&["y".repeat(32)]).unwrap();
    }

    /// A child's exit status is typed as the command line's exit codes mean it, and a signal
    /// is named: real processes, `sh -c "exit N"` and `sh -c "kill -9 $$"`.
    #[test]
    fn a_childs_exit_is_typed_and_a_signal_named() {
        let status = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .status()
                .expect("sh runs")
        };
        assert_eq!(ChildExit::of(status("exit 0")), ChildExit::Finished);
        assert_eq!(ChildExit::of(status("exit 1")), ChildExit::Refused);
        assert_eq!(ChildExit::of(status("exit 2")), ChildExit::Failed(2));
        assert_eq!(ChildExit::of(status("exit 101")), ChildExit::Failed(101));
        let killed = ChildExit::of(status("kill -9 $$"));
        assert_eq!(killed, ChildExit::Killed(9));
        assert_eq!(killed.to_string(), "was killed by signal 9 (SIGKILL)");
        assert_eq!(
            ChildExit::of(status("kill -TERM $$")).to_string(),
            "was killed by signal 15 (SIGTERM)"
        );
        assert_eq!(ChildExit::Refused.to_string(), "stopped (see above)");
        let e = PracticeTokenError::Child {
            dir: "/p".into(),
            exit: killed,
        };
        assert_eq!(
            e.to_string(),
            "practice setup in /p was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn practice_conf_names_its_absolute_token_folder_and_what_made_it() {
        let text = softhsm_conf_text("of a Conclave rehearsal", Path::new("/ws/tokens"));
        assert_eq!(
            text,
            "# SoftHSM2 practice tokens of a Conclave rehearsal. Practice only.\ndirectories.tokendir = /ws/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        );
    }
}
