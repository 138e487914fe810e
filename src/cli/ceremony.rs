//! `conclave ceremony check|print`: validate a ceremony script, render it as the paper form.

use std::path::{Path, PathBuf};

use crate::ceremony::print;
use crate::ceremony::script::Script;
use crate::folder::read_limited;
use crate::signer::pkcs11::PivSlot;

use super::{CliError, Outcome};

use crate::driver::MAX_SCRIPT;

/// `conclave ceremony ...`
#[derive(Debug, clap::Subcommand)]
pub enum CeremonyCommand {
    /// Validate a script; name the line and field of each mistake.
    Check {
        /// The script (ceremony-scripts/*.toml).
        file: PathBuf,
    },
    /// Run (or continue) a ceremony on real tokens, answered by an answers file.
    Run(RunArgs),
    /// Render a script as the paper form the room follows.
    Print {
        /// The script (ceremony-scripts/*.toml).
        file: PathBuf,
        /// A self-contained HTML page instead of text.
        #[arg(long)]
        html: bool,
    },
}

/// Arguments of `conclave ceremony run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script: a shipped name (bootstrap-root, ...) or a script file.
    pub script: String,
    /// Workspace: the transcript goes here; `WORKSPACE/input/` holds the input media (online
    /// keys, key requests), `WORKSPACE/export/` receives the results. Running the same command
    /// again continues an interrupted ceremony.
    #[arg(long, value_name = "DIR")]
    pub workspace: PathBuf,
    /// Answers file (TOML): people present, parameter values, token of each keyholder. Never
    /// PINs.
    #[arg(long, value_name = "FILE")]
    pub answers: PathBuf,
    /// Read the keyholders' PINs from standard input, one `keyholder=PIN` line each, and the
    /// PIV management key of a keyholder's YubiKey as a line `management-key:keyholder=HEX`
    /// (otherwise each is asked on the terminal when the token is used).
    #[arg(long)]
    pub pin_stdin: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Answers {
    /// Practice tokens (the air-gap check then warns instead of stopping).
    #[serde(default)]
    practice: bool,
    people: AnswerPeople,
    #[serde(default)]
    parameters: std::collections::BTreeMap<String, toml::Value>,
    /// Recorded at acknowledgement steps that record text.
    acknowledgement: String,
    /// The time a reference clock (a phone, a radio clock) shows, `YYYY-MM-DD HH:MM` UTC: the
    /// clock step checks the machine clock against it. Required unless `practice`.
    reference_time: Option<String>,
    /// Keyholder to token label or serial.
    #[serde(default)]
    tokens: std::collections::BTreeMap<String, String>,
    /// PKCS#11 module.
    module: Option<PathBuf>,
    /// A folder on removable media that receives the export too (besides `WORKSPACE/export/`).
    export_to: Option<PathBuf>,
    /// The key-event log's name, when this ceremony starts the registry's log (otherwise the
    /// previous log comes on the input media as `WORKSPACE/input/log`).
    log_origin: Option<String>,
    /// Keyholders whose token cannot be used, with the reason (`carol = "token does not
    /// start"`): skipped at the signing step and at the seal, each skip recorded.
    #[serde(default)]
    skip: std::collections::BTreeMap<String, String>,
    /// Close signing as soon as every threshold is met (keyholders not asked yet do not sign).
    #[serde(default)]
    close_signing_when_met: bool,
    /// The PIV slot keys are generated in on a YubiKey (9a, 9c, 9d, 9e, 82..95; default 9c).
    piv_slot: Option<String>,
    /// Keyholder to PIV slot, where it differs from `piv_slot`.
    #[serde(default)]
    piv_slots: std::collections::BTreeMap<String, String>,
    /// The SHA-256 of the key request set the registry published before the ceremony
    /// (`sha256sum *.json | sha256sum` in the request folder, 64 hex digits): the review is
    /// approved only when the requests on the input media hash to it; required when the review
    /// opens with a summary (more than 200 lines).
    request_set_sha256: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerPeople {
    administrator: String,
    keyholders: Vec<String>,
    witnesses: Vec<String>,
}

fn read_answers(path: &Path) -> Result<Answers, CliError> {
    let bytes = read_limited(path, MAX_SCRIPT).map_err(CliError::Io)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("{}: not UTF-8 text", path.display())))?;
    let answers: Answers = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        CliError::Usage(format!(
            "{}:{line}: {} (answers never hold PINs: use --pin-stdin or the terminal)",
            path.display(),
            crate::text::show_message(e.message().trim())
        ))
    })?;
    check_names(path, &answers)?;
    let mut answers = answers;
    if let Some(d) = &answers.request_set_sha256 {
        let d = d.trim().to_ascii_lowercase();
        if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CliError::Usage(format!(
                "{}: request_set_sha256: expected the 64 hex digits of a SHA-256, found \"{}\"",
                path.display(),
                crate::text::show(&d)
            )));
        }
        answers.request_set_sha256 = Some(d);
    }
    Ok(answers)
}

