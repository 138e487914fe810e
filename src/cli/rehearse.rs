//! `conclave rehearse --headless`: an unattended practice ceremony on SoftHSM2 practice tokens,
//! checked at the end the way an auditor would (the exported metadata with `verify`, the
//! transcript with `transcript verify`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::ceremony::rehearse::{self, REHEARSE_CHILD, RehearseError};
use crate::folder::FolderSource;
use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;
use crate::tuf::repository::verify_repository;

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
    /// Workspace folder (practice tokens, transcript, export). Default: a new folder
    /// `rehearsal-YYYYMMDD-HHMMSS` in the current folder. Running again on the same workspace
    /// continues an interrupted rehearsal.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

fn default_workspace() -> PathBuf {
    let t = time::OffsetDateTime::now_utc();
    PathBuf::from(format!(
        "rehearsal-{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// Exit codes of a ceremony that stopped.
pub fn map(e: RehearseError) -> CliError {
    match e {
        RehearseError::Io(m) => CliError::Io(m),
        RehearseError::Refused(m) => CliError::Invalid(m),
    }
}

/// Run `conclave rehearse`.
pub fn run(a: &RehearseArgs) -> Result<Outcome, CliError> {
    let headless = a.headless || super::tui::require_terminal().is_err();
    if !a.headless && headless {
        eprintln!("conclave: no terminal: the practice ceremony runs unattended (--headless)");
    }
    let dir = a.workspace.clone().unwrap_or_else(default_workspace);
    let ws = rehearse::prepare(&dir).map_err(map)?;
    let conf = ws.softhsm_conf();
    let in_child = std::env::var_os(REHEARSE_CHILD).is_some_and(|v| Path::new(&v) == conf)
        && std::env::var_os("SOFTHSM2_CONF").is_some_and(|v| Path::new(&v) == conf);
    if !in_child {
        // SoftHSM2 reads SOFTHSM2_CONF when the module is initialised; this process's
        // environment cannot be changed safely, so the ceremony runs in a child with it.
        let exe = std::env::current_exe()
            .map_err(|e| CliError::Usage(format!("cannot find the conclave executable: {e}")))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("rehearse");
        if headless {
            cmd.arg("--headless");
        }
        let status = cmd
            .args(["--script", &a.script, "--workspace"])
            .arg(&ws.dir)
            .env("SOFTHSM2_CONF", &conf)
            .env(REHEARSE_CHILD, &conf)
            .status()
            .map_err(|e| CliError::Io(format!("cannot run conclave again: {e}")))?;
        return match status.code() {
            Some(0) => Ok(Outcome {
                stdout: String::new(),
                success: true,
            }),
            Some(1) => Err(CliError::Invalid(format!(
                "the rehearsal in {} stopped (see above); run the same command to continue",
                ws.dir.display()
            ))),
            _ => Err(CliError::Io(format!(
                "the rehearsal in {} stopped (see above); run the same command to continue",
                ws.dir.display()
            ))),
        };
    }
    if !headless {
        return super::tui::rehearse(&ws, &a.script);
    }
    let report = rehearse::run(&ws, &a.script, Path::new("/sys")).map_err(map)?;
    let head = format!(
        "PRACTICE ceremony \"{}\" in {} (SoftHSM2 practice tokens of {})",
        a.script,
        ws.dir.display(),
        report.keyholders.join(", ")
    );
    finish(head, &report)
}

/// What a finished (or continued) ceremony printed, and the auditor's checks of its output.
pub fn finish(head: String, report: &rehearse::RehearseReport) -> Result<Outcome, CliError> {
    let mut out = String::new();
    let _ = writeln!(out, "{head}");
    if report.already_complete {
        let _ = writeln!(
            out,
            "this ceremony was already complete and sealed; nothing was changed"
        );
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
            let _ = writeln!(out, "seal: {}", crate::transport::qr::hex_groups(&seal));
            let _ = writeln!(
                out,
                "      {}",
                crate::transport::qr::pgp_words(&seal).join(" ")
            );
        }
        Err(_) => {
            let _ = writeln!(out, "seal: {}", report.seal);
        }
    }

    // Check the results as an auditor would.
    let export = &report.export_dir;
    let root = std::fs::read(export.join("1.root.json"))
        .map_err(|e| CliError::Io(format!("{}: {e}", export.join("1.root.json").display())))?;
    let src = FolderSource::new(export, DEFAULT_MAX_FILE_SIZE)
        .map_err(|e| CliError::Io(format!("{}: {e}", export.display())))?;
    let verified = verify_repository("1.root.json", &root, &src, time::OffsetDateTime::now_utc());
    let _ = writeln!(
        out,
        "\nconclave verify --trusted-root {0}/1.root.json --repo {0}: {1}",
        export.display(),
        match &verified.error {
            None => "VALID".to_string(),
            Some(e) => format!("FAILED: {e}"),
        }
    );
    // Exactly the auditor's command, anchored in the workspace's first root.
    let trusted = export.join("1.root.json");
    let audit = super::transcript::run_verify(&super::transcript::VerifyTranscriptArgs {
        transcript: report.transcript.clone(),
        artifacts: Some(export.clone()),
        partial: false,
        json: false,
        report: None,
        trusted_root: Some(trusted.clone()),
        log: report.key_log.as_ref().map(|l| l.dir.clone()),
    })?;
    let _ = writeln!(
        out,
        "conclave transcript verify {} --artifacts {} --trusted-root {}{}: {}",
        report.transcript.display(),
        export.display(),
        trusted.display(),
        report
            .key_log
            .as_ref()
            .map(|l| format!(" --log {}", l.dir.display()))
            .unwrap_or_default(),
        if audit.success { "VALID" } else { "FAILED" }
    );
    if !audit.success
        && let Some(v) = audit
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("Verdict: "))
    {
        let _ = writeln!(out, "  {v}");
    }
    let mut ok = verified.is_valid() && audit.success;
    if let Some(l) = &report.key_log {
        let newest_root = (1u64..)
            .map(|v| export.join(format!("{v}.root.json")))
            .take_while(|p| p.exists())
            .last();
        let args = crate::cli::log::VerifyArgs {
            log: l.dir.clone(),
            previous: l.previous.clone(),
            trusted_root: newest_root.clone(),
            json: false,
        };
        let result = crate::cli::log::run(&crate::cli::log::LogCommand::Verify(args), None);
        let valid = result.as_ref().is_ok_and(|o| o.success);
        ok &= valid;
        let _ = writeln!(
            out,
            "conclave log verify --log {}{}{}: {} (checkpoint signed here by {})",
            l.dir.display(),
            l.previous
                .as_ref()
                .map(|p| format!(" --previous {}", p.display()))
                .unwrap_or_default(),
            newest_root
                .map(|p| format!(" --trusted-root {}", p.display()))
                .unwrap_or_default(),
            if valid { "VALID" } else { "FAILED" },
            if l.signed_by.is_empty() {
                "nobody".to_string()
            } else {
                l.signed_by.join(", ")
            }
        );
    }
    Ok(Outcome {
        stdout: out,
        success: ok,
    })
}
