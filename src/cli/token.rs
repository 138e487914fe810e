//! `conclave token ...` and `conclave sign`: the keyholder-token commands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CliError, Outcome};
use crate::config::ModuleChoice;
use crate::driver::module::{ChosenModule, ModuleError, ModuleUse, Named, choose_module_here};
use crate::driver::{Located, OpenToken, TokenModule, locate_key};
use crate::signer::Signer;
use crate::signer::pkcs11::{
    EdParams, Module, Pin, PivSlot, TokenDesc, TokenError, TokenKey, key_type_name, parse_key_type,
};
use crate::transport::bundle::file_bytes;
use crate::tuf::key::{Algorithm, Key, KeyId, PublicKey};
use crate::tuf::metadata::{AnyMetadata, Metadata, Role, RoleType, Root, Signature};
use crate::tuf::verify::{Uncounted, count_signatures, count_signatures_known, trust_root};

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
    /// Load the PKCS#11 module: `--module`, else `pkcs11.module` / `pkcs11.modules` from the
    /// configuration file (`config`: the global `--config`, else `CONCLAVE_CONFIG`, else
    /// /etc/conclave/config.toml), else the built-in search list.
    pub fn open(&self, config: Option<&Path>) -> Result<Module, CliError> {
        self.choose(config)?.open().map_err(module_error)
    }

    /// Which module [`ModuleArg::open`] loads, and what chose it ([`choose_module_here`]).
    /// When it was picked among several candidates, the choice and why is said on standard
    /// error.
    pub fn choose(&self, config: Option<&Path>) -> Result<ChosenModule, CliError> {
        let chosen =
            choose_module_here(Named::flag(self.module.as_deref()), config, ModuleUse::Tool)
                .map_err(module_error)?;
        if chosen.why.is_some() {
            eprintln!("conclave: PKCS#11 module {}", chosen.describe());
        }
        Ok(chosen)
    }
}

/// What a command asks a keyholder for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The token's user PIN ([`ask_pin`]: none on a PIN pad).
    Pin,
    /// A YubiKey's PIV management key ([`read_pin`]).
    ManagementKey,
}

/// Where a token command's PINs come from: [`terminal`] at the command line; the unit tests
/// answer with fixed PINs.
pub type Asker<'a> = dyn FnMut(Ask, &TokenDesc, &str) -> Result<Pin, CliError> + 'a;

