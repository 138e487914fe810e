//! `conclave token ...` and `conclave sign`: the keyholder-token commands: arguments, the
//! keyholder at this terminal ([`Terminal`]), rendering and exit codes. The token work is the
//! driver's ([`driver::SigningKey`], [`driver::sign_file`], [`driver::list_tokens`],
//! [`driver::keygen`], [`driver::bench`], [`driver::init_practice`]).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{CliError, Outcome};
use crate::config::ModuleChoice;
use crate::driver::module::{
    ChosenModule, ModuleError, ModuleUse, Named, choose_module_here, chosen_by_text,
};
use crate::driver::{
    self, Ask, KeygenRequest, Keyholder, RootKey, SignRequest, SignedFile, SigningError,
    TokenModule, TrustedKeys,
};
use crate::signer::pkcs11::{
    EdParams, Module, Pin, PivSlot, TokenDesc, TokenError, key_type_name, parse_key_type,
};
use crate::tuf::key::{Algorithm, Key};

/// `conclave token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// List tokens (label, serial, maker, model, firmware, PIN flags) and their key pairs.
    List(ListArgs),
    /// Generate a key pair inside a token, self-test it, print its TUF key and key id.
    Keygen(KeygenArgs),
    /// Create SoftHSM2 practice tokens (one per keyholder) in a directory of their own.
    InitPractice(InitPracticeArgs),
    /// Measure signatures per second: the token alone (bare C_Sign) against Conclave's signing
    /// path (digest, C_Sign, DER, software verification), in one session.
    Bench(BenchArgs),
}

/// `conclave token bench`
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number.
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    token: String,
    /// The key, by label or key id.
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    key: String,
    /// Signatures per measurement.
    #[arg(long, default_value_t = 200)]
    count: u32,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pin_stdin: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options shared by commands that load a module.
#[derive(Debug, Clone, clap::Args)]
pub struct ModuleArg {
    /// PKCS#11 module (.so). Without it: the configuration's, else the one module of SoftHSM2,
    /// ykcs11, OpenSC, YubiHSM 2 (in the usual library directories) with a token present.
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
}

impl ModuleArg {
    /// [`ModuleArg::open`] with the module error kept typed.
    pub fn open_typed(&self, config: Option<&Path>) -> Result<Module, ModuleError> {
        choose_module_here(Named::flag(self.module.as_deref()), config, ModuleUse::Tool)?.open()
    }

    /// Load the PKCS#11 module: `--module`, else `pkcs11.module` / `pkcs11.modules` from the
    /// configuration file (`config`: the global `--config`, else `CONCLAVE_CONFIG`, else
    /// /etc/conclave/config.toml), else the built-in search list.
    pub fn open(&self, config: Option<&Path>) -> Result<Module, CliError> {
        self.open_typed(config).map_err(module_error)
    }

    /// Which module [`ModuleArg::open`] loads, and what chose it ([`choose_module_here`]);
    /// the caller reports it (`token list`: its first line).
    pub fn choose(&self, config: Option<&Path>) -> Result<ChosenModule, CliError> {
        choose_module_here(Named::flag(self.module.as_deref()), config, ModuleUse::Tool)
            .map_err(module_error)
    }
}

/// The keyholder at this terminal: secrets read from the terminal without echo, or from
/// standard input with `--pin-stdin`; notes written to standard error.
pub struct Terminal {
    /// Read secrets from standard input (one line each).
    pub pin_stdin: bool,
}

/// The keyholder at this terminal ([`Terminal`]).
pub fn terminal(pin_stdin: bool) -> Terminal {
    Terminal { pin_stdin }
}

