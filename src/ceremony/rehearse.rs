//! The unattended practice run (`conclave rehearse --headless`): SoftHSM2 practice tokens for
//! three keyholders in the workspace, stand-in online keys, every step answered by the runner,
//! every event checked by the engine and appended to the transcript before it counts, the
//! results exported with read-back and `SHA256SUMS`, and the transcript sealed by the
//! keyholders' tokens. Killed at any point, the same command continues from the transcript.
//!
//! This is an edge: it owns the tokens, the files and the clock; every decision is the engine's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::engine::{Engine, Event, Need, ParamJson};
use super::script::{Kind, Person, Script};
use crate::signer::Signer;
use crate::signer::pkcs11::{
    EdParams, Module, TokenDesc, TokenSession, locate_module, parse_key_type,
};
use crate::signer::software::SoftwareSigner;
use crate::transcript::details::{BeginDetails, FileDigest};
use crate::transcript::file::TranscriptFile;
use crate::transcript::record::Timestamp;
use crate::transport::usb::{ExportFile, ExportOptions, StdFs, export_files};
use crate::tuf::canonical::{Map, Value};
use crate::tuf::key::{Algorithm, KeyId};

/// The keyholders of a rehearsal.
pub const PRACTICE_KEYHOLDERS: [&str; 3] = ["alice", "bob", "carol"];

/// Who takes part and how each step is answered: made by the rehearsal for practice tokens, or
/// read from an answers file for a run on real tokens (`conclave ceremony run`).
#[derive(Debug, Default)]
pub struct Plan {
    /// A practice run: a failed air-gap check is a recorded warning instead of a stop.
    pub practice: bool,
    /// The ceremony administrator.
    pub administrator: String,
    /// Keyholders in the order they act.
    pub keyholders: Vec<String>,
    /// Witnesses.
    pub witnesses: Vec<String>,
    /// Parameter values (others keep the script's defaults).
    pub values: BTreeMap<String, ParamJson>,
    /// Text recorded at acknowledgement steps that record text (e.g. the bag serial).
    pub acknowledgement: String,
    /// Keyholder to token label or serial (default: a token labelled with the keyholder's name).
    pub tokens: BTreeMap<String, String>,
    /// PINs by keyholder; a keyholder without one is asked on the terminal (no echo).
    pub pins: BTreeMap<String, Zeroizing<String>>,
    /// PKCS#11 module (default: the known modules in order).
    pub module: Option<PathBuf>,
    /// A folder on removable media that receives the export as well (headless runs).
    pub export_to: Option<PathBuf>,
    /// The key-event log's name when this ceremony starts a new log (no previous log in the
    /// workspace's export or on the input media); without it and without a previous log, no
    /// log is written. Practice runs use `practice.conclave.invalid/key-events`.
    pub log_origin: Option<String>,
}

/// Who takes part in a rehearsal of this kind, and the parameter values the practice uses: a
/// root rotation adds a fourth keyholder (dave) and removes carol's root key.
fn practice_plan(kind: Kind) -> (Vec<String>, BTreeMap<String, ParamJson>) {
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

/// Names of the scripts shipped in the binary, in the order a registry usually needs them.
pub const SHIPPED_SCRIPTS: [&str; 7] = [
    "bootstrap-root",
    "rotate-root-keys",
    "refresh-expiry",
    "rotate-online-keys",
    "rotate-targets-keys",
    "delegate-claimed-projects",
    "sign-intoto-layout",
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
        _ => return None,
    })
}

/// Why a rehearsal stopped.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// The workspace, a file or the token module failed.
    #[error("{0}")]
    Io(String),
    /// The engine refused an event (the ceremony cannot go on as it is).
    #[error("{0}")]
    Refused(String),
}

fn io<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> RehearseError {
    move |e| RehearseError::Io(format!("{what}: {e}"))
}

/// The workspace's files.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The folder.
    pub dir: PathBuf,
}

impl Workspace {
    /// SoftHSM2 configuration of the practice tokens.
    pub fn softhsm_conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }
    /// Practice PINs (practice tokens only; a real ceremony asks people for them).
    pub fn practice_pins(&self) -> PathBuf {
        self.dir.join("practice-tokens.json")
    }
    /// The input media stand-in.
    pub fn input(&self) -> PathBuf {
        self.dir.join("input")
    }
    /// The export media stand-in.
    pub fn export(&self) -> PathBuf {
        self.dir.join("export")
    }
    /// The transcript.
    pub fn transcript(&self, script: &str) -> PathBuf {
        self.dir.join(format!("{script}.transcript.jsonl"))
    }
}

/// Prepare the workspace folder and its SoftHSM2 configuration (in the parent process, before
/// the module is loaded with that configuration).
pub fn prepare(dir: &Path) -> Result<Workspace, RehearseError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(io(format!("cannot resolve {}", dir.display())))?;
    let ws = Workspace { dir };
    let tokens = ws.dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(io(format!("cannot create {}", tokens.display())))?;
    if !ws.softhsm_conf().exists() {
        let text = format!(
            "# SoftHSM2 practice tokens of a Conclave rehearsal. Practice only.\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        std::fs::write(ws.softhsm_conf(), text)
            .map_err(io(format!("cannot write {}", ws.softhsm_conf().display())))?;
    }
    Ok(ws)
}

fn now() -> Timestamp {
    // The clock is whole seconds in UTC; the conversion cannot fail for the current time.
    Timestamp::from_datetime(
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
    .unwrap_or_else(|| {
        Timestamp::from_datetime(OffsetDateTime::UNIX_EPOCH).expect("epoch is a valid timestamp")
    })
}

fn random_digits(n: usize) -> Zeroizing<String> {
    use rand_core::RngCore;
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut rng = rand_core::OsRng;
    while out.len() < n {
        let b = (rng.next_u32() % 10) as u8;
        out.push(char::from(b'0' + b));
    }
    out
}

/// Practice tokens: create the missing ones and return each keyholder's PIN.
fn practice_tokens(
    ws: &Workspace,
    module: &Module,
    people: &[String],
) -> Result<BTreeMap<String, Zeroizing<String>>, RehearseError> {
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
        if pins.contains_key(name) {
            return Err(RehearseError::Io(format!(
                "the practice token of {name} in {} cannot be read any more (SoftHSM2 left it damaged after an interruption, and no saved copy repaired it); start a new workspace",
                ws.dir.join("tokens").display()
            )));
        }
        if exists {
            return Err(RehearseError::Io(format!(
                "token \"{name}\" exists but its practice PIN is not in {}",
                ws.practice_pins().display()
            )));
        }
        let pin = random_digits(6);
        let so_pin = random_digits(8);
        module
            .init_token(name, &so_pin, &pin)
            .map_err(io(format!("creating the practice token of {name}")))?;
        pins.insert(name.to_string(), pin);
        // Written after each token so an interrupted setup can go on.
        let m: Map = pins
            .iter()
            .map(|(k, p)| (k.clone(), Value::String(p.to_string())))
            .collect();
        let text = Zeroizing::new(Value::Object(m).to_pretty_json());
        write_private(&ws.practice_pins(), text.as_bytes())?;
    }
    Ok(pins)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), RehearseError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(tmp.display()))?;
    f.write_all(data).map_err(io(tmp.display()))?;
    f.sync_all().map_err(io(tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display()))
}

