//! Keyholder tokens through PKCS#11 (the `cryptoki` crate): module discovery, token listing,
//! login, in-token key generation with a self-test, and a [`Signer`] backed by a token key.
//!
//! `cryptoki` wraps the C interface; the one `unsafe` call here is [`raw_token_info`] (a token
//! whose clock cryptoki cannot parse), with its SAFETY comment. Errors say which PKCS#11 function failed
//! with which return value, and the cases a keyholder must tell apart (wrong PIN, locked PIN,
//! token removed, mechanism missing, module not loadable) are separate variants.
//!
//! Tokens are found by label or serial number, never by slot id: SoftHSM2 gives a token a new
//! random slot id when it is initialised.

use std::fmt;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, Rv, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{Signer, SignerError};
use crate::tuf::key::{Algorithm, Key, KeyId, PublicKey, prehash};

/// A PIN as typed by the keyholder; wiped from memory when dropped. Never printed.
pub type Pin = Zeroizing<String>;

/// Known PKCS#11 modules, in the order Conclave tries them: (device family, file name).
pub const KNOWN_MODULES: &[(&str, &str)] = &[
    ("SoftHSM2", "libsofthsm2.so"),
    // ykcs11 before OpenSC: OpenSC also shows a YubiKey (its PIV card driver), but without
    // the PIV handling Conclave gives ykcs11's tokens (keys in slots, the management key).
    ("YubiKey (ykcs11)", "libykcs11.so"),
    ("OpenSC (Nitrokey HSM, smart cards)", "opensc-pkcs11.so"),
    ("YubiHSM 2", "yubihsm_pkcs11.so"),
];

/// Directories searched for the known modules (Debian multiarch layout first).
pub const MODULE_DIRS: &[&str] = &[
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/aarch64-linux-gnu/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib64",
    "/usr/lib64/pkcs11",
];

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7).
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 curve OID (1.3.132.0.34).
pub const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the Ed25519 OID (1.3.101.112), as most tokens want it.
pub const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", as PKCS#11 2.40-era tokens want it.
pub const ED25519_NAME_PARAMS: &[u8] = &[
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];

/// Everything that can go wrong at the token edge. Messages name the module, token and key; they
/// never contain a PIN.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No module given and none of the known modules was found.
    #[error(
        "no PKCS#11 module found; give one with --module PATH or `module` under [pkcs11] in the configuration file (searched: {})",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoModule {
        /// Paths tried.
        searched: Vec<PathBuf>,
    },
    /// The module file does not exist.
    #[error("PKCS#11 module {} does not exist", .path.display())]
    ModuleMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but is not a loadable PKCS#11 module.
    #[error("{} is not a loadable PKCS#11 module: {reason}", .path.display())]
    ModuleNotLoadable {
        /// The path given.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The module could not start (`C_Initialize` returned `CKR_ARGUMENTS_BAD`,
    /// `CKR_GENERAL_ERROR` or `CKR_DEVICE_ERROR`): usually its configuration is missing.
    #[error(
        "no token can be reached: {module} could not start (C_Initialize returned {rv}); check its configuration: the YubiHSM 2 module needs YUBIHSM_PKCS11_CONF naming its yubihsm_pkcs11.conf with the connector (`connector = yhusb://` for USB, or yubihsm-connector's http://127.0.0.1:12345)"
    )]
    ModuleNotConfigured {
        /// The module.
        module: String,
        /// What `C_Initialize` returned.
        rv: String,
    },
    /// The module reaches no device at all (`CKR_DEVICE_ERROR` when listing slots).
    #[error(
        "no token present: {module} reaches no device ({function} returned {rv}); insert the token; a YubiKey or smart card also needs the PC/SC service (pcscd) running, a YubiHSM 2 its connector (yubihsm-connector and yubihsm_pkcs11.conf)"
    )]
    NoDevice {
        /// The module.
        module: String,
        /// The function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// A PKCS#11 function failed in a way not covered by a more specific variant.
    #[error("{function} failed with {rv} ({context})")]
    Pkcs11 {
        /// The function, e.g. `C_GenerateKeyPair`.
        function: String,
        /// The return value, e.g. `CKR_GENERAL_ERROR`.
        rv: String,
        /// Which module/token/key was being used.
        context: String,
    },
    /// A failure inside cryptoki that is not a PKCS#11 return value.
    #[error("PKCS#11 wrapper error ({context}): {reason}")]
    Wrapper {
        /// Which module/token/key was being used.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// The PIN was wrong (`CKR_PIN_INCORRECT`).
    #[error("wrong PIN for {token} (C_Login returned CKR_PIN_INCORRECT); {}", .tries.describe())]
    WrongPin {
        /// The token.
        token: String,
        /// What the token says about remaining tries.
        tries: PinTries,
    },
    /// The PIN has a length the token says is impossible (`ulMinPinLen`..`ulMaxPinLen`, or
    /// `CKR_PIN_LEN_RANGE`): not a wrong PIN.
    #[error(
        "the PIN entered for {token} has {len} bytes; this token takes {min} to {max} ({how}). Check which PIN this is: for a YubiKey the PIV PIN (6 to 8 digits), for a YubiHSM 2 the authentication key id in 4 hex digits followed by its password"
    )]
    PinLength {
        /// The token.
        token: String,
        /// Length entered.
        len: usize,
        /// The token's minimum.
        min: usize,
        /// The token's maximum.
        max: usize,
        /// Whether it was sent.
        how: String,
    },
    /// A firmware advisory concerns the key type on this device.
    #[error(
        "{token} has firmware {firmware}: advisory {advisory}. No {key_type} key is generated on it; {safe}"
    )]
    Advisory {
        /// The token.
        token: String,
        /// Its firmware.
        firmware: String,
        /// The advisory.
        advisory: String,
        /// The key type refused.
        key_type: String,
        /// The key types safe on the device, or that none is.
        safe: String,
    },
    /// The PIV management key was refused (`C_Login(CKU_SO)` returned `CKR_PIN_INCORRECT`).
    #[error("wrong PIV management key for {token} (C_Login as CKU_SO returned CKR_PIN_INCORRECT)")]
    WrongManagementKey {
        /// The token.
        token: String,
    },
    /// The factory-default PIV management key in a real ceremony.
    #[error(
        "{token} still has the factory-default PIV management key; change it (ykman piv access change-management-key) before a real ceremony: anyone could replace its keys"
    )]
    DefaultManagementKey {
        /// The token.
        token: String,
    },
    /// The user PIN is locked (`CKR_PIN_LOCKED` or the token's locked flag); nothing was attempted.
    #[error(
        "the user PIN of {token} is locked ({how}); nothing was attempted. The security officer must unlock or re-initialise the PIN"
    )]
    PinLocked {
        /// The token.
        token: String,
        /// How we know (`C_Login returned CKR_PIN_LOCKED` or `token flags say CKF_USER_PIN_LOCKED`).
        how: String,
    },
    /// The token went away (`CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, ...).
    #[error("{token} was removed or is not present ({function} returned {rv})")]
    TokenRemoved {
        /// The token.
        token: String,
        /// The function that noticed.
        function: String,
        /// The return value.
        rv: String,
    },
    /// The token lacks a mechanism Conclave needs; there is no fallback to another key type.
    #[error(
        "{token} does not support {mechanism} (needed to {purpose}); choose another key type or token"
    )]
    MechanismMissing {
        /// The token.
        token: String,
        /// e.g. `CKM_EC_EDWARDS_KEY_PAIR_GEN`.
        mechanism: String,
        /// What it was needed for.
        purpose: String,
    },
    /// The token refused the curve parameters.
    #[error("{token} does not support the curve {curve} ({function} returned {rv})")]
    CurveNotSupported {
        /// The token.
        token: String,
        /// e.g. `Ed25519`.
        curve: String,
        /// The function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// No token matches the label or serial asked for.
    #[error("no token with label or serial \"{wanted}\" in {module} (present: {}); insert the token with label or serial \"{wanted}\"{} and try again", if .present.is_empty() { "none".to_string() } else { .present.join(", ") }, for_whom(.keyholder))]
    TokenNotFound {
        /// What was asked for.
        wanted: String,
        /// The module.
        module: String,
        /// Tokens that are present.
        present: Vec<String>,
        /// Whose token it is, when known (`--keyholder`).
        keyholder: Option<String>,
    },
    /// No present token holds the key asked for (the token was not named: Conclave looked at
    /// every present token).
    #[error("no token present in {module} holds a key with label or key id \"{wanted}\" (keys present: {}); insert the token that holds it{} and try again", if .present.is_empty() { "none".to_string() } else { .present.join(", ") }, for_whom(.keyholder))]
    NoTokenHoldsKey {
        /// What was asked for.
        wanted: String,
        /// The module.
        module: String,
        /// Keys on the present tokens (label, key id, token).
        present: Vec<String>,
        /// Whose token it is, when known (`--keyholder`).
        keyholder: Option<String>,
    },
    /// Several tokens match.
    #[error("several tokens match \"{wanted}\": {}; use the serial number", .matches.join(", "))]
    AmbiguousToken {
        /// What was asked for.
        wanted: String,
        /// The matching tokens.
        matches: Vec<String>,
    },
    /// The token is not initialised (no label, no PIN).
    #[error("{token} is not initialised; initialise it for its keyholder first (see docs/hsm.md)")]
    NotInitialized {
        /// The token.
        token: String,
    },
    /// No key pair matches the label or key id.
    #[error("{token} holds no key with label or key id \"{wanted}\" (keys: {})", if .present.is_empty() { "none".to_string() } else { .present.join(", ") })]
    KeyNotFound {
        /// The token.
        token: String,
        /// What was asked for.
        wanted: String,
        /// Keys on the token (label and key id).
        present: Vec<String>,
    },
    /// Several keys match.
    #[error("several keys on {token} match \"{wanted}\": {}", .matches.join(", "))]
    AmbiguousKey {
        /// The token.
        token: String,
        /// What was asked for.
        wanted: String,
        /// The matching keys.
        matches: Vec<String>,
    },
    /// Key generation refused: an object with this label or id exists (never overwritten).
    #[error(
        "{token} already holds an object with {what}; Conclave never overwrites a key, choose another label"
    )]
    KeyExists {
        /// The token.
        token: String,
        /// `label "x"` or `CKA_ID 0a0b`.
        what: String,
    },
    /// The key on the token is not one Conclave can use.
    #[error("key \"{label}\" on {token} cannot be used: {reason}")]
    UnsupportedKey {
        /// The token.
        token: String,
        /// The key label.
        label: String,
        /// Why.
        reason: String,
    },
    /// The freshly generated key failed its self-test; it was deleted again.
    #[error(
        "self-test of the new key \"{label}\" on {token} failed: {reason}; the key pair was deleted"
    )]
    SelfTestFailed {
        /// The token.
        token: String,
        /// The key label.
        label: String,
        /// Why.
        reason: String,
    },
}

fn for_whom(keyholder: &Option<String>) -> String {
    keyholder
        .as_ref()
        .map(|k| format!(" for keyholder {k}"))
        .unwrap_or_default()
}

impl TokenError {
    /// Name the person whose token is missing in "insert the token ..." messages.
    pub fn for_keyholder(mut self, name: Option<&str>) -> TokenError {
        if let TokenError::TokenNotFound { keyholder, .. }
        | TokenError::NoTokenHoldsKey { keyholder, .. } = &mut self
        {
            *keyholder = name.map(str::to_string);
        }
        self
    }

    /// Exit code class: 1 for refusals (wrong or locked PIN, key exists, self-test), 2 for the
    /// rest (usage, device, I/O).
    pub fn exit_code(&self) -> u8 {
        match self {
            TokenError::WrongPin { .. }
            | TokenError::PinLength { .. }
            | TokenError::WrongManagementKey { .. }
            | TokenError::Advisory { .. }
            | TokenError::DefaultManagementKey { .. }
            | TokenError::PinLocked { .. }
            | TokenError::KeyExists { .. }
            | TokenError::SelfTestFailed { .. } => 1,
            _ => 2,
        }
    }
}

/// Wrong PINs on tpm2-pkcs11 tokens in this process (and, for a continued ceremony, those its
/// transcript records): one TPM's dictionary-attack counter is shared by all its tokens.
static TPM_WRONG_PINS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Wrong PINs after which a TPM set up as usual (`tpm2_dictionarylockout -n 3`) locks every
/// token on it. The TPM does not report its counter through tpm2-pkcs11.
pub const TPM_USUAL_MAX_TRIES: u32 = 3;

/// How a wrong PIN on a TPM token is reported ([`PinTries::describe`]); a continued ceremony
/// counts the wrong PINs its transcript records with these words
/// ([`note_earlier_tpm_wrong_pins`]).
pub const TPM_SHARED_LOCKOUT: &str =
    "this is a TPM token: every token on this TPM shares one lockout counter";

