//! Device profiles for Conclave's tests: a PKCS#11 module that forwards every call to a real
//! module (SoftHSM2 by default) and imposes, on top, the documented behaviour of another vendor's
//! module. Test code only; it emulates, it is not the vendor's module.
//!
//! Environment (read at each call, so one test process can change it between runs of conclave):
//!
//! - `CONCLAVE_PROFILE`: the profile (below); unset or `none`: transparent.
//! - `CONCLAVE_PROFILE_TARGET`: the real module (default `/usr/lib/softhsm/libsofthsm2.so`;
//!   kryoptic works too; `opensc-nitrokey` does not wrap EC points itself, it relies on
//!   SoftHSM2's being DER-wrapped already, so over kryoptic (bare points) it is not OpenSC's
//!   behaviour).
//! - `CONCLAVE_PROFILE_TOKENS`: comma-separated labels of the backing (SoftHSM2) tokens the
//!   profile applies to; the others are forwarded unchanged (default: all).
//! - `CONCLAVE_PROFILE_FIRMWARE`: the device firmware the Yubico profiles report, `5.4.3`
//!   (default 5.4.3 for `ykcs11`, 2.3.1 for `yubihsm`).
//! - `CONCLAVE_PROFILE_PINS`: `label=pin,...`: the backing tokens' user PINs, for the calls where
//!   the emulated module logs in without the user's PIN (ykcs11's management-key login, a PIN-pad
//!   reader) or checks a PIN itself (ykcs11's context-specific login).
//! - `CONCLAVE_PROFILE_MGMKEY`: the PIV management key (hex) `ykcs11` accepts for `CKU_SO`
//!   (default: the factory key `010203040506070801020304050607080102030405060708`).
//! - `CONCLAVE_PROFILE_STATE`: a directory for state that outlives a process (the TPM's
//!   dictionary-attack counter).
//! - `CONCLAVE_PROFILE_REMOVED`: a file; every backing token whose label is a line in it is
//!   "pulled": `C_GetTokenInfo` and `C_OpenSession` return `CKR_TOKEN_NOT_PRESENT`, calls on its
//!   open sessions `CKR_SESSION_HANDLE_INVALID`, `C_Sign` `CKR_DEVICE_REMOVED` (what ykcs11 and
//!   OpenSC return after a card is pulled). Works with every profile, `none` included.
//! - `CONCLAVE_PROFILE_HANG_SECONDS`: `C_GetSlotList` sleeps that long first (a hung driver,
//!   no vendor's documented behaviour). Works with every profile, `none` included.
//!
//! Profiles, each with the source it follows:
//!
//! - `yubihsm` — Yubico's `yubihsm_pkcs11` (yubihsm-shell, `pkcs11/yubihsm_pkcs11.c`:
//!   `C_GetTokenInfo`, `C_FindObjectsInit`, and `get_session(.., SESSION_AUTHENTICATED)` in
//!   `C_GetAttributeValue`): before `C_Login` a search finds no objects and attribute reads
//!   return `CKR_USER_NOT_LOGGED_IN`; label and model "YubiHSM", manufacturer "Yubico
//!   (www.yubico.com)", serial as 8 decimal digits, firmware and hardware version
//!   `major.(minor*10+patch)`, PIN 8 to 64 characters. Its PIN is the authentication key id in 4
//!   hex digits followed by the password: the shim strips the 4 digits and logs in to the
//!   backing token with the rest.
//! - `ykcs11` — Yubico's `ykcs11` (yubico-piv-tool, `ykcs11/ykcs11.c` `C_Login` and
//!   `C_GenerateKeyPair`, `ykcs11/token.c` `get_token_label`, `ykcs11/objects.c` object tables):
//!   label "YubiKey PIV #serial" (decimal), model "YubiKey YK5", firmware `major.(minor*10+patch)`,
//!   PIN 6 to 64 (`ulMinPinLen` = `YKPIV_MIN_PIN_LEN`, `ulMaxPinLen` = `YKPIV_MAX_MGM_KEY_LEN`);
//!   no EdDSA (ykcs11 2.2 in Debian 12); key generation only after `C_Login(CKU_SO)` with the
//!   management key (else `CKR_USER_TYPE_INVALID`); the first byte of `CKA_ID` selects the PIV
//!   slot (1 = 9a, 2 = 9c, 3 = 9d, 4 = 9e, 5..24 = retired slots 82..95; any other value
//!   `CKR_ATTRIBUTE_VALUE_INVALID`); the module sets the labels ("Private key for Digital
//!   Signature") and the id (one byte); generating into an occupied slot replaces its key (PIV
//!   has no "do not overwrite"); a signature with the slot 9c key needs `C_Login
//!   (CKU_CONTEXT_SPECIFIC)` with the PIN after every `C_SignInit` (PIN policy "always"; the key
//!   reports `CKA_ALWAYS_AUTHENTICATE` true), else `C_Sign` fails with `CKR_USER_NOT_LOGGED_IN`.
//!   As on the card, a fresh `C_Login(CKU_USER)` verifies the PIN too (one signature's worth).
//! - `opensc-nitrokey` — OpenSC's PKCS#15 emulation of a SmartCard-HSM / Nitrokey HSM 2
//!   (OpenSC `src/pkcs11/framework-pkcs15.c`: the token label is the card label followed by the
//!   PIN label in parentheses when the card has more than one PIN; `pkcs15-sc-hsm.c`):
//!   label "LABEL (UserPIN)", manufacturer "www.CardContact.de", model "PKCS#15 emulated", no
//!   EdDSA, `CKA_EC_POINT` DER-wrapped (as SoftHSM2 already returns it).
//! - `opencryptoki` — opencryptoki 3.8 (measured, docs/hsm.md): `CKF_CLOCK_ON_TOKEN` set and a
//!   token clock that is not digits (blank).
//! - `tpm` — tpm2-pkcs11 1.9 (`src/lib/token.c` `token_get_info`: serial
//!   `TPM2_TOKEN_SERIAL_NUMBER` "0000000000000000", no PIN-count flags, PIN length 0..128;
//!   `src/lib/tpm.c`: `TPM2_RC_LOCKOUT` becomes `CKR_PIN_LOCKED`) on swtpm (manufacturer "IBM",
//!   model "SW   TPM" padded with NUL bytes, measured): every token has the same serial, no
//!   EdDSA, and the TPM's dictionary-attack lockout is shared: after three wrong PINs on any
//!   token of the TPM, `C_Login` on every token returns `CKR_PIN_LOCKED` (counter kept in
//!   `CONCLAVE_PROFILE_STATE`).
//! - `pinpad` — a reader with a PIN pad (`CKF_PROTECTED_AUTHENTICATION_PATH`, PKCS#11 2.40
//!   section 5.6 `C_Login`: a NULL PIN means "use the protected path"): the PIN is "typed on the
//!   pad" (taken from `CONCLAVE_PROFILE_PINS`) when `C_Login` gets a NULL PIN.

