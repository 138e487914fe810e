//! `conclave tuf-on-ci review|sign|apply`: a keyholder signs a tuf-on-ci signing event offline
//! (review and sign on the appliance from a copy of the event's `metadata/` and the known-good
//! `metadata/`), and the connected machine writes the signatures into the event's placeholders
//! (`apply`). The rules and formats live in the pure core ([`crate::tuf::tuf_on_ci`]); the
//! folders are read, checked, signed and written by the driver
//! ([`crate::driver::sign_tuf_on_ci_event`], [`crate::driver::accept_tuf_on_ci_invite`],
//! [`crate::driver::apply_event_signatures`]); this file parses arguments and renders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::driver::{self, KeyChoice, SystemClock};
use crate::text::show;
use crate::tuf::tuf_on_ci::describe_key;

use super::token::{ModuleArg, terminal};
use super::verify::reference_time;
use super::{CliError, Outcome};

/// The event and the known-good state, as both `review` and `sign` take them.
#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// The signing event: its `metadata/` folder (or the checkout holding it), copied from the
    /// event's branch.
    #[arg(long, value_name = "DIR")]
    pub event: PathBuf,
    /// The known-good state: `metadata/` of the main branch (or the checkout holding it).
    #[arg(long, value_name = "DIR")]
    pub known_good: PathBuf,
    /// Reference time for the expiry rule, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

/// Arguments of `conclave tuf-on-ci sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    event: EventArgs,
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id (or a unique prefix of 8+ hex digits).
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The keyholder's name, for the prompt (e.g. `@alice`).
    #[arg(long, value_name = "NAME")]
    pub keyholder: Option<String>,
    /// Folder for the signature bundles (created; must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// Arguments of `conclave tuf-on-ci apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The signing event's `metadata/` folder in the git checkout (its files are rewritten).
    #[arg(long, value_name = "DIR")]
    pub event: PathBuf,
    /// The known-good `metadata/` (main branch): needed when a key of the known-good root signs
    /// a new root that no longer lists it.
    #[arg(long, value_name = "DIR")]
    pub known_good: Option<PathBuf>,
    /// The accepted edit of an `accept-tuf-on-ci-invite` ceremony (its export's
    /// `tuf-on-ci-accepted-HEX/` folder): checked to be the event with invites accepted and
    /// nothing else, then written into the event together with the bundles' signatures.
    #[arg(long, value_name = "DIR")]
    pub accepted: Option<PathBuf>,
    /// Signature bundles from `conclave tuf-on-ci sign` or a ceremony (files, or folders of
    /// `*.bundle`).
    #[arg(required_unless_present = "accepted", value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
}

/// Arguments of `conclave tuf-on-ci accept`.
#[derive(Debug, clap::Args)]
pub struct AcceptArgs {
    #[command(flatten)]
    event: EventArgs,
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    pub token: Option<String>,
    /// The key on the token, by label or TUF key id (or a unique prefix of 8+ hex digits).
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    pub key: String,
    /// The invited keyholder's GitHub handle (`@alice`; written lower case as the key's owner).
    #[arg(long, value_name = "@HANDLE")]
    pub keyholder: String,
    /// Folder for the whole edited `metadata/` (created; must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// `conclave tuf-on-ci ...`
#[derive(Debug, clap::Subcommand)]
pub enum TufOnCiCommand {
    /// Review a signing event against the known-good state: tuf-on-ci's CI rules, then per
    /// changed role its keys by owner, thresholds, expiry and target changes.
    Review(EventArgs),
    /// Review, then sign every changed role the token key may sign; writes one signature
    /// bundle per role and key id.
    Sign(SignArgs),
    /// On the connected machine: write signature bundles into the event's placeholders
    /// (root.json and root_history/N.root.json alike), in tuf-on-ci's own file format.
    Apply(ApplyArgs),
    /// Accept an invite with a token key (an edit: the key joins the invited roles, the
    /// invite is removed, placeholders reset), then sign what the key may sign; writes the whole
    /// edited `metadata/` folder.
    Accept(AcceptArgs),
}

/// Run a `tuf-on-ci` subcommand.
pub fn run(cmd: &TufOnCiCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        TufOnCiCommand::Review(a) => review(a),
        TufOnCiCommand::Sign(a) => sign(a, config),
        TufOnCiCommand::Apply(a) => apply(a),
        TufOnCiCommand::Accept(a) => accept(a, config),
    }
}