impl Keyholder for Terminal {
    fn ask(&mut self, _what: Ask, _token: &TokenDesc, prompt: &str) -> Result<Pin, SigningError> {
        read_pin(self.pin_stdin, prompt).map_err(|e| SigningError::Usage(e.to_string()))
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

impl From<SigningError> for CliError {
    fn from(e: SigningError) -> Self {
        match e {
            SigningError::Token(t) => CliError::from(*t),
            SigningError::Module(m) => module_error(*m),
            SigningError::Usage(m) => CliError::Usage(m),
            SigningError::Io(m) => CliError::Io(m),
            SigningError::Invalid(m) => CliError::Invalid(m),
        }
    }
}

/// A module that could not be chosen or loaded, as the command line reports it.
pub fn module_error(e: ModuleError) -> CliError {
    match e {
        ModuleError::Config(_) | ModuleError::Refused { .. } | ModuleError::Ambiguous { .. } => {
            CliError::Usage(e.to_string())
        }
        ModuleError::NoneListed { .. } => CliError::Io(e.to_string()),
        ModuleError::Token { .. } if e.exit_code() == 1 => CliError::Invalid(e.to_string()),
        ModuleError::Token { .. } => CliError::Io(e.to_string()),
    }
}

/// `conclave token list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    module: ModuleArg,
    /// Trusted root (must verify): show for each key which roles of it name the key, and which
    /// of its keys no present token holds.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `conclave token keygen`
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number.
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    token: String,
    /// Key type: ed25519, ecdsa-p256 or ecdsa-p384.
    #[arg(long = "type", value_name = "TYPE")]
    key_type: String,
    /// Label for the new key pair (must not exist on the token).
    #[arg(long)]
    label: String,
    /// CKA_ID for the new key pair, in hex (default: 16 random bytes).
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    /// How to spell the Ed25519 curve for the token: auto (OID, then name), oid, name.
    #[arg(long, default_value = "auto", value_name = "auto|oid|name")]
    ed_params: String,
    /// Read the PIN from standard input (one line) instead of the terminal; for a YubiKey
    /// (PIV) the management key is the next line.
    #[arg(long)]
    pin_stdin: bool,
    /// PIV slot for a YubiKey through ykcs11: 9a, 9c, 9d, 9e or a retired slot 82..95
    /// (default 9c, "Digital Signature"). An occupied slot is refused.
    #[arg(long, value_name = "SLOT")]
    piv_slot: Option<String>,
    /// A practice run: accept the factory-default PIV management key.
    #[arg(long)]
    practice: bool,
    /// Print `{"keyid": ..., "key": {...}}`.
    #[arg(long)]
    json: bool,
}

/// `conclave token init-practice`
#[derive(Debug, clap::Args)]
pub struct InitPracticeArgs {
    /// Directory for the practice tokens and their softhsm2.conf (created; must not hold one).
    #[arg(long)]
    dir: PathBuf,
    /// Keyholder names; each gets a token labelled with the name.
    #[arg(long, value_delimiter = ',', required = true)]
    keyholders: Vec<String>,
    /// Key types to generate, one for all or one per keyholder in order (cycled):
    /// ed25519, ecdsa-p256, ecdsa-p384, or none.
    #[arg(long = "type", value_delimiter = ',', default_value = "ed25519")]
    key_types: Vec<String>,
    /// SoftHSM2 module (default: libsofthsm2.so in the usual places).
    #[arg(long, value_name = "PATH")]
    module: Option<PathBuf>,
    /// Print JSON (includes the practice PINs).
    #[arg(long)]
    json: bool,
}

/// `conclave sign`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    module: ModuleArg,
    /// The token, by label or serial number (default: the one present token holding --key).
    #[arg(long, value_name = "LABEL_OR_SERIAL")]
    token: Option<String>,
    /// The key on the token, by label or TUF key id (or a unique prefix of 8+ hex digits).
    #[arg(long, value_name = "LABEL_OR_KEYID")]
    key: String,
    /// The keyholder's name, for the prompt ("PIN for token ... of alice").
    #[arg(long, value_name = "NAME")]
    keyholder: Option<String>,
    /// Metadata file to sign (never modified unless --out is the same path).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where to write the signed file (written atomically; must not exist unless it is --in).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Trusted root: names the keys of targets/snapshot/timestamp, and the old root keys when
    /// signing a new root.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Read the PIN from standard input (one line) instead of the terminal.
    #[arg(long)]
    pin_stdin: bool,
    /// Sign even if no role names the key (the signature will not count). Loud.
    #[arg(long)]
    force: bool,
}

