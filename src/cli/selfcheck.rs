//! `conclave selfcheck`: what the appliance checks about itself before a ceremony.

use std::fmt::Write as _;
use std::path::Path;

use crate::system::{airgap_check, hardening_state};

use super::{CliError, Outcome};

/// Run `conclave selfcheck`: the air-gap check and the process hardening (core dumps, dumpable,
/// memory locking, proxy variables). Exit 1 when the machine is not air-gapped or the hardening
/// is not in force.
pub fn run() -> Result<Outcome, CliError> {
    let a = airgap_check(Path::new("/sys"));
    let h = hardening_state();
    let mut out = String::new();
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let _ = writeln!(out, "air-gapped: {}", yes(a.is_airgapped()));
    let _ = writeln!(
        out,
        "  network interfaces other than lo: {}",
        if a.interfaces.is_empty() {
            "none".to_string()
        } else {
            a.interfaces.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "  wireless and Bluetooth devices: {}",
        if a.radios.is_empty() {
            "none".to_string()
        } else {
            a.radios.join(", ")
        }
    );
    let _ = writeln!(out, "core dumps off: {}", yes(h.core_dumps_off));
    let _ = writeln!(out, "process not dumpable: {}", yes(h.not_dumpable));
    let _ = writeln!(
        out,
        "memory locked (mlockall, no swap): {}",
        yes(h.memory_locked)
    );
    let names = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "proxy variables scrubbed from the environment: {}",
        names(&h.proxies_scrubbed)
    );
    let _ = writeln!(
        out,
        "proxy variables left in the environment: {}",
        names(&h.proxies_present)
    );
    Ok(Outcome {
        stdout: out,
        success: a.is_airgapped()
            && h.core_dumps_off
            && h.not_dumpable
            && h.memory_locked
            && h.proxies_present.is_empty(),
    })
}
