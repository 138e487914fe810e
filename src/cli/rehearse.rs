//! `conclave rehearse --headless`: an unattended practice ceremony on SoftHSM2 practice tokens,
//! checked at the end the way an auditor would (the exported metadata with `verify`, the
//! transcript with `transcript verify`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::driver::{self as rehearse, ChildExit, DriverError, REHEARSE_CHILD, SystemClock};

use super::{CliError, Outcome};

/// Arguments of `conclave rehearse`.
#[derive(Debug, clap::Args)]
pub struct RehearseArgs {
    /// Run every step unattended, without the terminal UI (also chosen when there is no
    /// terminal).
    #[arg(long)]
    pub headless: bool,
    /// The ceremony script to rehearse.
    #[arg(long, default_value = "bootstrap-root", value_name = "NAME")]
    pub script: String,
    /// Workspace folder (practice tokens, transcript, export). Default: the newest
    /// `rehearsal-YYYYMMDD-HHMMSS` folder in the current folder whose ceremony is unfinished
    /// (it is continued), else a new one. Running again on the same workspace continues an
    /// interrupted rehearsal, or reports a finished one (its checks run again).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Start a new ceremony rather than continue or report the last one: without --workspace
    /// in a new rehearsal folder; with --workspace a new ceremony of the script in that
    /// workspace (refused while one is unfinished, for a second bootstrap and for a second
    /// practice rotate-root-keys).
    #[arg(long)]
    pub new: bool,
}

/// Exit codes of a ceremony that stopped.
pub fn map(e: DriverError) -> CliError {
    match e {
        DriverError::Io(m) => CliError::Io(m),
        DriverError::Refused(m) => CliError::Invalid(m),
        // Refused, as the token commands (docs/hsm.md): exit 1.
        DriverError::WrongPin(m)
        | DriverError::WrongManagementKey(m)
        | DriverError::PinLocked(m) => CliError::Invalid(m),
        DriverError::TokenRemoved(m) | DriverError::InUse(m) => CliError::Io(m),
        // The step, the record and why, with the exit code of why: a failed write is I/O (2),
        // a refused event 1.
        DriverError::NotRecorded(n) => {
            let text = n.report();
            match map(n.source) {
                CliError::Io(_) => CliError::Io(text),
                CliError::Invalid(_) => CliError::Invalid(text),
                CliError::Usage(_) => CliError::Usage(text),
            }
        }
    }
}

/// Run `conclave rehearse`.
pub fn run(a: &RehearseArgs) -> Result<Outcome, CliError> {
    // Refused before any workspace or practice token is made.
    if let Some(why) = rehearse::no_rehearsal(&a.script) {
        return Err(CliError::Usage(why));
    }
    let headless = a.headless || super::tui::require_terminal().is_err();
    if !a.headless && headless {
        eprintln!("conclave: no terminal: the practice ceremony runs unattended (--headless)");
    }
    let dir = match &a.workspace {
        Some(d) => d.clone(),
        None => {
            let (d, continued) =
                rehearse::rehearsal_workspace(Path::new("."), &a.script, a.new, &SystemClock);
            if continued {
                eprintln!(
                    "conclave: continuing the unfinished practice ceremony \"{}\" in {} (for a new rehearsal instead: conclave rehearse --new)",
                    a.script,
                    d.display()
                );
            }
            d
        }
    };
    let ws = rehearse::prepare(&dir).map_err(map)?;
    let conf = ws.softhsm_conf();
    if rehearse::in_softhsm_child(REHEARSE_CHILD, &conf) {
        rehearse::die_with_parent().map_err(map)?;
    } else {
        // The ceremony runs in a child whose SOFTHSM2_CONF names the workspace's tokens.
        let mut args: Vec<std::ffi::OsString> = vec!["rehearse".into()];
        if headless {
            args.push("--headless".into());
        }
        if a.new {
            args.push("--new".into());
        }
        args.extend([
            "--script".into(),
            a.script.clone().into(),
            "--workspace".into(),
        ]);
        args.push(ws.dir.clone().into_os_string());
        let exit = rehearse::run_softhsm_child(args, &conf, REHEARSE_CHILD, true).map_err(map)?;
        // A ceremony --new started is continued without it (--new is refused over it); a
        // --new that was refused started nothing, and the refusal above says why.
        let stopped = || {
            if a.new {
                format!(
                    "the rehearsal in {} {exit}; if it started a ceremony, continue it with conclave rehearse{} --script {} --workspace {} (without --new)",
                    ws.dir.display(),
                    if headless { " --headless" } else { "" },
                    a.script,
                    ws.dir.display()
                )
            } else {
                format!(
                    "the rehearsal in {} {exit}; run the same command to continue",
                    ws.dir.display()
                )
            }
        };
        return match exit {
            ChildExit::Finished => Ok(Outcome {
                stdout: String::new(),
                success: true,
            }),
            ChildExit::Refused => Err(CliError::Invalid(stopped())),
            ChildExit::Failed(_) | ChildExit::Killed(_) => Err(CliError::Io(stopped())),
        };
    }
    if !headless {
        return super::tui::rehearse(&ws, &a.script, super::ceremony::start(a.new));
    }
    let report = rehearse::run(
        &ws,
        &a.script,
        Path::new("/sys"),
        super::ceremony::start(a.new),
    )
    .map_err(map)?;
    let head = format!(
        "PRACTICE ceremony \"{}\" in {} (SoftHSM2 practice tokens of {})",
        a.script,
        ws.dir.display(),
        report.keyholders.join(", ")
    );
    finish(head, &report)
}