/// Wrong PINs on TPM tokens so far (this process, and the continued ceremony's transcript).
pub fn tpm_wrong_pins() -> u32 {
    TPM_WRONG_PINS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A continued ceremony: `n` wrong PINs on TPM tokens were recorded by its earlier runs, and
/// count toward the same lockout (the TPM keeps its counter across processes).
pub fn note_earlier_tpm_wrong_pins(n: u32) {
    TPM_WRONG_PINS.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
}

/// The warning before a PIN is sent to `token` when it is on a TPM whose next wrong PIN would
/// lock every token on it (as usually set up): `None` otherwise.
pub fn tpm_last_try_warning(token: &TokenDesc) -> Option<String> {
    let n = tpm_wrong_pins();
    (token.shares_tpm_lockout() && n + 1 >= TPM_USUAL_MAX_TRIES).then(|| {
        format!(
            "WARNING: {n} wrong PIN{} on this TPM's tokens so far: ONE more wrong PIN on {token} locks EVERY keyholder's token on this TPM (a TPM set up as usual locks after {TPM_USUAL_MAX_TRIES} in total); check the PIN before it is sent",
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Refuse a PIN whose length the token reports as impossible, before it is sent.
pub fn check_pin_length(token: &TokenDesc, len: usize) -> Result<(), TokenError> {
    // No PIN on a reader with a PIN pad: the keyholder types it on the pad (a `C_Login` with
    // no PIN), whose length the token judges itself.
    if len == 0 && token.protected_path {
        return Ok(());
    }
    let (min, max) = token.pin_len;
    // Tokens that report nothing useful (0..0, or a minimum above the maximum) are not judged.
    if max == 0 || min > max || (min..=max).contains(&len) {
        return Ok(());
    }
    Err(TokenError::PinLength {
        token: token.to_string(),
        len,
        min,
        max,
        how: "not sent to the token; no try was used".into(),
    })
}

/// What the token's flags say about remaining PIN tries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinTries {
    /// `CKF_USER_PIN_COUNT_LOW`: a wrong PIN was entered at least once since the last good one
    /// (PKCS#11 does not report the number of tries left; SoftHSM2 sets this flag but never
    /// locks).
    pub count_low: bool,
    /// `CKF_USER_PIN_FINAL_TRY`: one more wrong PIN locks the token.
    pub final_try: bool,
    /// `CKF_USER_PIN_LOCKED`.
    pub locked: bool,
    /// On a TPM (tpm2-pkcs11): wrong PINs so far on its tokens (this process, and a continued
    /// ceremony's transcript), which all share the TPM's lockout counter (the module reports
    /// no PIN-count flags).
    pub shared_lockout: Option<u32>,
}

impl PinTries {
    /// On a TPM: the next wrong PIN on any of its tokens locks every token on it (as usually
    /// set up).
    pub fn shared_last_try(&self) -> bool {
        self.shared_lockout
            .is_some_and(|n| n + 1 >= TPM_USUAL_MAX_TRIES)
    }

    /// A sentence for the keyholder.
    pub fn describe(&self) -> String {
        if let Some(n) = self.shared_lockout {
            let next = if self.shared_last_try() {
                format!(
                    "ONE more wrong PIN on any of its tokens locks EVERY keyholder's token on it (a TPM set up as usual locks after {TPM_USUAL_MAX_TRIES} in total)"
                )
            } else {
                format!(
                    "a TPM set up as usual locks after {TPM_USUAL_MAX_TRIES} wrong PINs in total, which locks EVERY keyholder's token on it"
                )
            };
            return format!(
                "{TPM_SHARED_LOCKOUT} ({n} wrong PIN{} here so far), and the TPM reports no tries left; {next}: check the PIN before the next try",
                if n == 1 { "" } else { "s" }
            );
        }
        if self.locked {
            "the token now reports the PIN as LOCKED"
        } else if self.final_try {
            "the token reports ONE try left: another wrong PIN locks it"
        } else if self.count_low {
            "the token reports a wrong PIN since the last successful login (CKF_USER_PIN_COUNT_LOW); it does not say how many tries are left"
        } else {
            "the token reports no low try count"
        }
        .to_string()
    }
}

/// The PKCS#11 name of a return value (`CKR_PIN_INCORRECT`).
pub fn rv_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(v) => format!("CKR_VENDOR_DEFINED(0x{v:x})"),
        RvError::UnknownErrorCode(v) => format!("unknown return value 0x{v:x}"),
        other => format!("CKR_{}", camel_to_upper_snake(&format!("{other:?}"))),
    }
}

fn camel_to_upper_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn function_name(f: &cryptoki::context::Function) -> String {
    format!("C_{f:?}")
}

/// Turn a cryptoki error into a [`TokenError`], classifying the cases a keyholder must tell apart.
fn classify(e: CkError, context: &str) -> TokenError {
    match e {
        CkError::Pkcs11(rv, f) => {
            let function = function_name(&f);
            match rv {
                // A session handle a module no longer knows: the token went away under it
                // (ykcs11 and OpenSC after the card is pulled).
                RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed => TokenError::TokenRemoved {
                    token: context.to_string(),
                    function,
                    rv: rv_name(&rv),
                },
                RvError::PinLocked => TokenError::PinLocked {
                    token: context.to_string(),
                    how: format!("{function} returned CKR_PIN_LOCKED"),
                },
                RvError::MechanismInvalid => TokenError::MechanismMissing {
                    token: context.to_string(),
                    mechanism: "the requested mechanism".into(),
                    purpose: format!("{function} (returned CKR_MECHANISM_INVALID)"),
                },
                _ => TokenError::Pkcs11 {
                    function,
                    rv: rv_name(&rv),
                    context: context.to_string(),
                },
            }
        }
        other => TokenError::Wrapper {
            context: context.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Where to find a module: an explicit path, or the known list.
pub fn locate_module(explicit: Option<&Path>) -> Result<PathBuf, TokenError> {
    if let Some(p) = explicit {
        if !p.exists() {
            return Err(TokenError::ModuleMissing {
                path: p.to_path_buf(),
            });
        }
        return Ok(p.to_path_buf());
    }
    let candidates = module_candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(TokenError::NoModule {
            searched: candidates,
        })
}

/// Every path the automatic search tries, in order.
pub fn module_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (_, file) in KNOWN_MODULES {
        for dir in MODULE_DIRS {
            out.push(Path::new(dir).join(file));
        }
    }
    out
}

/// The signature algorithm a key type selector names (`ed25519`, `ecdsa-p256`, `ecdsa-p384`).
pub fn parse_key_type(s: &str) -> Option<Algorithm> {
    Algorithm::from_key_type(s)
}

/// The command-line name of a key type.
pub fn key_type_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::EcdsaP256 => "ecdsa-p256",
        Algorithm::EcdsaP384 => "ecdsa-p384",
        Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256 => "rsa",
    }
}

/// The PIV factory-default management key (3DES), which ykcs11 accepts for `CKU_SO` until it
/// is changed (`ykman piv access change-management-key`).
pub const PIV_FACTORY_MANAGEMENT_KEY: &str = "010203040506070801020304050607080102030405060708";

/// A PIV key slot, as ykcs11 maps it to the first byte of `CKA_ID` (yubico-piv-tool
/// `ykcs11/objects.c`): 9a = 1, 9c = 2, 9d = 3, 9e = 4, retired 82..95 = 5..24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PivSlot(u8);

impl PivSlot {
    /// Slot 9c, "Digital Signature" (what tuf-on-ci and sigstore keyholders use).
    pub const DIGITAL_SIGNATURE: PivSlot = PivSlot(0x9c);

    /// Parse `9a`, `9c`, `9d`, `9e` or `82`..`95`.
    pub fn parse(s: &str) -> Option<PivSlot> {
        let v = u8::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()?;
        matches!(v, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95).then_some(PivSlot(v))
    }

    /// The `CKA_ID` byte ykcs11 uses for this slot.
    pub fn key_id(self) -> u8 {
        match self.0 {
            0x9a => 1,
            0x9c => 2,
            0x9d => 3,
            0x9e => 4,
            r => r - 0x82 + 5,
        }
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

/// How to spell the Ed25519 curve in `CKA_EC_PARAMS` when generating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdParams {
    /// Try the OID, and if the token rejects it, the name.
    Auto,
    /// The OID 1.3.101.112 only.
    Oid,
    /// The PrintableString "edwards25519" only.
    Name,
}

/// A token as the keyholder sees it.
#[derive(Clone, Debug)]
pub struct TokenDesc {
    /// Slot id in this process (changes between runs on SoftHSM2; informational only).
    pub slot: u64,
    /// Token label.
    pub label: String,
    /// Serial number.
    pub serial: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Firmware version, `major.minor`.
    pub firmware: String,
    /// Hardware version.
    pub hardware: String,
    /// `CKF_TOKEN_INITIALIZED`.
    pub initialized: bool,
    /// `CKF_LOGIN_REQUIRED`.
    pub login_required: bool,
    /// `CKF_USER_PIN_INITIALIZED`.
    pub user_pin_initialized: bool,
    /// PIN try flags.
    pub pin: PinTries,
    /// Known advisories for this device and firmware.
    pub advisories: Vec<Advisory>,
    /// The module the token was found through (its path): part of the token's identity.
    pub module: String,
    /// `CKF_PROTECTED_AUTHENTICATION_PATH`: the PIN is entered on the reader's PIN pad.
    pub protected_path: bool,
    /// `ulMinPinLen`..`ulMaxPinLen`: PINs outside are refused before they are sent.
    pub pin_len: (usize, usize),
    /// The token's own clock (`CKF_CLOCK_ON_TOKEN`, `utcTime`).
    pub clock: TokenClock,
    fw: (u8, u8, u8),
}

/// A token's clock, as `C_GetTokenInfo` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenClock {
    /// No `CKF_CLOCK_ON_TOKEN`: the token has no clock.
    None,
    /// The clock's reading, `YYYY-MM-DDThh:mm:ssZ`.
    Time(String),
    /// `CKF_CLOCK_ON_TOKEN` with a `utcTime` that is not digits (opencryptoki leaves it blank):
    /// the token is described and used, its clock shown as unknown.
    Unknown,
}

impl TokenClock {
    /// For `token list --json`: null, the time, or "unknown".
    fn to_json(&self) -> serde_json::Value {
        match self {
            TokenClock::None => serde_json::Value::Null,
            TokenClock::Time(t) => t.as_str().into(),
            TokenClock::Unknown => "unknown".into(),
        }
    }
}

impl TokenDesc {
    /// A described token for tests of what people see (no module needed).
    #[cfg(test)]
    pub fn example(label: &str, serial: &str) -> TokenDesc {
        TokenDesc {
            slot: 0,
            label: label.into(),
            serial: serial.into(),
            manufacturer: "Yubico".into(),
            model: "YubiHSM".into(),
            firmware: "2.4.0".into(),
            hardware: "1.0".into(),
            initialized: true,
            login_required: true,
            user_pin_initialized: true,
            pin: PinTries::default(),
            advisories: Vec::new(),
            module: "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so".into(),
            protected_path: false,
            pin_len: (8, 64),
            clock: TokenClock::None,
            fw: (2, 4, 0),
        }
    }
}

impl fmt::Display for TokenDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.label.is_empty() {
            write!(
                f,
                "token (serial {}, {} {})",
                self.serial, self.manufacturer, self.model
            )
        } else {
            write!(
                f,
                "token \"{}\" (serial {}, {} {})",
                self.label, self.serial, self.manufacturer, self.model
            )
        }
    }
}

/// The serial number tpm2-pkcs11 gives every token (`TPM2_TOKEN_SERIAL_NUMBER` in its
/// `src/lib/token.c`).
pub const TPM2_PKCS11_SERIAL: &str = "0000000000000000";

/// OpenSC names a token `CARD LABEL (PIN LABEL)` when the card has more than one PIN; the card
/// label, if the token label has that form.
fn strip_pin_label(label: &str) -> Option<&str> {
    let (base, pin) = label.strip_suffix(')')?.rsplit_once(" (")?;
    (!base.is_empty() && pin.to_ascii_lowercase().contains("pin")).then_some(base)
}