/// An answers file's `module = PATH` comes from the input media: it is loaded only when the
/// appliance's configuration names it or it lies in the image's module directories
/// ([`crate::config::Config::allow_input_module`]), checked here before anything is loaded.
fn check_module(path: &Path, answers: &mut Answers, config: Option<&Path>) -> Result<(), CliError> {
    let Some(module) = &answers.module else {
        return Ok(());
    };
    let env = std::env::var_os(crate::config::ENV_VAR);
    let cfg = crate::config::load(config, env.as_deref())
        .map_err(|e| CliError::Usage(format!("configuration: {e}")))?;
    let allowed = cfg
        .allow_input_module(module, crate::signer::pkcs11::MODULE_DIRS)
        .map_err(|why| {
            CliError::Usage(format!(
                "{}: module: refused: {}",
                path.display(),
                crate::text::show_message(&why)
            ))
        })?;
    answers.module = Some(allowed);
    Ok(())
}

/// The people's names of an answers file, checked where they enter (they are written into the
/// transcript and into root as key owners): see [`crate::text::check_name`].
fn check_names(path: &Path, a: &Answers) -> Result<(), CliError> {
    let p = &a.people;
    let mut fields = vec![("people.administrator".to_string(), p.administrator.as_str())];
    for (list, names) in [("keyholders", &p.keyholders), ("witnesses", &p.witnesses)] {
        for (i, n) in names.iter().enumerate() {
            fields.push((format!("people.{list}[{i}]"), n.as_str()));
        }
    }
    for k in a.tokens.keys() {
        fields.push((format!("tokens.{}", crate::text::show(k)), k.as_str()));
    }
    for (k, reason) in &a.skip {
        fields.push((format!("skip.{}", crate::text::show(k)), k.as_str()));
        if !p.keyholders.contains(k) {
            return Err(CliError::Usage(format!(
                "{}: skip.{}: not one of people.keyholders",
                path.display(),
                crate::text::show(k)
            )));
        }
        if reason.trim().is_empty()
            || reason.chars().count() > crate::ceremony::engine::MAX_REASON_CHARS
        {
            return Err(CliError::Usage(format!(
                "{}: skip.{}: give the reason the keyholder is skipped (1 to {} characters)",
                path.display(),
                crate::text::show(k),
                crate::ceremony::engine::MAX_REASON_CHARS
            )));
        }
    }
    for param in crate::ceremony::engine::NAME_LIST_PARAMS {
        if let Some(toml::Value::String(s)) = a.parameters.get(param) {
            for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                fields.push((format!("parameters.{param}"), n));
            }
        }
    }
    for (field, name) in fields {
        crate::text::check_name(name)
            .map_err(|e| CliError::Usage(format!("{}: {field}: the name {e}", path.display())))?;
    }
    Ok(())
}

/// Secrets read from standard input, by keyholder (or `keyholder@token`).
type Secrets = std::collections::BTreeMap<String, zeroize::Zeroizing<String>>;

/// Prefix of a standard input line giving a PIV management key instead of a PIN.
const MANAGEMENT_KEY_LINE: &str = "management-key:";