/// What a finished (or continued) ceremony printed, and the auditor's checks of its output.
pub fn finish(head: String, report: &rehearse::CeremonyReport) -> Result<Outcome, CliError> {
    let mut out = String::new();
    let _ = writeln!(out, "{head}");
    // Check the results as an auditor would; a failed check is never called complete.
    let checks = rehearse::check(report, &rehearse::SystemClock).map_err(map)?;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.kind.title())
        .collect();
    if report.already_complete && !failed.is_empty() {
        let _ = writeln!(
            out,
            "this ceremony was sealed earlier and nothing was changed, but it is NOT complete: {} FAILED",
            failed.join("; ")
        );
    } else if report.already_complete {
        let _ = writeln!(
            out,
            "this ceremony was already complete and sealed; nothing was changed"
        );
    }
    if let Some(another) = &report.another {
        let _ = writeln!(out, "{another}");
    } else if report.resumed {
        let _ = writeln!(
            out,
            "continued an interrupted run: {} events replayed from the transcript",
            report.resumed_events
        );
    }
    for f in &report.repaired {
        let _ = writeln!(
            out,
            "practice token file {f} was emptied by the interruption (SoftHSM2 rewrites it in place) and was restored from the saved copy"
        );
    }
    for c in &report.cleaned {
        let _ = writeln!(
            out,
            "cleaned after an interruption (in the transcript): {c}"
        );
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning (acknowledged, in the transcript): {w}");
    }
    if !report.keys.is_empty() {
        let _ = writeln!(out, "\nkeys generated in the tokens:");
    }
    for (who, serial, keyid, scheme) in &report.keys {
        let _ = writeln!(out, "  {who:<6} token {serial}  {scheme:<20} {keyid}");
    }
    let _ = writeln!(out, "\nreviewed:");
    for line in &report.review {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "signed (SHA-256 of the canonical bytes):");
    for (role, d) in &report.digests {
        let _ = writeln!(out, "  {role:<8} {d}");
    }
    let _ = writeln!(out, "\nexported to {}:", report.export_dir.display());
    for f in &report.exported {
        let _ = writeln!(out, "  {f}");
    }
    let _ = writeln!(out, "transcript: {}", report.transcript.display());
    match hex::decode(&report.seal) {
        Ok(seal) => {
            let _ = writeln!(
                out,
                "seal: {}",
                crate::transcript::display::hex_groups(&seal)
            );
            let _ = writeln!(
                out,
                "      {}",
                crate::transcript::display::pgp_words(&seal).join(" ")
            );
        }
        Err(_) => {
            let _ = writeln!(out, "seal: {}", report.seal);
        }
    }

    let _ = writeln!(out);
    for c in &checks {
        let _ = writeln!(out, "{}", check_line(c));
    }
    let ok = failed.is_empty();
    if !ok {
        let _ = writeln!(
            out,
            "sealed, but the ceremony is NOT complete: {} FAILED",
            failed.join("; ")
        );
    }
    Ok(Outcome {
        stdout: out,
        success: ok,
    })
}

/// One check as the command line prints it: the auditor's command and its verdict.
pub fn check_line(c: &rehearse::Check) -> String {
    let verdict = match (c.passed, &c.reason, c.kind) {
        (true, _, _) => "VALID".to_string(),
        (false, Some(r), _) => format!("FAILED: {}", crate::transcript::display::clean(r)),
        (false, None, _) => "FAILED".to_string(),
    };
    match &c.note {
        Some(n) => format!("{}: {verdict} ({n})", c.command),
        None => format!("{}: {verdict}", c.command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::NotRecorded;

    /// A record not written keeps the exit code of why: a failed write is I/O (exit 2) and says
    /// how to continue; an event the engine refused is refused (exit 1). Both name the step
    /// and the record.
    #[test]
    fn a_record_not_written_exits_by_why() {
        let write = DriverError::from(NotRecorded::new(
            "6",
            "the key-generated record",
            DriverError::Io("writing the transcript: No space left on device".into()),
        ));
        let e = map(write);
        assert_eq!(e.exit_code(), 2, "{e}");
        assert_eq!(
            e.to_string(),
            "step 6: the key-generated record was NOT recorded: writing the transcript: No space \
             left on device; the same command continues the ceremony from the last record on disk"
        );
        let refused = DriverError::from(NotRecorded::new(
            "4",
            "the roll-call record",
            DriverError::Refused("too few keyholders".into()),
        ));
        let e = map(refused);
        assert_eq!(e.exit_code(), 1, "{e}");
        assert_eq!(
            e.to_string(),
            "step 4: the roll-call record was NOT recorded: too few keyholders"
        );
    }
}