/// Text from a token made safe to show: NUL padding and trailing blanks removed, control
/// characters (escape sequences included) replaced by `?`.
pub fn clean_text(s: &str) -> String {
    s.trim_end_matches(['\0', ' '])
        .trim_start_matches(' ')
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The manufacturer both Yubico modules report (`YKCS11_MANUFACTURER` in yubico-piv-tool's
/// `ykcs11/ykcs11.c`, `YUBIHSM_PKCS11_MANUFACTURER` in yubihsm-shell's
/// `pkcs11/yubihsm_pkcs11.c`). OpenSC's OpenPGP driver reports a YubiKey as plain `Yubico`
/// (`pkcs15-openpgp.c`, from the card's AID) with the OpenPGP application's version, which
/// is not encoded this way; its PIV driver reports `piv_II` and no version at all.
pub const YUBICO_MODULES_MANUFACTURER: &str = "Yubico (www.yubico.com)";

/// Whether the token's firmware comes from a Yubico module, encoded `minor * 10 + patch`.
fn yubico_encoded(manufacturer: &str) -> bool {
    manufacturer.eq_ignore_ascii_case(YUBICO_MODULES_MANUFACTURER)
}

/// Firmware as the device's own version. Both Yubico modules (ykcs11's `get_token_version`,
/// yubihsm_pkcs11's `C_GetTokenInfo`) put `minor * 10 + patch` in the minor byte: YubiKey 5.4.3
/// reads 5.43, YubiHSM 2.3.1 reads 2.31. Only their manufacturer string
/// ([`YUBICO_MODULES_MANUFACTURER`]) is decoded so; any other module's version is taken as
/// reported.
pub fn decode_firmware(manufacturer: &str, major: u8, minor: u8) -> (u8, u8, u8) {
    if yubico_encoded(manufacturer) {
        (major, minor / 10, minor % 10)
    } else {
        (major, minor, 0)
    }
}

/// A security advisory that applies to a device and firmware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advisory {
    /// Identifier, e.g. `YSA-2024-03`.
    pub id: &'static str,
    /// Which key types it concerns.
    pub affects: &'static str,
    /// What to do.
    pub summary: &'static str,
    /// The device as the advisory names it (the strictest row when the module does not tell
    /// the series apart).
    pub device: &'static str,
    /// The key types Conclave generates that stay safe on the affected device (empty: none;
    /// e.g. a YubiKey's PIV application has Ed25519 only from firmware 5.7, which is fixed).
    pub safe: &'static [Algorithm],
}

impl fmt::Display for Advisory {
    /// `YSA-2024-03 (ECDSA), DEVICE: SUMMARY`, as recorded and shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}), {}: {}",
            self.id, self.affects, self.device, self.summary
        )
    }
}

impl Advisory {
    /// Whether the advisory concerns keys of `alg`.
    pub fn concerns(&self, alg: Algorithm) -> bool {
        self.affects != "ECDSA" || matches!(alg, Algorithm::EcdsaP256 | Algorithm::EcdsaP384)
    }

    /// The safe key types by name (`ed25519`), or a sentence saying there is none.
    pub fn safe_types(&self) -> String {
        if self.safe.is_empty() {
            "no key type Conclave supports is safe on it (use another device, or update its firmware)".into()
        } else {
            let names: Vec<&str> = self.safe.iter().map(|a| key_type_name(*a)).collect();
            format!("safe on it: {}", names.join(", "))
        }
    }
}

/// One row of a vendor's advisory: the device series, how a module names it, the firmware
/// from which it is fixed.
struct AdvisoryRule {
    /// Manufacturer substring (case-insensitive).
    manufacturer: &'static str,
    /// Model substring (case-insensitive) every device of the family shows.
    family: &'static str,
    /// Model substrings that name this series within the family (empty: any model of the
    /// family that no other row's series names).
    series: &'static [&'static str],
    /// The first fixed firmware.
    fixed: (u8, u8, u8),
    advisory: Advisory,
}

const ECDSA_SUMMARY_YK: &str = "a side channel in the Infineon ECDSA library (EUCLEAK) lets an attacker holding the device recover an ECDSA private key (YubiKey firmware cannot be updated: fixed firmware means another device)";
const ECDSA_SUMMARY_HSM: &str = "a side channel in the Infineon ECDSA library (EUCLEAK) lets an attacker holding the device recover an ECDSA private key (fixed by updating the firmware to 2.4.0 or later)";

/// YSA-2024-03 (Yubico, 2024-09-03, "Infineon ECDSA Private Key Recovery"), as Yubico's
/// advisory and its customer-resources article list the products: affected below the first
/// fixed firmware. The YubiKey modules do not tell the series apart (ykcs11's model is
/// `YubiKey YK5` for every YubiKey 5, Bio and FIPS included: `get_token_model` in
/// yubico-piv-tool `ykcs11/token.c`); a YubiKey whose model names no series gets the strictest
/// bound of the family (5.7.2). yubihsm_pkcs11 names every device `YubiHSM` (`C_GetTokenInfo`
/// in yubihsm-shell `pkcs11/yubihsm_pkcs11.c`); both YubiHSM 2 rows are fixed in 2.4.0.
const ADVISORIES: &[AdvisoryRule] = &[
    AdvisoryRule {
        manufacturer: "yubico",
        family: "yubikey",
        series: &["fips"],
        fixed: (5, 7, 2),
        advisory: Advisory {
            id: "YSA-2024-03",
            affects: "ECDSA",
            summary: ECDSA_SUMMARY_YK,
            device: "YubiKey 5 FIPS Series below 5.7.2",
            safe: &[],
        },
    },
    AdvisoryRule {
        manufacturer: "yubico",
        family: "yubikey",
        series: &["bio"],
        fixed: (5, 7, 2),
        advisory: Advisory {
            id: "YSA-2024-03",
            affects: "ECDSA",
            summary: ECDSA_SUMMARY_YK,
            device: "YubiKey Bio Series below 5.7.2",
            safe: &[],
        },
    },
    AdvisoryRule {
        manufacturer: "yubico",
        family: "security key",
        series: &[],
        fixed: (5, 7, 0),
        advisory: Advisory {
            id: "YSA-2024-03",
            affects: "ECDSA",
            summary: ECDSA_SUMMARY_YK,
            device: "Security Key Series below 5.7.0",
            safe: &[],
        },
    },
    AdvisoryRule {
        manufacturer: "yubico",
        family: "yubikey",
        series: &["yubikey 5", "cspn"],
        fixed: (5, 7, 0),
        advisory: Advisory {
            id: "YSA-2024-03",
            affects: "ECDSA",
            summary: ECDSA_SUMMARY_YK,
            device: "YubiKey 5 Series below 5.7.0",
            safe: &[],
        },
    },
    AdvisoryRule {
        manufacturer: "yubico",
        family: "yubihsm",
        series: &[],
        fixed: (2, 4, 0),
        advisory: Advisory {
            id: "YSA-2024-03",
            affects: "ECDSA",
            summary: ECDSA_SUMMARY_HSM,
            device: "YubiHSM 2 / YubiHSM 2 FIPS below 2.4.0",
            safe: &[Algorithm::Ed25519],
        },
    },
];

/// The strictest YubiKey row, for a YubiKey whose module does not say its series (or says one
/// the ykcs11 model cannot tell from others: `YubiKey YK5` is also what a 5 FIPS or a Bio
/// reports).
const YUBIKEY_SERIES_UNKNOWN: Advisory = Advisory {
    id: "YSA-2024-03",
    affects: "ECDSA",
    summary: ECDSA_SUMMARY_YK,
    device: "YubiKey below 5.7.2 (the module does not tell YubiKey 5, 5 FIPS and Bio apart: the strictest bound applies)",
    safe: &[],
};

/// The key types a ceremony generates, in the order one is proposed in place of another.
pub const KEY_TYPES: [Algorithm; 3] = [
    Algorithm::Ed25519,
    Algorithm::EcdsaP256,
    Algorithm::EcdsaP384,
];

/// What the roll call makes of a ceremony's key type and the tokens present (before any key
/// or PIN): [`key_type_verdict`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyTypeVerdict {
    /// No present token has an advisory concerning the key type.
    Fine,
    /// The key type was left at the script's default and `to` is safe on every present
    /// token: proposed in its place, for `reason`.
    Propose {
        /// The key type proposed.
        to: Algorithm,
        /// Why (the devices, firmware and advisories), as recorded.
        reason: String,
    },
    /// Refused: the message names each affected device, its firmware and advisory, the key
    /// types safe on it, and how to choose another.
    Refuse(String),
}

/// The roll call's decision on the key type `alg` for the tokens that will generate keys
/// (`tokens`): fine when no advisory concerns it; when one does, a key type safe on every
/// token is proposed if the key type was left at the script's default (`at_default`), and
/// otherwise the key type is refused with what to do.
pub fn key_type_verdict(tokens: &[&TokenDesc], alg: Algorithm, at_default: bool) -> KeyTypeVerdict {
    let affected: Vec<String> = tokens
        .iter()
        .filter_map(|t| t.refuse_affected(alg).err())
        .map(|e| e.to_string())
        .collect();
    if affected.is_empty() {
        return KeyTypeVerdict::Fine;
    }
    let common = KEY_TYPES
        .iter()
        .copied()
        .find(|a| tokens.iter().all(|t| t.safe_key_types().contains(a)));
    let name = key_type_name(alg);
    match common {
        Some(to) if at_default => KeyTypeVerdict::Propose {
            to,
            reason: format!(
                "key_type was left at the script's default {name}, which a firmware advisory concerns on a token present at the roll call ({}); {} is safe on every token present, so it is proposed in its place, before any key or PIN",
                affected.join("; "),
                key_type_name(to)
            ),
        },
        _ => {
            let why = if at_default {
                " (the script's default; no key type is safe on every token present, so none is proposed)"
                    .to_string()
            } else {
                String::new()
            };
            let choose = match common {
                Some(to) => format!("key_type = \"{}\"", key_type_name(to)),
                None => "key_type = \"...\", with the affected device replaced".to_string(),
            };
            KeyTypeVerdict::Refuse(format!(
                "key type {name}{why} refused at the roll call, before any key or PIN: {}. Choose another key type with the parameter key_type ({choose} in the answers file; in the terminal UI, Esc back to the parameters and edit key_type): parameters can be corrected until the first key is generated",
                affected.join("; ")
            ))
        }
    }
}

/// Advisories that apply to a device. A model that names a series (`FIPS`, `Bio`,
/// `YubiKey 5`) takes that series' row; a YubiKey whose model names none (what ykcs11 reports:
/// `YubiKey YK5` for every YubiKey 5, 5 FIPS and Bio alike, or `YK4`, `NEO`, `XXX`) is held to
/// the strictest bound of the YubiKey rows, since it may be a 5 FIPS or a Bio.
pub fn advisories_for(manufacturer: &str, model: &str, firmware: (u8, u8, u8)) -> Vec<Advisory> {
    let man = manufacturer.to_ascii_lowercase();
    let model = model.to_ascii_lowercase();
    let family: Vec<&AdvisoryRule> = ADVISORIES
        .iter()
        .filter(|r| man.contains(r.manufacturer) && model.contains(r.family))
        .collect();
    let chosen = family
        .iter()
        .find(|r| r.series.iter().any(|s| model.contains(s)))
        .or_else(|| family.iter().find(|r| r.series.is_empty()));
    let (advisory, fixed) = match (chosen, family.iter().map(|r| r.fixed).max()) {
        (Some(r), _) => (r.advisory.clone(), r.fixed),
        (None, Some(strictest)) => (YUBIKEY_SERIES_UNKNOWN, strictest),
        (None, None) => return Vec::new(),
    };
    if firmware < fixed {
        vec![advisory]
    } else {
        Vec::new()
    }
}

impl TokenDesc {
    /// Advisories that concern an algorithm.
    pub fn advisories_for_alg(&self, alg: Algorithm) -> Vec<&Advisory> {
        self.advisories.iter().filter(|a| a.concerns(alg)).collect()
    }

    /// Refuse a key type a firmware advisory of this device concerns (YSA-2024-03: ECDSA on a
    /// YubiKey below 5.7 or a YubiHSM 2 below 2.4): a ceremony never makes such a key there.
    pub fn refuse_affected(&self, alg: Algorithm) -> Result<(), TokenError> {
        match self.advisories_for_alg(alg).first() {
            None => Ok(()),
            Some(a) => Err(TokenError::Advisory {
                token: self.to_string(),
                firmware: self.firmware.clone(),
                advisory: a.to_string(),
                key_type: alg.label().to_string(),
                safe: a.safe_types(),
            }),
        }
    }

    /// The key types Conclave generates that are safe on this device: every one for a device
    /// without advisories, else those every advisory lists as safe (what the affected device
    /// offers and no advisory concerns: a YubiKey's PIV application below 5.7 has no Ed25519,
    /// so none).
    pub fn safe_key_types(&self) -> Vec<Algorithm> {
        KEY_TYPES
            .iter()
            .copied()
            .filter(|alg| self.advisories.iter().all(|a| a.safe.contains(alg)))
            .collect()
    }

    /// Firmware as numbers (major, minor, patch; patch 0 where the device reports none).
    pub fn firmware_version(&self) -> (u8, u8, u8) {
        self.fw
    }