/// Run a `token` subcommand.
///
/// `config`: the global `--config FILE` (which configuration file chooses the module).
pub fn run_token(cmd: &TokenCommand, config: Option<&Path>) -> Result<Outcome, CliError> {
    match cmd {
        TokenCommand::List(a) => list(a, config),
        TokenCommand::Keygen(a) => keygen(a, config),
        TokenCommand::InitPractice(a) => init_practice(a),
        TokenCommand::Bench(a) => bench(a, config),
    }
}

fn bench(a: &BenchArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    if a.count == 0 {
        return Err(CliError::Usage("--count must be at least 1".into()));
    }
    let module = a.module.open(config)?;
    let r = driver::bench(
        &module,
        &a.token,
        &a.key,
        a.count,
        &mut terminal(a.pin_stdin),
    )?;
    if a.json {
        let v = serde_json::json!({
            "token": r.token.label,
            "key": r.key_label,
            "type": key_type_name(r.alg),
            "count": r.count,
            "bare_c_sign_per_s": r.bare_per_s,
            "conclave_sign_per_s": r.conclave_per_s,
            "overhead_percent": r.overhead_percent,
            "software_verify_per_s": r.verify_per_s,
        });
        return done(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
    }
    done(format!(
        "{} key \"{}\" on {}, {} signatures of 1 KiB each:\n  token alone (C_Sign):                      {:>8.1} sig/s\n  Conclave (digest, C_Sign, DER, verify):    {:>8.1} sig/s\n  overhead                                   {:>8.1} %\n  of which software verification alone:      {:>8.1} verifications/s\n",
        r.alg.label(),
        r.key_label,
        r.token,
        r.count,
        r.bare_per_s,
        r.conclave_per_s,
        r.overhead_percent,
        r.verify_per_s
    ))
}

/// Read a PIN: from one line of standard input, or from the terminal without echo.
pub fn read_pin(pin_stdin: bool, prompt: &str) -> Result<Pin, CliError> {
    if pin_stdin {
        // The prompt still tells who and which device (it never contains the PIN).
        eprintln!("{prompt}(reading it from standard input)");
        // Straight from the descriptor into a wiped buffer of fixed size: not through Stdin's
        // buffer, which is never wiped.
        let pin = crate::pin::read_pin_line().map_err(|e| {
            CliError::Usage(format!("cannot read the PIN from standard input: {e}"))
        })?;
        if pin.is_empty() {
            return Err(CliError::Usage(
                "no PIN on standard input (--pin-stdin expects one line)".into(),
            ));
        }
        Ok(pin)
    } else {
        crate::pin::prompt_pin(prompt).map_err(|e| {
            CliError::Usage(format!(
                "cannot read the PIN from the terminal ({e}); use --pin-stdin in scripts"
            ))
        })
    }
}

fn list(a: &ListArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    // The trusted root is checked before the module is loaded.
    let trusted = a
        .trusted_root
        .as_deref()
        .map(driver::trusted_root_keys)
        .transpose()?;
    let chosen = a.module.choose(config)?;
    let module = chosen.open().map_err(module_error)?;
    list_on(
        a,
        trusted,
        &chosen.chosen_by,
        chosen.why.as_deref(),
        &module,
    )
}

/// `token list` on a loaded module ([`driver::list_tokens`]), rendered.
fn list_on(
    a: &ListArgs,
    trusted: Option<TrustedKeys>,
    chosen_by: &ModuleChoice,
    why: Option<&str>,
    module: &dyn TokenModule,
) -> Result<Outcome, CliError> {
    let listing = driver::list_tokens(module, trusted.as_ref())?;
    let no_device = &listing.no_device;
    let mut json_tokens = Vec::new();
    let mut out = String::new();
    out.push_str(&format!(
        "module {} {}\n",
        module.name(),
        chosen_by_text(&chosen_by.to_string(), why)
    ));
    if let (Some(p), Some(tr)) = (&a.trusted_root, &trusted) {
        out.push_str(&format!(
            "trusted root {} (version {}, verified)\n",
            p.display(),
            tr.version
        ));
    }
    if let Some(why) = no_device {
        out.push_str(&format!("{why}\n"));
    } else if listing.tokens.is_empty() && listing.unreadable.is_empty() {
        out.push_str("no tokens present\n");
    }
    for u in &listing.unreadable {
        out.push_str(&format!("\n{u}\n"));
        json_tokens.push(serde_json::json!({"slot": u.slot, "unreadable": u.reason}));
    }
    for lt in &listing.tokens {
        let t = &lt.token;
        let mut flags = Vec::new();
        if !t.initialized {
            flags.push("NOT INITIALISED");
        }
        if t.login_required {
            flags.push("login required");
        }
        if t.initialized && !t.user_pin_initialized {
            flags.push("user PIN not set");
        }
        if t.pin.count_low {
            flags.push("user PIN count low");
        }
        if t.pin.final_try {
            flags.push("user PIN FINAL TRY");
        }
        if t.pin.locked {
            flags.push("user PIN LOCKED");
        }
        if t.protected_path {
            flags.push("PIN pad (the PIN is entered on the reader)");
        }
        if t.clock == crate::signer::pkcs11::TokenClock::Unknown {
            flags.push("token clock unknown (it does not read as a time)");
        }
        if !t.initialized {
            out.push_str(&format!(
                "\nslot {} (free: no token initialised; {} {})\n",
                t.slot,
                crate::text::show(&t.manufacturer),
                crate::text::show(&t.model)
            ));
            json_tokens.push(t.to_json());
            continue;
        }
        out.push_str(&format!(
            "\ntoken \"{}\"\n  serial        {}\n  manufacturer  {}\n  model         {}\n  firmware      {} (hardware {})\n  flags         {}\n",
            crate::text::show(&t.label),
            crate::text::show(&t.serial),
            crate::text::show(&t.manufacturer),
            crate::text::show(&t.model),
            t.firmware,
            t.hardware,
            flags.join(", ")
        ));
        for adv in &t.advisories {
            out.push_str(&format!("  WARNING       {adv}; {}\n", adv.safe_types()));
        }
        let mut jkeys = Vec::new();
        match &lt.keys {
            Ok(keys) if keys.is_empty() => out.push_str("  keys          none\n"),
            Ok(keys) => {
                out.push_str("  keys\n");
                for lk in keys {
                    let k = &lk.key;
                    match k.tuf_key() {
                        Some(key) => {
                            out.push_str(&format!(
                                "    {:<20} {:<12} keyid {}\n",
                                crate::text::show(&k.label),
                                crate::text::show(&key.scheme),
                                crate::text::show(&key.key_id().0)
                            ));
                            for (label, der) in &lk.certificates {
                                out.push_str(&format!(
                                    "      certificate \"{}\" sha256 {}\n",
                                    crate::text::show(label),
                                    hex::encode(Sha256::digest(der))
                                ));
                            }
                            let mut serves = Vec::new();
                            if let Some(tr) = &trusted {
                                let version = tr.version;
                                for rk in lk.serves.iter().filter_map(|i| tr.keys.get(*i)) {
                                    let owner = rk
                                        .owner
                                        .as_ref()
                                        .map(|o| format!(", owner {}", crate::text::show(o)))
                                        .unwrap_or_default();
                                    let roles = if rk.roles.is_empty() {
                                        "no role (listed in keys only)".to_string()
                                    } else {
                                        rk.roles.join(", ")
                                    };
                                    out.push_str(&format!(
                                        "      serves        {roles} in root version {version} (as key id {}{owner})\n",
                                        crate::text::show(&rk.id.0)
                                    ));
                                    serves.push(serde_json::json!({
                                        "keyid": rk.id.0,
                                        "roles": rk.roles,
                                        "owner": rk.owner,
                                    }));
                                }
                                if serves.is_empty() {
                                    out.push_str(&format!(
                                        "      serves        nothing: root version {version} does not list this key\n"
                                    ));
                                }
                            }
                            let mut jk = serde_json::json!({
                                "label": k.label,
                                "id": hex::encode(&k.id),
                                "keyid": key.key_id().0,
                                "key": key_json(&key),
                                "certificates": certs_json(&lk.certificates),
                            });
                            if trusted.is_some()
                                && let Some(m) = jk.as_object_mut()
                            {
                                m.insert("trusted_root".into(), serde_json::Value::Array(serves));
                            }
                            jkeys.push(jk);
                        }
                        None => {
                            let why = k.public.as_ref().err().cloned().unwrap_or_default();
                            out.push_str(&format!(
                                "    {:<20} unusable: {}\n",
                                crate::text::show(&k.label),
                                crate::text::show_message(&why)
                            ));
                            jkeys.push(serde_json::json!({
                                "label": k.label,
                                "id": hex::encode(&k.id),
                                "unusable": why,
                            }));
                        }
                    }
                }
            }
            Err(e) => out.push_str(&format!("  keys          cannot be listed: {e}\n")),
        }
        let mut j = t.to_json();
        if let Some(m) = j.as_object_mut() {
            m.insert("keys".into(), serde_json::Value::Array(jkeys));
        }
        json_tokens.push(j);
    }
    let mut missing_json = Vec::new();
    if let Some(tr) = &trusted {
        let version = tr.version;
        let missing: Vec<&RootKey> = listing
            .missing
            .iter()
            .filter_map(|i| tr.keys.get(*i))
            .collect();
        if missing.is_empty() {
            out.push_str(&format!(
                "\nevery key of root version {version} is on a present token\n"
            ));
        } else {
            out.push_str(&format!(
                "\nkeys of root version {version} on no present token:\n"
            ));
            for rk in &missing {
                let owner = rk
                    .owner
                    .as_ref()
                    .map(|o| format!(" (owner {})", crate::text::show(o)))
                    .unwrap_or_default();
                let id = crate::text::show(&rk.id.0);
                out.push_str(&format!("  {id} {}{owner}\n", rk.roles.join(", ")));
                missing_json.push(serde_json::json!({
                    "keyid": rk.id.0,
                    "roles": rk.roles,
                    "owner": rk.owner,
                }));
            }
        }
    }
    if a.json {
        let mut v = serde_json::json!({
            "module": module.name(),
            "module_chosen_by": chosen_by.to_string(),
            "module_chosen_why": why,
            "tokens": json_tokens,
        });
        if let (Some(why), Some(m)) = (no_device, v.as_object_mut()) {
            m.insert("no_device".into(), why.clone().into());
        }
        if trusted.is_some()
            && let Some(m) = v.as_object_mut()
        {
            m.insert(
                "trusted_root_keys_not_present".into(),
                serde_json::Value::Array(missing_json),
            );
        }
        done(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ))
    } else {
        done(out)
    }
}

