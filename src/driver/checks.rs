//! The checks of a finished ceremony's output, made the way an auditor makes them: the exported
//! metadata (`conclave verify`), the transcript against the exported files (`conclave transcript
//! verify`), and the key-event log (`conclave log verify`). The verdicts are data: the command
//! line and the terminal UI render them.

use crate::tuf::canonical::DEFAULT_MAX_FILE_SIZE;

use super::audit_files::{AuditFiles, AuditPaths, read_log, verify_repository_folder};
use super::clock::Clock;
use super::error::DriverError;
use super::report::CeremonyReport;

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// The exported metadata, from the first root (`conclave verify`).
    Metadata,
    /// The transcript and its seal against the exported files (`conclave transcript verify`).
    Transcript,
    /// The key-event log (`conclave log verify`).
    KeyEventLog,
}

impl CheckKind {
    /// The short name shown on the UI's summary screen.
    pub fn title(self) -> &'static str {
        match self {
            CheckKind::Metadata => "Metadata (conclave verify)",
            CheckKind::Transcript => "Transcript (transcript verify)",
            CheckKind::KeyEventLog => "Key-event log (log verify)",
        }
    }
}

/// One check of the output and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What it looks at.
    pub kind: CheckKind,
    /// The command an auditor runs to make the same check.
    pub command: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed, when the check says.
    pub reason: Option<String>,
    /// More about a passed or failed check (who signed the log's checkpoint here).
    pub note: Option<String>,
}

/// Check a finished ceremony's output as an auditor would.
pub fn check(report: &CeremonyReport, clock: &dyn Clock) -> Result<Vec<Check>, DriverError> {
    let export = &report.export_dir;
    // A signed tuf-on-ci event exports signatures, not a repository: they are checked against
    // the event, and the transcript is anchored in the known-good root.
    let tuf_on_ci = super::tuf_on_ci::output_check(report);
    let first = tuf_on_ci
        .as_ref()
        .map_or_else(|| export.join("1.root.json"), |(_, kg)| kg.clone());
    // An RSTUF bootstrap that left root v1 pending: checked as RSTUF's payload, and the
    // transcript cannot be anchored in root v1 yet.
    // Signatures over RSTUF's pending root: checked against the pending root the transcript
    // recorded, and the transcript is anchored in its trusted root (unanchored for a pending
    // root v1: no root is in force yet).
    let rstuf_sign = super::rstuf::pending_sign_check(report);
    let pending = if rstuf_sign.is_none() {
        super::rstuf::pending_bootstrap(export)
    } else {
        None
    };
    let unanchored = pending.is_some() || rstuf_sign.as_ref().is_some_and(|(_, a)| a.is_none());
    let mut checks = match (tuf_on_ci, &rstuf_sign) {
        (Some((c, _)), _) => vec![c],
        (None, Some((c, _))) => vec![c.clone()],
        (None, None) => {
            // Exactly `conclave verify --trusted-root EXPORT/1.root.json --repo EXPORT`.
            let (verified, _) =
                verify_repository_folder(&first, export, DEFAULT_MAX_FILE_SIZE, clock.now())
                    .map_err(|e| DriverError::Io(e.to_string()))?;
            vec![Check {
                kind: CheckKind::Metadata,
                command: format!(
                    "conclave verify --trusted-root {0}/1.root.json --repo {0}",
                    export.display()
                ),
                passed: verified.is_valid(),
                reason: verified.error.as_ref().map(ToString::to_string),
                note: None,
            }]
        }
    };
    if let Some((command, passed, reason, note)) = &pending {
        checks[0] = Check {
            kind: CheckKind::Metadata,
            command: command.clone(),
            passed: *passed,
            reason: reason.clone(),
            note: Some(note.clone()).filter(|n| !n.is_empty()),
        };
    }
    // Exactly the auditor's command, anchored in the workspace's first root (or in the trusted
    // root RSTUF's pending file carries, as the transcript recorded it), with the key-event
    // log when the ceremony wrote one. The log goes with an anchor only (its checkpoint is
    // signed by the keys of the root the transcript is anchored in): an unanchored transcript
    // (root v1 pending in RSTUF) is checked without it, and its log on its own below.
    let by_path = pending.is_none() && rstuf_sign.is_none();
    let mut files = AuditFiles::read(&AuditPaths {
        transcript: report.transcript.clone(),
        artifacts: Some(export.clone()),
        trusted_root: by_path.then(|| first.clone()),
        log: None,
    })
    .map_err(|e| DriverError::Io(e.to_string()))?;
    if let Some((_, anchor)) = &rstuf_sign {
        files.trusted_root = anchor.clone();
    }
    let log = report
        .key_log
        .as_ref()
        .map(|l| l.dir.clone())
        .filter(|_| files.trusted_root.is_some());
    if let Some(dir) = &log {
        files.log = Some(read_log(dir).map_err(|e| DriverError::Io(e.to_string()))?);
    }
    let a = files.verify(false);
    let anchor = match (&pending, &rstuf_sign) {
        (Some(_), _) | (None, Some((_, None))) => String::new(),
        (None, Some((_, Some((name, _))))) => format!(
            " --trusted-root TRUSTED-ROOT.json (the trusted_root of {}, as RSTUF serves it)",
            crate::text::show(name)
        ),
        (None, None) => format!(" --trusted-root {}", first.display()),
    };
    checks.push(Check {
        kind: CheckKind::Transcript,
        command: format!(
            "conclave transcript verify {} --artifacts {}{anchor}{}",
            report.transcript.display(),
            export.display(),
            log.as_ref()
                .map(|l| format!(" --log {}", l.display()))
                .unwrap_or_default()
        ),
        passed: if unanchored { a.intact() } else { a.passed() },
        reason: (!a.passed()).then(|| a.verdict_text().1),
        note: unanchored.then(|| {
            "unanchored: root v1 is pending in RSTUF; once RSTUF has its threshold, anchor the transcript with --trusted-root".to_string()
        }),
    });
    if let Some(l) = &report.key_log {
        let newest_root = super::inputs::latest(export, "root").map(|(_, p)| p);
        let result =
            super::log_dir::verify_dir(&l.dir, l.previous.as_deref(), newest_root.as_deref());
        let (passed, reason) = match &result {
            Ok((_, v)) => (v.passed(), v.first_failure().map(|c| c.text.clone())),
            Err(e) => (false, Some(e.to_string())),
        };
        checks.push(Check {
            kind: CheckKind::KeyEventLog,
            command: format!(
                "conclave log verify --log {}{}{}",
                l.dir.display(),
                l.previous
                    .as_ref()
                    .map(|p| format!(" --previous {}", p.display()))
                    .unwrap_or_default(),
                newest_root
                    .map(|p| format!(" --trusted-root {}", p.display()))
                    .unwrap_or_default(),
            ),
            passed,
            reason,
            note: Some(if report.already_complete {
                "checkpoint signed in an earlier run".to_string()
            } else {
                format!(
                    "checkpoint signed here by {}",
                    if l.signed_by.is_empty() {
                        "nobody".to_string()
                    } else {
                        l.signed_by.join(", ")
                    }
                )
            }),
        });
    }
    Ok(checks)
}