    /// What identifies the token: module, serial number and label. Serial numbers alone are
    /// not unique (tpm2-pkcs11 gives every token `0000000000000000`).
    pub fn identity(&self) -> String {
        format!(
            "serial {} label \"{}\" in {}",
            self.serial, self.label, self.module
        )
    }

    /// A token of tpm2-pkcs11 (its fixed serial number `0000000000000000`, or the module's
    /// file name): every token on one TPM shares the TPM's dictionary-attack lockout, and the
    /// module reports no PIN-count flags.
    pub fn shares_tpm_lockout(&self) -> bool {
        self.serial == TPM2_PKCS11_SERIAL
            || Path::new(&self.module)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().contains("tpm2_pkcs11"))
    }

    /// A SoftHSM2 token (its manufacturer "SoftHSM project", or the module's file name
    /// `libsofthsm2.so`), also when reached through p11-kit-proxy: its keys are files on this
    /// machine, for practice only.
    pub fn is_softhsm(&self) -> bool {
        self.manufacturer.starts_with("SoftHSM")
            || Path::new(&self.module)
                .file_name()
                .is_some_and(|f| f == "libsofthsm2.so")
    }

    /// A YubiKey's PIV application through ykcs11 (label "YubiKey PIV #serial", or Yubico's
    /// YubiKey model): keys live in PIV slots chosen by `CKA_ID`, generated after a
    /// management-key login.
    pub fn is_piv(&self) -> bool {
        self.label.starts_with("YubiKey PIV")
            || (self.manufacturer.to_ascii_lowercase().contains("yubico")
                && self.model.to_ascii_lowercase().contains("yubikey"))
    }

    /// What to tell the keyholder when the token's reader has a PIN pad
    /// (`CKF_PROTECTED_AUTHENTICATION_PATH`): the PIN is entered there, not on the keyboard.
    pub fn pin_pad_note(&self) -> String {
        format!("{self} has a PIN pad: enter the PIN on the reader when it asks")
    }

    /// Does `wanted` name this token: its label or serial, or its label without the PIN label
    /// OpenSC appends (`alice (UserPIN)` is the card `alice`)?
    pub fn is_named(&self, wanted: &str) -> bool {
        self.label == wanted
            || self.serial == wanted
            || strip_pin_label(&self.label).is_some_and(|base| base == wanted)
    }

    /// The description as JSON (for `token list --json` and transcripts).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "slot": self.slot,
            "label": self.label,
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "hardware": self.hardware,
            "flags": {
                "token_initialized": self.initialized,
                "login_required": self.login_required,
                "user_pin_initialized": self.user_pin_initialized,
                "user_pin_count_low": self.pin.count_low,
                "user_pin_final_try": self.pin.final_try,
                "user_pin_locked": self.pin.locked,
                "protected_authentication_path": self.protected_path,
            },
            "clock": self.clock.to_json(),
            "advisories": self.advisories.iter().map(|a| serde_json::json!({
                "id": a.id, "affects": a.affects, "device": a.device, "summary": a.summary,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A key pair on a token, found through its public key object.
#[derive(Clone, Debug)]
pub struct TokenKey {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// The public key, or why it cannot be used.
    pub public: Result<PublicKey, String>,
}

impl TokenKey {
    /// The TUF key object (python-tuf encodings), if the key is usable.
    pub fn tuf_key(&self) -> Option<Key> {
        self.public.as_ref().ok().map(Key::from_public_key)
    }

    /// Label and short key id, for messages.
    pub fn describe(&self) -> String {
        match self.tuf_key() {
            Some(k) => format!("\"{}\" ({})", self.label, k.key_id().short()),
            None => format!("\"{}\" (unusable)", self.label),
        }
    }
}

/// Did looking for a key on `token` fail only because the token hides its keys until login?
/// It requires login and shows no key at all, or refuses to list them with
/// `CKR_USER_NOT_LOGGED_IN` (yubihsm_pkcs11 does both before `C_Login`).
pub fn hidden_until_login(token: &TokenDesc, e: &TokenError) -> bool {
    token.login_required
        && match e {
            TokenError::KeyNotFound { present, .. } => present.is_empty(),
            TokenError::Pkcs11 { rv, .. } => rv == "CKR_USER_NOT_LOGGED_IN",
            _ => false,
        }
}

/// The key of `keys` (the keys of `token`) named by label, or by TUF key id (full, or a unique
/// prefix of at least 8 hex digits).
pub fn pick_key(
    token: &TokenDesc,
    keys: Vec<TokenKey>,
    wanted: &str,
) -> Result<TokenKey, TokenError> {
    let by_label: Vec<&TokenKey> = keys.iter().filter(|k| k.label == wanted).collect();
    let hits: Vec<&TokenKey> = if !by_label.is_empty() {
        by_label
    } else if wanted.len() >= 8 && wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        let w = wanted.to_ascii_lowercase();
        keys.iter()
            .filter(|k| k.tuf_key().is_some_and(|t| t.key_id().0.starts_with(&w)))
            .collect()
    } else {
        Vec::new()
    };
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(TokenError::KeyNotFound {
            token: token.to_string(),
            wanted: wanted.into(),
            present: keys.iter().map(TokenKey::describe).collect(),
        }),
        many => Err(TokenError::AmbiguousKey {
            token: token.to_string(),
            wanted: wanted.into(),
            matches: many.iter().map(|k| k.describe()).collect(),
        }),
    }
}

/// `C_GetTokenInfo` on `slot`, and the token's clock. cryptoki refuses a token whose
/// `CKF_CLOCK_ON_TOKEN` clock is not digits (opencryptoki's is blank): for that case only, the
/// information is read again through the module's raw function list ([`raw_token_info`]) and
/// converted as cryptoki converts it, without the clock, which is then [`TokenClock::Unknown`].
fn token_info(ctx: &Pkcs11, module: &Path, slot: Slot) -> Result<(TokenInfo, TokenClock), CkError> {
    match ctx.get_token_info(slot) {
        Ok(ti) => {
            let clock = match ti.utc_time() {
                Some(t) => TokenClock::Time(t.as_iso8601_string()),
                None => TokenClock::None,
            };
            Ok((ti, clock))
        }
        // What cryptoki's `convert_utc_time` returns for a clock that is not ASCII digits; no
        // other field of CK_TOKEN_INFO is parsed.
        Err(CkError::ParseInt(_) | CkError::Utf8(_)) => {
            let mut raw = raw_token_info(module, slot)?;
            raw.flags &= !cryptoki_sys::CKF_CLOCK_ON_TOKEN;
            Ok((TokenInfo::try_from(raw)?, TokenClock::Unknown))
        }
        Err(e) => Err(e),
    }
}

/// `C_GetTokenInfo` through the module's own function list, unparsed (see [`token_info`]).
fn raw_token_info(module: &Path, slot: Slot) -> Result<cryptoki_sys::CK_TOKEN_INFO, CkError> {
    let mut info = cryptoki_sys::CK_TOKEN_INFO::default();
    // SAFETY: `module` is the path of a module this process has loaded and initialised through
    // cryptoki (a `Module` or a session of one exists, holding it), so loading it again only
    // takes another reference to the same library (dlopen runs no initialiser twice) and it is
    // released when `lib` drops, after the call; the module was initialised with
    // CKF_OS_LOCKING_OK, so it may be called from any thread. The symbol is typed by
    // cryptoki-sys's bindings of the PKCS#11 header. `C_GetFunctionList` writes one pointer
    // into `list`, checked for CKR_OK and non-null before use; the list is the module's static
    // table and outlives the call. `C_GetTokenInfo` gets a slot id (an invalid one is reported
    // as CKR_SLOT_ID_INVALID, not undefined behaviour) and a pointer to a live, writable,
    // correctly sized and aligned `CK_TOKEN_INFO`, which it fills; it has only integer and
    // byte-array fields, so any bytes the module writes are a valid value. A function missing
    // from the module is an error, never a call through a null pointer.
    #[allow(unsafe_code)]
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(module).map_err(CkError::LibraryLoading)?;
        let get_list = lib
            .C_GetFunctionList
            .as_ref()
            .map_err(|_| CkError::MissingSymbol("C_GetFunctionList"))?;
        let mut list: cryptoki_sys::CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
        Rv::from(get_list(&mut list)).into_result(Function::GetFunctionList)?;
        let get_info = list
            .as_ref()
            .and_then(|l| l.C_GetTokenInfo)
            .ok_or(CkError::NullFunctionPointer)?;
        get_info(cryptoki_sys::CK_SLOT_ID::from(slot), &mut info)
    };
    Rv::from(rv).into_result(Function::GetTokenInfo)?;
    Ok(info)
}

/// The one initialised token of `all` (a listing of `module`) whose label or serial number is
/// `wanted` (or whose label is `wanted` followed by an OpenSC PIN label, see
/// [`TokenDesc::is_named`]); `unreadable`: the slots the listing could not describe, named in
/// the error when none is found. No token is asked: [`Module::find_token`] lists them first,
/// the terminal UI picks from its token poller's last listing.
pub fn pick_token(
    all: &[TokenDesc],
    wanted: &str,
    module: &str,
    unreadable: &[String],
) -> Result<TokenDesc, TokenError> {
    let exact: Vec<&TokenDesc> = all
        .iter()
        .filter(|t| t.initialized && (t.label == wanted || t.serial == wanted))
        .collect();
    let matches = if exact.is_empty() {
        all.iter()
            .filter(|t| t.initialized && t.is_named(wanted))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(TokenError::TokenNotFound {
            wanted: wanted.to_string(),
            module: module.to_string(),
            present: all
                .iter()
                .filter(|t| t.initialized)
                .map(|t| t.to_string())
                .chain(unreadable.iter().cloned())
                .collect(),
            keyholder: None,
        }),
        many => Err(TokenError::AmbiguousToken {
            wanted: wanted.to_string(),
            matches: many.iter().map(|t| t.to_string()).collect(),
        }),
    }
}

/// What [`Module::scan`] found.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// The tokens that could be described.
    pub tokens: Vec<TokenDesc>,
    /// The slots whose token could not be described, with the reason.
    pub unreadable: Vec<UnreadableSlot>,
}

/// A slot whose token could not be described.
#[derive(Clone, Debug)]
pub struct UnreadableSlot {
    /// The slot id.
    pub slot: u64,
    /// Why (the PKCS#11 function and return value, or the wrapper's complaint).
    pub reason: String,
}

impl fmt::Display for UnreadableSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} (cannot be read: {})", self.slot, self.reason)
    }
}

/// A loaded and initialised PKCS#11 module.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

