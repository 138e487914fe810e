//! `conclave log append|sign|verify`: the key-event log on disk.
//!
//! A log is a directory:
//!
//! ```text
//! entries.jsonl         one key event per line (JSON); its canonical JSON is the Merkle leaf
//! checkpoint            the C2SP tlog-checkpoint of all entries, with the keyholders' signatures
//! checkpoints/SIZE      the signed checkpoints of earlier ceremonies (kept, checked for consistency)
//! ```
//!
//! The log of ceremony k is written to a new directory from the log of ceremony k-1 (brought on
//! the input media), which is never modified.

use std::path::{Path, PathBuf};

use super::token::{ModuleArg, read_pin};
use super::{CliError, Outcome};
use crate::folder::{read_limited, write_new_file, write_replacing};
use crate::transcript::chain::verify_chain;
use crate::transcript::seal::verify_seal;
use crate::transparency::event::{
    CeremonyRef, Event, Export, KeyState, Published, RoleName, ceremony_events,
};
use crate::transparency::log::{Log, Previous, verify};
use crate::transparency::note::{SignedCheckpoint, valid_name};
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::metadata::{RoleType, Root, Targets};

/// File of the entries in a log directory.
pub const ENTRIES: &str = "entries.jsonl";
/// File of the latest checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// Folder of earlier checkpoints.
pub const HISTORY: &str = "checkpoints";

/// Subcommands of `conclave log`.
#[derive(Debug, clap::Subcommand)]
pub enum LogCommand {
    /// Write the log after a ceremony: the previous log (if any) plus this ceremony's key events,
    /// derived from its exported root/targets and its sealed transcript; the new checkpoint is
    /// written unsigned (sign it with `conclave log sign`).
    Append(AppendArgs),
    /// Sign the log's checkpoint with a keyholder's root key on their token.
    Sign(SignArgs),
    /// Verify a log: tree, checkpoint signatures by the root keys (threshold), inclusion of every
    /// entry, consistency with older checkpoints and logs.
    Verify(VerifyArgs),
    /// Print RFC 9162 inclusion proofs (every entry, or --entry) and consistency proofs (from
    /// every earlier checkpoint, and --from) as JSON, for other implementations and online logs.
    Proof(ProofArgs),
}

/// `conclave log proof`
#[derive(Debug, clap::Args)]
pub struct ProofArgs {
    /// The log directory.
    #[arg(long, value_name = "DIR")]
    pub log: PathBuf,
    /// Only these entries (0-based leaf index); default: every entry.
    #[arg(long, value_name = "INDEX")]
    pub entry: Vec<u64>,
    /// Also a consistency proof from the tree of this many entries.
    #[arg(long = "from", value_name = "SIZE")]
    pub from: Vec<u64>,
}

/// `conclave log append`
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The new log directory (created; must not exist).
    #[arg(long, value_name = "DIR")]
    pub log: PathBuf,
    /// The log of the previous ceremony (from the input media; only read). Without it a new log
    /// starts (give --origin).
    #[arg(long, value_name = "DIR")]
    pub previous_log: Option<PathBuf>,
    /// The log's name (checkpoint origin and signature key name), e.g.
    /// `registry.example/conclave-key-events`; only for a new log.
    #[arg(long, value_name = "NAME")]
    pub origin: Option<String>,
    /// The ceremony's sealed transcript: gives the ceremony name and the seal hash; the root and
    /// targets files must be among the artifacts its seal lists.
    #[arg(long, value_name = "FILE")]
    pub transcript: PathBuf,
    /// The root in force after the ceremony (as exported).
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// The targets in force after the ceremony (as exported), if the registry's log tracks them.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// The root before the ceremony (with --previous-log): it must be the log's latest root,
    /// with the keys and thresholds the log's events give.
    #[arg(long, value_name = "FILE")]
    pub previous_root: Option<PathBuf>,
    /// The targets before the ceremony (with --previous-log, like --previous-root).
    #[arg(long, value_name = "FILE")]
    pub previous_targets: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `conclave log sign`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The log directory whose `checkpoint` gets the signature.
    #[arg(long, value_name = "DIR")]
    pub log: PathBuf,
    /// The PKCS#11 module.
    #[command(flatten)]
    pub module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id; it must be a root key of the log's latest
    /// root.
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The keyholder's name, for the prompt.
    #[arg(long, value_name = "NAME")]
    pub keyholder: Option<String>,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// `conclave log verify`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The log directory.
    #[arg(long, value_name = "DIR")]
    pub log: PathBuf,
    /// An older view of the log: a checkpoint file (must be consistent with the log) or an older
    /// log directory (must be a prefix of the log; else the first differing entry is named).
    #[arg(long, value_name = "CHECKPOINT_OR_DIR")]
    pub previous: Option<PathBuf>,
    /// The registry's current root (e.g. fetched by a TUF client): it must be the log's latest
    /// root, and its root keys and threshold are the ones the checkpoint must be signed by.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `conclave log ...`.
