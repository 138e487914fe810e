//! The pure core does no I/O (`make lint` runs this test): src/tuf, src/ceremony, src/transcript
//! and src/transparency must not use files, processes, the environment, the network or the host
//! clock, nor import an edge (the driver, the signer, transport, the terminal UI, the command
//! line, the system checks, folders, the configuration). Only the code before a file's
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
];

/// Calls that read the host clock.
const FORBIDDEN_CALLS: &[&str] = &[
    "SystemTime::now",
    "OffsetDateTime::now_utc",
    "OffsetDateTime::now_local",
    "Instant::now",
];

/// Known exceptions: (file, forbidden item, why it is still there).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "src/transcript/file.rs",
        "std::fs",
        "the transcript file (create-exclusive, append with fsync, torn-tail repair) is the \
         transcript's file edge, kept beside its format; it moves into the driver next",
    ),
    (
        "src/transcript/file.rs",
        "crate::signer",
        "appends seal signatures made through the Signer trait; moves with the file edge",
    ),
    (
        "src/transcript/seal.rs",
        "crate::signer",
        "the seal is signed through the Signer trait; to become statement bytes out, signature in",
    ),
    (
        "src/transparency/note.rs",
        "crate::signer",
        "checkpoints are signed through the Signer trait; to become note bytes out, signature in",
    ),
    (
        "src/transcript/display.rs",
        "crate::transport",
        "re-exports hex_groups and pgp_words from transport::qr (one spelling of a digest read \
         aloud); they move into the core",
    ),
];

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
    let found = scan(root);
    let mut problems = Vec::new();
    for v in &found {
        if !ALLOWED
            .iter()
            .any(|(f, item, _)| *f == v.file && *item == v.item)
        {
            problems.push(format!(
                "{}:{}: the pure core uses {} (I/O, the host clock or an edge); move it to the driver or an edge module",
                v.file, v.line, v.item
            ));
        }
    }
    for (f, item, _) in ALLOWED {
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
    ] {
        let tmp = tree_with("src/tuf/leak.rs", code);
        let e = check(tmp.path()).expect_err(code);
        assert!(
            e.contains("src/tuf/leak.rs:") && e.contains(item),
            "{code}: {e}"
        );
    }
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
    let tmp = tree_with("src/transparency/note.rs", "pub fn f() {}\n");
    let e = check(tmp.path()).unwrap_err();
    assert!(
        e.contains("src/transparency/note.rs: no longer uses crate::signer"),
        "{e}"
    );
}
