//! `conclave intoto show|sign`: review an in-toto layout and sign it with a targets keyholder's
//! token (outside the ceremony engine for now; see docs/transparency.md). Arguments and
//! rendering only: the files are read and checked by [`crate::driver::pipeline_inputs`], the
//! signing is [`crate::driver::sign_intoto_layout`].

use std::path::{Path, PathBuf};

use super::token::{ModuleArg, terminal};
use super::{CliError, Outcome};
use crate::driver;
use crate::intoto::{LayoutFile, LayoutSummary};
use crate::text::{show as shown, show_message};

/// Subcommands of `conclave intoto`.
#[derive(Debug, clap::Subcommand)]
pub enum IntotoCommand {
    /// Show a layout for review: expiry, functionaries' keys, steps, inspections, signatures.
    Show(ShowArgs),
    /// Sign a layout (metablock or DSSE envelope) with a key of the trusted root's targets role
    /// on a token; writes a new file.
    Sign(SignArgs),
}

/// `conclave intoto show`
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The layout file.
    pub layout: PathBuf,
}

/// `conclave intoto sign`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The layout to sign (only read).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// The signed layout (a new file).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The registry's root: the key must be one of its targets keys.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: PathBuf,
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

/// Run `conclave intoto ...`.
pub fn run(cmd: &IntotoCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        IntotoCommand::Show(a) => show(a),
        IntotoCommand::Sign(a) => sign(a, config),
    }
}

fn describe(path: &Path, f: &LayoutFile, s: &LayoutSummary) -> String {
    let kind = match f {
        LayoutFile::Metablock { .. } => "metablock",
        LayoutFile::Dsse { .. } => "DSSE envelope",
    };
    let mut out = format!(
        "in-toto layout {} ({kind}), expires {}\n  SHA-256 of the signed bytes: {}\n  functionaries' keys:\n",
        shown(&path.display().to_string()),
        shown(&s.expires),
        hex::encode(crate::transcript::record::sha256(&f.signed_message()))
    );
    for (id, scheme) in &s.keys {
        out.push_str(&format!("    {} ({})\n", shown(id), shown(scheme)));
    }
    out.push_str("  steps:\n");
    for st in &s.steps {
        out.push_str(&format!(
            "    {}: `{}`, {} of {} functionary key(s): {}\n",
            shown(&st.name),
            show_message(&st.expected_command),
            st.threshold,
            st.pubkeys.len(),
            st.pubkeys
                .iter()
                .map(|k| shown(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("  inspections:\n");
    for (name, run) in &s.inspections {
        // The whole command, every character visible: a conceal sequence cannot hide a part.
        out.push_str(&format!("    {}: `{}`\n", shown(name), show_message(run)));
    }
    out.push_str(&format!("  signatures: {}\n", f.signatures().len()));
    out
}

fn show(a: &ShowArgs) -> Result<Outcome, CliError> {
    let (f, s) = driver::pipeline_inputs::read_layout(&a.layout)?;
    Ok(Outcome {
        stdout: describe(&a.layout, &f, &s),
        success: true,
    })
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let done = driver::sign_intoto_layout(
        &driver::LayoutSignRequest {
            input: &a.input,
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
    let mut out = describe(&a.input, &done.read, &done.summary);
    out.push_str(&format!(
        "signed with key \"{}\" on {} (layout key id {})\n  written to {}\n",
        done.key_label,
        done.token,
        done.keyid,
        a.out.display()
    ));
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}
