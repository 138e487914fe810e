//! Ceremony scripts (`ceremony-scripts/*.toml`): data, not code. A script names the ceremony,
//! the people who must be present, its parameters, and numbered steps; each step has an actor, a
//! title, instructions for people, and one action from a fixed vocabulary that the engine
//! implements. [`Script::parse`] checks everything and names the line and field of each mistake.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

/// The people a ceremony can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Person {
    /// Leads the ceremony and operates the appliance.
    Administrator,
    /// Holds a token with a key.
    Keyholder,
    /// Watches and may record exceptions.
    Witness,
}

impl Person {
    /// Name as written in scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Person::Administrator => "administrator",
            Person::Keyholder => "keyholder",
            Person::Witness => "witness",
        }
    }

    fn parse(s: &str) -> Option<Person> {
        [Person::Administrator, Person::Keyholder, Person::Witness]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The fixed vocabulary of actions the engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A person confirms something physical (e.g. a tamper-evident bag serial).
    Acknowledge,
    /// The appliance checks it has no network interfaces other than loopback.
    AirgapCheck,
    /// The administrator confirms the appliance's clock against a reference.
    ClockConfirm,
    /// Names of the administrator, keyholders and witnesses present.
    RollCall,
    /// Load and verify the current metadata from the input media.
    LoadMetadata,
    /// Import public keys of online roles (snapshot, timestamp, bins) from the input media.
    ImportKeys,
    /// Import developers' key requests (PEP 480 claimed projects) from the input media.
    ImportRequests,
    /// Import an in-toto layout (unsigned) from the input media.
    ImportLayout,
    /// Import target files with their custom metadata, and a delegation to an online role,
    /// from the input media (publish-targets).
    ImportTargets,
    /// Import a tuf-on-ci signing event's `metadata/` folder and the known-good `metadata/`
    /// from the input media (sign-tuf-on-ci-event).
    ImportEvent,
    /// Import RSTUF's pending file (`GET /api/v1/metadata/sign/`: the pending root and its
    /// `trusted_root`) from the input media (sign-rstuf-pending-root).
    ImportPending,
    /// A keyholder presents their token; Conclave matches it to the keyholder.
    EnrollToken,
    /// Generate a key pair inside each keyholder's token.
    GenerateKey,
    /// Build the proposed metadata.
    Propose,
    /// Show the proposal as a diff and the digest to sign; the room approves.
    Review,
    /// Keyholders sign the reviewed digest with their tokens.
    Sign,
    /// Verify the result against the previous trusted root.
    Verify,
    /// Write the results to the export media.
    Export,
    /// Seal the transcript with the keyholders' signatures.
    Seal,
}

impl Action {
    /// All actions, for messages.
    pub const ALL: [Action; 19] = [
        Action::Acknowledge,
        Action::AirgapCheck,
        Action::ClockConfirm,
        Action::RollCall,
        Action::LoadMetadata,
        Action::ImportKeys,
        Action::ImportRequests,
        Action::ImportLayout,
        Action::ImportTargets,
        Action::ImportEvent,
        Action::ImportPending,
        Action::EnrollToken,
        Action::GenerateKey,
        Action::Propose,
        Action::Review,
        Action::Sign,
        Action::Verify,
        Action::Export,
        Action::Seal,
    ];

