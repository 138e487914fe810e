//! Self-checks of the machine the ceremony runs on: the air-gap check reads the kernel's view of
//! network interfaces and radios from sysfs (no network calls).

use std::path::Path;

/// What the air-gap check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AirgapReport {
    /// Network interfaces other than loopback (`/sys/class/net`).
    pub interfaces: Vec<String>,
    /// Wireless and Bluetooth devices (`/sys/class/ieee80211`, `/sys/class/bluetooth`,
    /// `/sys/class/rfkill`).
    pub radios: Vec<String>,
}

impl AirgapReport {
    /// Whether only loopback exists and no radio.
    pub fn is_airgapped(&self) -> bool {
        self.interfaces.is_empty() && self.radios.is_empty()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Check the machine whose sysfs is mounted at `sys` (normally `/sys`). A missing
/// `class/net` folder is itself suspicious (sysfs not mounted) and reported as an interface.
pub fn airgap_check(sys: &Path) -> AirgapReport {
    let net = sys.join("class/net");
    let mut interfaces: Vec<String> = if net.is_dir() {
        entries(&net).into_iter().filter(|n| n != "lo").collect()
    } else {
        vec![format!(
            "(cannot read {}: interfaces unknown)",
            net.display()
        )]
    };
    interfaces.dedup();
    let mut radios = Vec::new();
    for class in ["ieee80211", "bluetooth"] {
        for name in entries(&sys.join("class").join(class)) {
            radios.push(format!("{class}/{name}"));
        }
    }
    for name in entries(&sys.join("class/rfkill")) {
        let kind = std::fs::read_to_string(sys.join("class/rfkill").join(&name).join("type"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        radios.push(format!("rfkill/{name} {kind}").trim().to_string());
    }
    AirgapReport { interfaces, radios }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_airgapped_and_everything_else_is_named() {
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("class/net/lo")).unwrap();
        assert!(airgap_check(sys.path()).is_airgapped());
        std::fs::create_dir_all(sys.path().join("class/net/eth0")).unwrap();
        std::fs::create_dir_all(sys.path().join("class/bluetooth/hci0")).unwrap();
        std::fs::create_dir_all(sys.path().join("class/rfkill/rfkill0")).unwrap();
        std::fs::write(sys.path().join("class/rfkill/rfkill0/type"), "wlan\n").unwrap();
        let r = airgap_check(sys.path());
        assert!(!r.is_airgapped());
        assert_eq!(r.interfaces, ["eth0"]);
        assert_eq!(r.radios, ["bluetooth/hci0", "rfkill/rfkill0 wlan"]);
    }

    #[test]
    fn unreadable_sysfs_is_not_taken_for_an_airgap() {
        let sys = tempfile::tempdir().unwrap();
        assert!(!airgap_check(sys.path()).is_airgapped());
    }
}

/// What [`harden`] achieved for this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hardening {
    /// The core dump size limit is 0 (soft and hard): a crash writes no memory to disk.
    pub core_dumps_off: bool,
    /// The process is not dumpable: no core dump, and other users' processes cannot attach to
    /// it or read its memory through /proc.
    pub not_dumpable: bool,
    /// All memory, present and future, is locked in RAM (`mlockall`): secrets never reach swap.
    pub memory_locked: bool,
    /// Proxy variables removed from the environment at start (names only, values never shown).
    pub proxies_scrubbed: Vec<String>,
    /// Proxy variables still in the environment (should be none).
    pub proxies_present: Vec<String>,
    /// Why a measure could not be applied.
    pub problems: Vec<String>,
}

/// What the first [`harden`] of this process achieved (mlockall cannot be read back from the
/// kernel as a flag; the scrubbed names are gone from the environment).
static APPLIED: std::sync::OnceLock<Hardening> = std::sync::OnceLock::new();

/// Whether an environment variable name is a proxy setting that network libraries follow
/// (`http_proxy`, `HTTPS_PROXY`, `ALL_PROXY`, `no_proxy`, `FTP_PROXY`, ...): any name ending in
/// `_proxy`, in any case.
pub fn is_proxy_variable(name: &str) -> bool {
    name.len() > "_proxy".len() && name.to_ascii_lowercase().ends_with("_proxy")
}

/// The proxy variables in this process's environment, sorted.
pub fn proxy_variables() -> Vec<String> {
    let mut v: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| is_proxy_variable(k))
        .collect();
    v.sort();
    v
}

/// Keep secrets (PINs) in this process's memory from reaching disk or other processes: core dumps
/// off (`RLIMIT_CORE` 0), the process marked not dumpable (`PR_SET_DUMPABLE` 0), and all memory
/// locked in RAM (`mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`) when the limits allow it.
/// `scrubbed` names the proxy variables the caller removed from the environment before any
/// thread started (the library denies `unsafe`, which `std::env::remove_var` needs). Called
/// first thing by the `conclave` binary; a measure that cannot be applied is listed in
/// `problems` (the binary prints them as warnings). `lock` is false for the commands that only
/// read public metadata (`verify`, `inspect`): they never hold a PIN, and locking would only
/// cost them time (every page of a locked mapping is accounted as unevictable when it is first
/// touched and again at exit: 8% of `conclave verify` on 1,000 delegated roles).
pub fn harden(scrubbed: Vec<String>, lock: bool) -> Hardening {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let mut h = Hardening {
        proxies_scrubbed: scrubbed,
        proxies_present: proxy_variables(),
        ..Hardening::default()
    };
    match setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        Ok(()) => h.core_dumps_off = true,
        Err(e) => h.problems.push(format!("cannot turn core dumps off: {e}")),
    }
    match set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        Ok(()) => h.not_dumpable = true,
        Err(e) => h
            .problems
            .push(format!("cannot mark the process not dumpable: {e}")),
    }
    if lock {
        match lock_memory() {
            Ok(()) => h.memory_locked = true,
            Err(why) => h.problems.push(why),
        }
    }
    if !h.proxies_present.is_empty() {
        h.problems.push(format!(
            "proxy variables still set: {}",
            h.proxies_present.join(", ")
        ));
    }
    let _ = APPLIED.set(h.clone());
    h
}

