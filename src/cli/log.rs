//! `conclave log append|sign|verify`: the key-event log on disk.
//!
//! Argument parsing and rendering only: the log's directory format is
//! [`crate::transparency::dir`], its files are read and written by [`crate::driver::log_dir`],
//! and `log sign` is [`crate::driver::sign_log_checkpoint`].

use std::path::{Path, PathBuf};

use super::token::{ModuleArg, terminal};
use super::{CliError, Outcome};
use crate::driver::KeyChoice;
use crate::driver::log_dir::{self, AppendRequest, LogDirError, read_log_dir};

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

fn lerr(e: LogDirError) -> CliError {
    match e {
        LogDirError::Io(m) => CliError::Io(m),
        LogDirError::Invalid(m) => CliError::Invalid(m),
        LogDirError::Usage(m) => CliError::Usage(m),
    }
}

/// `conclave log append` (the key-event log step at a ceremony's seal uses the same
/// [`log_dir::append`]).
pub fn append(a: &AppendArgs) -> Result<Outcome, CliError> {
    let done = log_dir::append(&AppendRequest {
        log: a.log.clone(),
        previous_log: a.previous_log.clone(),
        origin: a.origin.clone(),
        transcript: a.transcript.clone(),
        root: a.root.clone(),
        targets: a.targets.clone(),
        previous_root: a.previous_root.clone(),
        previous_targets: a.previous_targets.clone(),
    })
    .map_err(lerr)?;
    let (origin, old_size, log, entries, cp, threshold) = (
        &done.origin,
        done.old_size,
        &done.log,
        &done.entries,
        &done.checkpoint,
        done.threshold,
    );
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
        crate::text::show(&done.ceremony.name),
        hex::encode(done.ceremony.seal)
    );
    for (i, e) in entries.iter().enumerate() {
        out.push_str(&format!("  {:>4}  {}\n", old_size + i, e.summary()));
    }
    out.push_str(&format!(
        "checkpoint (unsigned; {threshold} root keyholder(s) must sign it with `conclave log sign --log {}`):\n",
        a.log.display()
    ));
    for l in cp.checkpoint.body().lines() {
        out.push_str(&format!("  {}\n", crate::text::show_message(l)));
    }
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let done = crate::driver::sign_log_checkpoint(
        &a.log,
        &KeyChoice {
            token: a.token.as_deref(),
            key: &a.key,
            keyholder: a.keyholder.as_deref(),
        },
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
    )?;
    let state_txt = if done.count.verified() {
        "threshold met"
    } else {
        "not enough signatures yet"
    };
    Ok(Outcome {
        stdout: format!(
            "signed the checkpoint of {} (size {}) with key \"{}\" ({}) on {}\n  {} ({state_txt})\n  written to {}\n",
            a.log.display(),
            done.checkpoint.checkpoint.size,
            done.key_label,
            done.keyid,
            done.token,
            done.count.summary(done.root_keys),
            done.path.display()
        ),
        success: true,
    })
}

fn run_verify(a: &VerifyArgs) -> Result<Outcome, CliError> {
    let (d, v) = log_dir::verify_dir(&a.log, a.previous.as_deref(), a.trusted_root.as_deref())
        .map_err(lerr)?;
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
                crate::text::show_message(&c.text)
            ));
        }
        for n in &v.notes {
            out.push_str(&format!("  note: {}\n", crate::text::show_message(n)));
        }
        out.push_str(&format!(
            "conclave log verify {}: {verdict}\n",
            a.log.display()
        ));
        if let Some(f) = v.first_failure() {
            let text = crate::text::show_message(&f.text);
            out.push_str(&format!("first failure: {text}\n"));
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
    let d = read_log_dir(&a.log).map_err(lerr)?;
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