/// The PINs (`keyholder=PIN`, `keyholder@token=PIN`) and PIV management keys
/// (`management-key:keyholder=HEX`, `management-key:keyholder@token=HEX`) on standard input.
fn read_pins(keyholders: &[String]) -> Result<(Secrets, Secrets), CliError> {
    let mut pins = Secrets::new();
    let mut management_keys = Secrets::new();
    // One wiped buffer read straight from the descriptor (not through Stdin's buffer, which is
    // never wiped); each PIN is copied once, into its own wiped string.
    let input = crate::pin::read_pin_input()
        .map_err(|e| CliError::Io(format!("reading PINs from standard input: {e}")))?;
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((who, pin)) = line.split_once('=') else {
            return Err(CliError::Usage(format!(
                "standard input line {}: expected keyholder=PIN, keyholder@token=PIN or {MANAGEMENT_KEY_LINE}keyholder=KEY",
                n + 1
            )));
        };
        // `keyholder@token=PIN`: the PIN of one of the keyholder's tokens (label or serial),
        // for a keyholder who brings two (e.g. replacing their own token in a rotation). A
        // keyholder named by a handle (`@alice`, as tuf-on-ci records owners) keeps its `@`.
        let name_of = |w: &'_ str| -> usize {
            if keyholders.iter().any(|k| k == w) {
                w.len()
            } else {
                w.char_indices()
                    .skip(1)
                    .find(|(_, c)| *c == '@')
                    .map_or(w.len(), |(i, _)| i)
            }
        };
        let is_keyholder = |w: &str| keyholders.iter().any(|k| *k == w[..name_of(w)]);
        let who = who.trim();
        let (who, into) = match who.strip_prefix(MANAGEMENT_KEY_LINE) {
            Some(rest) if !is_keyholder(who) => (rest.trim(), &mut management_keys),
            _ => (who, &mut pins),
        };
        if !is_keyholder(who) {
            let name = &who[..name_of(who)];
            return Err(CliError::Usage(format!(
                "standard input line {}: \"{}\" is not a keyholder of the answers file",
                n + 1,
                crate::text::show(name)
            )));
        }
        into.insert(who.to_string(), zeroize::Zeroizing::new(pin.to_string()));
    }
    Ok((pins, management_keys))
}

/// The answers file's PIV slots: the ceremony's and each keyholder's.
fn piv_slots(
    path: &Path,
    one: Option<&str>,
    each: &std::collections::BTreeMap<String, String>,
    keyholders: &[String],
) -> Result<(Option<PivSlot>, std::collections::BTreeMap<String, PivSlot>), CliError> {
    let parse = |field: String, s: &str| {
        PivSlot::parse(s).ok_or_else(|| {
            CliError::Usage(format!(
                "{}: {field}: \"{}\" is not a PIV key slot (9a, 9c, 9d, 9e or 82..95)",
                path.display(),
                crate::text::show(s)
            ))
        })
    };
    let ceremony = one.map(|s| parse("piv_slot".to_string(), s)).transpose()?;
    let mut slots = std::collections::BTreeMap::new();
    for (who, s) in each {
        let field = format!("piv_slots.{}", crate::text::show(who));
        if !keyholders.contains(who) {
            return Err(CliError::Usage(format!(
                "{}: {field}: not one of people.keyholders",
                path.display()
            )));
        }
        slots.insert(who.clone(), parse(field, s)?);
    }
    Ok((ceremony, slots))
}

