//! The pure core does no I/O (`make lint` runs this test): src/tuf, src/ceremony (the engine's
//! phase and kind modules in src/ceremony/engine/ included), src/transcript and
//! src/transparency must not use files, processes, the environment, the network, the host clock,
//! the OS random source, standard input or output, nor import an edge (the driver, the signer,
//! transport, the terminal UI, the command line, the system checks, folders, the configuration,
//! PIN reading, failpoints, memory hints) or a crate that reaches the system or the terminal
//! directly (rustix, cryptoki, ratatui, crossterm, clap). A path climbing out of the core with
//! `super::` is checked as the `crate::` path it names. Only the code before a file's
//! `#[cfg(test)]` is checked, and none of a test module's own file (`#![cfg(test)]`): tests may
//! read fixtures and make software keys.
//!
//! Known exceptions are listed in [`ALLOWED`] with the reason; an exception that is no longer
//! needed fails the check too, so the list only shrinks.

use std::path::{Path, PathBuf};

/// The folders of the pure core.
const CORE: &[&str] = &[
    "src/tuf",
    "src/ceremony",
    "src/transcript",
    "src/transparency",
];

/// Paths the core must not name.
const FORBIDDEN_PATHS: &[&str] = &[
    "std::fs",
    "std::process",
    "std::env",
    "std::net",
    "crate::driver",
    "crate::signer",
    "crate::transport",
    "crate::tui",
    "crate::cli",
    "crate::system",
    "crate::folder",
    "crate::config",
    // PINs from standard input or the terminal, failpoints (they read the environment and write
    // their log), kernel memory hints: edges too.
    "crate::pin",
    "crate::fault",
    "crate::memory",
    // Crates that reach the system or the terminal directly: system calls, PKCS#11 modules,
    // the terminal UI and the command line.
    "rustix",
    "cryptoki",
    "cryptoki_sys",
    "ratatui",
    "crossterm",
    "clap",
    "std::os",
    "io::stdin",
    "io::stdout",
    "io::stderr",
];

/// Calls that read the host clock.
const FORBIDDEN_CALLS: &[&str] = &[
    "SystemTime::now",
    "OffsetDateTime::now_utc",
    "OffsetDateTime::now_local",
    "Instant::now",
    "UtcDateTime::now",
    "OsRng",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
];

/// Known exceptions: (file, forbidden item, why it is still there). None are left: the core
/// does no I/O and imports no edge.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// One use of a forbidden item.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    item: String,
}