#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki_sys::*;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const FACTORY_MGMKEY: &str = "010203040506070801020304050607080102030405060708";
/// Wrong PINs after which the emulated TPM locks out (the tpm2-tools / swtpm default
/// `maxTries` set by `tpm2_dictionarylockout -n 3` in the bench's setup).
const TPM_MAX_TRIES: u32 = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    None,
    YubiHsm,
    Ykcs11,
    OpenscNitrokey,
    Opencryptoki,
    Tpm,
    Pinpad,
}

fn profile() -> Profile {
    match std::env::var("CONCLAVE_PROFILE").as_deref() {
        Ok("yubihsm") => Profile::YubiHsm,
        Ok("ykcs11") => Profile::Ykcs11,
        Ok("opensc-nitrokey") => Profile::OpenscNitrokey,
        Ok("opencryptoki") => Profile::Opencryptoki,
        Ok("tpm") => Profile::Tpm,
        Ok("pinpad") => Profile::Pinpad,
        _ => Profile::None,
    }
}

#[derive(Default)]
struct Sess {
    slot: CK_SLOT_ID,
    /// A search started before login on `yubihsm`: it finds nothing.
    empty_find: bool,
    /// A signature operation is active (`ykcs11`).
    signing: bool,
    /// The active signature is with a slot 9c key (`ykcs11`).
    sign_9c: bool,
    /// A context-specific login happened for the active signature (`ykcs11`).
    context_ok: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Login {
    User,
    So,
}

#[derive(Default)]
struct State {
    sessions: HashMap<CK_SESSION_HANDLE, Sess>,
    logins: HashMap<CK_SLOT_ID, Login>,
    /// `ykcs11`: the PIN was verified on the card (a user or context-specific login) and no
    /// slot 9c signature has used that verification yet (PIN policy "always").
    pin_fresh: HashMap<CK_SLOT_ID, bool>,
}

struct Real {
    list: CK_FUNCTION_LIST,
    _lib: libloading::Library,
}

static REAL: OnceLock<Result<Real, String>> = OnceLock::new();
static SHIM: OnceLock<CK_FUNCTION_LIST> = OnceLock::new();
static STATE: OnceLock<Mutex<State>> = OnceLock::new();

fn state() -> MutexGuard<'static, State> {
    STATE
        .get_or_init(|| Mutex::new(State::default()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn load_real() -> Result<Real, String> {
    let path = std::env::var("CONCLAVE_PROFILE_TARGET").unwrap_or_else(|_| SOFTHSM.into());
    // SAFETY: loading a PKCS#11 module runs its initialisers; the path is the test's real module
    // (SoftHSM2), which is made to be loaded this way.
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| e.to_string())?;
    // SAFETY: `C_GetFunctionList` has this signature in every PKCS#11 module.
    let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
        unsafe { lib.get(b"C_GetFunctionList\0") }.map_err(|e| e.to_string())?;
    let mut ptr: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `ptr` is a valid out pointer; the module fills it with a pointer to its static
    // function list, valid while the library stays loaded (we keep it in `Real`).
    let rv = unsafe { get(&mut ptr) };
    if rv != CKR_OK || ptr.is_null() {
        return Err(format!("C_GetFunctionList of {path} returned {rv:#x}"));
    }
    // SAFETY: checked non-null above; the list is plain data (version and function pointers).
    let list = unsafe { *ptr };
    Ok(Real { list, _lib: lib })
}

fn real() -> Option<&'static CK_FUNCTION_LIST> {
    REAL.get_or_init(load_real).as_ref().ok().map(|r| &r.list)
}

macro_rules! call {
    ($f:ident ( $($a:expr),* )) => {
        match real().and_then(|r| r.$f) {
            // SAFETY: forwarding the caller's own arguments, unchanged or replaced by buffers
            // this shim owns for the duration of the call, to the real module's function of the
            // same name and signature.
            Some(f) => unsafe { f($($a),*) },
            None => CKR_GENERAL_ERROR,
        }
    };
}

/// The backing token's info, as the real module gives it.
fn backing_info(slot: CK_SLOT_ID) -> Option<CK_TOKEN_INFO> {
    // SAFETY: CK_TOKEN_INFO is plain data; all-zero is a valid value.
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    (call!(C_GetTokenInfo(slot, &mut info)) == CKR_OK).then_some(info)
}

fn trimmed(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn backing_label(slot: CK_SLOT_ID) -> Option<String> {
    backing_info(slot).map(|i| trimmed(&i.label))
}

fn list_env(name: &str) -> Option<Vec<String>> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

/// Does the profile apply to the token in `slot`? (Only initialised tokens: SoftHSM2's free
/// slot stays as it is.)
fn applies(slot: CK_SLOT_ID) -> bool {
    if profile() == Profile::None {
        return false;
    }
    let Some(info) = backing_info(slot) else {
        return false;
    };
    if info.flags & CKF_TOKEN_INITIALIZED == 0 {
        return false;
    }
    match list_env("CONCLAVE_PROFILE_TOKENS") {
        None => true,
        Some(labels) => labels.contains(&trimmed(&info.label)),
    }
}

fn removed(slot: CK_SLOT_ID) -> bool {
    let Ok(path) = std::env::var("CONCLAVE_PROFILE_REMOVED") else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    backing_label(slot).is_some_and(|l| text.lines().any(|line| line.trim() == l))
}

fn backing_pin(slot: CK_SLOT_ID) -> Option<Vec<u8>> {
    let label = backing_label(slot)?;
    list_env("CONCLAVE_PROFILE_PINS")?
        .iter()
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == label))
        .map(|(_, p)| p.as_bytes().to_vec())
}