fn parse_ed_params(s: &str) -> Result<EdParams, CliError> {
    match s {
        "auto" => Ok(EdParams::Auto),
        "oid" => Ok(EdParams::Oid),
        "name" => Ok(EdParams::Name),
        other => Err(CliError::Usage(format!(
            "--ed-params must be auto, oid or name, not \"{other}\""
        ))),
    }
}

fn parse_alg(s: &str) -> Result<Algorithm, CliError> {
    parse_key_type(s).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown key type \"{s}\" (choose ed25519, ecdsa-p256 or ecdsa-p384)"
        ))
    })
}

fn certs_json(certs: &[(String, Vec<u8>)]) -> serde_json::Value {
    serde_json::Value::Array(
        certs
            .iter()
            .map(|(label, der)| {
                serde_json::json!({
                    "label": label,
                    "sha256": hex::encode(Sha256::digest(der)),
                    "der_hex": hex::encode(der),
                })
            })
            .collect(),
    )
}

fn key_json(key: &Key) -> serde_json::Value {
    serde_json::from_str(&key.to_value().to_pretty_json()).unwrap_or_default()
}

fn keygen(a: &KeygenArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let alg = parse_alg(&a.key_type)?;
    let ed = parse_ed_params(&a.ed_params)?;
    let id = match &a.id {
        Some(h) => {
            Some(hex::decode(h).map_err(|e| CliError::Usage(format!("--id is not hex ({e})")))?)
        }
        None => None,
    };
    if a.label.is_empty() {
        return Err(CliError::Usage("--label must not be empty".into()));
    }
    let piv_slot = a
        .piv_slot
        .as_deref()
        .map(|s| {
            PivSlot::parse(s).ok_or_else(|| {
                CliError::Usage(format!(
                    "--piv-slot must be 9a, 9c, 9d, 9e or 82..95, not \"{s}\""
                ))
            })
        })
        .transpose()?;
    let module = a.module.open(config)?;
    let parsed = ParsedKeygen {
        alg,
        ed,
        id,
        piv_slot,
    };
    keygen_on(a, parsed, &module, &mut terminal(a.pin_stdin))
}