    /// Name as written in scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::AirgapCheck => "airgap-check",
            Action::ClockConfirm => "clock-confirm",
            Action::RollCall => "roll-call",
            Action::LoadMetadata => "load-metadata",
            Action::ImportKeys => "import-keys",
            Action::ImportRequests => "import-requests",
            Action::ImportLayout => "import-layout",
            Action::ImportTargets => "import-targets",
            Action::ImportEvent => "import-event",
            Action::ImportPending => "import-pending",
            Action::EnrollToken => "enroll-token",
            Action::GenerateKey => "generate-key",
            Action::Propose => "propose",
            Action::Review => "review",
            Action::Sign => "sign",
            Action::Verify => "verify",
            Action::Export => "export",
            Action::Seal => "seal",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of ceremony the engine knows how to propose metadata for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Root v1 and targets v1 from keys generated in the keyholders' tokens.
    BootstrapRoot,
    /// Add or remove root keyholders, change the root threshold.
    RotateRootKeys,
    /// New targets keys in root; targets re-signed with them.
    RotateTargetsKeys,
    /// Re-sign root and targets with new expiry (versions bumped).
    RefreshExpiry,
    /// Replace snapshot/timestamp keys from public keys on the input media.
    RotateOnlineKeys,
    /// Delegate to developers' keys (PEP 480 claimed projects).
    DelegateClaimedProjects,
    /// Sign an in-toto layout with the targets keys and add it as a target of the next targets.
    SignIntotoLayout,
    /// Publish target files (with custom metadata) and a delegation to an online role.
    PublishTargets,
    /// Sign a tuf-on-ci signing event (its changed roles) against the known-good metadata.
    SignTufOnCiEvent,
    /// Sign RSTUF's pending root (Distributed Asynchronous Signing) after reviewing it against
    /// its trusted root.
    SignRstufPendingRoot,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 10] = [
        Kind::BootstrapRoot,
        Kind::RotateRootKeys,
        Kind::RotateTargetsKeys,
        Kind::RefreshExpiry,
        Kind::RotateOnlineKeys,
        Kind::DelegateClaimedProjects,
        Kind::SignIntotoLayout,
        Kind::PublishTargets,
        Kind::SignTufOnCiEvent,
        Kind::SignRstufPendingRoot,
    ];

    /// Name as written in scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BootstrapRoot => "bootstrap-root",
            Kind::RotateRootKeys => "rotate-root-keys",
            Kind::RotateTargetsKeys => "rotate-targets-keys",
            Kind::RefreshExpiry => "refresh-expiry",
            Kind::RotateOnlineKeys => "rotate-online-keys",
            Kind::DelegateClaimedProjects => "delegate-claimed-projects",
            Kind::SignIntotoLayout => "sign-intoto-layout",
            Kind::PublishTargets => "publish-targets",
            Kind::SignTufOnCiEvent => "sign-tuf-on-ci-event",
            Kind::SignRstufPendingRoot => "sign-rstuf-pending-root",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Actions every script of this kind must contain, in this order.
    pub fn required_actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Kind::BootstrapRoot => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                ImportKeys,
                GenerateKey,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            Kind::RotateRootKeys | Kind::RotateTargetsKeys => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                GenerateKey,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            Kind::RefreshExpiry => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            Kind::RotateOnlineKeys => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                ImportKeys,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            Kind::PublishTargets => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                ImportTargets,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            // The event is reviewed (tuf-on-ci's CI rules) when it is imported, before any PIN.
            Kind::SignTufOnCiEvent => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                ImportEvent,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            // The pending root is reviewed against its trusted root when it is imported, before
            // any PIN.
            Kind::SignRstufPendingRoot => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                ImportPending,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            Kind::DelegateClaimedProjects => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                ImportRequests,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
            // The layout is signed first; the next targets then lists the signed layout file
            // (its final bytes) and is reviewed and signed in turn.
            Kind::SignIntotoLayout => &[
                AirgapCheck,
                ClockConfirm,
                RollCall,
                LoadMetadata,
                ImportLayout,
                Propose,
                Review,
                Sign,
                Propose,
                Review,
                Sign,
                Verify,
                Export,
                Seal,
            ],
        }
    }
}

/// Minimum and maximum number of people of one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// At least this many.
    pub min: u32,
    /// At most this many, if limited.
    pub max: Option<u32>,
}

/// A script parameter's type and default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// An integer (thresholds, days, bin counts).
    Integer(i64),
    /// A choice among strings.
    Choice(String),
    /// Free text.
    Text(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Integer(i) => write!(f, "{i}"),
            ParamValue::Choice(s) | ParamValue::Text(s) => f.write_str(s),
        }
    }
}