fn firmware(default: (u8, u8, u8)) -> CK_VERSION {
    let v = std::env::var("CONCLAVE_PROFILE_FIRMWARE").ok();
    let parts: Vec<u8> = v
        .as_deref()
        .unwrap_or("")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    let (major, minor, patch) = match parts.as_slice() {
        [a, b, c] => (*a, *b, *c),
        _ => default,
    };
    // Both Yubico modules: `minor * 10 + patch` in the minor byte.
    CK_VERSION {
        major,
        minor: minor.saturating_mul(10).saturating_add(patch),
    }
}

fn pad(dst: &mut [u8], s: &[u8], fill: u8) {
    dst.fill(fill);
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s[..n]);
}

/// The backing serial as a decimal number below 10^8, as Yubico devices have: the hex serial
/// (SoftHSM2's, kryoptic's) modulo 10^8; a backing serial that is not hex gives the slot id, so
/// that every emulated device still has a serial of its own.
fn decimal_serial(slot: CK_SLOT_ID, info: &CK_TOKEN_INFO) -> u64 {
    u64::from_str_radix(&trimmed(&info.serialNumber), 16).unwrap_or(slot) % 100_000_000
}

fn session_slot(h: CK_SESSION_HANDLE) -> Option<CK_SLOT_ID> {
    state().sessions.get(&h).map(|s| s.slot)
}