/// Stand-in online keys (snapshot, timestamp) on the input media, made once per workspace.
fn online_keys(
    ws: &Workspace,
    file: &str,
    make_stand_ins: bool,
) -> Result<(BTreeMap<String, Value>, FileDigest), RehearseError> {
    let path = ws.input().join(file);
    if !path.exists() && !make_stand_ins {
        return Err(RehearseError::Refused(format!(
            "{}: the online public keys are not on the input media",
            path.display()
        )));
    }
    if !path.exists() {
        std::fs::create_dir_all(ws.input()).map_err(io(ws.input().display()))?;
        let mut m = Map::new();
        for role in ["snapshot", "timestamp"] {
            let s = SoftwareSigner::generate(Algorithm::Ed25519, &mut rand_core::OsRng)
                .ok_or_else(|| RehearseError::Io("cannot generate a stand-in online key".into()))?;
            m.insert(role.to_string(), s.key().to_value());
        }
        crate::folder::write_new_file(&path, Value::Object(m).to_pretty_json().as_bytes())
            .map_err(io(path.display()))?;
    }
    let bytes = std::fs::read(&path).map_err(io(path.display()))?;
    let v = Value::parse(&bytes).map_err(io(path.display()))?;
    let keys = v
        .as_object()
        .ok_or_else(|| {
            RehearseError::Io(format!("{}: expected an object of keys", path.display()))
        })?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((keys, FileDigest::of(&format!("input/{file}"), &bytes)))
}

fn login(
    module: &Module,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<TokenSession, RehearseError> {
    let wanted = plan.tokens.get(keyholder).map_or(keyholder, String::as_str);
    let token = module.find_token(wanted).map_err(|e| {
        RehearseError::Io(format!(
            "insert the token {wanted} of keyholder {keyholder}: {e}"
        ))
    })?;
    login_to(module, &token, keyholder, plan, typed)
}

/// The PIN of `token` for `keyholder` from the plan: `KEYHOLDER@LABEL` or `KEYHOLDER@SERIAL`
/// first (a keyholder with two tokens, e.g. replacing their own), then `KEYHOLDER`.
fn planned_pin<'a>(
    plan: &'a Plan,
    keyholder: &str,
    token: &TokenDesc,
) -> Option<&'a Zeroizing<String>> {
    plan.pins
        .get(&format!("{keyholder}@{}", token.label))
        .or_else(|| plan.pins.get(&format!("{keyholder}@{}", token.serial)))
        .or_else(|| plan.pins.get(keyholder))
}

/// Open a read-write session on `token` and log in with the typed PIN, the plan's, or one asked
/// on the terminal (naming the token and the keyholder).
fn login_to(
    module: &Module,
    token: &TokenDesc,
    keyholder: &str,
    plan: &Plan,
    typed: Option<&Zeroizing<String>>,
) -> Result<TokenSession, RehearseError> {
    let session = module
        .open_session(token, true)
        .map_err(io(format!("the token of {keyholder}")))?;
    session
        .check_not_locked()
        .map_err(io(format!("the token of {keyholder}")))?;
    let asked;
    let pin = match typed.or_else(|| planned_pin(plan, keyholder, token)) {
        Some(p) => p,
        None => {
            asked = Zeroizing::new(
                rpassword::prompt_password(format!(
                    "PIN for token {} of keyholder {keyholder}: ",
                    token.label
                ))
                .map_err(io("reading the PIN"))?,
            );
            &asked
        }
    };
    session
        .login(pin)
        .map_err(io(format!("login to the token of {keyholder}")))?;
    Ok(session)
}

/// SoftHSM2 rewrites its token files in place, so a `kill -9` at the wrong moment can leave a
/// practice token's file empty. The rehearsal keeps a copy of the token store once the tokens
/// and keys exist (`tokens.saved/`) and puts back any file that an interruption emptied. Practice
/// tokens only: a hardware token keeps its own state.
fn save_tokens(ws: &Workspace) -> Result<(), RehearseError> {
    let from = ws.dir.join("tokens");
    let to = ws.dir.join("tokens.saved");
    for dir in std::fs::read_dir(&from).map_err(io(from.display()))? {
        let dir = dir.map_err(io(from.display()))?.path();
        if !dir.is_dir() {
            continue;
        }
        let Some(name) = dir.file_name() else {
            continue;
        };
        let target = to.join(name);
        std::fs::create_dir_all(&target).map_err(io(target.display()))?;
        for f in std::fs::read_dir(&dir).map_err(io(dir.display()))? {
            let f = f.map_err(io(dir.display()))?.path();
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if f.is_file()
                && len > 0
                && let Some(fname) = f.file_name()
            {
                let bytes = std::fs::read(&f).map_err(io(f.display()))?;
                write_private(&target.join(fname), &bytes)?;
            }
        }
    }
    Ok(())
}

/// Put back token files that an interruption left empty; returns what was repaired.
fn repair_tokens(ws: &Workspace) -> Result<Vec<String>, RehearseError> {
    let live = ws.dir.join("tokens");
    let saved = ws.dir.join("tokens.saved");
    let mut repaired = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&saved) else {
        return Ok(repaired);
    };
    for dir in dirs {
        let dir = dir.map_err(io(saved.display()))?.path();
        let Some(name) = dir.file_name() else {
            continue;
        };
        for f in std::fs::read_dir(&dir).map_err(io(dir.display()))? {
            let f = f.map_err(io(dir.display()))?.path();
            let Some(fname) = f.file_name() else { continue };
            let target = live.join(name).join(fname);
            let damaged = target.metadata().map(|m| m.len() == 0).unwrap_or(true);
            if damaged {
                let bytes = std::fs::read(&f).map_err(io(f.display()))?;
                write_private(&target, &bytes)?;
                repaired.push(target.display().to_string());
            }
        }
    }
    Ok(repaired)
}

/// A transcript of `script_name` in the workspace that is not sealed yet.
fn unfinished(
    ws: &Workspace,
    script_name: &str,
    script: &Script,
    plan: &Plan,
) -> Result<Option<PathBuf>, RehearseError> {
    let prefix = format!("{script_name}-v");
    let Ok(rd) = std::fs::read_dir(&ws.dir) else {
        return Ok(None);
    };
    let mut candidates: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".transcript.jsonl"))
        })
        .map(|e| e.path())
        .collect();
    candidates.sort();
    for p in candidates {
        match finished(&p, script)? {
            None => return Ok(Some(p)),
            Some(done) if log_step_missing(ws, plan, &done.seal) => return Ok(Some(p)),
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Developers' key requests on the input media (`input/requests/*.json`); a practice run makes
/// two (projects `example-pkg` and `other-pkg`, one Ed25519 and one P-256 developer key) when
/// the folder does not exist.
fn key_requests(ws: &Workspace, make_stand_ins: bool) -> Result<Vec<Value>, RehearseError> {
    let dir = ws.input().join("requests");
    if !dir.exists() && !make_stand_ins {
        return Err(RehearseError::Refused(format!(
            "{}: no key requests on the input media",
            dir.display()
        )));
    }
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(io(dir.display()))?;
        for (project, alg) in [
            ("example-pkg", Algorithm::Ed25519),
            ("other-pkg", Algorithm::EcdsaP256),
        ] {
            let dev = SoftwareSigner::generate(alg, &mut rand_core::OsRng).ok_or_else(|| {
                RehearseError::Io("cannot generate a stand-in developer key".into())
            })?;
            let mut m = Map::new();
            m.insert("_type".into(), super::engine::KEY_REQUEST_TYPE.into());
            m.insert("project".into(), project.into());
            m.insert(
                "paths".into(),
                Value::Array(vec![Value::String(format!("{project}/*"))]),
            );
            m.insert("threshold".into(), 1u64.into());
            m.insert("keys".into(), Value::Array(vec![dev.key().to_value()]));
            let path = dir.join(format!("{project}.json"));
            crate::folder::write_new_file(&path, Value::Object(m).to_pretty_json().as_bytes())
                .map_err(io(path.display()))?;
        }
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let bytes = crate::folder::read_limited(p, 1024 * 1024).map_err(RehearseError::Io)?;
            Value::parse(&bytes).map_err(io(p.display()))
        })
        .collect()
}