/// PINs from the terminal, or from standard input with `--pin-stdin`.
pub fn terminal(pin_stdin: bool) -> impl FnMut(Ask, &TokenDesc, &str) -> Result<Pin, CliError> {
    move |what, token, prompt| match what {
        Ask::Pin => ask_pin(token, pin_stdin, prompt),
        Ask::ManagementKey => read_pin(pin_stdin, prompt),
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

/// A key on a token by label or TUF key id ([`locate_key`]: on the token named by label or
/// serial, else on whichever present token holds it), and for a token that shows its keys only
/// after login (YubiHSM 2): its PIN (the prompt says `purpose`), the login, then the key. The
/// flag says whether it logged in (then no PIN is asked again).
pub fn open_key_or_login(
    module: &dyn TokenModule,
    token: Option<&str>,
    key: &str,
    keyholder: Option<&str>,
    ask: &mut Asker<'_>,
    purpose: &str,
) -> Result<(Box<dyn OpenToken>, TokenKey, bool), CliError> {
    match locate_key(module, token, key).map_err(|e| e.for_keyholder(keyholder))? {
        Located::Found(session, tkey) => Ok((session, *tkey, false)),
        Located::AfterLogin(session) => {
            let t = session.token().clone();
            let holder = keyholder
                .map(|k| format!(" of keyholder {k}"))
                .unwrap_or_default();
            session.check_not_locked()?;
            let pin = ask(
                Ask::Pin,
                &t,
                &format!(
                    "PIN for {t}{holder} (it shows its keys only after login) to {purpose} with key \"{key}\": "
                ),
            )?;
            session.login(&pin)?;
            drop(pin);
            let tkey = session.find_key(key)?;
            Ok((session, tkey, true))
        }
    }
}

/// A key on a token, opened for one signing command (`rstuf sign`, `tuf-on-ci sign` and
/// `accept`, `intoto sign`, `log sign`): found among the token's public objects (no PIN yet), or
/// after its keyholder's PIN on a token that shows its keys only after login; with its public
/// key, so every check that needs no PIN comes before [`SigningKey::login`].
pub struct SigningKey {
    /// The session on the key's token.
    pub session: Box<dyn OpenToken>,
    /// The key.
    pub key: TokenKey,
    /// The token holding it.
    pub token: TokenDesc,
    /// The key's public key.
    pub public: PublicKey,
    /// The session is logged in already (the token showed the key only after login).
    logged_in: bool,
    /// The module, loaded for as long as the session is used.
    _module: Box<dyn TokenModule>,
}

impl SigningKey {
    /// Load the module, find the key (`purpose` goes into the PIN prompt of a token that shows
    /// its keys only after login) and take its public key; a key Conclave cannot use is refused
    /// here, before any PIN for signing.
    pub fn open(
        module: &ModuleArg,
        config: Option<&Path>,
        token: Option<&str>,
        key: &str,
        keyholder: Option<&str>,
        pin_stdin: bool,
        purpose: &str,
    ) -> Result<SigningKey, CliError> {
        let module = module.open(config)?;
        SigningKey::on(
            Box::new(module),
            token,
            key,
            keyholder,
            &mut terminal(pin_stdin),
            purpose,
        )
    }

    /// [`SigningKey::open`] on a loaded module, asking PINs through `ask`.
    pub fn on(
        module: Box<dyn TokenModule>,
        token: Option<&str>,
        key: &str,
        keyholder: Option<&str>,
        ask: &mut Asker<'_>,
        purpose: &str,
    ) -> Result<SigningKey, CliError> {
        let (session, tkey, logged_in) =
            open_key_or_login(module.as_ref(), token, key, keyholder, ask, purpose)?;
        let token = session.token().clone();
        // A key Conclave cannot use is a device error (exit 2), as docs/hsm.md says for every
        // command that signs with a token key.
        let public = tkey
            .public
            .clone()
            .map_err(|reason| TokenError::UnsupportedKey {
                token: token.to_string(),
                label: tkey.label.clone(),
                reason,
            })?;
        Ok(SigningKey {
            session,
            key: tkey,
            token,
            public,
            logged_in,
            _module: module,
        })
    }

    /// Log in to sign, unless the session is logged in already: the lockout is checked first,
    /// then the PIN asked with `prompt` ([`ask_pin`]: none on a PIN pad).
    pub fn login(&self, pin_stdin: bool, prompt: &str) -> Result<(), CliError> {
        self.login_with(&mut terminal(pin_stdin), prompt)
    }

    /// [`SigningKey::login`], asking the PIN through `ask`.
    pub fn login_with(&self, ask: &mut Asker<'_>, prompt: &str) -> Result<(), CliError> {
        if self.logged_in {
            return Ok(());
        }
        self.session.check_not_locked()?;
        let pin = ask(Ask::Pin, &self.token, prompt)?;
        self.session.login(&pin)?;
        drop(pin);
        Ok(())
    }
}

/// The PIN for `token`: none on a reader with a PIN pad (the keyholder types it there), else
/// read as [`read_pin`] does.
pub fn ask_pin(token: &TokenDesc, pin_stdin: bool, prompt: &str) -> Result<Pin, CliError> {
    if token.protected_path {
        eprintln!("{}", token.pin_pad_note());
        return Ok(Zeroizing::new(String::new()));
    }
    if token.shares_tpm_lockout() {
        eprintln!(
            "NOTE: {token} is on a TPM: wrong PINs on any of its tokens count toward one lockout, which locks every keyholder's token on it (3 in total on a TPM set up as usual)"
        );
    }
    read_pin(pin_stdin, prompt)
}

/// Load the module a [`ModuleChoice`] names; errors about a module the configuration file chose
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
    let token = module.find_token(&a.token)?;
    let session = module.open_session(&token, false)?;
    let tkey = session.find_key(&a.key)?;
    session.check_not_locked()?;
    let pin = ask_pin(
        &token,
        a.pin_stdin,
        &format!("PIN for {token} to benchmark key \"{}\": ", tkey.label),
    )?;
    session.login(&pin)?;
    drop(pin);
    let mut signer = session.signer(&tkey)?;
    let msg = vec![0x5a_u8; 1024];
    let input = signer.token_input(&msg);
    // Warm up both paths once.
    signer.sign_prepared(&input)?;
    signer.sign(&msg).map_err(|e| CliError::Io(e.to_string()))?;
    let start = Instant::now();
    for _ in 0..a.count {
        signer.sign_prepared(&input)?;
    }
    let bare = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..a.count {
        signer.sign(&msg).map_err(|e| CliError::Io(e.to_string()))?;
    }
    let full = start.elapsed().as_secs_f64();
    let sig = signer.sign(&msg).map_err(|e| CliError::Io(e.to_string()))?;
    let start = Instant::now();
    for _ in 0..a.count {
        signer
            .public_key()
            .verify(&msg, &sig)
            .map_err(|e| CliError::Invalid(e.to_string()))?;
    }
    let verify = start.elapsed().as_secs_f64();
    let n = f64::from(a.count);
    let overhead = (full / bare - 1.0) * 100.0;
    let alg = signer.public_key().algorithm();
    if a.json {
        let v = serde_json::json!({
            "token": token.label,
            "key": tkey.label,
            "type": key_type_name(alg),
            "count": a.count,
            "bare_c_sign_per_s": n / bare,
            "conclave_sign_per_s": n / full,
            "overhead_percent": overhead,
            "software_verify_per_s": n / verify,
        });
        return done(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
    }
    done(format!(
        "{} key \"{}\" on {token}, {} signatures of 1 KiB each:\n  token alone (C_Sign):                      {:>8.1} sig/s\n  Conclave (digest, C_Sign, DER, verify):    {:>8.1} sig/s\n  overhead                                   {:>8.1} %\n  of which software verification alone:      {:>8.1} verifications/s\n",
        alg.label(),
        tkey.label,
        a.count,
        n / bare,
        n / full,
        overhead,
        n / verify
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

/// A key of the trusted root: its id, material, owner (`x-tuf-on-ci-keyowner`) and the roles
/// that name it.
struct RootKey {
    id: KeyId,
    material: Vec<u8>,
    owner: Option<String>,
    roles: Vec<&'static str>,
}

/// The keys of a trusted root that verifies (a threshold of its own root keys), with the roles
/// naming each.
fn root_keys(path: &Path) -> Result<(u64, Vec<RootKey>), CliError> {
    let b = std::fs::read(path)
        .map_err(|e| CliError::Io(format!("cannot read {}: {e}", path.display())))?;
    let (t, _) = trust_root(&path.display().to_string(), &b)
        .map_err(|e| CliError::Invalid(format!("the trusted root does not verify: {e}")))?;
    let root = t.metadata().signed();
    let mut out = Vec::new();
    for (id, key) in &root.keys {
        let Ok(pk) = key.public_key() else { continue };
        let roles = [
            RoleType::Root,
            RoleType::Targets,
            RoleType::Snapshot,
            RoleType::Timestamp,
        ]
        .into_iter()
        .filter(|ty| root.role(*ty).keyids.contains(id))
        .map(RoleType::as_str)
        .collect();
        out.push(RootKey {
            id: id.clone(),
            material: pk.material(),
            owner: key
                .unrecognized
                .get("x-tuf-on-ci-keyowner")
                .and_then(crate::tuf::canonical::Value::as_str)
                .map(str::to_string),
            roles,
        });
    }
    Ok((root.common.version, out))
}

fn list(a: &ListArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    // The trusted root is checked before the module is loaded.
    let trusted = a.trusted_root.as_deref().map(root_keys).transpose()?;
    let chosen = a.module.choose(config)?;
    let module = chosen.open().map_err(module_error)?;
    list_on(a, trusted, &chosen.chosen_by, &module)
}

/// `token list` on a loaded module.
fn list_on(
    a: &ListArgs,
    trusted: Option<(u64, Vec<RootKey>)>,
    chosen_by: &ModuleChoice,
    module: &dyn TokenModule,
) -> Result<Outcome, CliError> {
    let mut seen: Vec<KeyId> = Vec::new();
    let (scan, no_device) = match module.scan() {
        Ok(scan) => (scan, None),
        Err(e @ TokenError::NoDevice { .. }) => (Default::default(), Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let tokens = scan.tokens;
    let mut json_tokens = Vec::new();
    let mut out = String::new();
    out.push_str(&format!(
        "module {} (chosen by {chosen_by})\n",
        module.name()
    ));
    if let (Some(p), Some((version, _))) = (&a.trusted_root, &trusted) {
        out.push_str(&format!(
            "trusted root {} (version {version}, verified)\n",
            p.display()
        ));
    }
    if let Some(why) = &no_device {
        out.push_str(&format!("{why}\n"));
    } else if tokens.is_empty() && scan.unreadable.is_empty() {
        out.push_str("no tokens present\n");
    }
    for u in &scan.unreadable {
        out.push_str(&format!("\n{u}\n"));
        json_tokens.push(serde_json::json!({"slot": u.slot, "unreadable": u.reason}));
    }
    for t in &tokens {
        let keys: Result<Vec<TokenKey>, TokenError> = if t.initialized {
            module.open(t, false).and_then(|s| s.keys())
        } else {
            Ok(Vec::new())
        };
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
            out.push_str(&format!(
                "  WARNING       {} ({}): {}\n",
                adv.id, adv.affects, adv.summary
            ));
        }
        let mut jkeys = Vec::new();
        match &keys {
            Ok(keys) if keys.is_empty() => out.push_str("  keys          none\n"),
            Ok(keys) => {
                out.push_str("  keys\n");
                for k in keys {
                    match k.tuf_key() {
                        Some(key) => {
                            out.push_str(&format!(
                                "    {:<20} {:<12} keyid {}\n",
                                crate::text::show(&k.label),
                                crate::text::show(&key.scheme),
                                crate::text::show(&key.key_id().0)
                            ));
                            let certs = module
                                .open(t, false)
                                .and_then(|s| s.certificates_for(&k.id))
                                .unwrap_or_default();
                            for (label, der) in &certs {
                                out.push_str(&format!(
                                    "      certificate \"{}\" sha256 {}\n",
                                    crate::text::show(label),
                                    hex::encode(Sha256::digest(der))
                                ));
                            }
                            let mut serves = Vec::new();
                            if let Some((version, rkeys)) = &trusted {
                                let material =
                                    k.public.as_ref().map(|p| p.material()).unwrap_or_default();
                                for rk in rkeys.iter().filter(|rk| rk.material == material) {
                                    seen.push(rk.id.clone());
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
                                "certificates": certs_json(&certs),
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
    if let Some((version, rkeys)) = &trusted {
        let missing: Vec<&RootKey> = rkeys
            .iter()
            .filter(|rk| !rk.roles.is_empty() && !seen.contains(&rk.id))
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
            "tokens": json_tokens,
        });
        if let (Some(why), Some(m)) = (&no_device, v.as_object_mut()) {
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

fn warn_advisories(t: &TokenDesc, alg: Algorithm) {
    for a in t.advisories_for_alg(alg) {
        eprintln!(
            "WARNING: {t} firmware {}: {} ({}): {}",
            t.firmware, a.id, a.affects, a.summary
        );
    }
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

/// `token keygen` on a loaded module, asking PINs through `ask`.
fn keygen_on(
    a: &KeygenArgs,
    p: ParsedKeygen,
    module: &dyn TokenModule,
    ask: &mut Asker<'_>,
) -> Result<Outcome, CliError> {
    let ParsedKeygen {
        alg,
        ed,
        id,
        piv_slot,
    } = p;
    let token = module.find_token(&a.token)?;
    warn_advisories(&token, alg);
    let session = module.open(&token, true)?;
    if piv_slot.is_some() && !token.is_piv() {
        return Err(CliError::Usage(format!(
            "--piv-slot is for a YubiKey through ykcs11; {token} is not one"
        )));
    }
    if token.is_piv() {
        // PIV: the key goes into a slot (CKA_ID's first byte), made after a management-key
        // login; the module sets the labels.
        let slot = piv_slot.unwrap_or(PivSlot::DIGITAL_SIGNATURE);
        session.check_not_locked()?;
        let pin = ask(
            Ask::Pin,
            &token,
            &format!(
                "PIN for {token} to generate {} key in PIV slot {slot}: ",
                alg.label()
            ),
        )?;
        let management_key = ask(
            Ask::ManagementKey,
            &token,
            &format!("PIV management key for {token} (never stored or shown): "),
        )?;
        let start = Instant::now();
        let g = session.generate_piv(alg, slot, &management_key, &pin, a.practice)?;
        drop(management_key);
        drop(pin);
        return keygen_done(a, &token, alg, &g, session.as_ref(), start.elapsed());
    }
    // Refuse an existing label before asking for the PIN (public objects are visible).
    if session.keys()?.iter().any(|k| k.label == a.label) {
        return Err(TokenError::KeyExists {
            token: token.to_string(),
            what: format!("label \"{}\"", a.label),
        }
        .into());
    }
    session.check_not_locked()?;
    let pin = ask(
        Ask::Pin,
        &token,
        &format!(
            "PIN for {token} to generate {} key \"{}\": ",
            alg.label(),
            a.label
        ),
    )?;
    session.login(&pin)?;
    drop(pin);
    let start = Instant::now();
    let g = session.generate(alg, &a.label, id, ed)?;
    keygen_done(a, &token, alg, &g, session.as_ref(), start.elapsed())
}

fn keygen_done(
    a: &KeygenArgs,
    token: &TokenDesc,
    alg: Algorithm,
    g: &crate::signer::pkcs11::GeneratedKey,
    session: &dyn OpenToken,
    took: Duration,
) -> Result<Outcome, CliError> {
    // An attestation the token exposes for the new key (e.g. ykcs11) is kept with the key.
    let certs = session.certificates_for(&g.id)?;
    let keyid = g.key.key_id();
    if a.json {
        let v = serde_json::json!({
            "keyid": keyid.0,
            "key": key_json(&g.key),
            "label": g.label,
            "id": hex::encode(&g.id),
            "certificates": certs_json(&certs),
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
            took.as_millis()
        ))
    }
}

fn init_practice(a: &InitPracticeArgs) -> Result<Outcome, CliError> {
    for name in &a.keyholders {
        if name.is_empty() || name.len() > 32 || name.chars().any(|c| c.is_control()) {
            return Err(CliError::Usage(format!(
                "keyholder name \"{name}\" must be 1 to 32 printable characters (it becomes the token label)"
            )));
        }
    }
    let mut types = Vec::new();
    for t in &a.key_types {
        if t == "none" {
            types.push(None);
        } else {
            types.push(Some(parse_alg(t)?));
        }
    }
    // Practice tokens are SoftHSM2 files: `--module`, else SoftHSM2 in the usual places (the
    // configuration names the keyholders' module and is not read).
    let chosen = crate::driver::module::choose_module(
        Named::flag(a.module.as_deref()),
        None,
        None,
        ModuleUse::Rehearsal,
    )
    .map_err(|e| match e.token_error() {
        Some(TokenError::NoModule { .. }) => CliError::Usage(
            "SoftHSM2 (libsofthsm2.so) not found; install the Debian package softhsm2 or give --module"
                .into(),
        ),
        _ => module_error(e),
    })?;
    let module_path = chosen.path.clone();
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", a.dir.display())))?;
    let dir = a
        .dir
        .canonicalize()
        .map_err(|e| CliError::Io(format!("cannot resolve {}: {e}", a.dir.display())))?;
    let conf = dir.join("softhsm2.conf");
    let in_child = crate::driver::in_softhsm_child(crate::driver::PRACTICE_CHILD, &conf);
    if !in_child {
        // SoftHSM2 reads SOFTHSM2_CONF when the module is initialised; the environment of this
        // process cannot be changed safely, so the work runs in a child with the right one.
        if conf.exists() {
            return Err(CliError::Usage(format!(
                "{} already exists: {} holds a practice setup; choose another --dir",
                conf.display(),
                dir.display()
            )));
        }
        let tokendir = dir.join("tokens");
        crate::folder::create_dir_all_mode(&tokendir, crate::folder::PRIVATE_DIR_MODE)
            .map_err(|e| CliError::Io(format!("cannot create {}: {e}", tokendir.display())))?;
        let text = format!(
            "# SoftHSM2 practice tokens made by `conclave token init-practice`. Practice only.\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokendir.display()
        );
        crate::folder::write_private_file(&conf, text.as_bytes())
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", conf.display())))?;
        let code = crate::driver::run_softhsm_child(
            std::env::args_os().skip(1),
            &conf,
            crate::driver::PRACTICE_CHILD,
            false,
        )
        .map_err(super::rehearse::map)?;
        return match code {
            Some(0) => done(String::new()),
            Some(1) => Err(CliError::Invalid(format!(
                "practice setup in {} failed (see above)",
                dir.display()
            ))),
            Some(_) => Err(CliError::Io(format!(
                "practice setup in {} failed (see above)",
                dir.display()
            ))),
            None => Err(CliError::Io("practice setup was killed by a signal".into())),
        };
    }

    let module = chosen.open().map_err(module_error)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    text.push_str(&format!(
        "PRACTICE tokens in {} (SoftHSM2; software keys, not for production ceremonies)\n",
        dir.display()
    ));
    let made =
        crate::driver::init_practice_tokens(&module, &dir, &a.keyholders, &types).map_err(|e| {
            match e {
                crate::driver::PracticeTokenError::Exists { .. } => CliError::Usage(e.to_string()),
                crate::driver::PracticeTokenError::Token(t) => CliError::from(t),
            }
        })?;
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

/// A role that may count a signature: description, the role, its keys.
type RoleWithKeys = (String, Role, Vec<(KeyId, Key)>);

/// Which keys may sign a metadata file, and where that was read.
struct Authority {
    /// (role description, key id, key) for every key a relevant role names.
    keys: Vec<(String, KeyId, Key)>,
    /// Roles to report thresholds for afterwards: (description, role, its keys).
    roles: Vec<RoleWithKeys>,
    /// Why authority could not be established (no trusted root for a non-root file).
    missing: Option<String>,
}

fn authority(md: &AnyMetadata, trusted: Option<&Metadata<Root>>) -> Authority {
    let mut auth = Authority {
        keys: Vec::new(),
        roles: Vec::new(),
        missing: None,
    };
    let mut add = |desc: String, root: &Root, ty: RoleType| {
        let role = root.role(ty);
        let mut ks = Vec::new();
        for id in &role.keyids {
            if let Some(k) = root.key(id) {
                auth.keys.push((desc.clone(), id.clone(), k.clone()));
                ks.push((id.clone(), k.clone()));
            }
        }
        auth.roles.push((desc, role.clone(), ks));
    };
    let ty = md.role_type();
    if let AnyMetadata::Root(r) = md {
        add(
            format!(
                "root role of this root (version {})",
                r.signed().common.version
            ),
            r.signed(),
            RoleType::Root,
        );
    }
    match trusted {
        Some(t) => add(
            format!(
                "{ty} role of the trusted root (version {})",
                t.signed().common.version
            ),
            t.signed(),
            ty,
        ),
        None if ty != RoleType::Root => {
            auth.missing = Some(format!(
                "no --trusted-root given, so Conclave cannot tell which keys the {ty} role accepts"
            ))
        }
        None => {}
    }
    auth
}

fn add_signature(md: &mut AnyMetadata, keyid: KeyId, sig: &[u8]) {
    match md {
        AnyMetadata::Root(m) => m.add_signature(keyid, sig),
        AnyMetadata::Targets(m) => m.add_signature(keyid, sig),
        AnyMetadata::Snapshot(m) => m.add_signature(keyid, sig),
        AnyMetadata::Timestamp(m) => m.add_signature(keyid, sig),
    }
}

/// Write `bytes` to `path` atomically (see [`crate::folder::write_replacing`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::folder::write_replacing(path, bytes)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// What `conclave sign` and `conclave bundle export` have in common: which token key signs which
/// metadata file, checked against which trusted root.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// PKCS#11 module selection (`--module`).
    pub module: &'a ModuleArg,
    /// The global `--config` file, if given.
    pub config: Option<&'a Path>,
    /// The token, by label or serial (None: the one present token holding `key`).
    pub token: Option<&'a str>,
    /// The key, by label or TUF key id (or a unique prefix).
    pub key: &'a str,
    /// The keyholder's name, for the PIN prompt.
    pub keyholder: Option<&'a str>,
    /// The metadata file to sign (only read).
    pub metadata: &'a Path,
    /// Trusted root: names the keys of targets/snapshot/timestamp, and the old root keys when
    /// signing a new root. It must verify by its own root keys.
    pub trusted_root: Option<&'a Path>,
    /// Read the PIN from one line of standard input.
    pub pin_stdin: bool,
    /// Sign even if no role names the key (loud; the signature will not count).
    pub force: bool,
}

/// A token's signature over a metadata file's canonical signed bytes, already verified in
/// software against the key as each relevant role lists it.
pub struct TokenSignature {
    /// Key material of the token's key (the signature was verified against it).
    pub material: Vec<u8>,
    /// The metadata as read (unchanged).
    pub md: AnyMetadata,
    /// The signature as TUF carries it (DER for ECDSA).
    pub sig: Vec<u8>,
    /// Key ids the signature is for (more than one only when a root lists the same key under
    /// two ids).
    pub keyids: Vec<KeyId>,
    /// Which roles name the key, as "ROLE DESCRIPTION as KEYID".
    pub named_by: Vec<String>,
    /// Roles to report thresholds for.
    roles: Vec<RoleWithKeys>,
    /// The token that signed.
    pub token: TokenDesc,
    /// Label of the key on the token.
    pub key_label: String,
    /// "ROLE version N (FILE)".
    pub what: String,
    /// Time the token took to sign.
    pub took: Duration,
}

impl TokenSignature {
    /// One line per relevant role: its threshold count over `signatures`, by the verifier's
    /// one threshold counter.
    pub fn threshold_lines(&self, signatures: &[Signature]) -> String {
        let mut out = String::new();
        for (desc, role, keys) in &self.roles {
            let r = count_signatures(
                |id| keys.iter().find(|(k, _)| k == id).map(|(_, k)| k),
                role,
                self.md.signed_bytes(),
                signatures,
            );
            let state = if r.verified() {
                "threshold met"
            } else {
                "not enough signatures yet"
            };
            out.push_str(&format!("  {desc}: {} ({state})\n", r.summary()));
        }
        out
    }
}

/// Sign a metadata file's canonical signed bytes with a token key: everything that can be
/// checked is checked before the PIN is asked (the metadata parses, the trusted root verifies,
/// a role names the key); then PIN, login, sign, and verification of the signature in software.
/// Writes nothing: the callers decide what to write (a signed file, a bundle).
pub fn sign_with_token(req: &SignRequest<'_>) -> Result<TokenSignature, CliError> {
    sign_with_token_on(
        req,
        &mut || Ok(Box::new(req.module.open(req.config)?)),
        &mut terminal(req.pin_stdin),
    )
}

/// [`sign_with_token`] with the module loaded by `load` (after every check that needs no
/// token) and PINs asked through `ask`.
fn sign_with_token_on(
    req: &SignRequest<'_>,
    load: &mut dyn FnMut() -> Result<Box<dyn TokenModule>, CliError>,
    ask: &mut Asker<'_>,
) -> Result<TokenSignature, CliError> {
    // 1. Everything that can be checked before touching the token.
    let in_bytes = std::fs::read(req.metadata)
        .map_err(|e| CliError::Io(format!("cannot read {}: {e}", req.metadata.display())))?;
    let md = AnyMetadata::from_bytes(&in_bytes).map_err(|e| {
        CliError::Usage(format!(
            "{} is not TUF metadata: {e}",
            req.metadata.display()
        ))
    })?;
    // The trusted root must itself verify (a threshold of its own root keys) before its key
    // lists decide anything.
    let trusted = match req.trusted_root {
        Some(p) => {
            let b = std::fs::read(p)
                .map_err(|e| CliError::Io(format!("cannot read {}: {e}", p.display())))?;
            let (t, _) = trust_root(&p.display().to_string(), &b)
                .map_err(|e| CliError::Invalid(format!("the trusted root does not verify: {e}")))?;
            Some(t.metadata().clone())
        }
        None => None,
    };
    let auth = authority(&md, trusted.as_ref());
    let ty = md.role_type();
    let version = md.common().version;
    let what = format!("{ty} version {version} ({})", req.metadata.display());

    // 2. The token and the key (public objects: no PIN needed yet).
    let holder = req
        .keyholder
        .map(|k| format!(" of keyholder {k}"))
        .unwrap_or_default();
    let k = SigningKey::on(
        load()?,
        req.token,
        req.key,
        req.keyholder,
        ask,
        &format!("sign {what}"),
    )?;
    let (token, tkey, public) = (&k.token, &k.key, &k.public);
    warn_advisories(token, public.algorithm());
    let material = public.material();
    let mut keyids: Vec<KeyId> = Vec::new();
    let mut named_by = Vec::new();
    for (desc, id, k) in &auth.keys {
        if k.public_key().is_ok_and(|p| p.material() == material) {
            if !keyids.contains(id) {
                keyids.push(id.clone());
            }
            named_by.push(format!("{desc} as {id}"));
        }
    }
    let own_id = Key::from_public_key(public).key_id();
    if keyids.is_empty() {
        let why = auth.missing.clone().unwrap_or_else(|| {
            format!(
                "key \"{}\" ({own_id}) on {token} is not named by the {}",
                tkey.label,
                auth.roles
                    .iter()
                    .map(|r| r.0.clone())
                    .collect::<Vec<_>>()
                    .join(" nor the ")
            )
        });
        if !req.force {
            return Err(CliError::Invalid(format!(
                "refusing to sign {what}: {why}; {} left unchanged (use --force to sign anyway; the signature would not count)",
                req.metadata.display()
            )));
        }
        eprintln!("!!! WARNING: --force: {why}.");
        eprintln!(
            "!!! WARNING: signing {what} anyway with key id {own_id}; this signature does NOT count toward any threshold Conclave knows."
        );
        keyids.push(own_id.clone());
    }

    // 3. PIN, login, sign, verify.
    k.login_with(
        ask,
        &format!(
            "PIN for {token}{holder} to sign {what} with key \"{}\": ",
            tkey.label
        ),
    )?;
    let token = token.clone();
    let key_label = tkey.label.clone();
    let mut signer = k.session.signer(&k.key)?;
    let msg = md.signed_bytes();
    let start = Instant::now();
    let sig = signer.sign(msg).map_err(|e| match e {
        crate::signer::SignerError::Token(t) => CliError::from(*t),
        other => CliError::Invalid(format!(
            "the token's signature is bad, nothing written: {other}"
        )),
    })?;
    let took = start.elapsed();
    // `signer.sign` verified the signature against the token's public key, whose material is
    // the material of every key id in `keyids` (matched above): not verified again here.
    Ok(TokenSignature {
        material,
        md,
        sig,
        keyids,
        named_by,
        roles: auth.roles,
        token,
        key_label,
        what,
        took,
    })
}

/// `conclave sign`: add one signature from a token key to a metadata file.
pub fn run_sign(a: &SignArgs, config: Option<&Path>) -> Result<Outcome, CliError> {
    let in_place = same_file(&a.input, &a.out);
    if !in_place && a.out.exists() {
        return Err(CliError::Usage(format!(
            "{} exists; Conclave does not overwrite another file (sign in place with --out equal to --in)",
            a.out.display()
        )));
    }
    let signed = sign_with_token(&SignRequest {
        module: &a.module,
        config,
        token: a.token.as_deref(),
        key: &a.key,
        keyholder: a.keyholder.as_deref(),
        metadata: &a.input,
        trusted_root: a.trusted_root.as_deref(),
        pin_stdin: a.pin_stdin,
        force: a.force,
    })?;
    let mut md = signed.md.clone();
    for id in &signed.keyids {
        add_signature(&mut md, id.clone(), &signed.sig);
    }

    // Re-read what will be written and check it before the rename: every role's signatures
    // are counted against the keys as the metadata lists them (the one threshold counter), and
    // the signature just added must count wherever a role names its key id. The token's
    // signature was verified against its key over these bytes; the counter takes that as known
    // for exactly that key material and those signature bytes, while every other signature in
    // the file is verified.
    let out_bytes = file_bytes(&md);
    let check = AnyMetadata::from_bytes(&out_bytes)
        .map_err(|e| CliError::Usage(format!("internal error: output does not parse: {e}")))?;
    if check.signed_bytes() != signed.md.signed_bytes() {
        return Err(CliError::Usage(
            "internal error: the signed part changed while adding a signature; nothing written"
                .into(),
        ));
    }
    let known = [(signed.material.clone(), signed.sig.clone())];
    let mut counts = Vec::new();
    for (desc, role, keys) in &signed.roles {
        let r = count_signatures_known(
            |id| keys.iter().find(|(k, _)| k == id).map(|(_, k)| k),
            role,
            signed.md.signed_bytes(),
            check.signatures(),
            &known,
        );
        for (id, why) in &r.unsigned {
            if signed.keyids.contains(id) && !matches!(why, Uncounted::SameKeyAs(_)) {
                return Err(CliError::Invalid(format!(
                    "the new signature does not count for key {id} as the {desc} lists it: {why}; nothing written"
                )));
            }
        }
        counts.push((desc, r));
    }
    write_atomic(&a.out, &out_bytes)
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", a.out.display())))?;

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
    // Threshold status per role, counted above by the verifier's one threshold counter.
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
    use crate::driver::fake_tokens::FakeTokens;
    use std::cell::Cell;

    /// A keyholder who answers every PIN prompt with `pin`, counting the prompts.
    fn answering<'a>(
        pin: &'a str,
        asked: &'a Cell<u32>,
    ) -> impl FnMut(Ask, &TokenDesc, &str) -> Result<Pin, CliError> + 'a {
        move |what, _token, prompt| {
            assert_eq!(what, Ask::Pin, "{prompt}");
            asked.set(asked.get() + 1);
            Ok(Zeroizing::new(pin.to_string()))
        }
    }

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
        let asked = Cell::new(0);
        keygen_on(
            &keygen_args(token, label),
            parsed(),
            fakes,
            &mut answering(pin, &asked),
        )
        .unwrap();
        assert_eq!(asked.get(), 1);
        let t = fakes.find_token(token).unwrap();
        let k = fakes.open(&t, false).unwrap().find_key(label).unwrap();
        k.tuf_key().unwrap()
    }

    #[test]
    fn token_keygen_makes_a_key_refuses_a_taken_label_before_the_pin_and_a_wrong_pin() {
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        let asked = Cell::new(0);
        let out = keygen_on(
            &keygen_args("alice", "root-key"),
            parsed(),
            &fakes,
            &mut answering("alice-pin", &asked),
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
        let asked = Cell::new(0);
        let e = keygen_on(
            &keygen_args("alice", "root-key"),
            parsed(),
            &fakes,
            &mut answering("alice-pin", &asked),
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(asked.get(), 0);
        assert_eq!(e.exit_code(), 1, "{e}");
        assert!(e.to_string().contains("label \"root-key\""), "{e}");
        // A wrong PIN is refused (exit 1) and makes no key.
        let e = keygen_on(
            &keygen_args("alice", "other"),
            parsed(),
            &fakes,
            &mut answering("wrong-pin", &asked),
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
            &mut answering("x", &asked),
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
        let out = list_on(&args, None, &by, &fakes).unwrap().stdout;
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
            serde_json::from_str(&list_on(&json, None, &by, &fakes).unwrap().stdout).unwrap();
        assert_eq!(v["module_chosen_by"], "--module");
        assert_eq!(v["tokens"][0]["keys"][0]["keyid"], key.key_id().0.as_str());
        // No token present.
        fakes.remove("alice");
        fakes.remove("bob");
        let out = list_on(&args, None, &by, &fakes).unwrap().stdout;
        assert!(out.ends_with("no tokens present\n"), "{out}");
    }

    /// `sign`'s key lookup (through [`SigningKey`]): found by label on whichever present token
    /// holds it, the PIN asked once, and the signature verifies against the key the root lists.
    #[test]
    fn sign_finds_the_key_on_whichever_token_holds_it_and_signs_a_root() {
        use crate::signer::software::SoftwareSigner;
        use crate::tuf::edit::{RoleKeys, new_root};
        let fakes = FakeTokens::new();
        fakes.add("alice", "1001", "alice-pin");
        fakes.add("bob", "1002", "bob-pin");
        let key = keygen(&fakes, "bob", "bob-root", "bob-pin");
        // alice holds a key too: a token that requires login and shows no key at all is taken
        // for one that hides its keys until login (yubihsm_pkcs11), see `locate_key`.
        keygen(&fakes, "alice", "alice-root", "alice-pin");
        let other = SoftwareSigner::from_seed(Algorithm::Ed25519, &[9; 32]).unwrap();
        let roles: Vec<RoleKeys> = RoleType::ALL
            .iter()
            .map(|r| RoleKeys {
                role: *r,
                keys: vec![key.clone(), other.key().clone()],
                threshold: 2,
            })
            .collect();
        let exp = time::macros::datetime!(2040-01-01 0:00 UTC);
        let root = Metadata::new(new_root(&roles, exp).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("1.root.json");
        std::fs::write(&file, root.to_file_bytes()).unwrap();
        let module = ModuleArg { module: None };
        let req = SignRequest {
            module: &module,
            config: None,
            token: None,
            key: "bob-root",
            keyholder: Some("bob"),
            metadata: &file,
            trusted_root: None,
            pin_stdin: false,
            force: false,
        };
        let asked = Cell::new(0);
        let signed = sign_with_token_on(
            &req,
            &mut || Ok(Box::new(fakes.clone())),
            &mut answering("bob-pin", &asked),
        )
        .unwrap();
        assert_eq!(asked.get(), 1);
        assert_eq!(signed.token.label, "bob");
        assert_eq!(signed.keyids, vec![key.key_id()]);
        key.public_key()
            .unwrap()
            .verify(signed.md.signed_bytes(), &signed.sig)
            .unwrap();
        let sigs = [Signature {
            keyid: key.key_id(),
            sig: hex::encode(&signed.sig),
            unrecognized: Default::default(),
        }];
        assert!(
            signed
                .threshold_lines(&sigs)
                .contains("not enough signatures yet"),
            "{}",
            signed.threshold_lines(&sigs)
        );
        // A key no present token holds: the error names what the tokens hold.
        let missing = SignRequest {
            key: "carol-root",
            ..req
        };
        let e = sign_with_token_on(
            &missing,
            &mut || Ok(Box::new(fakes.clone())),
            &mut answering("bob-pin", &asked),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(
            e.to_string().contains("carol-root")
                && e.to_string().contains("bob-root")
                && e.to_string().contains("alice-root"),
            "{e}"
        );
        assert_eq!(asked.get(), 1, "no PIN asked for a key that is not there");
    }
}
