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
    /// Why a measure could not be applied.
    pub problems: Vec<String>,
}

/// Keep secrets (PINs) in this process's memory from reaching disk or other processes: core dumps
/// off (`RLIMIT_CORE` 0) and the process marked not dumpable (`PR_SET_DUMPABLE` 0). Called first
/// thing by the `conclave` binary.
pub fn harden() -> Hardening {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let mut h = Hardening::default();
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
    h
}

/// The hardening state of this process as the kernel reports it (for `conclave selfcheck`).
pub fn hardening_state() -> Hardening {
    use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};
    let core = getrlimit(Resource::Core);
    let dumpable = dumpable_behavior();
    Hardening {
        core_dumps_off: core.current == Some(0) && core.maximum == Some(0),
        not_dumpable: matches!(dumpable, Ok(DumpableBehavior::NotDumpable)),
        problems: Vec::new(),
    }
}