/// A stand-in in-toto layout for practice: one step "build" by a software functionary key,
/// expiring in half a year.
fn practice_layout() -> Result<String, RehearseError> {
    let func = SoftwareSigner::generate(Algorithm::Ed25519, &mut rand_core::OsRng)
        .ok_or_else(|| RehearseError::Io("cannot generate a stand-in functionary key".into()))?;
    let key = func.key().clone();
    let id = key.key_id().0;
    let mut keyv = key.to_value();
    if let Value::Object(m) = &mut keyv {
        m.insert("keyid".into(), Value::String(id.clone()));
    }
    let expires = (OffsetDateTime::now_utc() + time::Duration::days(182))
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| RehearseError::Io(e.to_string()))?;
    let text = format!(
        r#"{{"signatures": [], "signed": {{"_type": "layout", "expires": "{expires}", "readme": "Practice layout made by conclave rehearse", "keys": {{"{id}": {keyv}}}, "steps": [{{"_type": "step", "name": "build", "threshold": 1, "expected_materials": [], "expected_products": [["ALLOW", "*"]], "pubkeys": ["{id}"], "expected_command": ["make"]}}], "inspect": []}}}}"#,
        keyv = String::from_utf8_lossy(&keyv.canonical_bytes())
    );
    Ok(text)
}

/// The newest `N.ROLE.json` in a folder.
fn latest(dir: &Path, role: &str) -> Option<(u64, PathBuf)> {
    let suffix = format!(".{role}.json");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let v = name.strip_suffix(&suffix)?.parse::<u64>().ok()?;
            Some((v, e.path()))
        })
        .max_by_key(|(v, _)| *v)
}

/// The current root and targets from the export of earlier ceremonies, the root chain verified
/// from the first root.
fn current_metadata(ws: &Workspace) -> Result<(Value, Value), RehearseError> {
    let export = ws.export();
    let first = export.join("1.root.json");
    let trusted = std::fs::read(&first).map_err(|e| {
        RehearseError::Refused(format!(
            "{}: {e}: run the bootstrap-root ceremony in this workspace first",
            first.display()
        ))
    })?;
    let src =
        crate::folder::FolderSource::new(&export, crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE)
            .map_err(io(export.display()))?;
    let report = crate::tuf::repository::verify_repository(
        "1.root.json",
        &trusted,
        &src,
        OffsetDateTime::now_utc(),
    );
    if let Some(e) = &report.error {
        return Err(RehearseError::Refused(format!(
            "the metadata in {} does not verify: {e}",
            export.display()
        )));
    }
    let read = |role: &str| -> Result<Value, RehearseError> {
        let (_, path) = latest(&export, role).ok_or_else(|| {
            RehearseError::Refused(format!("no {role} metadata in {}", export.display()))
        })?;
        let bytes = std::fs::read(&path).map_err(io(path.display()))?;
        Value::parse(&bytes).map_err(io(path.display()))
    };
    Ok((read("root")?, read("targets")?))
}

/// The present token that holds the key root (new or current) lists under `keyid`: the
/// keyholder's own token first, then any other present token (a keyholder replacing their own
/// token signs with the old one for the current root and the new one for the new root).
/// Public key objects are read without logging in.
fn token_holding(
    module: &Module,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    keyid: &KeyId,
) -> Result<Option<TokenDesc>, RehearseError> {
    find_token_with(module, who, plan, engine, |id| id == keyid)
}