/// `token keygen`'s arguments, checked before the module is loaded.
struct ParsedKeygen {
    alg: Algorithm,
    ed: EdParams,
    id: Option<Vec<u8>>,
    piv_slot: Option<PivSlot>,
}

/// `token keygen` on a loaded module ([`driver::keygen`]), asking PINs through `kh`; rendered.
fn keygen_on(
    a: &KeygenArgs,
    p: ParsedKeygen,
    module: &dyn TokenModule,
    kh: &mut dyn Keyholder,
) -> Result<Outcome, CliError> {
    let req = KeygenRequest {
        token: &a.token,
        alg: p.alg,
        label: &a.label,
        id: p.id,
        ed: p.ed,
        piv_slot: p.piv_slot,
        practice: a.practice,
    };
    let r = driver::keygen(module, &req, kh)?;
    let (token, alg, g, certs) = (&r.token, r.alg, &r.generated, &r.certificates);
    let keyid = g.key.key_id();
    if a.json {
        let v = serde_json::json!({
            "keyid": keyid.0,
            "key": key_json(&g.key),
            "label": g.label,
            "id": hex::encode(&g.id),
            "certificates": certs_json(certs),
            "device": {
                "token": token.label,
                "serial": token.serial,
                "manufacturer": token.manufacturer,
                "model": token.model,
                "firmware": token.firmware,
                "hardware": token.hardware,
                "advisories": token.advisories_for_alg(alg).iter().map(|a| a.id).collect::<Vec<_>>(),
            },
        });
        done(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ))
    } else {
        done(format!(
            "generated {} key \"{}\" on {token}\n  CKA_ID     {}\n  CKA_EC_PARAMS {}\n  self-test  signed a random nonce in the token, verified in software: ok\n  keyid      {keyid}\n  key        {}\n  took       {} ms (including self-test)",
            alg.label(),
            g.label,
            hex::encode(&g.id),
            hex::encode(&g.ec_params),
            g.key
                .to_value()
                .to_pretty_json()
                .trim_end()
                .replace('\n', "\n             "),
            r.took.as_millis()
        ))
    }
}

