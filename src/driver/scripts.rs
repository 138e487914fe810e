//! The ceremony scripts shipped in the binary.

/// Names of the scripts shipped in the binary, in the order a registry usually needs them.
pub const SHIPPED_SCRIPTS: [&str; 13] = [
    "bootstrap-root",
    "rotate-root-keys",
    "refresh-expiry",
    "rotate-online-keys",
    "rotate-targets-keys",
    "delegate-claimed-projects",
    "sign-intoto-layout",
    "publish-targets",
    "bootstrap-rstuf",
    "rotate-rstuf-root-keys",
    "refresh-rstuf-expiry",
    "rotate-rstuf-online-key",
    "sign-tuf-on-ci-event",
];

/// The scripts shipped in the binary (the appliance has no source tree).
pub fn shipped_script(name: &str) -> Option<&'static str> {
    Some(match name {
        "bootstrap-root" => include_str!("../../ceremony-scripts/bootstrap-root.toml"),
        "rotate-root-keys" => include_str!("../../ceremony-scripts/rotate-root-keys.toml"),
        "rotate-targets-keys" => include_str!("../../ceremony-scripts/rotate-targets-keys.toml"),
        "refresh-expiry" => include_str!("../../ceremony-scripts/refresh-expiry.toml"),
        "rotate-online-keys" => include_str!("../../ceremony-scripts/rotate-online-keys.toml"),
        "delegate-claimed-projects" => {
            include_str!("../../ceremony-scripts/delegate-claimed-projects.toml")
        }
        "sign-intoto-layout" => include_str!("../../ceremony-scripts/sign-intoto-layout.toml"),
        "publish-targets" => include_str!("../../ceremony-scripts/publish-targets.toml"),
        "bootstrap-rstuf" => include_str!("../../ceremony-scripts/bootstrap-rstuf.toml"),
        "rotate-rstuf-root-keys" => {
            include_str!("../../ceremony-scripts/rotate-rstuf-root-keys.toml")
        }
        "refresh-rstuf-expiry" => include_str!("../../ceremony-scripts/refresh-rstuf-expiry.toml"),
        "rotate-rstuf-online-key" => {
            include_str!("../../ceremony-scripts/rotate-rstuf-online-key.toml")
        }
        "sign-tuf-on-ci-event" => include_str!("../../ceremony-scripts/sign-tuf-on-ci-event.toml"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{SHIPPED_SCRIPTS, shipped_script};

    /// One identifier per key: the screens name a key by its key id, so no script tells the
    /// room to compare a "fingerprint" the screen does not show (before: publish-targets and
    /// rotate-rstuf-root-keys still did).
    #[test]
    fn no_script_promises_what_the_screens_do_not_do() {
        for name in SHIPPED_SCRIPTS {
            let text = shipped_script(name).unwrap_or_else(|| panic!("{name} is shipped"));
            assert!(
                !text.to_lowercase().contains("fingerprint"),
                "{name}: a key is named by its key id on every screen"
            );
            // Signing does not stop by itself once the thresholds are met: the administrator
            // closes it (before: "Signing stops when both are met").
            assert!(
                !text.contains("Signing stops when"),
                "{name}: signing is closed by the administrator"
            );
        }
    }
}