pub fn run(cmd: &LogCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        LogCommand::Append(a) => append(a),
        LogCommand::Sign(a) => sign(a, config),
        LogCommand::Verify(a) => run_verify(a),
        LogCommand::Proof(a) => proof(a),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    read_limited(path, DEFAULT_MAX_FILE_SIZE).map_err(CliError::Io)
}

fn read_text(path: &Path) -> Result<String, CliError> {
    String::from_utf8(read(path)?)
        .map_err(|_| CliError::Invalid(format!("{}: not UTF-8 text", path.display())))
}

fn published<T: crate::tuf::metadata::SignedPayload>(
    path: &Path,
) -> Result<Published<T>, CliError> {
    Published::from_bytes(&read(path)?)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", path.display())))
}

/// A log directory as read: entries, checkpoint, earlier checkpoints.
pub struct LogDir {
    /// The entries.
    pub log: Log,
    /// The latest checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// Earlier checkpoints (file name, checkpoint), by size.
    pub history: Vec<(String, SignedCheckpoint)>,
}

/// Read a log directory.
pub fn read_log_dir(dir: &Path) -> Result<LogDir, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Io(format!(
            "{} is not a log directory",
            dir.display()
        )));
    }
    let entries = dir.join(ENTRIES);
    let log = Log::parse_jsonl(&read(&entries)?)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", entries.display())))?;
    let cpath = dir.join(CHECKPOINT);
    let checkpoint = parse_checkpoint(&cpath)?;
    let mut history = Vec::new();
    let hdir = dir.join(HISTORY);
    if hdir.is_dir() {
        let mut names: Vec<(u64, String)> = Vec::new();
        for e in std::fs::read_dir(&hdir)
            .map_err(|e| CliError::Io(format!("cannot list {}: {e}", hdir.display())))?
        {
            let e = e.map_err(|e| CliError::Io(format!("{}: {e}", hdir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name.parse::<u64>().map_err(|_| {
                CliError::Invalid(format!(
                    "{}: unexpected file \"{name}\" (names are tree sizes)",
                    hdir.display()
                ))
            })?;
            names.push((size, name));
        }
        names.sort();
        for (size, name) in names {
            let p = hdir.join(&name);
            let cp = parse_checkpoint(&p)?;
            if cp.checkpoint.size != size {
                return Err(CliError::Invalid(format!(
                    "{}: the checkpoint covers {} entries, not {size}",
                    p.display(),
                    cp.checkpoint.size
                )));
            }
            history.push((format!("{HISTORY}/{name}"), cp));
        }
    }
    Ok(LogDir {
        log,
        checkpoint,
        history,
    })
}

fn parse_checkpoint(path: &Path) -> Result<SignedCheckpoint, CliError> {
    SignedCheckpoint::parse(&read_text(path)?)
        .map_err(|e| CliError::Invalid(format!("{}: {e}", path.display())))
}

fn mkdir_new(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir(dir).map_err(|e| {
        CliError::Io(format!(
            "cannot create {} (the new log goes into a new directory): {e}",
            dir.display()
        ))
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_new_file(path, bytes)
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
}

/// Write a complete log directory (entries, earlier checkpoints, the new unsigned checkpoint) at
/// `dir` (created).
fn write_log_dir(
    dir: &Path,
    log: &Log,
    previous: Option<&LogDir>,
    origin: &str,
) -> Result<SignedCheckpoint, CliError> {
    mkdir_new(dir)?;
    write_new(&dir.join(ENTRIES), log.to_jsonl().as_bytes())?;
    if let Some(d) = previous {
        let h = dir.join(HISTORY);
        mkdir_new(&h)?;
        for (n, cp) in &d.history {
            let file = n.strip_prefix(&format!("{HISTORY}/")).unwrap_or(n);
            write_new(&h.join(file), cp.to_text().as_bytes())?;
        }
        write_new(
            &h.join(d.checkpoint.checkpoint.size.to_string()),
            d.checkpoint.to_text().as_bytes(),
        )?;
    }
    let cp = SignedCheckpoint::new(log.checkpoint(origin));
    write_new(&dir.join(CHECKPOINT), cp.to_text().as_bytes())?;
    Ok(cp)
}

/// `conclave log append` (also called at the seal of a ceremony).
pub fn append(a: &AppendArgs) -> Result<Outcome, CliError> {
    // 1. Everything is read and checked before anything is written.
    let (previous, origin) = match (&a.previous_log, &a.origin) {
        (Some(dir), origin) => {
            let d = read_log_dir(dir)?;
            let v = verify(&d.log, &d.checkpoint, &d.history, None, None);
            if let Some(f) = v.first_failure() {
                return Err(CliError::Invalid(format!(
                    "the previous log {} does not verify: {}",
                    dir.display(),
                    f.text
                )));
            }
            let o = d.checkpoint.checkpoint.origin.clone();
            if let Some(given) = origin
                && *given != o
            {
                return Err(CliError::Usage(format!(
                    "--origin {given} is not the previous log's origin {o}"
                )));
            }
            (Some(d), o)
        }
        (None, Some(o)) => {
            if !valid_name(o) {
                return Err(CliError::Usage(format!(
                    "--origin \"{o}\": a log name is non-empty, without spaces or '+' (e.g. registry.example/conclave-key-events)"
                )));
            }
            (None, o.clone())
        }
        (None, None) => {
            return Err(CliError::Usage(
                "a new log needs --origin NAME (or give --previous-log DIR to extend one)".into(),
            ));
        }
    };
    let prev_root = a
        .previous_root
        .as_deref()
        .map(published::<Root>)
        .transpose()?;
    let prev_targets = a
        .previous_targets
        .as_deref()
        .map(published::<Targets>)
        .transpose()?;
    let from_files = KeyState::from_metadata(prev_root.as_ref(), prev_targets.as_ref());
    let before = match &previous {
        Some(d) => {
            let replayed = d
                .log
                .replay(d.log.len())
                .map_err(|e| CliError::Invalid(format!("the previous log: {e}")))?;
            if prev_root.is_some() {
                check_same(&replayed, &from_files, true, "--previous-root")?;
            }
            if prev_targets.is_some() {
                check_same(&replayed, &from_files, false, "--previous-targets")?;
            }
            replayed
        }
        None if prev_root.is_some() || prev_targets.is_some() => {
            return Err(CliError::Usage(
                "--previous-root/--previous-targets check the previous log (--previous-log); a new log starts from the keys of the ceremony's own root and targets".into(),
            ));
        }
        None => KeyState::default(),
    };
    // The ceremony: its name and seal from the verified transcript.
    let tbytes = read(&a.transcript)?;
    let t = verify_chain(&tbytes).map_err(|e| {
        CliError::Invalid(format!(
            "{}: the transcript does not verify: {e}",
            a.transcript.display()
        ))
    })?;
    let seal = verify_seal(&t).map_err(|e| {
        CliError::Invalid(format!(
            "{}: the seal does not verify: {e}",
            a.transcript.display()
        ))
    })?;
    let name = t.begin().map(|b| b.script.name).ok_or_else(|| {
        CliError::Invalid(format!(
            "{}: the first record does not name the ceremony script",
            a.transcript.display()
        ))
    })?;
    let ceremony = CeremonyRef {
        name,
        seal: seal.seal_hash,
    };
    if let Some(d) = &previous
        && let Some((i, _)) = d
            .log
            .entries()
            .iter()
            .enumerate()
            .find(|(_, e)| e.seal == hex::encode(ceremony.seal))
    {
        return Err(CliError::Usage(format!(
            "the ceremony sealed with {} is already in the previous log (entry {i})",
            hex::encode(ceremony.seal)
        )));
    }
    let export = Export {
        root: Some(published::<Root>(&a.root)?),
        targets: a.targets.as_deref().map(published::<Targets>).transpose()?,
    };
    let entries = ceremony_events(&ceremony, &before, &export);
    // What the log says was published must be what the ceremony sealed.
    for e in &entries {
        if let Event::Published(p) = &e.event {
            let file = if p.role == RoleType::Root {
                &a.root
            } else {
                a.targets.as_ref().unwrap_or(&a.root)
            };
            if !seal
                .details
                .artifacts
                .iter()
                .any(|f| f.sha256 == p.file_sha256)
            {
                return Err(CliError::Invalid(format!(
                    "{} ({} version {}) is not among the artifacts the seal of {} lists: it is not what this ceremony exported",
                    file.display(),
                    p.role,
                    p.version,
                    a.transcript.display()
                )));
            }
        }
    }
    // 2. Write the new log directory: into a temporary sibling, renamed when complete, so an
    // interrupted append leaves no half-written log under the name.
    let mut log = previous.as_ref().map(|d| d.log.clone()).unwrap_or_default();
    let old_size = log.len();
    log.append(entries.clone());
    if a.log.symlink_metadata().is_ok() {
        return Err(CliError::Io(format!(
            "{} exists; the new log goes into a new directory",
            a.log.display()
        )));
    }
    let file_name = a.log.file_name().ok_or_else(|| {
        CliError::Usage(format!("--log {}: not a directory name", a.log.display()))
    })?;
    let tmp = a.log.with_file_name(format!(
        ".{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_log_dir(&tmp, &log, previous.as_ref(), &origin).and_then(|cp| {
        std::fs::rename(&tmp, &a.log).map_err(|e| {
            CliError::Io(format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                a.log.display()
            ))
        })?;
        Ok(cp)
    });
    let cp = match result {
        Ok(cp) => cp,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let state = log
        .replay(log.len())
        .map_err(|e| CliError::Invalid(format!("internal error: the new log: {e}")))?;
    let threshold = state.root_keys().map_or(0, |k| k.threshold);
    if a.json {
        let v = serde_json::json!({
            "log": a.log.display().to_string(),
            "origin": origin,
            "previous_size": old_size,
            "size": log.len(),
            "root_hash": hex::encode(log.root()),
            "entries": entries.iter().map(|e| e.to_value()).collect::<Vec<_>>(),
            "checkpoint": cp.checkpoint.body(),
            "threshold": threshold,
        });
        return Ok(Outcome {
            stdout: format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
            success: true,
        });
    }
    let mut out = format!(
        "key-event log {} ({origin}): {} entries, {} new from ceremony \"{}\" (seal {})\n",
        a.log.display(),
        log.len(),
        entries.len(),
        ceremony.name,
        hex::encode(ceremony.seal)
    );
    for (i, e) in entries.iter().enumerate() {
        out.push_str(&format!("  {:>4}  {}\n", old_size + i, e.summary()));
    }
    out.push_str(&format!(
        "checkpoint (unsigned; {threshold} root keyholder(s) must sign it with `conclave log sign --log {}`):\n",
        a.log.display()
    ));
    for l in cp.checkpoint.body().lines() {
        out.push_str(&format!("  {l}\n"));
    }
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

/// The roles the log's replay gives must be those the previous metadata file gives.
fn check_same(
    replayed: &KeyState,
    from_file: &KeyState,
    top_level: bool,
    flag: &str,
) -> Result<(), CliError> {
    let digest = if top_level {
        (&replayed.root, &from_file.root)
    } else {
        (&replayed.targets, &from_file.targets)
    };
    if digest.0.as_ref().map(|p| p.signed_sha256) != digest.1.as_ref().map(|p| p.signed_sha256) {
        return Err(CliError::Invalid(format!(
            "{flag} is not the {} the previous log published last (version {:?} there)",
            if top_level { "root" } else { "targets" },
            digest.0.as_ref().map(|p| p.version)
        )));
    }
    let pick = |s: &KeyState| -> Vec<(RoleName, _)> {
        s.roles
            .iter()
            .filter(|(n, _)| n.is_top_level() == top_level)
            .map(|(n, k)| (n.clone(), k.clone()))
            .collect()
    };
    if pick(replayed) != pick(from_file) {
        return Err(CliError::Invalid(format!(
            "{flag}: its keys and thresholds differ from those the previous log's events give"
        )));
    }
    Ok(())
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    // 1. The log verifies up to the signatures, and the key is a root key: before the PIN.
    let d = read_log_dir(&a.log)?;
    let v = verify(&d.log, &d.checkpoint, &d.history, None, None);
    if let Some(f) = v
        .checks
        .iter()
        .find(|c| !c.ok && !c.text.starts_with("checkpoint signatures"))
    {
        return Err(CliError::Invalid(format!(
            "refusing to sign: the log {} does not verify: {}",
            a.log.display(),
            f.text
        )));
    }
    let state = d
        .log
        .replay(d.log.len())
        .map_err(|e| CliError::Invalid(format!("refusing to sign: {e}")))?;
    let Some(root_keys) = state.root_keys().cloned() else {
        return Err(CliError::Invalid(
            "refusing to sign: the log has published no root, so no root keys".into(),
        ));
    };
    let module = a.module.open(config)?;
    let (session, tkey) =
        super::token::open_key(&module, a.token.as_deref(), &a.key, a.keyholder.as_deref())?;
    let token = session.token().clone();
    let public = tkey.public.clone().map_err(|reason| {
        CliError::Invalid(format!(
            "key \"{}\" on {token} cannot be used: {reason}",
            tkey.label
        ))
    })?;
    let material = public.material();
    let Some((keyid, _)) = root_keys
        .keys
        .iter()
        .find(|(_, k)| k.public_key().is_ok_and(|p| p.material() == material))
    else {
        return Err(CliError::Invalid(format!(
            "refusing to sign: key \"{}\" on {token} is not a root key of the log's latest root; checkpoint left unchanged",
            tkey.label
        )));
    };
    let keyid = keyid.clone();
    let mut cp = d.checkpoint.clone();
    let kid = crate::transparency::note::note_key_id(&cp.checkpoint.origin, &public)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    if cp.signatures.iter().any(|s| s.key_id == kid) {
        return Err(CliError::Usage(format!(
            "key {keyid} has already signed this checkpoint"
        )));
    }
    // 2. PIN, login, sign, verify.
    let holder = a
        .keyholder
        .as_deref()
        .map(|k| format!(" of keyholder {k}"))
        .unwrap_or_default();
    session.check_not_locked()?;
    let pin = read_pin(
        a.pin_stdin,
        &format!(
            "PIN for {token}{holder} to sign the key-event log checkpoint (size {}) with key \"{}\": ",
            cp.checkpoint.size, tkey.label
        ),
    )?;
    session.login(&pin)?;
    drop(pin);
    let mut signer = session.signer(&tkey)?;
    cp.add_signature(&mut signer)
        .map_err(|e| CliError::Invalid(format!("the token's signature: {e}; nothing written")))?;
    let count = cp.count(&root_keys);
    if !count.signed.contains(&keyid) {
        return Err(CliError::Invalid(format!(
            "internal error: the new signature does not count for root key {keyid}; nothing written"
        )));
    }
    let path = a.log.join(CHECKPOINT);
    write_replacing(&path, cp.to_text().as_bytes())
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
    let state_txt = if count.verified() {
        "threshold met"
    } else {
        "not enough signatures yet"
    };
    Ok(Outcome {
        stdout: format!(
            "signed the checkpoint of {} (size {}) with key \"{}\" ({keyid}) on {token}\n  {} ({state_txt})\n  written to {}\n",
            a.log.display(),
            cp.checkpoint.size,
            tkey.label,
            count.summary(root_keys.keys.len()),
            path.display()
        ),
        success: true,
    })
}

/// Sign the log's checkpoint with a signer that is already logged in (the keyholders' tokens at
/// the seal of a ceremony). Returns `Ok(false)` when the signer's key is not a root key of the
/// log's latest root or has signed already (nothing written), `Ok(true)` when its signature was
/// added; the log must verify apart from its signatures.
pub fn sign_checkpoint_with(
    log_dir: &Path,
    signer: &mut dyn crate::signer::Signer,
) -> Result<bool, CliError> {
    let d = read_log_dir(log_dir)?;
    let v = verify(&d.log, &d.checkpoint, &d.history, None, None);
    if let Some(f) = v
        .checks
        .iter()
        .find(|c| !c.ok && !c.text.starts_with("checkpoint signatures"))
    {
        return Err(CliError::Invalid(format!(
            "refusing to sign: the log {} does not verify: {}",
            log_dir.display(),
            f.text
        )));
    }
    let state = d
        .log
        .replay(d.log.len())
        .map_err(|e| CliError::Invalid(format!("refusing to sign: {e}")))?;
    let Some(root_keys) = state.root_keys().cloned() else {
        return Ok(false);
    };
    let public = signer
        .key()
        .public_key()
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let material = public.material();
    let Some((keyid, _)) = root_keys
        .keys
        .iter()
        .find(|(_, k)| k.public_key().is_ok_and(|p| p.material() == material))
    else {
        return Ok(false);
    };
    let keyid = keyid.clone();
    let mut cp = d.checkpoint.clone();
    let kid = crate::transparency::note::note_key_id(&cp.checkpoint.origin, &public)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    if cp.signatures.iter().any(|s| s.key_id == kid) {
        return Ok(false);
    }
    cp.add_signature(signer)
        .map_err(|e| CliError::Invalid(format!("the token's signature: {e}; nothing written")))?;
    if !cp.count(&root_keys).signed.contains(&keyid) {
        return Err(CliError::Invalid(format!(
            "internal error: the new signature does not count for root key {keyid}; nothing written"
        )));
    }
    let path = log_dir.join(CHECKPOINT);
    write_replacing(&path, cp.to_text().as_bytes())
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

fn run_verify(a: &VerifyArgs) -> Result<Outcome, CliError> {
    let d = read_log_dir(&a.log)?;
    let previous = match &a.previous {
        None => None,
        Some(p) if p.is_dir() => {
            let old = read_log_dir(p)?;
            Some(Previous::Log(
                p.display().to_string(),
                old.log,
                old.checkpoint,
            ))
        }
        Some(p) => Some(Previous::Checkpoint(
            p.display().to_string(),
            parse_checkpoint(p)?,
        )),
    };
    let trusted = match &a.trusted_root {
        None => None,
        Some(p) => {
            let bytes = read(p)?;
            // It must verify by its own root keys before its keys decide anything.
            crate::tuf::verify::trust_root(&p.display().to_string(), &bytes)
                .map_err(|e| CliError::Invalid(format!("the trusted root does not verify: {e}")))?;
            Some(
                Published::<Root>::from_bytes(&bytes)
                    .map_err(|e| CliError::Invalid(format!("{}: {e}", p.display())))?,
            )
        }
    };
    let v = verify(
        &d.log,
        &d.checkpoint,
        &d.history,
        previous.as_ref(),
        trusted.as_ref(),
    );
    let verdict = if v.passed() { "VALID" } else { "INVALID" };
    let stdout = if a.json {
        let j = serde_json::json!({
            "log": a.log.display().to_string(),
            "origin": d.checkpoint.checkpoint.origin,
            "size": d.log.len(),
            "root_hash": hex::encode(d.log.root()),
            "verdict": verdict,
            "checks": v.checks.iter().map(|c| serde_json::json!({"ok": c.ok, "text": c.text})).collect::<Vec<_>>(),
            "first_failure": v.first_failure().map(|c| c.text.clone()),
            "notes": v.notes,
        });
        format!("{}\n", serde_json::to_string_pretty(&j).unwrap_or_default())
    } else {
        let mut out = format!("key-event log {}\n", a.log.display());
        for c in &v.checks {
            out.push_str(&format!(
                "  [{}] {}\n",
                if c.ok { "ok" } else { "FAIL" },
                c.text
            ));
        }
        for n in &v.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out.push_str(&format!(
            "conclave log verify {}: {verdict}\n",
            a.log.display()
        ));
        if let Some(f) = v.first_failure() {
            out.push_str(&format!("first failure: {}\n", f.text));
        }
        out
    };
    Ok(Outcome {
        stdout,
        success: v.passed(),
    })
}

fn proof(a: &ProofArgs) -> Result<Outcome, CliError> {
    use crate::transparency::merkle;
    let d = read_log_dir(&a.log)?;
    let leaves = d.log.leaves();
    let n = leaves.len();
    let hexes = |v: &[merkle::Hash]| v.iter().map(hex::encode).collect::<Vec<_>>();
    let indices: Vec<u64> = if a.entry.is_empty() {
        (0..n as u64).collect()
    } else {
        a.entry.clone()
    };
    let mut inclusion = Vec::new();
    let mut tree = merkle::Tree::new(leaves);
    for i in indices {
        let path = usize::try_from(i)
            .ok()
            .and_then(|i| tree.inclusion_proof(i))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--entry {i}: the log has {n} entries (0 to {})",
                    n.saturating_sub(1)
                ))
            })?;
        inclusion.push(serde_json::json!({
            "index": i,
            "leaf_hash": hex::encode(leaves[i as usize]),
            "path": hexes(&path),
        }));
    }
    let mut sizes: Vec<u64> = d.history.iter().map(|(_, c)| c.checkpoint.size).collect();
    sizes.extend(&a.from);
    let mut consistency = Vec::new();
    for m in sizes {
        let path = usize::try_from(m)
            .ok()
            .and_then(|m| merkle::consistency_proof(m, leaves))
            .ok_or_else(|| CliError::Usage(format!("--from {m}: between 1 and {n}")))?;
        consistency.push(serde_json::json!({
            "from": m,
            "old_root_hash": hex::encode(d.log.root_at(m as usize).unwrap_or_default()),
            "path": hexes(&path),
        }));
    }
    let v = serde_json::json!({
        "origin": d.checkpoint.checkpoint.origin,
        "size": n,
        "root_hash": hex::encode(d.log.root()),
        "inclusion": inclusion,
        "consistency": consistency,
    });
    Ok(Outcome {
        stdout: format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
        success: true,
    })
}