fn init_practice(a: &InitPracticeArgs) -> Result<Outcome, CliError> {
    let mut types = Vec::new();
    for t in &a.key_types {
        if t == "none" {
            types.push(None);
        } else {
            types.push(Some(parse_alg(t)?));
        }
    }
    let req = driver::PracticeRequest {
        dir: &a.dir,
        keyholders: &a.keyholders,
        types: &types,
        module: a.module.as_deref(),
    };
    // The child that makes the tokens runs this same command line.
    let setup = driver::init_practice(&req, std::env::args_os().skip(1)).map_err(practice_error)?;
    let driver::PracticeSetup::Made {
        dir,
        conf,
        module: module_path,
        tokens: made,
    } = setup
    else {
        return done(String::new());
    };
    let mut rows = Vec::new();
    let mut text = String::new();
    text.push_str(&format!(
        "PRACTICE tokens in {} (SoftHSM2; software keys, not for production ceremonies)\n",
        dir.display()
    ));
    for made in &made {
        let (name, token, pin, so_pin) = (&made.keyholder, &made.token, &made.pin, &made.so_pin);
        let key = made.key.as_ref();
        text.push_str(&format!(
            "\nkeyholder {name}: token \"{}\" serial {}\n  user PIN {}   SO PIN {}\n",
            token.label,
            token.serial,
            pin.as_str(),
            so_pin.as_str()
        ));
        if let Some(g) = key {
            text.push_str(&format!(
                "  key \"{}\" {} keyid {}\n",
                g.label,
                key_type_name(g.public.algorithm()),
                g.key.key_id()
            ));
        }
        rows.push(serde_json::json!({
            "keyholder": name,
            "label": token.label,
            "serial": token.serial,
            "pin": pin.as_str(),
            "so_pin": so_pin.as_str(),
            "key": key.map(|g| serde_json::json!({
                "label": g.label,
                "type": key_type_name(g.public.algorithm()),
                "keyid": g.key.key_id().0,
                "key": key_json(&g.key),
            })),
        }));
    }
    text.push_str(&format!(
        "\nThese PINs are shown once, for the practice. Point Conclave (and softhsm2-util) at the tokens with:\n  export SOFTHSM2_CONF={}\n  conclave token list --module {}\n",
        conf.display(),
        module_path.display()
    ));
    if a.json {
        let v = serde_json::json!({
            "conf": conf.display().to_string(),
            "module": module_path.display().to_string(),
            "tokens": rows,
        });
        done(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ))
    } else {
        done(text)
    }
}

