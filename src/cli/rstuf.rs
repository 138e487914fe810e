//! `conclave rstuf review|sign`: Repository Service for TUF (RSTUF) files on the offline side.
//! `review` checks and shows a ceremony-payload.json, an update-payload.json or RSTUF's pending
//! file (`GET /api/v1/metadata/sign/`); `sign` reviews a pending root against the root this
//! appliance trusts and writes one `sign-payload.json` signed with a keyholder's token
//! (Distributed Asynchronous Signing). docs/pipeline-rstuf.md. Arguments and rendering only:
//! the files are read and checked by [`crate::driver::pipeline_inputs`], the signing is
//! [`crate::driver::sign_rstuf_pending`].

use std::path::{Path, PathBuf};

use super::token::{ModuleArg, terminal};
use super::{CliError, Outcome};
use crate::driver;
use crate::driver::pipeline_inputs::RstufFile;
use crate::text::show;

/// Subcommands of `conclave rstuf`.
#[derive(Debug, clap::Subcommand)]
pub enum RstufCommand {
    /// Check and show an RSTUF file: ceremony-payload.json, update-payload.json, or the pending
    /// file of RSTUF's API (GET /api/v1/metadata/sign/).
    Review(ReviewArgs),
    /// Review RSTUF's pending root against the trusted root and sign it with a key on a token:
    /// writes sign-payload.json for `rstuf admin send sign` / POST /api/v1/metadata/sign.
    Sign(SignArgs),
}

/// `conclave rstuf review`
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The file.
    pub file: PathBuf,
}

/// `conclave rstuf sign`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// RSTUF's pending file (the JSON response of GET /api/v1/metadata/sign/).
    #[arg(long, value_name = "FILE")]
    pub pending: PathBuf,
    /// The root this appliance trusts: the pending file's trusted_root must be it (same signed
    /// bytes); for a pending root v1, the pending root itself (the bootstrap's 1.root.json).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: PathBuf,
    /// The signature payload (a new file).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The PKCS#11 module.
    #[command(flatten)]
    pub module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id.
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The keyholder's name, for the prompt.
    #[arg(long, value_name = "NAME")]
    pub keyholder: Option<String>,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// Run `conclave rstuf ...`.
pub fn run(cmd: &RstufCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        RstufCommand::Review(a) => review(a),
        RstufCommand::Sign(a) => sign(a, config),
    }
}

fn describe(path: &Path, f: &RstufFile) -> String {
    let (p, r) = (&f.pending, &f.review);
    let mut out = format!(
        "{} {}\n  SHA-256 of root's signed bytes: {}\n",
        f.kind.name(),
        show(&path.display().to_string()),
        hex::encode(p.root.signed_digest())
    );
    for l in &r.lines {
        out.push_str(&format!("  {l}\n"));
    }
    out.push_str(if r.complete() {
        "  root meets its thresholds\n"
    } else {
        "  root is pending: more root signatures are needed\n"
    });
    out
}

fn review(a: &ReviewArgs) -> Result<Outcome, CliError> {
    let f = driver::pipeline_inputs::review_rstuf_file(&a.file)?;
    Ok(Outcome {
        stdout: describe(&a.file, &f),
        success: true,
    })
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let done = driver::sign_rstuf_pending(
        &driver::RstufSignRequest {
            pending: &a.pending,
            trusted_root: &a.trusted_root,
            out: &a.out,
            key: driver::KeyChoice {
                token: a.token.as_deref(),
                key: &a.key,
                keyholder: a.keyholder.as_deref(),
            },
        },
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
    )?;
    let root = done.file.pending.root.signed();
    let mut out = describe(&a.pending, &done.file);
    out.push_str(&format!(
        "signed root v{} with key \"{}\" on {} (key id {})\n  written to {}\n",
        root.common.version,
        show(&done.key_label),
        done.token,
        done.keyid,
        a.out.display()
    ));
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}