/// `CAP_IPC_LOCK` lets a process lock memory beyond `RLIMIT_MEMLOCK`.
const CAP_IPC_LOCK: u32 = 14;

/// Whether the effective capabilities in a `/proc/PID/status` text include `CAP_IPC_LOCK`.
fn has_ipc_lock(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Lock all memory, present and future, where the limits allow: with `CAP_IPC_LOCK` or an
/// unlimited `RLIMIT_MEMLOCK` (after raising the soft limit to the hard one). Under a finite
/// limit, `MCL_FUTURE` would make later allocations fail once the limit is reached (a crash in
/// the middle of a ceremony), so memory is then left unlocked with an explanation.
/// `MCL_ONFAULT` locks pages as they are first touched instead of populating every mapping up
/// front (the allocator reserves far more address space than it uses).
fn lock_memory() -> Result<(), String> {
    use rustix::mm::{MlockAllFlags, mlockall};
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Memlock);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Memlock,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    let limit = getrlimit(Resource::Memlock);
    let privileged = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| has_ipc_lock(&s));
    if limit.current.is_some() && !privileged {
        let kib = limit.current.unwrap_or(0) / 1024;
        return Err(format!(
            "memory not locked: RLIMIT_MEMLOCK is {kib} KiB and the process lacks CAP_IPC_LOCK, \
             so PINs could reach swap (run as root, or `ulimit -l unlimited`, or disable swap)"
        ));
    }
    let all = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE;
    mlockall(all | MlockAllFlags::ONFAULT)
        .or_else(|_| mlockall(all))
        .map_err(|e| format!("memory not locked: mlockall failed ({e}), so PINs could reach swap"))
}

/// Locked memory of this process in KiB (`VmLck` in `/proc/self/status`).
fn locked_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The hardening state of this process as the kernel reports it (for `conclave selfcheck`);
/// memory locking and the scrubbed proxy names as [`harden`] recorded them.
pub fn hardening_state() -> Hardening {
    use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};
    let core = getrlimit(Resource::Core);
    let dumpable = dumpable_behavior();
    let applied = APPLIED.get().cloned().unwrap_or_default();
    Hardening {
        core_dumps_off: core.current == Some(0) && core.maximum == Some(0),
        not_dumpable: matches!(dumpable, Ok(DumpableBehavior::NotDumpable)),
        memory_locked: applied.memory_locked && locked_kib().is_some_and(|k| k > 0),
        proxies_scrubbed: applied.proxies_scrubbed,
        proxies_present: proxy_variables(),
        problems: applied.problems,
    }
}

#[cfg(test)]
mod hardening_tests {
    use super::*;

    #[test]
    fn proxy_variables_are_recognised_in_any_case() {
        for name in [
            "http_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
            "no_proxy",
            "NO_PROXY",
            "FTP_PROXY",
            "npm_config_https_proxy",
        ] {
            assert!(is_proxy_variable(name), "{name}");
        }
        for name in ["PROXY", "_proxy", "PATH", "proxy_host", "HTTP_PROXY_X"] {
            assert!(!is_proxy_variable(name), "{name}");
        }
    }

    #[test]
    fn ipc_lock_capability_is_read_from_capeff() {
        assert!(has_ipc_lock("Name:\tx\nCapEff:\t000001fffeffffff\n"));
        assert!(!has_ipc_lock("CapEff:\t0000000000000000\n"));
        assert!(!has_ipc_lock("CapEff:\t0000000000004000x\n"));
        assert!(has_ipc_lock("CapEff:\t0000000000004000\n"));
        assert!(!has_ipc_lock("no capabilities line"));
    }
}