/// Why practice tokens were not made, as the command line reports it.
fn practice_error(e: driver::PracticeTokenError) -> CliError {
    use driver::PracticeTokenError as P;
    match e {
        P::Token(t) => CliError::from(t),
        P::Module(m) => module_error(*m),
        P::Exists { .. } | P::Name(_) | P::NoSoftHsm | P::SetupExists { .. } => {
            CliError::Usage(e.to_string())
        }
        P::Child {
            exit: driver::ChildExit::Refused,
            ..
        } => CliError::Invalid(e.to_string()),
        P::Io(_) | P::Child { .. } => CliError::Io(e.to_string()),
    }
}

/// `conclave sign`: add one signature from a token key to a metadata file.
pub fn run_sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let req = SignRequest {
        token: a.token.as_deref(),
        key: &a.key,
        keyholder: a.keyholder.as_deref(),
        metadata: &a.input,
        trusted_root: a.trusted_root.as_deref(),
        force: a.force,
    };
    let SignedFile { signed, counts } = driver::sign_file(
        &req,
        &a.out,
        &mut || Ok(Box::new(a.module.open_typed(config)?)),
        &mut terminal(a.pin_stdin),
    )?;
    let mut out = format!(
        "signed {} with key \"{}\" on {} in {} ms\n",
        signed.what,
        signed.key_label,
        signed.token,
        signed.took.as_millis()
    );
    for id in &signed.keyids {
        out.push_str(&format!("  signature added for key id {id}\n"));
    }
    for n in &signed.named_by {
        out.push_str(&format!("  key named by the {n}\n"));
    }
    // Threshold status per role, counted by the verifier's one threshold counter.
    for (desc, r) in &counts {
        let state = if r.verified() {
            "threshold met"
        } else {
            "not enough signatures yet"
        };
        out.push_str(&format!("  {desc}: {} ({state})\n", r.summary()));
    }
    out.push_str(&format!("  written to {}\n", a.out.display()));
    done(out)
}

impl From<TokenError> for CliError {
    fn from(e: TokenError) -> Self {
        if e.exit_code() == 1 {
            CliError::Invalid(e.to_string())
        } else {
            CliError::Io(e.to_string())
        }
    }
}

fn done(stdout: String) -> Result<Outcome, CliError> {
    Ok(Outcome {
        stdout,
        success: true,
    })
}