/// The folders and the reference time as the driver takes them.
fn folders(a: &EventArgs) -> Result<driver::EventFolders<'_>, CliError> {
    Ok(driver::EventFolders {
        event: &a.event,
        known_good: &a.known_good,
        now: reference_time(a.at.as_deref())?,
    })
}

/// One line per signed role's threshold count.
fn counts(out: &mut String, counts: &[driver::RoleCount]) {
    for c in counts {
        let state = if c.count.verified() {
            "threshold met"
        } else {
            "not enough signatures yet"
        };
        let _ = writeln!(
            out,
            "{} v{}: {}: {} ({state})",
            show(&c.role),
            c.version,
            c.by,
            c.count.summary()
        );
    }
}

fn review(a: &EventArgs) -> Result<Outcome, CliError> {
    let r = driver::review_tuf_on_ci_event(&folders(a)?)?;
    let mut out = r.text.clone();
    if r.failures.is_empty() {
        for role in &r.changed {
            let _ = writeln!(
                out,
                "\nmay sign {} ({}):",
                show(&role.name),
                show(&role.file)
            );
            for s in &role.slots {
                let _ = writeln!(
                    out,
                    "  {} (listed by the {})",
                    describe_key(&s.keyid, &s.key),
                    s.by
                );
            }
        }
        let _ = writeln!(
            out,
            "\nall of tuf-on-ci's CI rules pass for {} changed role(s)",
            r.changed.len()
        );
    }
    Ok(Outcome {
        stdout: out,
        success: r.failures.is_empty(),
    })
}

fn sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let done = driver::sign_tuf_on_ci_event(
        &folders(&a.event)?,
        &KeyChoice {
            token: a.token.as_deref(),
            key: &a.key,
            keyholder: a.keyholder.as_deref(),
        },
        &a.out,
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
        &SystemClock,
    )?;
    let mut out = done.review.text.clone();
    let _ = writeln!(out);
    counts(&mut out, &done.counts);
    for p in &done.written {
        let _ = writeln!(out, "wrote {}", show(&p.display().to_string()));
    }
    let _ = writeln!(
        out,
        "carry {} to the connected machine: `conclave tuf-on-ci apply --event metadata BUNDLES...` in the event's checkout",
        a.out.display()
    );
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

fn apply(a: &ApplyArgs) -> Result<Outcome, CliError> {
    let applied = driver::apply_event_signatures(
        &a.event,
        a.known_good.as_deref(),
        a.accepted.as_deref(),
        &a.bundles,
    )
    .map_err(super::rehearse::map)?;
    let mut out = String::new();
    for l in &applied.lines {
        let _ = writeln!(out, "{l}");
    }
    for p in &applied.written {
        let _ = writeln!(out, "wrote {}", show(&p.display().to_string()));
    }
    let _ = writeln!(
        out,
        "next: git add metadata && git commit -m \"Signature from @YOUR-HANDLE\" && git push (then tuf-on-ci's CI checks the event)"
    );
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}

fn accept(a: &AcceptArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let done = driver::accept_tuf_on_ci_invite(
        &folders(&a.event)?,
        &KeyChoice {
            token: a.token.as_deref(),
            key: &a.key,
            keyholder: None,
        },
        &a.keyholder,
        &a.out,
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
    )?;
    let mut out = String::new();
    for l in &done.lines {
        let _ = writeln!(out, "{l}");
    }
    out.push_str(&done.review.text);
    let _ = writeln!(out);
    match &done.counts {
        Some(c) => counts(&mut out, c),
        None => {
            let _ = writeln!(
                out,
                "not signed: other invites are open; the event is signed once every invitee has accepted"
            );
        }
    }
    let _ = writeln!(
        out,
        "wrote the edited metadata/ to {}\non the connected machine, in the event's checkout: \
         rm -rf metadata && cp -r {} metadata && git add -A metadata && \
         git commit -m \"{} accepted invitation\" && git push",
        a.out.display(),
        a.out.display(),
        show(&done.user)
    );
    Ok(Outcome {
        stdout: out,
        success: true,
    })
}