fn logged_in(slot: CK_SLOT_ID) -> Option<Login> {
    state().logins.get(&slot).copied()
}

/// Read one attribute of an object through the real module.
fn real_attribute(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut a = CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    if call!(C_GetAttributeValue(h, obj, &mut a, 1)) != CKR_OK
        || a.ulValueLen == CK_UNAVAILABLE_INFORMATION
    {
        return Vec::new();
    }
    let mut buf = vec![0u8; a.ulValueLen as usize];
    a.pValue = buf.as_mut_ptr().cast();
    if call!(C_GetAttributeValue(h, obj, &mut a, 1)) != CKR_OK {
        return Vec::new();
    }
    buf.truncate(a.ulValueLen as usize);
    buf
}

/// A caller's template as a slice (empty for a NULL pointer).
fn template<'a>(p: *mut CK_ATTRIBUTE, n: CK_ULONG) -> &'a mut [CK_ATTRIBUTE] {
    if p.is_null() || n == 0 {
        return &mut [];
    }
    // SAFETY: PKCS#11 callers pass `n` valid attributes at `p` for the duration of the call.
    unsafe { std::slice::from_raw_parts_mut(p, n as usize) }
}

fn bytes<'a>(p: *const u8, n: CK_ULONG) -> &'a [u8] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: PKCS#11 callers pass `n` valid bytes at `p` for the duration of the call.
    unsafe { std::slice::from_raw_parts(p, n as usize) }
}

fn attr_bytes(a: &CK_ATTRIBUTE) -> &[u8] {
    bytes(a.pValue.cast(), a.ulValueLen)
}

// ---- the wrapped functions ----

extern "C" fn get_token_info(slot: CK_SLOT_ID, out: *mut CK_TOKEN_INFO) -> CK_RV {
    if out.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    if removed(slot) {
        return CKR_TOKEN_NOT_PRESENT;
    }
    let Some(mut info) = backing_info(slot) else {
        return call!(C_GetTokenInfo(slot, out));
    };
    if applies(slot) {
        rewrite_info(slot, &mut info);
    }
    // SAFETY: `out` is the caller's non-null CK_TOKEN_INFO buffer.
    unsafe { *out = info };
    CKR_OK
}

fn rewrite_info(slot: CK_SLOT_ID, info: &mut CK_TOKEN_INFO) {
    let pin_flags = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
    match profile() {
        Profile::None => {}
        Profile::YubiHsm => {
            let serial = format!("{:08}", decimal_serial(slot, info));
            pad(&mut info.label, b"YubiHSM", b' ');
            pad(&mut info.manufacturerID, b"Yubico (www.yubico.com)", b' ');
            pad(&mut info.model, b"YubiHSM", b' ');
            pad(&mut info.serialNumber, serial.as_bytes(), b' ');
            info.flags =
                CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
            info.ulMinPinLen = 8;
            info.ulMaxPinLen = 64;
            let v = firmware((2, 3, 1));
            info.firmwareVersion = v;
            info.hardwareVersion = v;
        }
        Profile::Ykcs11 => {
            let serial = decimal_serial(slot, info);
            pad(
                &mut info.label,
                format!("YubiKey PIV #{serial}").as_bytes(),
                b' ',
            );
            pad(&mut info.manufacturerID, b"Yubico (www.yubico.com)", b' ');
            pad(&mut info.model, b"YubiKey YK5", b' ');
            pad(&mut info.serialNumber, serial.to_string().as_bytes(), b' ');
            info.flags &= !pin_flags;
            info.ulMinPinLen = 6;
            info.ulMaxPinLen = 64;
            info.firmwareVersion = firmware((5, 4, 3));
        }
        Profile::OpenscNitrokey => {
            let label = format!("{} (UserPIN)", trimmed(&info.label));
            pad(&mut info.label, label.as_bytes(), b' ');
            pad(&mut info.manufacturerID, b"www.CardContact.de", b' ');
            pad(&mut info.model, b"PKCS#15 emulated", b' ');
        }
        Profile::Opencryptoki => {
            info.flags |= CKF_CLOCK_ON_TOKEN;
            info.utcTime = [b' '; 16];
        }
        Profile::Tpm => {
            pad(&mut info.serialNumber, b"0000000000000000", b' ');
            pad(&mut info.manufacturerID, b"IBM", b' ');
            pad(&mut info.model, b"SW   TPM", 0);
            info.flags &= !pin_flags;
            info.ulMinPinLen = 0;
            info.ulMaxPinLen = 128;
        }
        Profile::Pinpad => info.flags |= CKF_PROTECTED_AUTHENTICATION_PATH,
    }
}