fn run_ceremony(a: &RunArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    use crate::ceremony::engine::ParamJson;
    use crate::driver::{self as rehearse, Plan, Workspace};
    let (name, text) = match rehearse::shipped_script(&a.script) {
        Some(t) if !Path::new(&a.script).exists() => (a.script.clone(), t.to_string()),
        _ => {
            let path = Path::new(&a.script);
            let bytes = read_limited(path, MAX_SCRIPT).map_err(CliError::Io)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| CliError::Usage(format!("{}: not UTF-8 text", path.display())))?;
            let script = load(path)?;
            (script.name, text)
        }
    };
    let mut answers = read_answers(&a.answers)?;
    check_module(&a.answers, &mut answers, config)?;
    let mut values = std::collections::BTreeMap::new();
    for (k, v) in answers.parameters {
        let v = match v {
            toml::Value::Integer(i) => ParamJson::Integer(i),
            toml::Value::String(s) => ParamJson::Text(s),
            other => {
                return Err(CliError::Usage(format!(
                    "{}: parameters.{k}: expected an integer or a string, found {}",
                    a.answers.display(),
                    other.type_str()
                )));
            }
        };
        values.insert(k, v);
    }
    // The module: the answers file's, else the configuration's, else the built-in search (a
    // real ceremony never falls back to SoftHSM2); said in the output.
    let module = crate::driver::module::choose_module_here(
        answers.module.as_deref(),
        true,
        config,
        crate::driver::module::ModuleUse::Ceremony {
            practice: answers.practice,
        },
    )
    .map_err(super::token::module_error)?;
    eprintln!("conclave: PKCS#11 module {}", module.describe());
    let (piv_slot, piv_slots) = piv_slots(
        &a.answers,
        answers.piv_slot.as_deref(),
        &answers.piv_slots,
        &answers.people.keyholders,
    )?;
    let (pins, management_keys) = if a.pin_stdin {
        read_pins(&answers.people.keyholders)?
    } else {
        (Secrets::new(), Secrets::new())
    };
    std::fs::create_dir_all(&a.workspace)
        .map_err(|e| CliError::Io(format!("{}: {e}", a.workspace.display())))?;
    let dir = a
        .workspace
        .canonicalize()
        .map_err(|e| CliError::Io(format!("{}: {e}", a.workspace.display())))?;
    let ws = Workspace { dir };
    let plan = Plan {
        practice: answers.practice,
        administrator: answers.people.administrator,
        keyholders: answers.people.keyholders,
        witnesses: answers.people.witnesses,
        values,
        reference_time: answers.reference_time,
        acknowledgement: answers.acknowledgement,
        tokens: answers.tokens,
        pins,
        management_keys,
        piv_slot,
        piv_slots,
        module: Some(module),
        export_to: answers.export_to,
        log_origin: answers.log_origin,
        skip: answers.skip,
        close_signing_when_met: answers.close_signing_when_met,
        request_set_sha256: answers.request_set_sha256,
    };
    let practice = plan.practice;

    let report = rehearse::run_real(&ws, &name, &text, Path::new("/sys"), plan)
        .map_err(super::rehearse::map)?;
    let head = format!(
        "{}ceremony \"{name}\" in {} (keyholders {})",
        if practice { "PRACTICE " } else { "" },
        ws.dir.display(),
        report.keyholders.join(", ")
    );
    super::rehearse::finish(head, &report)
}

fn load(file: &Path) -> Result<Script, CliError> {
    let bytes = read_limited(file, MAX_SCRIPT).map_err(CliError::Io)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Invalid(format!("{}: not UTF-8 text", file.display())))?;
    Script::parse(&file.display().to_string(), &text).map_err(|errors| {
        CliError::Invalid(
            errors
                .iter()
                .map(|e| crate::text::show_message(&e.to_string()))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Run a `ceremony` subcommand.
pub fn run(cmd: &CeremonyCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        CeremonyCommand::Check { file } => {
            let s = load(file)?;
            Ok(Outcome {
                stdout: format!(
                    "{}: {} ({}), {} steps: OK\n",
                    crate::text::show(&file.display().to_string()),
                    crate::text::show(&s.title),
                    s.kind.as_str(),
                    s.steps.len()
                ),
                success: true,
            })
        }
        CeremonyCommand::Run(a) => run_ceremony(a, config),
        CeremonyCommand::Print { file, html } => {
            let s = load(file)?;
            Ok(Outcome {
                stdout: if *html {
                    print::html(&s)
                } else {
                    print::text(&s)
                },
                success: true,
            })
        }
    }
}