/// A parameter declared by a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    /// Name.
    pub name: String,
    /// What it means, for the paper form.
    pub description: String,
    /// Default value (the type follows from it).
    pub default: ParamValue,
    /// Allowed range for integers.
    pub min: Option<i64>,
    /// Allowed range for integers.
    pub max: Option<i64>,
    /// Allowed values for choices.
    pub choices: Vec<String>,
}

impl Parameter {
    /// What values it takes, for the editor: `a whole number from 1 to 1830`, `one of
    /// ed25519, ecdsa-p256, ecdsa-p384`, `text`.
    pub fn allowed(&self) -> String {
        match &self.default {
            ParamValue::Integer(_) => match (self.min, self.max) {
                (Some(a), Some(b)) => format!("a whole number from {a} to {b}"),
                (Some(a), None) => format!("a whole number, at least {a}"),
                (None, Some(b)) => format!("a whole number, at most {b}"),
                (None, None) => "a whole number".to_string(),
            },
            ParamValue::Choice(_) => format!("one of {}", self.choices.join(", ")),
            ParamValue::Text(_) => "text".to_string(),
        }
    }
}

/// One numbered step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Step number as written ("1", "2", ...; shown to people and recorded in the transcript).
    pub id: String,
    /// Who acts.
    pub actor: Person,
    /// Short title.
    pub title: String,
    /// What people do, as shown on screen and printed.
    pub instructions: String,
    /// What the engine does.
    pub action: Action,
    /// Action-specific settings (e.g. `prompt` for acknowledge, `role` for sign).
    pub with: BTreeMap<String, String>,
    /// Line in the script file where the step starts.
    pub line: usize,
}

/// A validated ceremony script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Script name (file stem by convention).
    pub name: String,
    /// Title for the paper form.
    pub title: String,
    /// Why this ceremony is held.
    pub purpose: String,
    /// The engine's ceremony kind.
    pub kind: Kind,
    /// Who must be present.
    pub presence: BTreeMap<Person, Presence>,
    /// Parameters with their defaults.
    pub parameters: Vec<Parameter>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The expiry window: nothing expiring sooner than this is ever signed.
    pub min_expiry_days: i64,
    /// The expiry window: an expiry further away than this is a warning to acknowledge.
    pub max_expiry_days: Option<i64>,
}

/// The minimum expiry window when a script does not set one: a week, time enough to hold the
/// next ceremony.
pub const DEFAULT_MIN_EXPIRY_DAYS: i64 = 7;

/// A mistake in a script, with its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScriptError {
    /// File name as given.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// The field (`step 4 action`, `parameters.root_threshold.default`, ...).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    ceremony: Spanned<RawCeremony>,
    #[serde(default)]
    people: BTreeMap<Spanned<String>, Spanned<RawPresence>>,
    #[serde(default)]
    parameters: BTreeMap<Spanned<String>, Spanned<RawParameter>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCeremony {
    name: Spanned<String>,
    title: String,
    purpose: String,
    kind: Spanned<String>,
    min_expiry_days: Option<Spanned<i64>>,
    max_expiry_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPresence {
    min: u32,
    max: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    #[serde(default)]
    description: String,
    default: Spanned<toml::Value>,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(default)]
    choices: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    actor: Spanned<String>,
    title: String,
    #[serde(default)]
    instructions: String,
    action: Spanned<String>,
    #[serde(default)]
    with: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// Settings each action accepts (`with` keys) and which of them are required.
fn action_settings(a: Action) -> (&'static [&'static str], &'static [&'static str]) {
    match a {
        Action::Acknowledge => (&["prompt"], &["prompt", "record"]),
        Action::Sign | Action::Review | Action::Propose => (&[], &["role", "roles"]),
        Action::LoadMetadata => (&[], &["source"]),
        Action::ImportKeys => (&[], &["roles"]),
        Action::ImportLayout => (&[], &["file"]),
        Action::ImportEvent => (&[], &["event", "known_good"]),
        Action::ImportPending => (&[], &["file", "trusted_root"]),
        // `existing = "use"`: take a key the token already holds under the ceremony's label
        // instead of generating one (shown as existing in the review and the transcript).
        Action::GenerateKey => (&[], &["for", "existing"]),
        Action::EnrollToken => (&[], &["for"]),
        Action::Export => (&[], &["destination"]),
        _ => (&[], &[]),
    }
}

struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}

impl Script {
    /// Parse and check a script. `file` is used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Script, Vec<ScriptError>> {
        let lines = Lines { text };
        let err = |line: usize, field: &str, message: String| ScriptError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message,
        };
        let raw: RawScript = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map_or(0, |s| lines.line(s.start));
                return Err(vec![err(line, "script", e.message().trim().to_string())]);
            }
        };
        let mut errors = Vec::new();
        let ceremony_line = lines.line(raw.ceremony.span().start);
        let c = raw.ceremony.into_inner();
        let kind = match Kind::parse(c.kind.get_ref()) {
            Some(k) => Some(k),
            None => {
                errors.push(err(
                    lines.line(c.kind.span().start),
                    "ceremony.kind",
                    format!(
                        "unknown kind \"{}\"; known: {}",
                        c.kind.get_ref(),
                        Kind::ALL.map(Kind::as_str).join(", ")
                    ),
                ));
                None
            }
        };
        let min_expiry_days = c
            .min_expiry_days
            .as_ref()
            .map_or(DEFAULT_MIN_EXPIRY_DAYS, |v| *v.get_ref());
        let max_expiry_days = c.max_expiry_days.as_ref().map(|v| *v.get_ref());
        if let Some(v) = &c.min_expiry_days
            && *v.get_ref() < 1
        {
            errors.push(err(
                lines.line(v.span().start),
                "ceremony.min_expiry_days",
                "at least 1 day".into(),
            ));
        }
        if let Some(v) = &c.max_expiry_days
            && *v.get_ref() < min_expiry_days
        {
            errors.push(err(
                lines.line(v.span().start),
                "ceremony.max_expiry_days",
                format!("below min_expiry_days ({min_expiry_days})"),
            ));
        }
        let name = c.name.get_ref().clone();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            errors.push(err(
                lines.line(c.name.span().start),
                "ceremony.name",
                "use lowercase letters, digits and '-'".into(),
            ));
        }

        let mut presence = BTreeMap::new();
        for (who, p) in &raw.people {
            let line = lines.line(who.span().start);
            match Person::parse(who.get_ref()) {
                Some(person) => {
                    let p = p.get_ref();
                    if p.max.is_some_and(|m| m < p.min) {
                        errors.push(err(
                            line,
                            &format!("people.{}", who.get_ref()),
                            "max is below min".into(),
                        ));
                    }
                    presence.insert(
                        person,
                        Presence {
                            min: p.min,
                            max: p.max,
                        },
                    );
                }
                None => errors.push(err(
                    line,
                    &format!("people.{}", who.get_ref()),
                    "unknown kind of person; use administrator, keyholder or witness".into(),
                )),
            }
        }
        for person in [Person::Administrator, Person::Keyholder, Person::Witness] {
            if !presence.contains_key(&person) {
                errors.push(err(
                    ceremony_line,
                    &format!("people.{}", person.as_str()),
                    "missing: every ceremony names how many must be present".into(),
                ));
            }
        }
        if presence
            .get(&Person::Administrator)
            .is_some_and(|p| p.min < 1)
        {
            errors.push(err(
                ceremony_line,
                "people.administrator",
                "at least one administrator leads the ceremony".into(),
            ));
        }

        let mut parameters = Vec::new();
        for (pname, p) in raw.parameters {
            let line = lines.line(pname.span().start);
            let field = format!("parameters.{}", pname.get_ref());
            let p = p.into_inner();
            let dline = lines.line(p.default.span().start);
            let default = match p.default.get_ref() {
                toml::Value::Integer(i) => {
                    if p.min.is_some_and(|m| *i < m) || p.max.is_some_and(|m| *i > m) {
                        errors.push(err(
                            dline,
                            &format!("{field}.default"),
                            format!("{i} is outside min..max"),
                        ));
                    }
                    ParamValue::Integer(*i)
                }
                toml::Value::String(s) if !p.choices.is_empty() => {
                    if !p.choices.contains(s) {
                        errors.push(err(
                            dline,
                            &format!("{field}.default"),
                            format!("\"{s}\" is not one of the choices"),
                        ));
                    }
                    ParamValue::Choice(s.clone())
                }
                toml::Value::String(s) => ParamValue::Text(s.clone()),
                other => {
                    errors.push(err(
                        dline,
                        &format!("{field}.default"),
                        format!("must be an integer or a string, found {}", other.type_str()),
                    ));
                    continue;
                }
            };
            let _ = line;
            parameters.push(Parameter {
                name: pname.into_inner(),
                description: p.description,
                default,
                min: p.min,
                max: p.max,
                choices: p.choices,
            });
        }

        let mut steps = Vec::new();
        let mut seen_ids: Vec<String> = Vec::new();
        for (i, s) in raw.step.into_iter().enumerate() {
            let sline = lines.line(s.span().start);
            let s = s.into_inner();
            let id = s.id.get_ref().clone();
            let field = |f: &str| {
                format!(
                    "step {} {f}",
                    if id.is_empty() {
                        (i + 1).to_string()
                    } else {
                        id.clone()
                    }
                )
            };
            if id != (i + 1).to_string() {
                errors.push(err(
                    lines.line(s.id.span().start),
                    &field("id"),
                    format!(
                        "steps are numbered 1, 2, 3, ... in order; expected \"{}\"",
                        i + 1
                    ),
                ));
            }
            if seen_ids.contains(&id) {
                errors.push(err(
                    lines.line(s.id.span().start),
                    &field("id"),
                    "duplicate step id".into(),
                ));
            }
            seen_ids.push(id.clone());
            let actor = match Person::parse(s.actor.get_ref()) {
                Some(p) if presence.contains_key(&p) => Some(p),
                Some(p) => {
                    errors.push(err(
                        lines.line(s.actor.span().start),
                        &field("actor"),
                        format!(
                            "\"{}\" is not among the people of this ceremony",
                            p.as_str()
                        ),
                    ));
                    None
                }
                None => {
                    errors.push(err(
                        lines.line(s.actor.span().start),
                        &field("actor"),
                        format!(
                            "unknown actor \"{}\"; use administrator, keyholder or witness",
                            s.actor.get_ref()
                        ),
                    ));
                    None
                }
            };
            let action = match Action::parse(s.action.get_ref()) {
                Some(a) => Some(a),
                None => {
                    errors.push(err(
                        lines.line(s.action.span().start),
                        &field("action"),
                        format!(
                            "unknown action \"{}\"; known: {}",
                            s.action.get_ref(),
                            Action::ALL.map(Action::as_str).join(", ")
                        ),
                    ));
                    None
                }
            };
            let mut with = BTreeMap::new();
            if let Some(a) = action {
                let (required, allowed) = action_settings(a);
                for (k, v) in s.with {
                    if !allowed.contains(&k.get_ref().as_str()) {
                        errors.push(err(
                            lines.line(k.span().start),
                            &field(&format!("with.{}", k.get_ref())),
                            format!("action {a} takes no setting \"{}\"", k.get_ref()),
                        ));
                    }
                    with.insert(k.into_inner(), v.into_inner());
                }
                for r in required {
                    if !with.contains_key(*r) {
                        errors.push(err(
                            sline,
                            &field(&format!("with.{r}")),
                            format!("action {a} needs \"{r}\""),
                        ));
                    }
                }
                if let Some(v) = with.get("existing")
                    && v != "use"
                {
                    errors.push(err(
                        sline,
                        &field("with.existing"),
                        format!("existing must be \"use\" (or left out: a new key is generated), not \"{v}\""),
                    ));
                }
                for key in ["role", "roles"] {
                    for role in with
                        .get(key)
                        .map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if ![
                            "root",
                            "targets",
                            "snapshot",
                            "timestamp",
                            "delegations",
                            "layout",
                            "online",
                        ]
                        .contains(&role)
                        {
                            errors.push(err(
                                sline,
                                &field(&format!("with.{key}")),
                                format!("unknown role \"{role}\""),
                            ));
                        }
                    }
                }
            }
            if s.title.trim().is_empty() {
                errors.push(err(
                    sline,
                    &field("title"),
                    "every step needs a title".into(),
                ));
            }
            if let (Some(actor), Some(action)) = (actor, action) {
                steps.push(Step {
                    id,
                    actor,
                    title: s.title,
                    instructions: s.instructions,
                    action,
                    with,
                    line: sline,
                });
            }
        }
        if steps.is_empty() && errors.is_empty() {
            errors.push(err(ceremony_line, "step", "a script needs steps".into()));
        }

        // Order of the kind's required actions.
        if let Some(kind) = kind {
            let mut pos = 0usize;
            for required in kind.required_actions() {
                match steps[pos..].iter().position(|s| s.action == *required) {
                    Some(p) => pos += p + 1,
                    None => errors.push(err(
                        ceremony_line,
                        "step",
                        format!(
                            "a {} ceremony needs a {required} step after the {} steps before it (required order: {})",
                            kind.as_str(),
                            if pos == 0 { "first".to_string() } else { format!("{pos}") },
                            kind.required_actions().iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" → ")
                        ),
                    )),
                }
            }
            if let Some(last) = steps.last()
                && last.action != Action::Seal
            {
                errors.push(err(
                    last.line,
                    &format!("step {} action", last.id),
                    "the last step must be seal".into(),
                ));
            }
        }

        // Thresholds must be reachable by the keyholders present.
        let keyholders_min = presence.get(&Person::Keyholder).map_or(0, |p| p.min);
        for p in &parameters {
            if p.name.ends_with("threshold")
                && let ParamValue::Integer(t) = p.default
            {
                if t < 1 {
                    errors.push(err(
                        0,
                        &format!("parameters.{}.default", p.name),
                        "a threshold is at least 1".into(),
                    ));
                } else if (p.name.starts_with("root") || p.name.starts_with("targets"))
                    && t > i64::from(keyholders_min)
                {
                    errors.push(err(
                        0,
                        &format!("parameters.{}.default", p.name),
                        format!(
                            "threshold {t} is larger than the {keyholders_min} keyholder(s) the script requires"
                        ),
                    ));
                }
            }
            if p.name.ends_with("expiry_days")
                && let ParamValue::Integer(d) = p.default
            {
                if d < min_expiry_days {
                    errors.push(err(
                        0,
                        &format!("parameters.{}.default", p.name),
                        format!(
                            "{d} days is inside the script's minimum expiry window ({min_expiry_days} days)"
                        ),
                    ));
                } else if max_expiry_days.is_some_and(|m| d > m) {
                    errors.push(err(
                        0,
                        &format!("parameters.{}.default", p.name),
                        format!(
                            "{d} days is beyond the script's maximum expiry window ({} days)",
                            max_expiry_days.unwrap_or(d)
                        ),
                    ));
                }
            }
        }

        if !errors.is_empty() {
            // Errors without a line (checks across fields) point at the [ceremony] table.
            for e in &mut errors {
                if e.line == 0 {
                    e.line = ceremony_line;
                }
            }
            return Err(errors);
        }
        Ok(Script {
            name,
            title: c.title,
            purpose: c.purpose,
            kind: kind.unwrap_or(Kind::BootstrapRoot),
            presence,
            parameters,
            steps,
            min_expiry_days,
            max_expiry_days,
        })
    }

    /// A parameter's default.
    pub fn parameter(&self, name: &str) -> Option<&ParamValue> {
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/ceremony-scripts/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn bootstrap_script_parses() {
        let s = Script::parse("bootstrap-root.toml", &shipped("bootstrap-root")).unwrap();
        assert_eq!(s.kind, Kind::BootstrapRoot);
        assert_eq!(s.steps.len(), 12);
        assert_eq!(s.steps[5].action, Action::GenerateKey);
        assert_eq!(s.parameter("root_threshold"), Some(&ParamValue::Integer(2)));
    }

    #[test]
    fn a_generate_key_step_takes_an_existing_key_only_when_it_says_use() {
        let text = shipped("bootstrap-root");
        let with = "with = { for = \"keyholders\" }";
        let s = Script::parse(
            "b.toml",
            &text.replace(with, "with = { for = \"keyholders\", existing = \"use\" }"),
        )
        .unwrap();
        assert_eq!(
            s.steps[5].with.get("existing").map(String::as_str),
            Some("use")
        );
        let e = Script::parse(
            "b.toml",
            &text.replace(with, "with = { for = \"keyholders\", existing = \"yes\" }"),
        )
        .unwrap_err();
        assert!(
            e.iter()
                .any(|x| x.field.ends_with("with.existing") && x.message.contains("not \"yes\"")),
            "{e:?}"
        );
    }

    #[test]
    fn every_shipped_script_parses_and_covers_every_kind() {
        let dir = format!("{}/ceremony-scripts", env!("CARGO_MANIFEST_DIR"));
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let s = Script::parse(&path.display().to_string(), &text)
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                s.name,
                "file name = script name"
            );
            kinds.push(s.kind);
        }
        for k in Kind::ALL {
            assert!(kinds.contains(&k), "no script for {}", k.as_str());
        }
    }

    fn errors(text: &str) -> Vec<String> {
        Script::parse("t.toml", text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn mistakes_are_named_with_line_and_field() {
        let good = shipped("bootstrap-root");
        let e = errors(&good.replace("action = \"propose\"", "action = \"propse\""));
        assert!(
            e.iter()
                .any(|m| m.contains("step 7 action: unknown action \"propse\"")),
            "{e:?}"
        );
        let line = good
            .lines()
            .position(|l| l.contains("action = \"propose\""))
            .unwrap()
            + 1;
        assert!(
            e.iter().any(|m| m.starts_with(&format!("t.toml:{line}:"))),
            "{e:?}"
        );

        let e = errors(&good.replace("actor = \"witness\"", "actor = \"auditor\""));
        assert!(
            e.iter()
                .any(|m| m.contains("step 8 actor: unknown actor \"auditor\"")),
            "{e:?}"
        );

        let e = errors(&good.replace(
            "root_threshold = { default = 2",
            "root_threshold = { default = 4",
        ));
        assert!(
            e.iter()
                .any(|m| m.contains("threshold 4 is larger than the 3 keyholder(s)")),
            "{e:?}"
        );

        let e = errors(&good.replace(
            "with = { prompt = \"Tamper-evident bag serial of the appliance\", record = \"text\" }",
            "",
        ));
        assert!(
            e.iter()
                .any(|m| m.contains("step 1 with.prompt: action acknowledge needs \"prompt\"")),
            "{e:?}"
        );

        let e = errors(&good.replace("id = \"3\"", "id = \"4\""));
        assert!(e.iter().any(|m| m.contains("expected \"3\"")), "{e:?}");

        let e = errors(&good.replace("title = \"Sign\"\n", "title = \"Sign\"\ncolour = \"red\"\n"));
        assert!(e.iter().any(|m| m.contains("colour")), "{e:?}");

        let e = errors(&good.replace(
            "action = \"verify\"",
            "action = \"acknowledge\"\nwith = { prompt = \"x\" }",
        ));
        assert!(e.iter().any(|m| m.contains("needs a verify step")), "{e:?}");

        let e = errors("not toml [");
        assert!(e[0].starts_with("t.toml:1: script:"), "{e:?}");

        // The expiry window: defaults inside it, a window upside down.
        let e = errors(&good.replace(
            "kind = \"bootstrap-root\"",
            "kind = \"bootstrap-root\"\nmin_expiry_days = 120",
        ));
        assert!(
            e.iter().any(|m| m.contains(
                "parameters.targets_expiry_days.default: 90 days is inside the script's minimum expiry window (120 days)"
            )),
            "{e:?}"
        );
        let e = errors(&good.replace(
            "kind = \"bootstrap-root\"",
            "kind = \"bootstrap-root\"\nmin_expiry_days = 30\nmax_expiry_days = 20",
        ));
        assert!(
            e.iter()
                .any(|m| m.contains("ceremony.max_expiry_days: below min_expiry_days (30)")),
            "{e:?}"
        );
    }
}