fn no_eddsa() -> bool {
    matches!(
        profile(),
        Profile::Ykcs11 | Profile::OpenscNitrokey | Profile::Tpm
    )
}

extern "C" fn get_mechanism_list(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    if !(applies(slot) && no_eddsa()) {
        return call!(C_GetMechanismList(slot, list, count));
    }
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let mut n: CK_ULONG = 0;
    let rv = call!(C_GetMechanismList(slot, std::ptr::null_mut(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    let mut all = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let rv = call!(C_GetMechanismList(slot, all.as_mut_ptr(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    all.truncate(n as usize);
    all.retain(|m| *m != CKM_EC_EDWARDS_KEY_PAIR_GEN && *m != CKM_EDDSA);
    // SAFETY: `count` is the caller's non-null out pointer.
    let room = unsafe { *count } as usize;
    // SAFETY: as above.
    unsafe { *count = all.len() as CK_ULONG };
    if list.is_null() {
        return CKR_OK;
    }
    if room < all.len() {
        return CKR_BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller's buffer holds `room` >= all.len() entries.
    unsafe { std::ptr::copy_nonoverlapping(all.as_ptr(), list, all.len()) };
    CKR_OK
}

/// `CONCLAVE_PROFILE_HANG_SECONDS`: listing the slots takes that long (not a vendor's
/// behaviour: a driver stuck on a reader or a USB device that does not answer), for the tests
/// of a module that hangs while Conclave looks for the one with a token present.
extern "C" fn get_slot_list(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    if let Some(secs) = std::env::var("CONCLAVE_PROFILE_HANG_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    call!(C_GetSlotList(present, list, count))
}

extern "C" fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    app: *mut std::ffi::c_void,
    notify: CK_NOTIFY,
    out: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    if removed(slot) {
        return CKR_TOKEN_NOT_PRESENT;
    }
    let rv = call!(C_OpenSession(slot, flags, app, notify, out));
    if rv == CKR_OK && !out.is_null() {
        // SAFETY: the real module wrote the handle to the caller's non-null pointer.
        let h = unsafe { *out };
        state().sessions.insert(
            h,
            Sess {
                slot,
                ..Sess::default()
            },
        );
    }
    rv
}

extern "C" fn close_session(h: CK_SESSION_HANDLE) -> CK_RV {
    let rv = call!(C_CloseSession(h));
    let mut st = state();
    if let Some(s) = st.sessions.remove(&h)
        && !st.sessions.values().any(|o| o.slot == s.slot)
    {
        st.logins.remove(&s.slot);
    }
    rv
}

extern "C" fn close_all_sessions(slot: CK_SLOT_ID) -> CK_RV {
    let rv = call!(C_CloseAllSessions(slot));
    let mut st = state();
    st.sessions.retain(|_, s| s.slot != slot);
    st.logins.remove(&slot);
    rv
}

/// The session's slot, or the error a pulled token gives.
fn live_slot(h: CK_SESSION_HANDLE) -> Result<Option<CK_SLOT_ID>, CK_RV> {
    match session_slot(h) {
        Some(slot) if removed(slot) => Err(CKR_SESSION_HANDLE_INVALID),
        other => Ok(other),
    }
}

fn real_user_login(h: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
    let mut pin = pin.to_vec();
    match call!(C_Login(
        h,
        CKU_USER,
        pin.as_mut_ptr(),
        pin.len() as CK_ULONG
    )) {
        CKR_USER_ALREADY_LOGGED_IN => CKR_OK,
        rv => rv,
    }
}

fn tpm_counter_path() -> Option<std::path::PathBuf> {
    std::env::var_os("CONCLAVE_PROFILE_STATE")
        .map(|d| std::path::Path::new(&d).join("tpm-da-count"))
}

extern "C" fn login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut u8,
    len: CK_ULONG,
) -> CK_RV {
    let slot = match live_slot(h) {
        Err(rv) => return rv,
        Ok(Some(slot)) if applies(slot) => slot,
        Ok(_) => return call!(C_Login(h, user, pin, len)),
    };
    let typed = bytes(pin, len);
    let rv = match profile() {
        Profile::YubiHsm => {
            // "0001password": the authentication key id, then its password.
            let password = if typed.len() >= 4 && typed[..4].iter().all(u8::is_ascii_hexdigit) {
                &typed[4..]
            } else {
                typed
            };
            if typed.len() < 8 || typed.len() > 64 {
                return CKR_PIN_LEN_RANGE;
            }
            let mut p = password.to_vec();
            call!(C_Login(h, user, p.as_mut_ptr(), p.len() as CK_ULONG))
        }
        Profile::Ykcs11 => return ykcs11_login(h, slot, user, typed),
        Profile::Tpm => {
            let path = tpm_counter_path();
            let count = |p: &Option<std::path::PathBuf>| -> u32 {
                p.as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0)
            };
            if count(&path) >= TPM_MAX_TRIES {
                return CKR_PIN_LOCKED;
            }
            let rv = call!(C_Login(h, user, pin, len));
            if rv == CKR_PIN_INCORRECT
                && let Some(p) = &path
            {
                let _ = std::fs::write(p, (count(&path) + 1).to_string());
            }
            rv
        }
        Profile::Pinpad if pin.is_null() => match backing_pin(slot) {
            Some(p) => real_user_login(h, &p),
            None => CKR_GENERAL_ERROR,
        },
        _ => call!(C_Login(h, user, pin, len)),
    };
    if rv == CKR_OK {
        state().logins.insert(slot, Login::User);
    }
    rv
}

fn ykcs11_login(h: CK_SESSION_HANDLE, slot: CK_SLOT_ID, user: CK_USER_TYPE, typed: &[u8]) -> CK_RV {
    let current = logged_in(slot);
    match user {
        CKU_USER => {
            match current {
                Some(Login::User) => return CKR_USER_ALREADY_LOGGED_IN,
                Some(Login::So) => return CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
                None => {}
            }
            if typed.len() < 6 || typed.len() > 8 {
                return CKR_PIN_LEN_RANGE;
            }
            let rv = real_user_login(h, typed);
            if rv == CKR_OK {
                let mut st = state();
                st.logins.insert(slot, Login::User);
                st.pin_fresh.insert(slot, true);
            }
            rv
        }
        CKU_SO => {
            if current == Some(Login::User) {
                return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
            }
            let want =
                std::env::var("CONCLAVE_PROFILE_MGMKEY").unwrap_or_else(|_| FACTORY_MGMKEY.into());
            if !typed.eq_ignore_ascii_case(want.as_bytes()) {
                return CKR_PIN_INCORRECT;
            }
            let Some(p) = backing_pin(slot) else {
                return CKR_GENERAL_ERROR;
            };
            let rv = real_user_login(h, &p);
            if rv == CKR_OK {
                state().logins.insert(slot, Login::So);
            }
            rv
        }
        CKU_CONTEXT_SPECIFIC => {
            if !state().sessions.get(&h).is_some_and(|s| s.signing) {
                return CKR_USER_TYPE_INVALID;
            }
            let Some(p) = backing_pin(slot) else {
                return CKR_GENERAL_ERROR;
            };
            if typed != p.as_slice() {
                return CKR_PIN_INCORRECT;
            }
            if current.is_none() {
                let rv = real_user_login(h, &p);
                if rv != CKR_OK {
                    return rv;
                }
                state().logins.insert(slot, Login::User);
            }
            if let Some(s) = state().sessions.get_mut(&h) {
                s.context_ok = true;
            }
            state().pin_fresh.insert(slot, true);
            CKR_OK
        }
        _ => CKR_USER_TYPE_INVALID,
    }
}

extern "C" fn logout(h: CK_SESSION_HANDLE) -> CK_RV {
    let rv = call!(C_Logout(h));
    if let Some(slot) = session_slot(h) {
        state().logins.remove(&slot);
    }
    rv
}

fn hides_before_login(h: CK_SESSION_HANDLE) -> bool {
    matches!(session_slot(h), Some(slot) if profile() == Profile::YubiHsm && applies(slot) && logged_in(slot).is_none())
}

extern "C" fn find_objects_init(h: CK_SESSION_HANDLE, t: *mut CK_ATTRIBUTE, n: CK_ULONG) -> CK_RV {
    if let Err(rv) = live_slot(h) {
        return rv;
    }
    if hides_before_login(h) {
        // yubihsm_pkcs11: "we're lying about the operation being successful".
        if let Some(s) = state().sessions.get_mut(&h) {
            s.empty_find = true;
        }
        return CKR_OK;
    }
    call!(C_FindObjectsInit(h, t, n))
}

extern "C" fn find_objects(
    h: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    if state().sessions.get(&h).is_some_and(|s| s.empty_find) {
        if count.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: the caller's non-null out pointer.
        unsafe { *count = 0 };
        return CKR_OK;
    }
    call!(C_FindObjects(h, out, max, count))
}

extern "C" fn find_objects_final(h: CK_SESSION_HANDLE) -> CK_RV {
    if let Some(s) = state().sessions.get_mut(&h)
        && s.empty_find
    {
        s.empty_find = false;
        return CKR_OK;
    }
    call!(C_FindObjectsFinal(h))
}

extern "C" fn get_attribute_value(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    let slot = match live_slot(h) {
        Err(rv) => return rv,
        Ok(s) => s,
    };
    if hides_before_login(h) {
        return CKR_USER_NOT_LOGGED_IN;
    }
    let rv = call!(C_GetAttributeValue(h, obj, t, n));
    if profile() == Profile::Ykcs11 && slot.is_some_and(applies) && rv == CKR_OK {
        let attrs = template(t, n);
        if attrs.iter().any(|a| a.type_ == CKA_ALWAYS_AUTHENTICATE) {
            let class = real_attribute(h, obj, CKA_CLASS);
            let id = real_attribute(h, obj, CKA_ID);
            let private = class == CKO_PRIVATE_KEY.to_ne_bytes();
            for a in attrs
                .iter_mut()
                .filter(|a| a.type_ == CKA_ALWAYS_AUTHENTICATE)
            {
                if private && id.first() == Some(&2) && !a.pValue.is_null() && a.ulValueLen >= 1 {
                    // SAFETY: the caller's buffer for this attribute holds at least one byte.
                    unsafe { *a.pValue.cast::<u8>() = CK_TRUE };
                }
            }
        }
    }
    rv
}

/// The PIV slot a ykcs11 key id selects (1 = 9a, 2 = 9c, 3 = 9d, 4 = 9e, 5..24 = 82..95).
fn piv_slot_name(id: u8) -> Option<String> {
    match id {
        1 => Some("PIV Authentication".into()),
        2 => Some("Digital Signature".into()),
        3 => Some("Key Management".into()),
        4 => Some("Card Authentication".into()),
        5..=24 => Some(format!("Retired Key {}", id - 4)),
        _ => None,
    }
}

fn destroy_with_id(h: CK_SESSION_HANDLE, id: u8) {
    let mut idv = [id];
    let mut t = CK_ATTRIBUTE {
        type_: CKA_ID,
        pValue: idv.as_mut_ptr().cast(),
        ulValueLen: 1,
    };
    if call!(C_FindObjectsInit(h, &mut t, 1)) != CKR_OK {
        return;
    }
    let mut found = [0 as CK_OBJECT_HANDLE; 16];
    let mut n: CK_ULONG = 0;
    let rv = call!(C_FindObjects(h, found.as_mut_ptr(), 16, &mut n));
    call!(C_FindObjectsFinal(h));
    if rv == CKR_OK {
        for o in &found[..n as usize] {
            call!(C_DestroyObject(h, *o));
        }
    }
}

#[allow(clippy::too_many_arguments)]
extern "C" fn generate_key_pair(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    pub_t: *mut CK_ATTRIBUTE,
    pub_n: CK_ULONG,
    priv_t: *mut CK_ATTRIBUTE,
    priv_n: CK_ULONG,
    pub_h: *mut CK_OBJECT_HANDLE,
    priv_h: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let slot = match live_slot(h) {
        Err(rv) => return rv,
        Ok(s) => s,
    };
    if !(profile() == Profile::Ykcs11 && slot.is_some_and(applies)) {
        return call!(C_GenerateKeyPair(
            h, mech, pub_t, pub_n, priv_t, priv_n, pub_h, priv_h
        ));
    }
    if slot.and_then(logged_in) != Some(Login::So) {
        return CKR_USER_TYPE_INVALID;
    }
    let pubs = template(pub_t, pub_n);
    let privs = template(priv_t, priv_n);
    let Some(id) = pubs
        .iter()
        .chain(privs.iter())
        .find(|a| a.type_ == CKA_ID)
        .and_then(|a| attr_bytes(a).first().copied())
    else {
        return CKR_TEMPLATE_INCOMPLETE;
    };
    let Some(name) = piv_slot_name(id) else {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    };
    // PIV key generation replaces whatever the slot held.
    destroy_with_id(h, id);
    let mut idv = [id];
    let mut pub_label = format!("Public key for {name}").into_bytes();
    let mut priv_label = format!("Private key for {name}").into_bytes();
    let rewrite = |attrs: &[CK_ATTRIBUTE], label: &mut Vec<u8>, idv: &mut [u8; 1]| {
        let mut out: Vec<CK_ATTRIBUTE> = attrs
            .iter()
            .filter(|a| a.type_ != CKA_ID && a.type_ != CKA_LABEL)
            .copied()
            .collect();
        out.push(CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: idv.as_mut_ptr().cast(),
            ulValueLen: 1,
        });
        out.push(CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: label.len() as CK_ULONG,
        });
        out
    };
    let mut idv2 = idv;
    let mut p = rewrite(pubs, &mut pub_label, &mut idv);
    let mut q = rewrite(privs, &mut priv_label, &mut idv2);
    call!(C_GenerateKeyPair(
        h,
        mech,
        p.as_mut_ptr(),
        p.len() as CK_ULONG,
        q.as_mut_ptr(),
        q.len() as CK_ULONG,
        pub_h,
        priv_h
    ))
}

extern "C" fn sign_init(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let slot = match live_slot(h) {
        Err(rv) => return rv,
        Ok(s) => s,
    };
    let rv = call!(C_SignInit(h, mech, key));
    if rv == CKR_OK && profile() == Profile::Ykcs11 && slot.is_some_and(applies) {
        let id = real_attribute(h, key, CKA_ID);
        if let Some(s) = state().sessions.get_mut(&h) {
            s.signing = true;
            s.sign_9c = id.first() == Some(&2);
            s.context_ok = false;
        }
    }
    rv
}

extern "C" fn sign(
    h: CK_SESSION_HANDLE,
    data: *mut u8,
    len: CK_ULONG,
    sig: *mut u8,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    if let Some(slot) = session_slot(h)
        && removed(slot)
    {
        return CKR_DEVICE_REMOVED;
    }
    let refuse = {
        let st = state();
        st.sessions.get(&h).is_some_and(|s| {
            s.signing
                && s.sign_9c
                && !s.context_ok
                && !st.pin_fresh.get(&s.slot).copied().unwrap_or(false)
        })
    };
    if refuse {
        // The card refuses; the operation ends (finish the real one and drop its result).
        let mut buf = vec![0u8; 1024];
        let mut n = buf.len() as CK_ULONG;
        call!(C_Sign(h, data, len, buf.as_mut_ptr(), &mut n));
        if let Some(s) = state().sessions.get_mut(&h) {
            s.signing = false;
        }
        return CKR_USER_NOT_LOGGED_IN;
    }
    let rv = call!(C_Sign(h, data, len, sig, sig_len));
    if !(sig.is_null() && rv == CKR_OK) && rv != CKR_BUFFER_TOO_SMALL {
        let mut st = state();
        let done_9c = st.sessions.get_mut(&h).map(|s| {
            let was = s.signing && s.sign_9c;
            s.signing = false;
            s.context_ok = false;
            (s.slot, was)
        });
        if let Some((slot, true)) = done_9c {
            st.pin_fresh.insert(slot, false);
        }
    }
    rv
}

unsafe extern "C" fn get_function_list(out: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // SAFETY: the same contract as the entry point below, passed on.
    unsafe { C_GetFunctionList(out) }
}

/// The module's entry point.
///
/// # Safety
/// `out` must be NULL or point to writable storage for one pointer (the PKCS#11 contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(out: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if out.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let Some(r) = real() else {
        return CKR_GENERAL_ERROR;
    };
    let list = SHIM.get_or_init(|| {
        let mut l = *r;
        l.C_GetFunctionList = Some(get_function_list);
        l.C_GetTokenInfo = Some(get_token_info);
        l.C_GetSlotList = Some(get_slot_list);
        l.C_GetMechanismList = Some(get_mechanism_list);
        l.C_OpenSession = Some(open_session);
        l.C_CloseSession = Some(close_session);
        l.C_CloseAllSessions = Some(close_all_sessions);
        l.C_Login = Some(login);
        l.C_Logout = Some(logout);
        l.C_FindObjectsInit = Some(find_objects_init);
        l.C_FindObjects = Some(find_objects);
        l.C_FindObjectsFinal = Some(find_objects_final);
        l.C_GetAttributeValue = Some(get_attribute_value);
        l.C_GenerateKeyPair = Some(generate_key_pair);
        l.C_SignInit = Some(sign_init);
        l.C_Sign = Some(sign);
        l
    });
    // SAFETY: `out` is the caller's non-null out pointer; the list is a static that lives as
    // long as the process and that callers only read (PKCS#11 declares it mutable for C).
    unsafe { *out = std::ptr::from_ref(list).cast_mut() };
    CKR_OK
}