/// The token commands driven through the token seam with the driver's test double
/// (`driver::fake_tokens`: in-memory tokens that follow SoftHSM2's PKCS#11 answers: public key
/// objects listed without login, `CKR_PIN_INCORRECT` on a wrong PIN); the same commands on
/// SoftHSM2 itself are tests/token_softhsm.rs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake_tokens::{Answering, FakeTokens};

    fn keygen_args(token: &str, label: &str) -> KeygenArgs {
        KeygenArgs {
            module: ModuleArg { module: None },
            token: token.into(),
            key_type: "ed25519".into(),
            label: label.into(),
            id: None,
            ed_params: "auto".into(),
            pin_stdin: false,
            piv_slot: None,
            practice: false,
            json: false,
        }
    }

    fn parsed() -> ParsedKeygen {
        ParsedKeygen {
            alg: Algorithm::Ed25519,
            ed: EdParams::Auto,
            id: None,
            piv_slot: None,
        }
    }

    /// Generate key `label` on `token` through `token keygen`; its TUF key.
    fn keygen(fakes: &FakeTokens, token: &str, label: &str, pin: &str) -> Key {
        let mut kh = Answering::new(pin);
        keygen_on(&keygen_args(token, label), parsed(), fakes, &mut kh).unwrap();
        assert_eq!(kh.asked.len(), 1);
        let t = fakes.find_token(token).unwrap();
        let k = fakes.open(&t, false).unwrap().find_key(label).unwrap();
        k.tuf_key().unwrap()
    }

    #[test]
    fn token_keygen_makes_a_key_refuses_a_taken_label_before_the_pin_and_a_wrong_pin() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        let out = keygen_on(
            &keygen_args("alice", "root-key"),
            parsed(),
            &fakes,
            &mut Answering::new("alice-pin"),
        )
        .unwrap();
        let key = fakes
            .open(&fakes.find_token("1001").unwrap(), false)
            .unwrap()
            .find_key("root-key")
            .unwrap()
            .tuf_key()
            .unwrap();
        assert!(
            out.stdout
                .starts_with("generated Ed25519 key \"root-key\" on ")
                && out.stdout.contains(&format!("keyid      {}", key.key_id())),
            "{}",
            out.stdout
        );
        // The label is taken: refused before any PIN is asked (public objects are visible).
        let mut alice = Answering::new("alice-pin");
        let e = keygen_on(
            &keygen_args("alice", "root-key"),
            parsed(),
            &fakes,
            &mut alice,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(alice.asked.is_empty());
        assert_eq!(e.exit_code(), 1, "{e}");
        assert!(e.to_string().contains("label \"root-key\""), "{e}");
        // A wrong PIN is refused (exit 1) and makes no key.
        let e = keygen_on(
            &keygen_args("alice", "other"),
            parsed(),
            &fakes,
            &mut Answering::new("wrong-pin"),
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        assert_eq!(fakes.key_count("alice"), 1);
        // An unknown token names the present ones.
        let e = keygen_on(
            &keygen_args("bob", "k"),
            parsed(),
            &fakes,
            &mut Answering::new("x"),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("alice"), "{e}");
    }

    #[test]
    fn token_list_shows_each_token_and_its_keys_and_what_chose_the_module() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        fakes.add("bob", "1002", "bob-pin");
        let key = keygen(&fakes, "alice", "alice-root", "alice-pin");
        let args = ListArgs {
            module: ModuleArg { module: None },
            trusted_root: None,
            json: false,
        };
        let by = ModuleChoice::Flag("/usr/lib/x.so".into());
        let out = list_on(&args, None, &by, None, &fakes).unwrap().stdout;
        assert!(
            out.starts_with("module fake-tokens (test double) (chosen by --module)\n"),
            "{out}"
        );
        assert!(
            out.contains("token \"alice\"\n  serial        1001"),
            "{out}"
        );
        assert!(
            out.contains("alice-root") && out.contains(&key.key_id().0),
            "{out}"
        );
        assert!(
            out.contains("token \"bob\"\n  serial        1002")
                && out.contains("keys          none"),
            "{out}"
        );
        let json = ListArgs {
            module: ModuleArg { module: None },
            trusted_root: None,
            json: true,
        };
        let v: serde_json::Value =
            serde_json::from_str(&list_on(&json, None, &by, None, &fakes).unwrap().stdout).unwrap();
        assert_eq!(v["module_chosen_by"], "--module");
        assert_eq!(v["module_chosen_why"], serde_json::Value::Null);
        // Picked among several candidates: why is on the same one line, and a JSON field.
        let why = "the only one with a token present: alice (serial 1001)";
        let out = list_on(&args, None, &by, Some(why), &fakes).unwrap().stdout;
        assert!(
            out.starts_with(&format!(
                "module fake-tokens (test double) (chosen by --module: {why})\n"
            )),
            "{out}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&list_on(&json, None, &by, Some(why), &fakes).unwrap().stdout)
                .unwrap();
        assert_eq!(v["module_chosen_why"], why);
        assert_eq!(v["tokens"][0]["keys"][0]["keyid"], key.key_id().0.as_str());
        // No token present.
        fakes.remove("alice");
        fakes.remove("bob");
        let out = list_on(&args, None, &by, None, &fakes).unwrap().stdout;
        assert!(out.ends_with("no tokens present\n"), "{out}");
    }
}