/// The first present token (the keyholder's own first) holding a key that root (new or
/// current) lists under a key id `wanted` accepts. Public key objects are read without logging
/// in.
fn find_token_with(
    module: &Module,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    wanted_key: impl Fn(&KeyId) -> bool,
) -> Result<Option<TokenDesc>, RehearseError> {
    let wanted = plan.tokens.get(who).map_or(who, String::as_str);
    let mut tokens = module.tokens().map_err(io("listing the tokens"))?;
    tokens.retain(|t| t.initialized);
    tokens.sort_by_key(|t| !(t.label == wanted || t.serial == wanted));
    for t in tokens {
        let Ok(session) = module.open_session(&t, false) else {
            continue;
        };
        let Ok(keys) = session.keys() else { continue };
        let holds = keys.iter().any(|k| {
            k.tuf_key()
                .and_then(|key| key.public_key().ok())
                .and_then(|pk| engine.key_for_material(&pk.material()))
                .is_some_and(|id| wanted_key(&id))
        });
        if holds {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// The keyholder's token key that root (new or current) lists under `keyid`, logged in.
fn token_signer_for(
    module: &Module,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    keyid: &KeyId,
    pin: Option<&Zeroizing<String>>,
) -> Result<crate::signer::pkcs11::Pkcs11Signer, RehearseError> {
    let token = token_holding(module, who, plan, engine, keyid)?.ok_or_else(|| {
        RehearseError::Io(format!(
            "no token present holds key {} of {who}: insert it",
            keyid.short()
        ))
    })?;
    let session = login_to(module, &token, who, plan, pin)?;
    let tkey = session
        .keys()
        .map_err(io(format!("keys of {who}")))?
        .into_iter()
        .find(|k| {
            k.tuf_key()
                .and_then(|key| key.public_key().ok())
                .and_then(|pk| engine.key_for_material(&pk.material()))
                .is_some_and(|id| id == *keyid)
        })
        .ok_or_else(|| RehearseError::Io(format!("{token} does not hold key {keyid} of {who}")))?;
    session
        .signer(&tkey)
        .map_err(io(format!("the key of {who}")))
}

/// The keyholder's token key that may sign in this ceremony (found by key material: root lists
/// it with its owner), and the key id root lists it under.
/// The present token that holds one of `who`'s keys that may sign in this ceremony (or a root
/// key of the root in force): the keyholder's own token first, then any other (tokens need not
/// be labelled after their keyholder). Public key objects are read without logging in.
fn sealing_token(
    module: &Module,
    who: &str,
    plan: &Plan,
    engine: &Engine,
) -> Result<Option<TokenDesc>, RehearseError> {
    let mine = engine.keyholder_all_key_ids(who);
    find_token_with(module, who, plan, engine, |id| {
        mine.contains(id) && (!engine.roles_for_key(id).is_empty() || engine.is_root_key_after(id))
    })
}

fn ceremony_signer(
    module: &Module,
    who: &str,
    plan: &Plan,
    engine: &Engine,
    pin: Option<&Zeroizing<String>>,
) -> Result<(crate::signer::pkcs11::Pkcs11Signer, KeyId), RehearseError> {
    let session = match sealing_token(module, who, plan, engine)? {
        Some(token) => login_to(module, &token, who, plan, pin)?,
        // Keys without recorded owners: the keyholder's own token.
        None => login(module, who, plan, pin)?,
    };
    let usable: Vec<(crate::signer::pkcs11::TokenKey, KeyId)> = session
        .keys()
        .map_err(io(format!("keys of {who}")))?
        .into_iter()
        .filter_map(|k| {
            let material = k.tuf_key()?.public_key().ok()?.material();
            let id = engine.key_for_material(&material)?;
            (!engine.roles_for_key(&id).is_empty() || engine.is_root_key_after(&id))
                .then_some((k, id))
        })
        .collect();
    // A root key of the root in force after the ceremony first: it also signs the key-event
    // log's checkpoint.
    let found = usable
        .iter()
        .find(|(_, id)| engine.is_root_key_after(id))
        .or(usable.first())
        .cloned();
    let Some((tkey, id)) = found else {
        return Err(RehearseError::Io(format!(
            "the token of {who} holds no key that may sign in this ceremony"
        )));
    };
    let signer = session
        .signer(&tkey)
        .map_err(io(format!("the key of {who}")))?;
    Ok((signer, id))
}

fn key_label(script: &str) -> String {
    format!("conclave-{script}")
}

/// The key-event log a ceremony extended at its seal.
#[derive(Debug, Clone)]
pub struct KeyLog {
    /// The new log directory (`export/log-NNN`).
    pub dir: PathBuf,
    /// The log it extends, if any.
    pub previous: Option<PathBuf>,
    /// Keyholders whose tokens signed its checkpoint here.
    pub signed_by: Vec<String>,
}

/// What a finished rehearsal produced.
#[derive(Debug)]
pub struct RehearseReport {
    /// The key-event log extended at the seal, if one was written.
    pub key_log: Option<KeyLog>,
    /// The transcript.
    pub transcript: PathBuf,
    /// Exported files.
    pub exported: Vec<String>,
    /// Export folder.
    pub export_dir: PathBuf,
    /// Hash of the seal record (what witnesses write down).
    pub seal: String,
    /// Whether an earlier run's transcript was continued.
    pub resumed: bool,
    /// Whether the ceremony was already complete (sealed) and nothing was changed.
    pub already_complete: bool,
    /// Events replayed from an earlier, interrupted run.
    pub resumed_events: usize,
    /// Warnings the run acknowledged.
    pub warnings: Vec<String>,
    /// Practice token files restored after an interruption emptied them.
    pub repaired: Vec<String>,
    /// Each key generated.
    pub keys: Vec<KeyRow>,
    /// Role to the SHA-256 of the canonical bytes that were reviewed and signed.
    pub digests: BTreeMap<String, String>,
    /// The review: what changed, as people read it.
    pub review: Vec<String>,
    /// The keyholders who took part.
    pub keyholders: Vec<String>,
}

/// A key generated in a token: keyholder, token serial, key id, scheme.
pub type KeyRow = (String, String, String, String);

fn summary(engine: &Engine) -> (Vec<KeyRow>, BTreeMap<String, String>) {
    let keys = engine
        .generated_keys()
        .iter()
        .map(|(who, serial, k)| {
            let id = super::engine::owned_key(k, who).key_id().0;
            (who.clone(), serial.clone(), id, k.scheme.clone())
        })
        .collect();
    let digests = engine.proposal().map(|p| p.digests()).unwrap_or_default();
    (keys, digests)
}

/// Run (or continue) a headless rehearsal of `script_name` in the workspace. Must run in a
/// process whose `SOFTHSM2_CONF` is the workspace's configuration.
pub fn run(ws: &Workspace, script_name: &str, sys: &Path) -> Result<RehearseReport, RehearseError> {
    let text = shipped_script(script_name).ok_or_else(|| {
        RehearseError::Io(format!(
            "no shipped ceremony script named \"{script_name}\""
        ))
    })?;
    run_script(ws, script_name, text, sys, None)
}

/// Run (or continue) a ceremony on real tokens, answered by `plan` (`conclave ceremony run`):
/// the online keys and key requests must be on the input media (`WORKSPACE/input/`).
pub fn run_real(
    ws: &Workspace,
    script_name: &str,
    text: &str,
    sys: &Path,
    plan: Plan,
) -> Result<RehearseReport, RehearseError> {
    run_script(ws, script_name, text, sys, Some(plan))
}

/// The headless runner: every step answered from the plan, then the seal by every keyholder's
/// token.
fn run_script(
    ws: &Workspace,
    script_name: &str,
    text: &str,
    sys: &Path,
    real: Option<Plan>,
) -> Result<RehearseReport, RehearseError> {
    let mut session = match Session::open(ws, script_name, text, sys, real)? {
        Opened::Finished(report) => return Ok(*report),
        Opened::Running(s) => s,
    };
    loop {
        let need = session.need();
        if need == Need::Done {
            break;
        }
        let (actor, event) = session.answer(need, None)?;
        session.record(&actor, event)?;
    }
    let mut signers = Vec::new();
    for who in session.engine.keyholders().to_vec() {
        // Everyone present whose token holds a key of this ceremony seals.
        if let Ok(signer) = session.seal_signer(&who, None) {
            signers.push((who, signer));
        }
    }
    session.seal(signers)
}

/// Whether a ceremony could be opened or was finished already.
pub enum Opened {
    /// Sealed and signed earlier: only its report.
    Finished(Box<RehearseReport>),
    /// Open (new, or continued from its transcript).
    Running(Box<Session>),
}

/// An open ceremony: the engine, its transcript on disk and the token module. Every event goes
/// through [`Session::record`]: the engine decides first, only accepted events reach the
/// transcript. The headless runner and the terminal UI both drive a ceremony through this.
pub struct Session {
    /// The workspace.
    pub ws: Workspace,
    /// The script's name.
    pub script_name: String,
    /// The script.
    pub script: Script,
    /// The engine (state = fold over the recorded events).
    pub engine: Engine,
    /// The transcript's path.
    pub tpath: PathBuf,
    /// Who takes part and the answers given in advance.
    pub plan: Plan,
    /// Practice tokens of a rehearsal (made and kept by the workspace).
    pub practice_tokens: bool,
    /// Whether an earlier run's transcript was continued.
    pub resumed: bool,
    /// Events replayed from it.
    pub resumed_events: usize,
    /// Practice token files restored after an interruption.
    pub repaired: Vec<String>,
    /// Warnings acknowledged in this run.
    pub warnings: Vec<String>,
    /// `None` when the transcript is complete (sealed and signed by every signer).
    transcript: Option<TranscriptFile>,
    module: Module,
    online: BTreeMap<String, Value>,
    sys: PathBuf,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("script", &self.script_name)
            .field("transcript", &self.tpath)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Open the ceremony `script_name` in the workspace: practice tokens and a practice plan
    /// when `real` is `None`, else the keyholders' tokens and `real`. An unfinished transcript
    /// is continued (its events replayed through the engine).
    pub fn open(
        ws: &Workspace,
        script_name: &str,
        text: &str,
        sys: &Path,
        real: Option<Plan>,
    ) -> Result<Opened, RehearseError> {
        let script = Script::parse(&format!("{script_name}.toml"), text).map_err(|e| {
            RehearseError::Refused(
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let mut engine =
            Engine::new(script.clone()).map_err(|e| RehearseError::Refused(e.to_string()))?;
        let practice_tokens_used = real.is_none();
        let (module, plan, repaired) = match real {
            None => {
                let repaired = repair_tokens(ws)?;
                let module_path = locate_module(None).map_err(io("the SoftHSM2 module"))?;
                let module = Module::open(Some(&module_path)).map_err(io("the SoftHSM2 module"))?;
                let (people, values) = practice_plan(script.kind);
                let pins = practice_tokens(ws, &module, &people)?;
                save_tokens(ws)?;
                let plan = Plan {
                    practice: true,
                    administrator: "administrator".into(),
                    keyholders: people,
                    witnesses: vec!["witness".into()],
                    values,
                    acknowledgement: "PRACTICE".into(),
                    tokens: BTreeMap::new(),
                    pins,
                    module: None,
                    export_to: None,
                    log_origin: Some(PRACTICE_LOG_ORIGIN.into()),
                };
                (module, plan, repaired)
            }
            Some(plan) => {
                let path =
                    locate_module(plan.module.as_deref()).map_err(io("the PKCS#11 module"))?;
                let module = Module::open(Some(&path)).map_err(io("the PKCS#11 module"))?;
                (module, plan, Vec::new())
            }
        };
        // The online keys on the input media: the registry's current ones at a bootstrap, new
        // ones (one set per root version they are meant for) at an online key rotation.
        let keys_file = if script.kind == Kind::RotateOnlineKeys {
            let next = latest(&ws.export(), "root").map_or(1, |(v, _)| v + 1);
            format!("online-keys-for-root-v{next}.json")
        } else {
            "online-keys.json".to_string()
        };
        let (online, online_digest) = online_keys(ws, &keys_file, practice_tokens_used)?;

        let tpath = if script.kind == Kind::BootstrapRoot {
            ws.transcript(script_name)
        } else {
            // One transcript per ceremony: an unfinished one is continued (whatever it already
            // exported), otherwise a new one is named after the root version it will produce.
            match unfinished(ws, script_name, &script, &plan)? {
                Some(p) => p,
                None => {
                    // Named after the version the ceremony produces: targets for a ceremony
                    // that changes only targets, root otherwise.
                    let role = if matches!(
                        script.kind,
                        Kind::DelegateClaimedProjects | Kind::SignIntotoLayout
                    ) {
                        "targets"
                    } else {
                        "root"
                    };
                    let next = latest(&ws.export(), role).map_or(1, |(v, _)| v + 1);
                    ws.dir
                        .join(format!("{script_name}-v{next}.transcript.jsonl"))
                }
            }
        };
        // A sealed ceremony whose key-event log step was cut short: the transcript is complete
        // (nothing more is appended), only the log is written.
        let mut complete = false;
        if let Some(done) = finished(&tpath, &script)? {
            if !log_step_missing(ws, &plan, &done.seal) {
                export_transcript(ws, plan.export_to.as_deref(), &tpath)?;
                return Ok(Opened::Finished(Box::new(done)));
            }
            complete = true;
        }
        let mut resumed_events = 0;
        let resumed = tpath.exists();
        let transcript = if resumed {
            let (file, records) = if complete {
                let bytes = std::fs::read(&tpath).map_err(io(tpath.display()))?;
                let t = crate::transcript::chain::verify_chain(&bytes)
                    .map_err(|e| RehearseError::Refused(format!("{}: {e}", tpath.display())))?;
                (None, t.records().to_vec())
            } else {
                let (file, resumed) = TranscriptFile::open_resume(&tpath, now())
                    .map_err(io("resuming the transcript"))?;
                (Some(file), resumed.transcript.records().to_vec())
            };
            let mut events = Vec::new();
            for r in &records {
                if matches!(
                    r.action.as_str(),
                    "begin" | "resume" | "seal" | "seal-signature"
                ) {
                    continue;
                }
                events.push(Event::from_value(&r.details).map_err(|e| {
                    RehearseError::Refused(format!("{}: record {}: {e}", tpath.display(), r.seq))
                })?);
            }
            resumed_events = events.len();
            engine = Engine::replay(script.clone(), &events).map_err(|(i, e)| {
                RehearseError::Refused(format!(
                    "{}: event {i} does not replay: {e}",
                    tpath.display()
                ))
            })?;
            file
        } else {
            let mut file = TranscriptFile::create(&tpath).map_err(io("creating the transcript"))?;
            let begin = BeginDetails::new(script_name, text.as_bytes(), true, vec![online_digest]);
            file.append("conclave", None, "begin", begin.to_value(), now())
                .map_err(io("writing the transcript"))?;
            Some(file)
        };
        Ok(Opened::Running(Box::new(Session {
            ws: ws.clone(),
            script_name: script_name.to_string(),
            script,
            engine,
            tpath,
            plan,
            practice_tokens: practice_tokens_used,
            resumed,
            resumed_events,
            repaired,
            warnings: Vec::new(),
            transcript,
            module,
            online,
            sys: sys.to_path_buf(),
        })))
    }

    /// What the current step waits for.
    pub fn need(&self) -> Need {
        self.engine.need()
    }

    /// The transcript file, open for appending (not for a complete transcript).
    fn file(&mut self) -> Result<&mut TranscriptFile, RehearseError> {
        self.transcript.as_mut().ok_or_else(|| {
            RehearseError::Refused(format!(
                "{}: the transcript is sealed and signed; nothing more is recorded",
                self.tpath.display()
            ))
        })
    }

    /// The transcript's actor of the current step (administrator, keyholder, witness).
    pub fn step_actor(&self) -> String {
        let step = self.engine.current_step().unwrap_or("end");
        match self
            .script
            .steps
            .iter()
            .find(|s| s.id == step)
            .map(|s| s.actor)
            .unwrap_or(Person::Administrator)
        {
            Person::Administrator => "administrator".to_string(),
            Person::Keyholder => "keyholder".to_string(),
            Person::Witness => "witness".to_string(),
        }
    }

    /// The current step's id ("end" after the last).
    pub fn step(&self) -> String {
        self.engine.current_step().unwrap_or("end").to_string()
    }

    /// The PKCS#11 module in use.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Record an event: the engine decides first; only an accepted event is appended to the
    /// transcript (fsynced) and counts. Policy warnings it raises are acknowledged by the
    /// administrator as events of their own, and returned.
    pub fn record(&mut self, actor: &str, event: Event) -> Result<Vec<String>, RehearseError> {
        let mut trial = self.engine.clone();
        let new_warnings = trial
            .apply(&event)
            .map_err(|e| RehearseError::Refused(e.to_string()))?;
        self.file()?
            .append(
                actor,
                trial_step(&event),
                event.action(),
                event.to_value(),
                now(),
            )
            .map_err(io("writing the transcript"))?;
        self.engine = trial;
        if self.practice_tokens && matches!(event, Event::KeyGenerated { .. }) {
            save_tokens(&self.ws)?;
        }
        for w in &new_warnings {
            let ack = Event::WarningAcknowledged {
                step: self.step(),
                warning: w.clone(),
            };
            self.engine
                .apply(&ack)
                .map_err(|e| RehearseError::Refused(e.to_string()))?;
            self.file()?
                .append(
                    "administrator",
                    trial_step(&ack),
                    ack.action(),
                    ack.to_value(),
                    now(),
                )
                .map_err(io("writing the transcript"))?;
            self.warnings.push(w.clone());
        }
        Ok(new_warnings)
    }

    /// The air-gap self-check of this machine, as the event that records it.
    pub fn airgap_event(&self) -> Event {
        let r = crate::system::airgap_check(&self.sys);
        Event::AirgapChecked {
            step: self.step(),
            interfaces: r.interfaces,
            radios: r.radios,
        }
    }

    /// The clock confirmation event for the current time.
    pub fn clock_event(&self) -> Event {
        Event::ClockConfirmed {
            step: self.step(),
            time: now().to_string(),
        }
    }

    /// Load the current metadata (root chain verified from the first root) from the media.
    pub fn load_metadata_event(&self) -> Result<Event, RehearseError> {
        let (root, targets) = current_metadata(&self.ws)?;
        Ok(Event::MetadataLoaded {
            step: self.step(),
            root,
            targets,
            not_before: previous_transcript_time(&[self.ws.export(), self.ws.input()]),
        })
    }

    /// Import developers' key requests from the input media.
    pub fn import_requests_event(&self) -> Result<Event, RehearseError> {
        Ok(Event::RequestsImported {
            step: self.step(),
            requests: key_requests(&self.ws, self.practice_tokens)?,
        })
    }

    /// Import the in-toto layout `file` from the input media (`input/FILE`); a practice run
    /// makes a stand-in layout (one step, one software functionary key) when there is none.
    pub fn import_layout_event(&self, file: &str) -> Result<Event, RehearseError> {
        let path = self.ws.input().join(file);
        if !path.exists() && self.practice_tokens {
            std::fs::create_dir_all(self.ws.input()).map_err(io(self.ws.input().display()))?;
            crate::folder::write_new_file(&path, practice_layout()?.as_bytes())
                .map_err(io(path.display()))?;
        }
        let bytes = crate::folder::read_limited(&path, 4 * 1024 * 1024).map_err(|e| {
            RehearseError::Refused(format!("the in-toto layout on the input media: {e}"))
        })?;
        let file = String::from_utf8(bytes)
            .map_err(|_| RehearseError::Refused(format!("{}: not UTF-8 JSON", path.display())))?;
        Ok(Event::LayoutImported {
            step: self.step(),
            file,
        })
    }

    /// Import the online public keys from the input media.
    pub fn import_keys_event(&self) -> Event {
        Event::KeysImported {
            step: self.step(),
            keys: self.online.clone(),
        }
    }

    /// The proposal event (digests of what is to be signed).
    pub fn propose_event(&self) -> Result<Event, RehearseError> {
        Ok(Event::Proposed {
            step: self.step(),
            digests: self
                .engine
                .proposal()
                .map_err(|e| RehearseError::Refused(e.to_string()))?
                .digests(),
        })
    }

    /// The token a keyholder is expected to use (label or serial), as the plan names it.
    pub fn expected_token(&self, keyholder: &str) -> String {
        self.plan
            .tokens
            .get(keyholder)
            .cloned()
            .unwrap_or_else(|| keyholder.to_string())
    }

    /// Generate the keyholder's key in their token (or take the key a power cut left in it).
    /// `pin`: the PIN typed for this operation, else the plan's or asked on the terminal.
    pub fn generate_key_event(
        &self,
        keyholder: &str,
        key_type: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<Event, RehearseError> {
        let alg = parse_key_type(key_type)
            .ok_or_else(|| RehearseError::Refused(format!("unknown key type {key_type}")))?;
        let session = login(&self.module, keyholder, &self.plan, pin)?;
        let label = key_label(&self.script_name);
        // A key made before a power cut (not yet in the transcript) is taken as it is.
        let existing = session
            .keys()
            .map_err(io(format!("keys of {keyholder}")))?
            .into_iter()
            .find(|k| k.label == label)
            .and_then(|k| k.tuf_key());
        let key = match existing {
            Some(k) => k,
            None => {
                session
                    .generate(alg, &label, None, EdParams::Auto)
                    .map_err(io(format!("generating the key of {keyholder}")))?
                    .key
            }
        };
        Ok(Event::KeyGenerated {
            step: self.step(),
            keyholder: keyholder.to_string(),
            token_serial: session.token().serial.clone(),
            key: key.to_value(),
        })
    }

    /// The next key `who` has to sign with and the present token that holds it (`None`: not
    /// present), for the UI to check the token before asking for its PIN.
    pub fn next_signing_token(
        &self,
        who: &str,
    ) -> Result<Option<(KeyId, Option<TokenDesc>)>, RehearseError> {
        let Some((keyid, _)) = self.engine.roles_left(who).into_iter().next() else {
            return Ok(None);
        };
        let token = token_holding(&self.module, who, &self.plan, &self.engine, &keyid)?;
        Ok(Some((keyid, token)))
    }

    /// One signature by `who`'s token over the next role they have left to sign.
    pub fn sign_event(
        &self,
        who: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<Event, RehearseError> {
        let p = self
            .engine
            .proposal()
            .map_err(|e| RehearseError::Refused(e.to_string()))?;
        let Some((keyid, role)) = self.engine.roles_left(who).into_iter().next() else {
            return Err(RehearseError::Refused(format!(
                "{who} is asked to sign but has nothing left to sign"
            )));
        };
        let mut signer =
            token_signer_for(&self.module, who, &self.plan, &self.engine, &keyid, pin)?;
        let bytes = match (role, &p.root, &p.targets) {
            ("layout", _, _) => match &p.layout {
                Some(l) => l.signed_message(),
                None => {
                    return Err(RehearseError::Refused(
                        "no layout is part of this proposal".into(),
                    ));
                }
            },
            ("root", Some(r), _) => r.signed_bytes().to_vec(),
            ("targets", _, Some(t)) => t.signed_bytes().to_vec(),
            _ => {
                return Err(RehearseError::Refused(format!(
                    "{role} is not part of this proposal"
                )));
            }
        };
        let sig = signer
            .sign(&bytes)
            .map_err(io(format!("signing {role} with the token of {who}")))?;
        Ok(Event::Signed {
            step: self.step(),
            keyholder: who.to_string(),
            role: role.into(),
            keyid: keyid.0,
            sig: hex::encode(sig),
        })
    }

    /// Write the files to the export media (atomic, read back, `SHA256SUMS`): the workspace's
    /// `export/` folder (later ceremonies continue from it) and, when `medium` is given, also
    /// that folder on removable media. Returns the event and what was written where.
    pub fn export_event(
        &self,
        files: &[(String, Vec<u8>)],
        medium: Option<&Path>,
    ) -> Result<(Event, Vec<crate::transport::usb::ExportReport>), RehearseError> {
        let list: Vec<ExportFile> = files
            .iter()
            .map(|(name, data)| ExportFile {
                name: name.clone(),
                data: data.clone(),
            })
            .collect();
        let places = export_places(&self.ws, medium);
        let mut reports = Vec::new();
        for dir in &places {
            std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
            reports.push(
                export_files(&StdFs, dir, &list, ExportOptions::default())
                    .map_err(io(format!("export to {}", dir.display())))?,
            );
        }
        use sha2::Digest;
        Ok((
            Event::Exported {
                step: self.step(),
                files: files
                    .iter()
                    .map(|(n, b)| (n.clone(), hex::encode(sha2::Sha256::digest(b))))
                    .collect(),
                destination: places
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
            },
            reports,
        ))
    }

    /// The headless answer to `need`, with the actor to record: plan values, the machine's own
    /// checks, the tokens (PIN: `pin`, else the plan's, else asked on the terminal).
    pub fn answer(
        &self,
        need: Need,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<(String, Event), RehearseError> {
        let step = self.step();
        let mut actor = self.step_actor();
        let event = match need {
            Need::Done => {
                return Err(RehearseError::Refused(
                    "the ceremony has no step left".into(),
                ));
            }
            Need::Parameters => Event::Parameters {
                values: self.plan.values.clone(),
                practice: self.plan.practice,
            },
            Need::Acknowledge { .. } => Event::Acknowledged {
                step,
                value: Some(self.plan.acknowledgement.clone()),
            },
            Need::AirgapCheck => self.airgap_event(),
            Need::ClockConfirm => self.clock_event(),
            Need::RollCall { .. } => Event::RollCall {
                step,
                administrator: self.plan.administrator.clone(),
                keyholders: self.plan.keyholders.clone(),
                witnesses: self.plan.witnesses.clone(),
            },
            Need::LoadMetadata => self.load_metadata_event()?,
            Need::ImportRequests => self.import_requests_event()?,
            Need::ImportLayout { file } => self.import_layout_event(&file)?,
            Need::ImportKeys { .. } => self.import_keys_event(),
            Need::GenerateKey {
                keyholder,
                key_type,
            } => {
                actor = keyholder.clone();
                self.generate_key_event(&keyholder, &key_type, pin)?
            }
            Need::Propose => self.propose_event()?,
            Need::Review { digests } => Event::Approved { step, digests },
            Need::Sign { pending, .. } => match pending.first() {
                None => Event::SigningClosed { step },
                Some(who) => {
                    actor = who.clone();
                    self.sign_event(who, pin)?
                }
            },
            Need::Verify => Event::Verified { step },
            Need::Export { files } => self.export_event(&files, self.plan.export_to.as_deref())?.0,
            Need::Seal => Event::Sealed { step },
        };
        Ok((actor, event))
    }

    /// Keyholders who seal: everyone in the roll call whose key takes part in this ceremony.
    pub fn sealers(&self) -> Vec<String> {
        self.engine
            .keyholders()
            .iter()
            .filter(|k| !self.engine.keyholder_key_ids(k).is_empty())
            .cloned()
            .collect()
    }

    /// The present token with which `who` signs the seal, if one is found by its keys.
    pub fn sealing_token(&self, who: &str) -> Option<TokenDesc> {
        sealing_token(&self.module, who, &self.plan, &self.engine)
            .ok()
            .flatten()
    }

    /// Assign a token (label or serial) to a keyholder for this ceremony: their keys are
    /// generated in it (the administrator confirms the token the keyholder brought).
    pub fn assign_token(&mut self, who: &str, token: &str) {
        self.plan.tokens.insert(who.to_string(), token.to_string());
    }

    /// The token key with which `who` signs the seal (PIN: `pin`, else the plan's or asked).
    pub fn seal_signer(
        &self,
        who: &str,
        pin: Option<&Zeroizing<String>>,
    ) -> Result<crate::signer::pkcs11::Pkcs11Signer, RehearseError> {
        ceremony_signer(&self.module, who, &self.plan, &self.engine, pin).map(|(s, _)| s)
    }

    /// The key-event log after the seal: the ceremony's key events appended to the workspace's
    /// latest log (`export/log-NNN`), or to the log on the input media (`input/log`), or a new
    /// log when the plan names one; its checkpoint signed by every signer whose key is a root
    /// key of the root now in force. Continues a log step an interruption cut short.
    fn key_event_log(
        &self,
        seal_hex: &str,
        signers: &mut [(String, crate::signer::pkcs11::Pkcs11Signer)],
    ) -> Result<Option<KeyLog>, RehearseError> {
        let export = self.ws.export();
        let mut ours: Vec<(u32, PathBuf)> = std::fs::read_dir(&export)
            .map_err(io(export.display()))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = name.strip_prefix("log-")?.parse::<u32>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        ours.sort();
        let contains_seal = |dir: &Path| {
            std::fs::read_to_string(dir.join("entries.jsonl"))
                .is_ok_and(|t| t.contains(&format!("\"seal\":\"{seal_hex}\"")))
        };
        let newest_log = ours.last().cloned();
        let (dir, previous) = match &newest_log {
            Some((_, d)) if contains_seal(d) => {
                let prev = ours
                    .iter()
                    .rev()
                    .nth(1)
                    .map(|(_, p)| p.clone())
                    .or_else(|| Some(self.ws.input().join("log")).filter(|p| p.is_dir()));
                (d.clone(), prev)
            }
            _ => {
                let input_log = self.ws.input().join("log");
                let previous = newest_log
                    .as_ref()
                    .map(|(_, p)| p.clone())
                    .or_else(|| input_log.is_dir().then_some(input_log));
                if previous.is_none() && self.plan.log_origin.is_none() {
                    return Ok(None);
                }
                let n = newest_log.as_ref().map_or(1, |(n, _)| n + 1);
                let dir = export.join(format!("log-{n:03}"));
                let (_, root) = latest(&export, "root").ok_or_else(|| {
                    RehearseError::Io(format!("no root metadata in {}", export.display()))
                })?;
                let targets = latest(&export, "targets").map(|(_, p)| p);
                let args = crate::cli::log::AppendArgs {
                    log: dir.clone(),
                    previous_log: previous.clone(),
                    origin: if previous.is_some() {
                        None
                    } else {
                        self.plan.log_origin.clone()
                    },
                    transcript: self.tpath.clone(),
                    root,
                    targets,
                    previous_root: None,
                    previous_targets: None,
                    json: false,
                };
                crate::cli::log::append(&args)
                    .map_err(|e| RehearseError::Refused(format!("the key-event log: {e}")))?;
                (dir, previous)
            }
        };
        let mut signed_by = Vec::new();
        for (who, s) in signers.iter_mut() {
            if crate::cli::log::sign_checkpoint_with(&dir, s)
                .map_err(|e| RehearseError::Refused(format!("the key-event log: {e}")))?
            {
                signed_by.push(who.clone());
            }
        }
        Ok(Some(KeyLog {
            dir,
            previous,
            signed_by,
        }))
    }

    /// Seal the transcript (artifacts with their hashes) and sign the seal with each signer;
    /// continues a seal an interruption left half signed.
    pub fn seal(
        mut self,
        mut signers: Vec<(String, crate::signer::pkcs11::Pkcs11Signer)>,
    ) -> Result<RehearseReport, RehearseError> {
        let mut artifacts = Vec::new();
        let mut exported = Vec::new();
        for (name, data) in self.engine.export_files() {
            artifacts.push(FileDigest::of(&name, &data));
            exported.push(name);
        }
        if signers.is_empty() {
            return Err(RehearseError::Io(
                "no keyholder's token can seal the transcript".into(),
            ));
        }
        let (seal_hash, already_signed) = match transcript_seal_state(&self.tpath)? {
            Some(state) => state,
            None => {
                let ids: Vec<KeyId> = signers.iter().map(|(_, s)| s.key_id()).collect();
                let seal = self
                    .file()?
                    .append_seal("administrator", None, artifacts, ids, now())
                    .map_err(io("sealing the transcript"))?;
                (hex::encode(seal.hash), Vec::new())
            }
        };
        for (who, s) in signers.iter_mut() {
            if already_signed.contains(&s.key_id().0) {
                continue;
            }
            self.file()?
                .append_seal_signature(who, s, now())
                .map_err(io(format!("{who}'s seal signature")))?;
        }
        let key_log = self.key_event_log(&seal_hash, &mut signers)?;
        export_transcript(&self.ws, self.plan.export_to.as_deref(), &self.tpath)?;
        let (keys, digests) = summary(&self.engine);
        Ok(RehearseReport {
            key_log,
            review: self.engine.review_lines(),
            keyholders: self.engine.keyholders().to_vec(),
            keys,
            digests,
            transcript: self.tpath,
            exported,
            export_dir: self.ws.export(),
            seal: seal_hash,
            repaired: self.repaired,
            resumed: self.resumed,
            already_complete: false,
            resumed_events: self.resumed_events,
            warnings: self.warnings,
        })
    }
}

/// The latest record time of the sealed transcripts (`*.transcript.jsonl` whose chain verifies)
/// in these folders: the previous ceremonies' record proves the time was at least that.
fn previous_transcript_time(dirs: &[PathBuf]) -> Option<String> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".transcript.jsonl")
        })
        .filter_map(|e| {
            let bytes = crate::folder::read_limited(
                &e.path(),
                crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE,
            )
            .ok()?;
            let t = crate::transcript::chain::verify_chain(&bytes).ok()?;
            t.seal_index()?;
            t.records().last().map(|r| r.time)
        })
        .max()
        .map(|t| t.to_string())
}

/// Where the export goes: the workspace's `export/` folder and, when given and different, the
/// folder on removable media.
fn export_places(ws: &Workspace, medium: Option<&Path>) -> Vec<PathBuf> {
    let export = ws.export();
    let mut places = vec![export.clone()];
    if let Some(m) = medium
        && m != export
    {
        places.push(m.to_path_buf());
    }
    places
}

/// After the seal: the sealed transcript travels with the export. It is written into every
/// export place by the export's own writer, which writes the folder's manifest (`SHA256SUMS`)
/// again, after the seal, now listing the transcript too. Idempotent: a copy with the same bytes
/// is left as it is (a ceremony continued after this step writes nothing new).
fn export_transcript(
    ws: &Workspace,
    medium: Option<&Path>,
    tpath: &Path,
) -> Result<(), RehearseError> {
    let name = tpath
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| RehearseError::Io(format!("{}: no file name", tpath.display())))?;
    let data = std::fs::read(tpath).map_err(io(tpath.display()))?;
    let file = [ExportFile {
        name: name.to_string(),
        data,
    }];
    for dir in export_places(ws, medium) {
        std::fs::create_dir_all(&dir).map_err(io(dir.display()))?;
        export_files(&StdFs, &dir, &file, ExportOptions::default())
            .map_err(io(format!("the sealed transcript to {}", dir.display())))?;
    }
    Ok(())
}

/// Whether a sealed ceremony still lacks its key-event log step (interrupted after the seal
/// signatures): a log is expected when the plan names one, the input media brings one, or the
/// workspace has one; it is missing when no `export/log-NNN` holds the seal.
fn log_step_missing(ws: &Workspace, plan: &Plan, seal_hex: &str) -> bool {
    let export = ws.export();
    let logs: Vec<PathBuf> = std::fs::read_dir(&export)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("log-"))
                })
                .collect()
        })
        .unwrap_or_default();
    let expected = plan.log_origin.is_some() || ws.input().join("log").is_dir() || !logs.is_empty();
    expected
        && !logs.iter().any(|d| {
            std::fs::read_to_string(d.join("entries.jsonl"))
                .is_ok_and(|t| t.contains(&format!("\"seal\":\"{seal_hex}\"")))
        })
}