impl Module {
    /// Load the module at `path` (or the first known one) and call `C_Initialize`.
    pub fn open(explicit: Option<&Path>) -> Result<Module, TokenError> {
        let path = locate_module(explicit)?;
        let ctx = Pkcs11::new(&path).map_err(|e| TokenError::ModuleNotLoadable {
            path: path.clone(),
            reason: match e {
                CkError::Pkcs11(rv, f) => {
                    format!("{} returned {}", function_name(&f), rv_name(&rv))
                }
                CkError::MissingSymbol(s) => format!("it has no {s} function"),
                other => other.to_string(),
            },
        })?;
        let ctx_desc = format!("module {}", path.display());
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            // yubihsm_pkcs11 without its configuration file (NSS softokn without its
            // parameters): the module cannot start, so no token can be reached.
            Err(CkError::Pkcs11(
                rv @ (RvError::ArgumentsBad | RvError::GeneralError | RvError::DeviceError),
                _,
            )) => {
                return Err(TokenError::ModuleNotConfigured {
                    module: path.display().to_string(),
                    rv: rv_name(&rv),
                });
            }
            Err(e) => return Err(classify(e, &ctx_desc)),
        }
        Ok(Module { ctx, path })
    }

    /// The module path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ctx_desc(&self) -> String {
        format!("module {}", self.path.display())
    }

    /// All slots with a token present, described. A slot that cannot be described (a token
    /// pulled while listing, a module error) is left out; [`Module::scan`]
    /// says which and why.
    pub fn tokens(&self) -> Result<Vec<TokenDesc>, TokenError> {
        self.scan().map(|s| s.tokens)
    }

    /// Every slot with a token: the ones described, and the ones that could not be (named with
    /// the reason), so one odd slot does not hide the others.
    pub fn scan(&self) -> Result<Scan, TokenError> {
        let slots = match self.ctx.get_slots_with_token() {
            Ok(slots) => slots,
            // ykcs11 without the PC/SC service, OpenSC without readers, yubihsm_pkcs11 without
            // its connector: the module cannot reach any device.
            Err(CkError::Pkcs11(rv @ RvError::DeviceError, f)) => {
                return Err(TokenError::NoDevice {
                    module: self.path.display().to_string(),
                    function: function_name(&f),
                    rv: rv_name(&rv),
                });
            }
            Err(e) => return Err(classify(e, &self.ctx_desc())),
        };
        let mut out = Scan::default();
        for slot in slots {
            match self.describe(slot) {
                Ok(t) => out.tokens.push(t),
                Err(e) => out.unreadable.push(UnreadableSlot {
                    slot: slot.id(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    fn describe(&self, slot: Slot) -> Result<TokenDesc, TokenError> {
        let (ti, clock) = token_info(&self.ctx, &self.path, slot)
            .map_err(|e| classify(e, &format!("slot {} of {}", slot.id(), self.ctx_desc())))?;
        let manufacturer = clean_text(ti.manufacturer_id());
        let model = clean_text(ti.model());
        let fw = ti.firmware_version();
        let fw = decode_firmware(&manufacturer, fw.major(), fw.minor());
        let hw = ti.hardware_version();
        let hw = decode_firmware(&manufacturer, hw.major(), hw.minor());
        let version = |v: (u8, u8, u8)| {
            if yubico_encoded(&manufacturer) {
                format!("{}.{}.{}", v.0, v.1, v.2)
            } else {
                format!("{}.{}", v.0, v.1)
            }
        };
        let mut desc = TokenDesc {
            slot: slot.id(),
            label: clean_text(ti.label()),
            serial: clean_text(ti.serial_number()),
            advisories: advisories_for(&manufacturer, &model, fw),
            firmware: version(fw),
            hardware: version(hw),
            manufacturer,
            model,
            initialized: ti.token_initialized(),
            login_required: ti.login_required(),
            user_pin_initialized: ti.user_pin_initialized(),
            pin: PinTries {
                count_low: ti.user_pin_count_low(),
                final_try: ti.user_pin_final_try(),
                locked: ti.user_pin_locked(),
                shared_lockout: None,
            },
            module: self.path.display().to_string(),
            protected_path: ti.protected_authentication_path(),
            pin_len: (ti.min_pin_length(), ti.max_pin_length()),
            clock,
            fw,
        };
        // tpm2-pkcs11 reports no PIN-count flags: what is known is the wrong PINs counted on
        // this TPM's tokens, shown wherever the token is (the terminal UI's PIN prompt warns
        // and asks a confirmation before the last shared try with it).
        if desc.shares_tpm_lockout() {
            desc.pin.shared_lockout = Some(tpm_wrong_pins());
        }
        Ok(desc)
    }

    /// Find the one initialised token whose label or serial number is `wanted` (or whose label
    /// is `wanted` followed by an OpenSC PIN label, see [`TokenDesc::is_named`]).
    pub fn find_token(&self, wanted: &str) -> Result<TokenDesc, TokenError> {
        let scan = self.scan()?;
        let unreadable: Vec<String> = scan
            .unreadable
            .iter()
            .map(UnreadableSlot::to_string)
            .collect();
        pick_token(
            &scan.tokens,
            wanted,
            &self.path.display().to_string(),
            &unreadable,
        )
    }

    fn slot_of(&self, token: &TokenDesc) -> Result<Slot, TokenError> {
        // Re-resolve by serial and label: slot ids are not stable.
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| classify(e, &token.to_string()))?;
        for slot in slots {
            // A slot that cannot be described now is not this token's (it was described).
            let Ok(d) = self.describe(slot) else { continue };
            if d.serial == token.serial && d.label == token.label {
                return Ok(slot);
            }
        }
        Err(TokenError::TokenRemoved {
            token: token.to_string(),
            function: "C_GetSlotList".into(),
            rv: "no slot holds this token any more".into(),
        })
    }

    /// Open a session on a token (read-write if `rw`).
    pub fn open_session(&self, token: &TokenDesc, rw: bool) -> Result<TokenSession, TokenError> {
        if !token.initialized {
            return Err(TokenError::NotInitialized {
                token: token.to_string(),
            });
        }
        let slot = self.slot_of(token)?;
        let session = if rw {
            self.ctx.open_rw_session(slot)
        } else {
            self.ctx.open_ro_session(slot)
        }
        .map_err(|e| classify(e, &token.to_string()))?;
        Ok(TokenSession {
            session,
            token: token.clone(),
            slot,
            ctx: self.ctx.clone(),
            pin: std::cell::RefCell::new(None),
        })
    }

    /// Initialise a fresh SoftHSM2-style token in the first free slot (practice only): sets the
    /// label, SO PIN and user PIN. Returns the new token.
    pub fn init_token(
        &self,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<TokenDesc, TokenError> {
        let ctx = self.ctx_desc();
        let slots = self.ctx.get_all_slots().map_err(|e| classify(e, &ctx))?;
        let mut free = None;
        for slot in slots {
            if let Ok(ti) = self.ctx.get_token_info(slot)
                && !ti.token_initialized()
            {
                free = Some(slot);
                break;
            }
        }
        let Some(slot) = free else {
            return Err(TokenError::Pkcs11 {
                function: "C_GetSlotList".into(),
                rv: "no slot with an uninitialised token".into(),
                context: ctx,
            });
        };
        let desc = format!("new token \"{label}\" in slot {}", slot.id());
        let so = AuthPin::new(so_pin.as_str().into());
        crate::fault::point(&format!("token C_InitToken {label}"));
        self.ctx
            .init_token(slot, &so, label)
            .map_err(|e| classify(e, &desc))?;
        let session = self
            .ctx
            .open_rw_session(slot)
            .map_err(|e| classify(e, &desc))?;
        session
            .login(UserType::So, Some(&so))
            .map_err(|e| classify(e, &desc))?;
        crate::fault::point(&format!("token C_InitPIN {label}"));
        session
            .init_pin(&AuthPin::new(user_pin.as_str().into()))
            .map_err(|e| classify(e, &desc))?;
        session.logout().map_err(|e| classify(e, &desc))?;
        drop(session);
        // The token may have moved to another slot id; find it by label among new tokens.
        let all = self.tokens()?;
        let mut found: Vec<TokenDesc> = all.into_iter().filter(|t| t.label == label).collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(TokenError::TokenNotFound {
                wanted: label.into(),
                module: self.path.display().to_string(),
                present: vec![],
                keyholder: None,
            }),
            _ => Err(TokenError::AmbiguousToken {
                wanted: label.into(),
                matches: found.iter().map(|t| t.to_string()).collect(),
            }),
        }
    }
}

/// An open session on one token.
pub struct TokenSession {
    session: Session,
    token: TokenDesc,
    slot: Slot,
    ctx: Pkcs11,
    /// The PIN of the last login, kept (zeroized when dropped) only until [`TokenSession::signer`]
    /// knows whether the key needs it before every signature.
    pin: std::cell::RefCell<Option<Pin>>,
}

impl fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSession")
            .field("token", &self.token.to_string())
            .finish_non_exhaustive()
    }
}

/// What a key generation produced.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The label.
    pub label: String,
    /// The `CKA_ID`.
    pub id: Vec<u8>,
    /// The public key read back from the token.
    pub public: PublicKey,
    /// The TUF key object.
    pub key: Key,
    /// How `CKA_EC_PARAMS` was spelled (for Ed25519: OID or name).
    pub ec_params: Vec<u8>,
}

impl TokenSession {
    /// The token.
    pub fn token(&self) -> &TokenDesc {
        &self.token
    }

    fn err(&self, e: CkError) -> TokenError {
        classify(e, &self.token.to_string())
    }

    fn fresh_flags(&self) -> PinTries {
        token_info(&self.ctx, Path::new(&self.token.module), self.slot)
            .map(|(ti, _)| PinTries {
                count_low: ti.user_pin_count_low(),
                final_try: ti.user_pin_final_try(),
                locked: ti.user_pin_locked(),
                shared_lockout: None,
            })
            .unwrap_or_default()
    }

    /// Refuse a token whose user PIN is locked (call before asking for the PIN).
    pub fn check_not_locked(&self) -> Result<(), TokenError> {
        if self.fresh_flags().locked || self.token.pin.locked {
            return Err(TokenError::PinLocked {
                token: self.token.to_string(),
                how: "token flags say CKF_USER_PIN_LOCKED".into(),
            });
        }
        Ok(())
    }

    /// Log in as the user. A locked PIN is refused before anything is sent to the token, and
    /// so is a PIN whose length the token says is impossible (`ulMinPinLen`..`ulMaxPinLen`): it
    /// would only cost a try. On a reader with a PIN pad (`CKF_PROTECTED_AUTHENTICATION_PATH`)
    /// an empty PIN logs in through the pad (`C_Login` with no PIN).
    pub fn login(&self, pin: &Pin) -> Result<(), TokenError> {
        self.check_not_locked()?;
        let token = self.token.to_string();
        let result = if pin.is_empty() && self.token.protected_path {
            self.session.login(UserType::User, None)
        } else {
            // ulMinPinLen / ulMaxPinLen count bytes.
            check_pin_length(&self.token, pin.len())?;
            let auth = AuthPin::new(pin.as_str().into());
            self.session.login(UserType::User, Some(&auth))
        };
        match result {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                *self.pin.borrow_mut() = Some(pin.clone());
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                let shared = self.token.shares_tpm_lockout();
                if shared {
                    TPM_WRONG_PINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(TokenError::WrongPin {
                    token,
                    tries: PinTries {
                        shared_lockout: shared.then(tpm_wrong_pins),
                        ..self.fresh_flags()
                    },
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked {
                token,
                how: "C_Login returned CKR_PIN_LOCKED".into(),
            }),
            Err(CkError::Pkcs11(RvError::PinLenRange, _)) => Err(TokenError::PinLength {
                token,
                len: pin.len(),
                min: self.token.pin_len.0,
                max: self.token.pin_len.1,
                how: "C_Login returned CKR_PIN_LEN_RANGE".into(),
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Log out and in again with the PIN: the PIN is verified right before the next signature,
    /// as a key with `CKA_ALWAYS_AUTHENTICATE` (ykcs11's slot 9c, PIN policy "always") needs.
    /// cryptoki 0.12 offers no call between `C_SignInit` and `C_Sign`, where PKCS#11 puts the
    /// `CKU_CONTEXT_SPECIFIC` login; `C_Login(CKU_USER)` makes the card verify the PIN the same
    /// way.
    fn reverify(&self, pin: &Pin) -> Result<(), TokenError> {
        let _ = self.session.logout();
        self.login(pin)
    }

    /// Is the mechanism offered by the token? Errors name it when it is not.
    pub fn require_mechanism(&self, mech: MechanismType, purpose: &str) -> Result<(), TokenError> {
        let list = self
            .ctx
            .get_mechanism_list(self.slot)
            .map_err(|e| self.err(e))?;
        if list.contains(&mech) {
            Ok(())
        } else {
            Err(TokenError::MechanismMissing {
                token: self.token.to_string(),
                mechanism: mech.to_string(),
                purpose: purpose.to_string(),
            })
        }
    }

    /// Key pairs on the token (through their public key objects).
    pub fn keys(&self) -> Result<Vec<TokenKey>, TokenError> {
        let handles = self
            .session
            .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for h in handles {
            out.push(self.read_public(h)?);
        }
        out.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn read_public(&self, h: ObjectHandle) -> Result<TokenKey, TokenError> {
        let attrs = self
            .session
            .get_attributes(
                h,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(|e| self.err(e))?;
        let mut label = String::new();
        let mut id = Vec::new();
        let mut key_type = None;
        let mut params = None;
        let mut point = None;
        for a in attrs {
            match a {
                Attribute::Label(l) => label = clean_text(&String::from_utf8_lossy(&l)),
                Attribute::Id(i) => id = i,
                Attribute::KeyType(k) => key_type = Some(k),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let public = match (key_type, params, point) {
            (Some(kt), Some(params), Some(point)) => decode_public(kt, &params, &point),
            (Some(kt), _, _) => Err(format!("key type {kt} is not Ed25519 or ECDSA P-256/P-384")),
            _ => Err("the token does not report the key type".into()),
        };
        Ok(TokenKey { label, id, public })
    }

    /// The objects (any class) whose `CKA_ID` starts with `prefix` (the session logged in, so
    /// private objects show too): `CKA_ID` and a description ("private key \"label\"").
    pub fn objects_with_id_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, String)>, TokenError> {
        let handles = self.session.find_objects(&[]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for h in handles {
            let Ok(attrs) = self.session.get_attributes(
                h,
                &[
                    AttributeType::Id,
                    AttributeType::Class,
                    AttributeType::Label,
                ],
            ) else {
                continue;
            };
            let mut id = Vec::new();
            let mut class = "object";
            let mut label = String::new();
            for a in attrs {
                match a {
                    Attribute::Id(i) => id = i,
                    Attribute::Class(c) if c == ObjectClass::PUBLIC_KEY => class = "public key",
                    Attribute::Class(c) if c == ObjectClass::PRIVATE_KEY => class = "private key",
                    Attribute::Class(c) if c == ObjectClass::CERTIFICATE => class = "certificate",
                    Attribute::Label(l) => label = clean_text(&String::from_utf8_lossy(&l)),
                    _ => {}
                }
            }
            if !prefix.is_empty() && id.starts_with(prefix) {
                out.push((id, format!("{class} \"{label}\"")));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Destroy every object whose `CKA_ID` is exactly `id` (the session read-write and logged
    /// in); how many were destroyed.
    pub fn destroy_id(&self, id: &[u8]) -> Result<usize, TokenError> {
        if id.is_empty() {
            return Ok(0);
        }
        let handles = self
            .session
            .find_objects(&[Attribute::Id(id.to_vec())])
            .map_err(|e| self.err(e))?;
        for h in &handles {
            crate::fault::point("token C_DestroyObject");
            self.session.destroy_object(*h).map_err(|e| self.err(e))?;
        }
        Ok(handles.len())
    }

    /// Find a key by label, or by TUF key id (see [`pick_key`]).
    pub fn find_key(&self, wanted: &str) -> Result<TokenKey, TokenError> {
        pick_key(&self.token, self.keys()?, wanted)
    }

    /// Certificates the token holds for a key (same `CKA_ID`), e.g. a YubiKey PIV attestation
    /// through ykcs11: (label, DER). Kept with the public key; their chains are not verified here.
    pub fn certificates_for(&self, id: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TokenError> {
        if id.is_empty() {
            return Ok(Vec::new());
        }
        let handles = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = self
                .session
                .get_attributes(h, &[AttributeType::Label, AttributeType::Value])
                .map_err(|e| self.err(e))?;
            let mut label = String::new();
            let mut der = Vec::new();
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = clean_text(&String::from_utf8_lossy(&l)),
                    Attribute::Value(v) => der = v,
                    _ => {}
                }
            }
            if !der.is_empty() {
                out.push((label, der));
            }
        }
        out.sort();
        Ok(out)
    }

    fn private_handle(&self, key: &TokenKey) -> Result<ObjectHandle, TokenError> {
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if key.id.is_empty() {
            template.push(Attribute::Label(key.label.as_bytes().to_vec()));
        } else {
            template.push(Attribute::Id(key.id.clone()));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(|e| self.err(e))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(TokenError::KeyNotFound {
                token: self.token.to_string(),
                wanted: format!("private key for {}", key.describe()),
                present: vec![],
            }),
            _ => Err(TokenError::AmbiguousKey {
                token: self.token.to_string(),
                wanted: format!("private key for {}", key.describe()),
                matches: vec![format!(
                    "{} private keys with CKA_ID {}",
                    found.len(),
                    hex::encode(&key.id)
                )],
            }),
        }
    }

    /// A signer for a key on this token (the session must be logged in).
    pub fn signer(self, key: &TokenKey) -> Result<Pkcs11Signer, TokenError> {
        let public = key
            .public
            .clone()
            .map_err(|reason| TokenError::UnsupportedKey {
                token: self.token.to_string(),
                label: key.label.clone(),
                reason,
            })?;
        let alg = public.algorithm();
        let (mech, purpose) = match alg {
            Algorithm::Ed25519 => (MechanismType::EDDSA, "sign with Ed25519"),
            _ => (MechanismType::ECDSA, "sign with ECDSA"),
        };
        self.require_mechanism(mech, purpose)?;
        let handle = self.private_handle(key)?;
        // A key that wants the PIN before every signature (`CKA_ALWAYS_AUTHENTICATE`: ykcs11's
        // slot 9c) keeps the PIN of the login; any other key lets it go here.
        let always = self
            .session
            .get_attributes(handle, &[AttributeType::AlwaysAuthenticate])
            .ok()
            .is_some_and(|a| {
                a.iter()
                    .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)))
            });
        let reauth = if always {
            self.pin.borrow_mut().take()
        } else {
            None
        };
        *self.pin.borrow_mut() = None;
        Ok(Pkcs11Signer {
            tuf_key: Key::from_public_key(&public),
            public,
            handle,
            label: key.label.clone(),
            key: key.clone(),
            always_authenticate: always,
            reauth,
            pin_fresh: true,
            session: self,
        })
    }

    /// Generate a key pair inside the token (the session must be read-write and logged in),
    /// then sign a random nonce with it and verify against the public key read back. Refuses an
    /// existing label or id; deletes the pair again if the self-test fails.
    pub fn generate(
        &self,
        alg: Algorithm,
        label: &str,
        id: Option<Vec<u8>>,
        ed_params: EdParams,
    ) -> Result<GeneratedKey, TokenError> {
        self.generate_then(alg, label, id, ed_params, || Ok(()))
    }

    /// Generate a key pair in a PIV slot through ykcs11: `C_Login(CKU_SO)` with the management
    /// key, the slot's key reference as the one-byte `CKA_ID` (ykcs11 takes the first byte of
    /// `CKA_ID` as the slot and sets the labels itself), then a PIN login for the self-test
    /// signature. An occupied slot is refused (PIV key generation would replace its key
    /// without asking). The factory-default management key is refused unless `practice`.
    pub fn generate_piv(
        &self,
        alg: Algorithm,
        slot: PivSlot,
        management_key: &Pin,
        pin: &Pin,
        practice: bool,
    ) -> Result<GeneratedKey, TokenError> {
        let token = self.token.to_string();
        if !practice
            && management_key
                .trim()
                .eq_ignore_ascii_case(PIV_FACTORY_MANAGEMENT_KEY)
        {
            return Err(TokenError::DefaultManagementKey { token });
        }
        if alg == Algorithm::Ed25519 {
            self.require_mechanism(
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                "generate an Ed25519 key",
            )?;
        }
        self.check_piv_slot_free(slot)?;
        let mk = AuthPin::new(management_key.as_str().into());
        match self.session.login(UserType::So, Some(&mk)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(TokenError::WrongManagementKey { token });
            }
            Err(e) => return Err(self.err(e)),
        }
        // Now that everything is visible, look again (a slot may hold a key only the SO sees).
        if let Err(e) = self.check_piv_slot_free(slot) {
            let _ = self.session.logout();
            return Err(e);
        }
        let label = format!("conclave PIV {slot}");
        self.generate_then(
            alg,
            &label,
            Some(vec![slot.key_id()]),
            EdParams::Auto,
            || {
                // The self-test signature needs the PIN (verified right before it: slot 9c's PIN
                // policy is "always"); ykcs11 refuses a user login while the SO is logged in.
                self.session.logout().map_err(|e| self.err(e))?;
                self.login(pin)
            },
        )
    }

    /// Refuse a PIV slot that holds any object: compared by the slot (the first byte of
    /// `CKA_ID`, as ykcs11 reads it), not by the whole id. The refusal names the slot and the
    /// key id of the public key found in it (or the `CKA_ID` of what is there).
    pub fn check_piv_slot_free(&self, slot: PivSlot) -> Result<(), TokenError> {
        let all = self.session.find_objects(&[]).map_err(|e| self.err(e))?;
        for h in all {
            let attrs = self
                .session
                .get_attributes(h, &[AttributeType::Id])
                .map_err(|e| self.err(e))?;
            let id = attrs.iter().find_map(|a| match a {
                Attribute::Id(id) if id.first() == Some(&slot.key_id()) => Some(id.clone()),
                _ => None,
            });
            if let Some(id) = id {
                let by = self
                    .keys()
                    .ok()
                    .and_then(|keys| {
                        keys.into_iter()
                            .find(|k| k.id.first() == Some(&slot.key_id()))
                    })
                    .and_then(|k| k.tuf_key())
                    .map_or_else(
                        || format!("CKA_ID {}", hex::encode(&id)),
                        |k| format!("key id {}", k.key_id()),
                    );
                return Err(TokenError::KeyExists {
                    token: self.token.to_string(),
                    what: format!("a key or certificate in PIV slot {slot} ({by})"),
                });
            }
        }
        Ok(())
    }

    fn generate_then(
        &self,
        alg: Algorithm,
        label: &str,
        id: Option<Vec<u8>>,
        ed_params: EdParams,
        before_self_test: impl FnOnce() -> Result<(), TokenError>,
    ) -> Result<GeneratedKey, TokenError> {
        let token = self.token.to_string();
        let (gen_mech, sign_mech, curve) = match alg {
            Algorithm::Ed25519 => (
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                MechanismType::EDDSA,
                "Ed25519",
            ),
            Algorithm::EcdsaP256 => (
                MechanismType::ECC_KEY_PAIR_GEN,
                MechanismType::ECDSA,
                "P-256",
            ),
            Algorithm::EcdsaP384 => (
                MechanismType::ECC_KEY_PAIR_GEN,
                MechanismType::ECDSA,
                "P-384",
            ),
            Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1v15Sha256 => {
                return Err(TokenError::UnsupportedKey {
                    token,
                    label: label.into(),
                    reason: "Conclave generates only Ed25519, ECDSA P-256 and P-384 keys".into(),
                });
            }
        };
        self.require_mechanism(gen_mech, &format!("generate an {curve} key"))?;
        self.require_mechanism(sign_mech, &format!("sign with an {curve} key"))?;
        let id = match id {
            Some(id) => id,
            None => {
                let mut id = vec![0u8; 16];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
                id
            }
        };
        // Never overwrite: look for any object (public, private, certificate) with the label or id.
        let by_label = self
            .session
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(|e| self.err(e))?;
        if !by_label.is_empty() {
            return Err(TokenError::KeyExists {
                token,
                what: format!("label \"{label}\""),
            });
        }
        let by_id = self
            .session
            .find_objects(&[Attribute::Id(id.clone())])
            .map_err(|e| self.err(e))?;
        if !by_id.is_empty() {
            return Err(TokenError::KeyExists {
                token,
                what: format!("CKA_ID {}", hex::encode(&id)),
            });
        }
        let params_choices: Vec<&[u8]> = match (alg, ed_params) {
            (Algorithm::Ed25519, EdParams::Auto) => vec![ED25519_OID_PARAMS, ED25519_NAME_PARAMS],
            (Algorithm::Ed25519, EdParams::Oid) => vec![ED25519_OID_PARAMS],
            (Algorithm::Ed25519, EdParams::Name) => vec![ED25519_NAME_PARAMS],
            (Algorithm::EcdsaP256, _) => vec![P256_PARAMS],
            _ => vec![P384_PARAMS],
        };
        let mech = match alg {
            Algorithm::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
            _ => Mechanism::EccKeyPairGen,
        };
        let mut last_err = None;
        let mut generated = None;
        for params in params_choices {
            let public_template = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(params.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ];
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ];
            crate::fault::point(&format!("token C_GenerateKeyPair {label}"));
            match self
                .session
                .generate_key_pair(&mech, &public_template, &private_template)
            {
                Ok(pair) => {
                    generated = Some((pair, params.to_vec()));
                    break;
                }
                Err(CkError::Pkcs11(
                    rv @ (RvError::CurveNotSupported
                    | RvError::DomainParamsInvalid
                    | RvError::AttributeValueInvalid
                    | RvError::TemplateInconsistent),
                    f,
                )) => {
                    last_err = Some(TokenError::CurveNotSupported {
                        token: token.clone(),
                        curve: curve.into(),
                        function: function_name(&f),
                        rv: rv_name(&rv),
                    });
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        let Some(((public_h, private_h), ec_params)) = generated else {
            return Err(last_err.unwrap_or(TokenError::CurveNotSupported {
                token,
                curve: curve.into(),
                function: "C_GenerateKeyPair".into(),
                rv: "no parameters accepted".into(),
            }));
        };
        let cleanup = |reason: String| {
            let _ = self.session.destroy_object(private_h);
            let _ = self.session.destroy_object(public_h);
            TokenError::SelfTestFailed {
                token: self.token.to_string(),
                label: label.into(),
                reason,
            }
        };
        let read = match self.read_public(public_h) {
            Ok(k) => k,
            Err(e) => return Err(cleanup(format!("reading the public key back failed: {e}"))),
        };
        let public = match read.public.clone() {
            Ok(p) if p.algorithm() == alg => p,
            Ok(p) => {
                return Err(cleanup(format!(
                    "the token made a {} key, {} was asked for",
                    p.algorithm().label(),
                    alg.label()
                )));
            }
            Err(reason) => return Err(cleanup(reason)),
        };
        if let Err(e) = before_self_test() {
            return Err(cleanup(format!("logging in for the self-test failed: {e}")));
        }
        // A new login may give private objects new handles (SoftHSM2 does).
        let private_h = match self.private_handle(&read) {
            Ok(h) => h,
            Err(e) => {
                return Err(cleanup(format!(
                    "finding the private key again failed: {e}"
                )));
            }
        };
        let cleanup = |reason: String| {
            let _ = self.session.destroy_object(private_h);
            let _ = self.session.destroy_object(public_h);
            TokenError::SelfTestFailed {
                token: self.token.to_string(),
                label: label.into(),
                reason,
            }
        };
        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let mut msg = b"conclave key self-test ".to_vec();
        msg.extend_from_slice(&hex::encode(nonce).into_bytes());
        crate::fault::point(&format!("token C_Sign self-test {label}"));
        let sig = match raw_sign(&self.session, private_h, alg, &msg) {
            Ok(s) => s,
            Err(e) => {
                return Err(cleanup(format!(
                    "signing the nonce failed: {}",
                    classify(e, &token)
                )));
            }
        };
        if let Err(e) = public.verify(&msg, &sig) {
            return Err(cleanup(format!("the nonce signature does not verify: {e}")));
        }
        Ok(GeneratedKey {
            // The module may set its own label (ykcs11 does).
            label: if read.label.is_empty() {
                label.into()
            } else {
                read.label.clone()
            },
            id: if read.id.is_empty() {
                id
            } else {
                read.id.clone()
            },
            key: Key::from_public_key(&public),
            public,
            ec_params,
        })
    }
}

/// Sign with a private key handle: Ed25519 with `CKM_EDDSA` over the message, ECDSA with
/// `CKM_ECDSA` over the SHA-256/384 digest computed here, converted from raw r||s to DER.
fn raw_sign(
    session: &Session,
    handle: ObjectHandle,
    alg: Algorithm,
    msg: &[u8],
) -> Result<Vec<u8>, CkError> {
    match alg {
        Algorithm::Ed25519 => session.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            handle,
            msg,
        ),
        Algorithm::EcdsaP256
        | Algorithm::EcdsaP384
        | Algorithm::RsaPssSha256
        | Algorithm::RsaPkcs1v15Sha256 => {
            let digest = prehash(alg, msg).unwrap_or_default();
            let raw = session.sign(&Mechanism::Ecdsa, handle, &digest)?;
            Ok(ecdsa_raw_to_der(alg, &raw).unwrap_or(raw))
        }
    }
}

/// Convert a raw r||s ECDSA signature to DER; `None` if it has the wrong length or is invalid.
pub fn ecdsa_raw_to_der(alg: Algorithm, raw: &[u8]) -> Option<Vec<u8>> {
    match alg {
        Algorithm::EcdsaP256 => p256::ecdsa::Signature::from_slice(raw)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        Algorithm::EcdsaP384 => p384::ecdsa::Signature::from_slice(raw)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        _ => None,
    }
}

/// Which curve `CKA_EC_PARAMS` names, if one Conclave knows.
pub fn curve_of_params(params: &[u8]) -> Option<Algorithm> {
    if params == ED25519_OID_PARAMS || params == ED25519_NAME_PARAMS {
        Some(Algorithm::Ed25519)
    } else if params == P256_PARAMS {
        Some(Algorithm::EcdsaP256)
    } else if params == P384_PARAMS {
        Some(Algorithm::EcdsaP384)
    } else {
        None
    }
}

/// `CKA_EC_POINT` is usually a DER OCTET STRING around the point; some tokens give the bare
/// point. Unwrap by length, since a bare uncompressed point also starts with 0x04.
pub fn unwrap_ec_point(point: &[u8], raw_len: usize) -> Option<&[u8]> {
    if point.len() == raw_len + 2 && point[0] == 0x04 && usize::from(point[1]) == raw_len {
        Some(&point[2..])
    } else if point.len() == raw_len {
        Some(point)
    } else {
        None
    }
}

/// Decode a public key object's type, parameters and point.
pub fn decode_public(kt: KeyType, params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
    let Some(alg) = curve_of_params(params) else {
        return Err(format!(
            "curve parameters {} are not Ed25519, P-256 or P-384",
            hex::encode(params)
        ));
    };
    let expect_kt = if alg == Algorithm::Ed25519 {
        KeyType::EC_EDWARDS
    } else {
        KeyType::EC
    };
    if kt != expect_kt {
        return Err(format!(
            "key type {kt} does not match curve {}",
            alg.label()
        ));
    }
    let raw_len = match alg {
        Algorithm::Ed25519 => 32,
        Algorithm::EcdsaP256 => 65,
        _ => 97,
    };
    let raw = unwrap_ec_point(point, raw_len).ok_or_else(|| {
        format!(
            "CKA_EC_POINT of {} bytes is not a {} point",
            point.len(),
            alg.label()
        )
    })?;
    match alg {
        Algorithm::Ed25519 => {
            let arr: [u8; 32] = raw
                .try_into()
                .map_err(|_| "bad Ed25519 point length".to_string())?;
            ed25519_dalek::VerifyingKey::from_bytes(&arr)
                .map(PublicKey::Ed25519)
                .map_err(|_| "not a valid Ed25519 point".into())
        }
        Algorithm::EcdsaP256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(raw)
            .map(PublicKey::EcdsaP256)
            .map_err(|_| "not a valid P-256 point".into()),
        _ => p384::ecdsa::VerifyingKey::from_sec1_bytes(raw)
            .map(PublicKey::EcdsaP384)
            .map_err(|_| "not a valid P-384 point".into()),
    }
}

/// A key in a token, usable as a [`Signer`]. Holds a logged-in session.
pub struct Pkcs11Signer {
    session: TokenSession,
    handle: ObjectHandle,
    public: PublicKey,
    tuf_key: Key,
    label: String,
    /// The key as found (label, id), to find the private key again after a new login.
    key: TokenKey,
    /// `CKA_ALWAYS_AUTHENTICATE` of the private key.
    always_authenticate: bool,
    /// The PIN, kept for such a key only (zeroized when the signer is dropped).
    reauth: Option<Pin>,
    /// The PIN was verified and no signature has used that verification yet.
    pin_fresh: bool,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("token", &self.session.token.to_string())
            .field("label", &self.label)
            .field("keyid", &self.tuf_key.key_id())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// The token the key is on.
    pub fn token(&self) -> &TokenDesc {
        &self.session.token
    }

    /// The key label on the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// For a key that wants the PIN before every signature: verify it again, unless the login
    /// just did and no signature has used it yet.
    fn pin_before_signature(&mut self) -> Result<(), TokenError> {
        if self.always_authenticate && !self.pin_fresh {
            match &self.reauth {
                Some(pin) => {
                    self.session.reverify(pin)?;
                    // A new login may give private objects new handles (SoftHSM2 does).
                    self.handle = self.session.private_handle(&self.key)?;
                }
                None => {
                    return Err(TokenError::UnsupportedKey {
                        token: self.session.token.to_string(),
                        label: self.label.clone(),
                        reason: "the key wants the PIN before every signature (CKA_ALWAYS_AUTHENTICATE) and no PIN was given".into(),
                    });
                }
            }
        }
        self.pin_fresh = false;
        Ok(())
    }

    /// Does the key want the PIN before every signature (`CKA_ALWAYS_AUTHENTICATE`)?
    pub fn always_authenticate(&self) -> bool {
        self.always_authenticate
    }

    /// Sign, returning a typed token error (the [`Signer`] impl wraps it).
    pub fn sign_token(&mut self, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.pin_before_signature()?;
        let alg = self.public.algorithm();
        crate::fault::point(&format!("token C_Sign {}", self.label));
        let sig = raw_sign(&self.session.session, self.handle, alg, msg).map_err(|e| {
            classify(
                e,
                &format!("key \"{}\" on {}", self.label, self.session.token),
            )
        })?;
        Ok(sig)
    }

    /// What the token itself is given to sign for `msg`: the message for Ed25519, its digest
    /// for ECDSA.
    pub fn token_input(&self, msg: &[u8]) -> Vec<u8> {
        prehash(self.public.algorithm(), msg)
            .filter(|_| self.public.algorithm() != Algorithm::Ed25519)
            .unwrap_or_else(|| msg.to_vec())
    }

    /// One bare `C_Sign` over prepared input (see [`Pkcs11Signer::token_input`]), returning
    /// what the token returned (raw r||s for ECDSA). For measuring the token alone.
    pub fn sign_prepared(&mut self, input: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.pin_before_signature()?;
        let mech = match self.public.algorithm() {
            Algorithm::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            _ => Mechanism::Ecdsa,
        };
        self.session
            .session
            .sign(&mech, self.handle, input)
            .map_err(|e| {
                classify(
                    e,
                    &format!("key \"{}\" on {}", self.label, self.session.token),
                )
            })
    }

    /// The key id of this key in its python-tuf encoding.
    pub fn key_id(&self) -> KeyId {
        self.tuf_key.key_id()
    }
}

impl Signer for Pkcs11Signer {
    fn key(&self) -> &Key {
        &self.tuf_key
    }

    fn sign_raw(&mut self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign_token(msg)
            .map_err(|e| SignerError::Token(Box::new(e)))
    }

    /// With the public key decoded once from the token's `CKA_EC_POINT` (the same key
    /// `tuf_key` was built from), instead of re-parsing the PEM/hex of `tuf_key` per signature.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), crate::tuf::key::KeyError> {
        self.public.verify(msg, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rv_names_are_pkcs11_spellings() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(&RvError::DeviceRemoved), "CKR_DEVICE_REMOVED");
        assert_eq!(rv_name(&RvError::MechanismInvalid), "CKR_MECHANISM_INVALID");
        assert_eq!(
            rv_name(&RvError::VendorDefined(0x8000_0001)),
            "CKR_VENDOR_DEFINED(0x80000001)"
        );
        assert_eq!(
            function_name(&cryptoki::context::Function::Login),
            "C_Login"
        );
    }

    #[test]
    fn errors_are_classified() {
        let e = classify(
            CkError::Pkcs11(RvError::DeviceRemoved, cryptoki::context::Function::Sign),
            "token \"alice\"",
        );
        assert!(matches!(e, TokenError::TokenRemoved { .. }), "{e}");
        assert!(
            e.to_string().contains("C_Sign returned CKR_DEVICE_REMOVED"),
            "{e}"
        );
        // After a pull, modules forget the session (ykcs11, OpenSC): removed, not "no key".
        let e = classify(
            CkError::Pkcs11(
                RvError::SessionHandleInvalid,
                cryptoki::context::Function::FindObjectsInit,
            ),
            "token \"alice\"",
        );
        assert!(matches!(e, TokenError::TokenRemoved { .. }), "{e}");
        let e = classify(
            CkError::Pkcs11(RvError::PinLocked, cryptoki::context::Function::Login),
            "t",
        );
        assert!(matches!(e, TokenError::PinLocked { .. }));
        let e = classify(
            CkError::Pkcs11(RvError::GeneralError, cryptoki::context::Function::Sign),
            "t",
        );
        assert_eq!(e.to_string(), "C_Sign failed with CKR_GENERAL_ERROR (t)");
    }

    #[test]
    fn ec_point_unwrapping_goes_by_length() {
        let key = [7u8; 32];
        let mut wrapped = vec![0x04, 0x20];
        wrapped.extend_from_slice(&key);
        assert_eq!(unwrap_ec_point(&wrapped, 32), Some(&key[..]));
        assert_eq!(unwrap_ec_point(&key, 32), Some(&key[..]));
        // A bare P-256 point whose X starts with 0x3f = 63 looks like a DER header of the wrong size.
        let mut bare = vec![0x04, 0x3f];
        bare.extend_from_slice(&[1u8; 63]);
        assert_eq!(unwrap_ec_point(&bare, 65), Some(&bare[..]));
        assert_eq!(unwrap_ec_point(&bare[..64], 65), None);
    }

    #[test]
    fn both_ed25519_param_spellings_decode() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let mut point = vec![0x04, 0x20];
        point.extend_from_slice(sk.verifying_key().as_bytes());
        for params in [ED25519_OID_PARAMS, ED25519_NAME_PARAMS] {
            let pk = decode_public(KeyType::EC_EDWARDS, params, &point).unwrap();
            assert_eq!(pk, PublicKey::Ed25519(sk.verifying_key()));
        }
        assert!(decode_public(KeyType::EC, ED25519_OID_PARAMS, &point).is_err());
        let secp256k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
        let err = decode_public(KeyType::EC, &secp256k1, &point).unwrap_err();
        assert!(err.contains("not Ed25519, P-256 or P-384"), "{err}");
    }

    #[test]
    fn raw_ecdsa_becomes_der() {
        use signature::Signer as _;
        let sk = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(b"m");
        let der = ecdsa_raw_to_der(Algorithm::EcdsaP256, &sig.to_bytes()).unwrap();
        PublicKey::EcdsaP256(*sk.verifying_key())
            .verify(b"m", &der)
            .unwrap();
        assert!(ecdsa_raw_to_der(Algorithm::EcdsaP256, &sig.to_bytes()[..63]).is_none());
    }

    /// One case per row of YSA-2024-03 (Yubico's advisory and customer-resources article):
    /// the last affected and the first fixed firmware of each series.
    #[test]
    fn ysa_2024_03_rows_each_fire_below_their_fixed_firmware_only() {
        let yk = "Yubico (www.yubico.com)";
        let device = |man: &str, model: &str, fw: (u8, u8, u8)| {
            let a = advisories_for(man, model, fw);
            assert!(a.len() <= 1, "{a:?}");
            a.first().map(|a| (a.id, a.device))
        };
        // (manufacturer, model, last affected, first fixed, the row named)
        let rows = [
            (
                yk,
                "YubiKey 5 NFC",
                (5, 4, 3),
                (5, 7, 0),
                "YubiKey 5 Series",
            ),
            (
                yk,
                "YubiKey 5 CSPN",
                (5, 6, 9),
                (5, 7, 0),
                "YubiKey 5 Series",
            ),
            (
                yk,
                "YubiKey 5 NFC FIPS",
                (5, 7, 1),
                (5, 7, 2),
                "YubiKey 5 FIPS",
            ),
            (yk, "YubiKey Bio", (5, 7, 1), (5, 7, 2), "YubiKey Bio"),
            (yk, "Security Key NFC", (5, 4, 3), (5, 7, 0), "Security Key"),
            ("Yubico", "YubiHSM", (2, 3, 1), (2, 4, 0), "YubiHSM 2"),
            // What ykcs11 reports for every YubiKey 5 (FIPS and Bio alike): the strictest bound.
            (
                yk,
                "YubiKey YK5",
                (5, 7, 1),
                (5, 7, 2),
                "the strictest bound",
            ),
            (
                yk,
                "YubiKey YK4",
                (4, 3, 7),
                (5, 7, 2),
                "the strictest bound",
            ),
            (
                yk,
                "YubiKey XXX",
                (5, 7, 0),
                (5, 7, 2),
                "the strictest bound",
            ),
        ];
        for (man, model, affected, fixed, named) in rows {
            let (id, what) = device(man, model, affected)
                .unwrap_or_else(|| panic!("{model} {affected:?} is affected"));
            assert_eq!(id, "YSA-2024-03");
            assert!(what.contains(named), "{model}: {what}");
            assert_eq!(
                device(man, model, fixed),
                None,
                "{model} {fixed:?} is fixed"
            );
        }
        // A YubiKey 5 that says it is one (not through ykcs11) is fixed in 5.7.0.
        assert_eq!(device(yk, "YubiKey 5 NFC", (5, 7, 0)), None);
        assert!(device(yk, "YubiKey YK5", (5, 7, 0)).is_some());
        assert_eq!(device("SoftHSM project", "SoftHSM v2", (2, 6, 0)), None);
        // OpenSC's PIV driver reports no firmware and no Yubico name for a YubiKey.
        assert_eq!(device("piv_II", "PKCS#15 emulated", (0, 0, 0)), None);
        // Only the YubiHSM 2 has a safe key type Conclave generates (Ed25519).
        let hsm = &advisories_for("Yubico", "YubiHSM", (2, 3, 1))[0];
        assert_eq!(hsm.safe, &[Algorithm::Ed25519]);
        assert!(hsm.concerns(Algorithm::EcdsaP384) && !hsm.concerns(Algorithm::Ed25519));
        let key = &advisories_for(yk, "YubiKey YK5", (5, 4, 3))[0];
        assert!(key.safe.is_empty());
        assert!(key.safe_types().contains("no key type Conclave supports"));
    }

    fn device(label: &str, man: &str, model: &str, fw: (u8, u8, u8)) -> TokenDesc {
        let mut t = TokenDesc::example(label, label);
        t.manufacturer = man.into();
        t.model = model.into();
        t.firmware = format!("{}.{}.{}", fw.0, fw.1, fw.2);
        t.fw = fw;
        t.advisories = advisories_for(man, model, fw);
        t
    }

    #[test]
    fn the_roll_call_verdict_proposes_only_for_a_default_key_type_safe_everywhere() {
        let old_hsm = device("hsm", "Yubico", "YubiHSM", (2, 3, 1));
        let new_hsm = device("hsm2", "Yubico", "YubiHSM", (2, 4, 0));
        let old_key = device("yk", "Yubico (www.yubico.com)", "YubiKey YK5", (5, 4, 3));
        let soft = device("alice", "SoftHSM project", "SoftHSM v2", (2, 6, 0));
        let p256 = Algorithm::EcdsaP256;
        assert_eq!(
            key_type_verdict(&[&new_hsm, &soft], p256, true),
            KeyTypeVerdict::Fine
        );
        assert_eq!(
            key_type_verdict(&[&old_hsm, &old_key], Algorithm::Ed25519, true),
            KeyTypeVerdict::Fine
        );
        // Left at the default: Ed25519 is safe on every token present, so it is proposed.
        match key_type_verdict(&[&old_hsm, &soft], p256, true) {
            KeyTypeVerdict::Propose { to, reason } => {
                assert_eq!(to, Algorithm::Ed25519);
                assert!(
                    reason.contains("left at the script's default ecdsa-p256")
                        && reason.contains("token \"hsm\"")
                        && reason.contains("firmware 2.3.1")
                        && reason.contains("YSA-2024-03"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Named by the administrator: refused, naming the safe type and how to choose it.
        let KeyTypeVerdict::Refuse(m) = key_type_verdict(&[&old_hsm], Algorithm::EcdsaP384, false)
        else {
            panic!()
        };
        assert!(
            m.contains("key type ecdsa-p384 refused at the roll call")
                && m.contains("No ECDSA P-384 key is generated on it; safe on it: ed25519")
                && m.contains("key_type = \"ed25519\" in the answers file")
                && m.contains("Esc back to the parameters"),
            "{m}"
        );
        // A YubiKey below the bound has no safe type Conclave supports: nothing is proposed.
        let KeyTypeVerdict::Refuse(m) = key_type_verdict(&[&old_hsm, &old_key], p256, true) else {
            panic!()
        };
        assert!(
            m.contains("the script's default; no key type is safe on every token present")
                && m.contains("firmware 5.4.3")
                && m.contains("no key type Conclave supports is safe on it"),
            "{m}"
        );
    }

    #[test]
    fn piv_slots_map_to_ykcs11_key_ids() {
        let ids: Vec<u8> = ["9a", "9c", "9d", "9e", "82", "95"]
            .iter()
            .map(|s| PivSlot::parse(s).unwrap().key_id())
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 24]);
        assert!(PivSlot::parse("9b").is_none() && PivSlot::parse("f9").is_none());
        assert_eq!(PivSlot::DIGITAL_SIGNATURE.to_string(), "9c");
    }

    #[test]
    fn impossible_pin_lengths_are_refused_before_sending() {
        let t = TokenDesc::example("YubiHSM", "00012345");
        let e = check_pin_length(&t, 4).unwrap_err();
        assert!(matches!(e, TokenError::PinLength { .. }), "{e}");
        assert!(e.to_string().contains("no try was used"), "{e}");
        assert!(!e.to_string().contains("wrong PIN"), "{e}");
        assert!(check_pin_length(&t, 10).is_ok());
        let mut any = t.clone();
        any.pin_len = (0, 0);
        assert!(check_pin_length(&any, 1).is_ok());
        // A reader with a PIN pad: nothing typed is the pad's login, not a too-short PIN
        // (before: the terminal UI refused it, so a PIN pad could not be used there).
        assert!(check_pin_length(&t, 0).is_err());
        let mut pad = t.clone();
        pad.protected_path = true;
        assert!(check_pin_length(&pad, 0).is_ok());
        assert!(check_pin_length(&pad, 4).is_err());
    }

    #[test]
    fn softhsm2_tokens_are_known_by_maker_or_module() {
        let mut t = TokenDesc::example("alice", "1234");
        assert!(!t.is_softhsm());
        // Through p11-kit-proxy: the module is the proxy, the maker SoftHSM2's.
        t.module = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so".into();
        t.manufacturer = "SoftHSM project".into();
        assert!(t.is_softhsm());
        t.manufacturer = "Yubico".into();
        t.module = "/usr/lib/softhsm/libsofthsm2.so".into();
        assert!(t.is_softhsm());
    }

    #[test]
    fn yubico_firmware_is_decoded_as_minor_times_ten_plus_patch() {
        // What the modules report for YubiKey 5.4.3 and YubiHSM 2.3.1 / 2.4.0.
        assert_eq!(decode_firmware("Yubico (www.yubico.com)", 5, 43), (5, 4, 3));
        assert_eq!(decode_firmware("Yubico (www.yubico.com)", 2, 31), (2, 3, 1));
        assert_eq!(decode_firmware("Yubico (www.yubico.com)", 2, 40), (2, 4, 0));
        assert_eq!(decode_firmware("SoftHSM project", 2, 6), (2, 6, 0));
        // A YubiKey through OpenSC's OpenPGP driver: "Yubico" and the OpenPGP application's
        // version (3.4), not the Yubico modules' encoding; through its PIV driver: "piv_II",
        // version 0.0 (card-piv.c never sets the card's version).
        assert_eq!(decode_firmware("Yubico", 3, 4), (3, 4, 0));
        assert_eq!(decode_firmware("piv_II", 0, 0), (0, 0, 0));
        // Read raw, 5.43 was above 5.7 and the advisory never fired.
        let (ma, mi, pa) = decode_firmware("Yubico (www.yubico.com)", 5, 43);
        assert_eq!(
            advisories_for("Yubico", "YubiKey YK5", (ma, mi, pa)).len(),
            1
        );
    }

    #[test]
    fn token_text_is_cleaned_and_opensc_pin_labels_match_the_card_label() {
        assert_eq!(clean_text("SW   TPM\0\0\0\0"), "SW   TPM");
        assert_eq!(clean_text("evil\u{1b}[2Jlabel  "), "evil?[2Jlabel");
        let mut t = TokenDesc::example("alice (UserPIN)", "DENK0100001");
        assert!(t.is_named("alice") && t.is_named("alice (UserPIN)") && t.is_named("DENK0100001"));
        assert!(!t.is_named("alic"));
        t.label = "bob (backup)".into();
        assert!(!t.is_named("bob"), "only a PIN label is stripped");
    }

    #[test]
    fn missing_module_and_non_module_are_told_apart() {
        let e = Module::open(Some(Path::new("/nonexistent/libnothing.so"))).unwrap_err();
        assert!(matches!(e, TokenError::ModuleMissing { .. }), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let e = Module::open(Some(&fake)).unwrap_err();
        assert!(matches!(e, TokenError::ModuleNotLoadable { .. }), "{e}");
        assert!(e.to_string().contains("fake.so"), "{e}");
    }
}

#[cfg(test)]
mod pin_tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use zeroize::{Zeroize, Zeroizing};

    use super::Pin;

    /// Records each call of `zeroize` in a flag it shares with the test.
    struct Probe {
        secret: String,
        wiped: Rc<Cell<usize>>,
    }

    impl Zeroize for Probe {
        fn zeroize(&mut self) {
            self.secret.zeroize();
            self.wiped.set(self.wiped.get() + 1);
        }
    }

    #[test]
    fn the_pin_buffer_wipes_its_contents_when_dropped() {
        // The wrapper the PIN type uses calls `zeroize` exactly once when it goes out of scope,
        // on every path out of a scope (here: a normal end and an early return by `?`).
        let wiped = Rc::new(Cell::new(0));
        {
            let _pin = Zeroizing::new(Probe {
                secret: "123456".into(),
                wiped: wiped.clone(),
            });
            assert_eq!(wiped.get(), 0, "wiped before it was dropped");
        }
        assert_eq!(wiped.get(), 1, "dropping the buffer did not wipe it");
        let fails = |w: Rc<Cell<usize>>| -> Result<(), ()> {
            let _pin = Zeroizing::new(Probe {
                secret: "654321".into(),
                wiped: w,
            });
            Err(())?;
            Ok(())
        };
        assert!(fails(wiped.clone()).is_err());
        assert_eq!(wiped.get(), 2, "an early return left the PIN in memory");

        // And what a wipe does to the PIN type itself: the text is gone, the buffer (whose
        // bytes `String::zeroize` overwrites with zeros, capacity included) is kept, not freed
        // with the PIN still in it.
        let mut pin: Pin = Zeroizing::new(String::with_capacity(64));
        pin.push_str("123456");
        let capacity = pin.capacity();
        pin.zeroize();
        assert_eq!(pin.as_str(), "");
        assert_eq!(pin.capacity(), capacity);
        // `Pin` is exactly the zeroizing wrapper tested above (a compile-time check).
        let _: fn(String) -> Pin = Zeroizing::new;
    }
}