/// The code of a file that is checked: everything before the first `#[cfg(test)]` line (a test
/// module's own file starts with `#![cfg(test)]`: none of it), with
/// comments removed (line by line: `//` to the end of the line, outside string literals is
/// close enough for this code base, whose strings do not hold these paths).
fn checked_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") || t.starts_with("#![cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Whether `code` names `path` (e.g. `std::fs`), also inside a brace group
/// (`use std::{fs, io}`, `use crate::{signer::Signer, tuf}`).
fn names(code: &str, path: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = code[from..].find(path) {
        let start = from + at;
        let end = start + path.len();
        let before_ok = code[..start].chars().next_back().is_none_or(|c| !ident(c));
        let after_ok = code[end..].chars().next().is_none_or(|c| !ident(c));
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    // Brace groups: `std::{ ... fs ... }`.
    let (prefix, last) = path.rsplit_once("::").unwrap_or(("", path));
    let open = format!("{prefix}::{{");
    let mut from = 0;
    while let Some(at) = code[from..].find(&open) {
        let start = from + at + open.len();
        let mut depth = 1;
        let mut end = start;
        for (i, c) in code[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let group = &code[start..end.max(start)];
        let top_level = group
            .split([',', '{', '}'])
            .map(|item| item.trim().split("::").next().unwrap_or("").trim())
            .any(|first| first == last);
        if top_level {
            return true;
        }
        from = start;
    }
    false
}

/// The module path of a source file (`src/ceremony/engine/keys.rs` -> `ceremony::engine::keys`,
/// `src/tuf/mod.rs` -> `tuf`).
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// `code` with each path that starts with `super::` written from the crate root
/// (`super::super::driver` in `src/tuf/x.rs` is `crate::driver`), so that climbing out of the
/// core by `super` is checked like naming `crate::` directly.
fn resolve_super(code: &str, module: &[String]) -> String {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("super::") {
        let before = &rest[..at];
        let preceded = before
            .chars()
            .next_back()
            .is_some_and(|c| ident(c) || c == ':');
        out.push_str(before);
        rest = &rest[at..];
        if preceded {
            out.push_str("super::");
            rest = &rest["super::".len()..];
            continue;
        }
        let mut n = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            n += 1;
            rest = r;
        }
        let keep = module.len().saturating_sub(n);
        out.push_str("crate::");
        for m in &module[..keep] {
            out.push_str(m);
            out.push_str("::");
        }
    }
    out.push_str(rest);
    out
}

/// Every forbidden use in the core under `root`.
fn scan(root: &Path) -> Vec<Violation> {
    let mut files = Vec::new();
    for dir in CORE {
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        // Brace groups of `use` may span lines: check each statement joined, reported at its
        // first line.
        let lines = checked_lines(&text);
        let mut i = 0;
        while i < lines.len() {
            let (n, mut code) = lines[i].clone();
            if code.trim_start().starts_with("use ") || code.trim_start().starts_with("pub use ") {
                while !code.contains(';') && i + 1 < lines.len() {
                    i += 1;
                    code.push(' ');
                    code.push_str(&lines[i].1);
                }
            }
            let code = resolve_super(&code, &module_path(&rel));
            for item in FORBIDDEN_PATHS.iter().chain(FORBIDDEN_CALLS) {
                if names(&code, item) {
                    out.push(Violation {
                        file: rel.clone(),
                        line: n,
                        item: item.to_string(),
                    });
                }
            }
            i += 1;
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The check: violations not allowed, and allowed exceptions that no longer occur.
fn check(root: &Path) -> Result<(), String> {
    check_allowing(root, ALLOWED)
}

/// [`check`] with the exceptions `allowed`.
fn check_allowing(root: &Path, allowed: &[(&str, &str, &str)]) -> Result<(), String> {
    let found = scan(root);
    let mut problems = Vec::new();
    for v in &found {
        if !allowed
            .iter()
            .any(|(f, item, _)| *f == v.file && *item == v.item)
        {
            problems.push(format!(
                "{}:{}: the pure core uses {} (I/O, the host clock or an edge); move it to the driver or an edge module",
                v.file, v.line, v.item
            ));
        }
    }
    for (f, item, _) in allowed {
        if root.join(f).exists() && !found.iter().any(|v| v.file == *f && v.item == *item) {
            problems.push(format!(
                "{f}: no longer uses {item}: remove it from ALLOWED in tests/pure_core.rs"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn the_pure_core_does_no_io_and_imports_no_edge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(problems) = check(root) {
        panic!("{problems}");
    }
}

/// A copy of the core with one file changed, for the check's own tests.
fn tree_with(file: &str, text: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in CORE {
        let mut files = Vec::new();
        collect(&root.join(dir), &mut files);
        for f in files {
            let to = tmp.path().join(f.strip_prefix(root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&f, &to).unwrap();
        }
    }
    let to = tmp.path().join(file);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, text).unwrap();
    tmp
}

#[test]
fn the_check_fails_on_a_deliberate_violation() {
    for (code, item) in [
        (
            "pub fn f() -> Vec<u8> { std::fs::read(\"x\").unwrap() }\n",
            "std::fs",
        ),
        ("use std::{env, io};\n", "std::env"),
        (
            "use std::{\n    io,\n    process::Command,\n};\n",
            "std::process",
        ),
        (
            "pub fn t() -> time::OffsetDateTime { time::OffsetDateTime::now_utc() }\n",
            "OffsetDateTime::now_utc",
        ),
        (
            "pub fn t() { let _ = std::time::Instant::now(); }\n",
            "Instant::now",
        ),
        ("use crate::driver::Session;\n", "crate::driver"),
        (
            "use crate::{signer::Signer, tuf::key::Key};\n",
            "crate::signer",
        ),
        ("pub use crate::cli::Outcome;\n", "crate::cli"),
        ("use rustix::fs::open;\n", "rustix"),
        (
            "pub fn k() { let _ = cryptoki::context::Pkcs11::new(\"x\"); }\n",
            "cryptoki",
        ),
        ("use ratatui::Frame;\n", "ratatui"),
        ("use crate::pin::read_pin;\n", "crate::pin"),
        (
            "pub fn p() { crate::fault::point(\"x\"); }\n",
            "crate::fault",
        ),
        ("pub fn p() { println!(\"secret\"); }\n", "println!"),
        ("pub fn r() { let _ = std::io::stdin(); }\n", "io::stdin"),
        ("use std::os::unix::fs::OpenOptionsExt;\n", "std::os"),
        ("use super::super::driver::Session;\n", "crate::driver"),
    ] {
        let tmp = tree_with("src/tuf/leak.rs", code);
        let e = check(tmp.path()).expect_err(code);
        assert!(
            e.contains("src/tuf/leak.rs:") && e.contains(item),
            "{code}: {e}"
        );
    }
    // The engine's phase and kind modules (src/ceremony/engine/) are checked too, `super`
    // chains resolved from their depth.
    for (code, item) in [
        ("use crate::driver::Session;\n", "crate::driver"),
        ("use super::super::super::tui::App;\n", "crate::tui"),
        (
            "use super::super::super::signer::{Signer, pkcs11};\n",
            "crate::signer",
        ),
    ] {
        let tmp = tree_with("src/ceremony/engine/leak.rs", code);
        let e = check(tmp.path()).expect_err(code);
        assert!(
            e.contains("src/ceremony/engine/leak.rs:") && e.contains(item),
            "{code}: {e}"
        );
    }
    // `super` within the core stays within the core.
    let tmp = tree_with(
        "src/ceremony/engine/fine.rs",
        "use super::super::script::Script;\nuse super::Engine;\n",
    );
    assert_eq!(check(tmp.path()), Ok(()));
    // The same code in the file's tests, or in a comment, is not checked.
    let tmp = tree_with(
        "src/ceremony/fine.rs",
        "// std::fs is not used here\npub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    use std::fs;\n}\n",
    );
    assert_eq!(check(tmp.path()), Ok(()));
    let tmp = tree_with(
        "src/ceremony/fine/tests.rs",
        "//! Tests.\n\n#![cfg(test)]\n\nuse std::fs;\n",
    );
    assert_eq!(check(tmp.path()), Ok(()));
    // Names that only look alike are not violations.
    let tmp = tree_with(
        "src/ceremony/fine.rs",
        "use crate::signers_list::X;\npub fn envelope() {}\n",
    );
    assert_eq!(check(tmp.path()), Ok(()));
}

#[test]
fn an_exception_that_is_no_longer_needed_fails_the_check() {
    // An exception for a use that is there holds; once the use is gone it fails.
    let added = (
        "src/transparency/note.rs",
        "crate::signer",
        "a use this test adds and then removes",
    );
    let allowed: Vec<_> = ALLOWED.iter().copied().chain([added]).collect();
    let tmp = tree_with(
        "src/transparency/note.rs",
        "use crate::signer::Signer;\npub fn f() {}\n",
    );
    assert_eq!(check_allowing(tmp.path(), &allowed), Ok(()));
    let tmp = tree_with("src/transparency/note.rs", "pub fn f() {}\n");
    let e = check_allowing(tmp.path(), &allowed).unwrap_err();
    assert!(
        e.contains("src/transparency/note.rs: no longer uses crate::signer"),
        "{e}"
    );
}