/// A ceremony whose transcript is sealed and signed by every signer is finished: running the
/// same command again only reports it.
fn finished(tpath: &Path, script: &Script) -> Result<Option<RehearseReport>, RehearseError> {
    if !tpath.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(tpath).map_err(io(tpath.display()))?;
    let Ok(t) = crate::transcript::chain::verify_chain(&bytes) else {
        // A torn or damaged transcript: open_resume decides what can be repaired.
        return Ok(None);
    };
    let Some(seal_at) = t.seal_index() else {
        return Ok(None);
    };
    if crate::transcript::seal::verify_seal(&t).is_err() {
        return Ok(None);
    }
    let events: Vec<Event> = t
        .records()
        .iter()
        .filter(|r| {
            !matches!(
                r.action.as_str(),
                "begin" | "resume" | "seal" | "seal-signature"
            )
        })
        .filter_map(|r| Event::from_value(&r.details).ok())
        .collect();
    let engine = Engine::replay(script.clone(), &events).map_err(|(i, e)| {
        RehearseError::Refused(format!(
            "{}: event {i} does not replay: {e}",
            tpath.display()
        ))
    })?;
    let seal = t
        .records()
        .get(seal_at)
        .map(|r| hex::encode(r.hash))
        .unwrap_or_default();
    let (keys, digests) = summary(&engine);
    Ok(Some(RehearseReport {
        key_log: None,
        review: engine.review_lines(),
        keyholders: engine.keyholders().to_vec(),
        keys,
        digests,
        transcript: tpath.to_path_buf(),
        exported: engine.export_files().into_iter().map(|(n, _)| n).collect(),
        export_dir: tpath
            .parent()
            .map_or_else(PathBuf::new, |p| p.join("export")),
        seal,
        repaired: Vec::new(),
        resumed: true,
        already_complete: true,
        resumed_events: events.len(),
        warnings: Vec::new(),
    }))
}

fn trial_step(ev: &Event) -> Option<&str> {
    ev.step_id()
}

/// If the transcript is sealed already (a run interrupted while sealing): the seal hash and
/// the key ids that have signed it.
fn transcript_seal_state(path: &Path) -> Result<Option<(String, Vec<String>)>, RehearseError> {
    let bytes = std::fs::read(path).map_err(io(path.display()))?;
    let t = crate::transcript::chain::verify_chain(&bytes)
        .map_err(|e| RehearseError::Refused(format!("{}: {e}", path.display())))?;
    let Some(seal) = t.seal_index().and_then(|i| t.records().get(i)) else {
        return Ok(None);
    };
    let signed = t
        .records()
        .iter()
        .filter(|r| r.action == "seal-signature")
        .filter_map(|r| {
            r.details
                .as_object()
                .and_then(|m| m.get("keyid"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    Ok(Some((hex::encode(seal.hash), signed)))
}
