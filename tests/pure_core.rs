//! The pure core does no I/O (`make lint` runs this test): src/tuf, src/ceremony (the engine's
//! phase and kind modules in src/ceremony/engine/ included), src/transcript and
//! src/transparency must not use files, processes, the environment, the network, the host clock,
//! the OS random source, standard input or output, nor import an edge (the driver, the signer,
//! transport, the terminal UI, the command line, the system checks, folders, the configuration,
//! PIN reading, failpoints, memory hints) or a crate that reaches the system or the terminal
//! directly (rustix, cryptoki, ratatui, crossterm, clap). A path climbing out of the core with
//! `super::` is checked as the `crate::` path it names.
//!
//! The check parses each file (syn) rather than matching text: every path is read through the
//! file's imports before it is matched, so `use std as s; s::fs::read(..)`, `use std::fs as f;`,
//! `extern crate std as s;`, a glob (`use std::*; fs::read(..)`) and paths written inside macro
//! arguments (`format!("{:?}", std::env::var("X"))`) are all found, and comments and strings
//! never match. Items marked `#[cfg(test)]` are not checked, nor a test module's own file
//! (`#![cfg(test)]`): tests may read fixtures and make software keys.
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
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    // The OS random source.
    "getrandom",
    "rand::thread_rng",
    "rand::rng",
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

/// Whether an item carries `#[cfg(test)]` (only a test build has it: not checked).
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The attributes of an item.
fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item;
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// What the names a file imports stand for: `use std::fs as f;` makes `f` stand for
/// `std::fs`, `use crate::{signer::Signer}` makes `Signer` stand for `crate::signer::Signer`,
/// `extern crate std as s;` makes `s` stand for `std`; a glob (`use std::*;`) may bring any name
/// of its prefix into scope. One table for the whole file (inline modules included): a name
/// imported anywhere in it counts everywhere, which errs on the side of reporting.
#[derive(Default)]
struct Names {
    module: Vec<String>,
    aliases: std::collections::BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

impl Names {
    /// A path as it is written (`leading`: it starts with `::`), written from the crate root
    /// or the external crate it names: `super::` and `self::` from the file's module, an
    /// imported first name through its import.
    fn resolve(&self, leading: bool, segs: &[String]) -> Vec<String> {
        let Some(first) = segs.first() else {
            return Vec::new();
        };
        if leading {
            return segs.to_vec();
        }
        match first.as_str() {
            "crate" => segs.to_vec(),
            "self" => {
                let mut out = vec!["crate".to_string()];
                out.extend(self.module.iter().cloned());
                out.extend(segs[1..].iter().cloned());
                out
            }
            "super" => {
                let n = segs.iter().take_while(|s| *s == "super").count();
                let keep = self.module.len().saturating_sub(n);
                let mut out = vec!["crate".to_string()];
                out.extend(self.module[..keep].iter().cloned());
                out.extend(segs[n..].iter().cloned());
                out
            }
            name => match self.aliases.get(name) {
                Some(to) => {
                    let mut out = to.clone();
                    out.extend(segs[1..].iter().cloned());
                    out
                }
                None => segs.to_vec(),
            },
        }
    }

    /// Every reading of a path: as resolved, and under each glob import (a glob may be where
    /// its first name comes from).
    fn readings(&self, leading: bool, segs: &[String]) -> Vec<Vec<String>> {
        let mut out = vec![self.resolve(leading, segs)];
        if !leading && segs.first().is_some_and(|f| !self.aliases.contains_key(f)) {
            for g in &self.globs {
                let mut p = g.clone();
                p.extend(segs.iter().cloned());
                out.push(p);
            }
        }
        out
    }

    /// Record a `use` tree under `prefix` (already resolved).
    fn add_use(&mut self, prefix: Vec<String>, leading: bool, tree: &syn::UseTree) {
        use syn::UseTree;
        let here = |segs: Vec<String>, names: &Names| {
            if prefix.is_empty() {
                names.resolve(leading, &segs)
            } else if segs.first().is_some_and(|s| s == "super") && prefix.len() > 1 {
                prefix[..prefix.len() - 1].to_vec()
            } else {
                let mut p = prefix.clone();
                p.extend(segs);
                p
            }
        };
        match tree {
            UseTree::Path(p) => {
                let next = here(vec![p.ident.to_string()], self);
                self.add_use(next, leading, &p.tree);
            }
            UseTree::Name(n) => {
                let name = n.ident.to_string();
                let full = if name == "self" {
                    prefix.clone()
                } else {
                    here(vec![name.clone()], self)
                };
                let key = if name == "self" {
                    prefix.last().cloned().unwrap_or_default()
                } else {
                    name
                };
                if !key.is_empty() && full.len() > 1 {
                    self.aliases.insert(key, full);
                }
            }
            UseTree::Rename(r) => {
                let full = if r.ident == "self" {
                    prefix.clone()
                } else {
                    here(vec![r.ident.to_string()], self)
                };
                if r.rename != "_" {
                    self.aliases.insert(r.rename.to_string(), full);
                }
            }
            UseTree::Glob(_) => {
                if !prefix.is_empty() {
                    self.globs.push(prefix.clone());
                }
            }
            UseTree::Group(g) => {
                for t in &g.items {
                    self.add_use(prefix.clone(), leading, t);
                }
            }
        }
    }

    /// The leaves of a `use` tree (the paths it imports, globs as their prefix), resolved.
    fn use_leaves(
        &self,
        prefix: Vec<String>,
        leading: bool,
        tree: &syn::UseTree,
        out: &mut Vec<Vec<String>>,
    ) {
        use syn::UseTree;
        let join = |seg: String| {
            if prefix.is_empty() {
                self.resolve(leading, &[seg])
            } else if seg == "super" && prefix.len() > 1 {
                prefix[..prefix.len() - 1].to_vec()
            } else {
                let mut p = prefix.clone();
                p.push(seg);
                p
            }
        };
        match tree {
            UseTree::Path(p) => self.use_leaves(join(p.ident.to_string()), leading, &p.tree, out),
            UseTree::Name(n) if n.ident == "self" => out.push(prefix),
            UseTree::Name(n) => out.push(join(n.ident.to_string())),
            UseTree::Rename(r) if r.ident == "self" => out.push(prefix),
            UseTree::Rename(r) => out.push(join(r.ident.to_string())),
            UseTree::Glob(_) => out.push(prefix),
            UseTree::Group(g) => {
                for t in &g.items {
                    self.use_leaves(prefix.clone(), leading, t, out);
                }
            }
        }
    }
}

/// Collects the imports of a file's non-test items.
struct Imports<'a>(&'a mut Names);

impl<'ast> syn::visit::Visit<'ast> for Imports<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test(item_attrs(item)) {
            return;
        }
        match item {
            syn::Item::Use(u) => self
                .0
                .add_use(Vec::new(), u.leading_colon.is_some(), &u.tree),
            syn::Item::ExternCrate(e) => {
                if let Some((_, rename)) = &e.rename {
                    self.0
                        .aliases
                        .insert(rename.to_string(), vec![e.ident.to_string()]);
                }
            }
            _ => syn::visit::visit_item(self, item),
        }
    }
}

/// Paths written in macro arguments (which syn leaves as tokens): each run of
/// `ident :: ident ...`, with whether it starts with `::`, at its first line.
fn token_paths(tokens: proc_macro2::TokenStream, out: &mut Vec<(bool, Vec<String>, usize)>) {
    use proc_macro2::{Spacing, TokenTree};
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let colons = |i: usize| {
        matches!((trees.get(i), trees.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
    };
    let mut i = 0;
    while i < trees.len() {
        match &trees[i] {
            TokenTree::Group(g) => {
                token_paths(g.stream(), out);
                i += 1;
            }
            TokenTree::Ident(_) | TokenTree::Punct(_) => {
                let leading = colons(i) && matches!(trees.get(i + 2), Some(TokenTree::Ident(_)));
                let mut j = if leading { i + 2 } else { i };
                let Some(TokenTree::Ident(first)) = trees.get(j) else {
                    i += 1;
                    continue;
                };
                let line = first.span().start().line;
                let mut segs = vec![first.to_string()];
                j += 1;
                while colons(j) {
                    match trees.get(j + 2) {
                        Some(TokenTree::Ident(id)) => {
                            segs.push(id.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                out.push((leading, segs, line));
                i = j.max(i + 1);
            }
            TokenTree::Literal(_) => i += 1,
        }
    }
}

/// Finds the forbidden paths, calls and macros in a file's non-test items.
struct Finder<'a> {
    names: &'a Names,
    file: &'a str,
    out: Vec<Violation>,
}

impl Finder<'_> {
    fn check(&mut self, leading: bool, segs: &[String], line: usize) {
        for p in self.names.readings(leading, segs) {
            for item in FORBIDDEN_PATHS {
                let f: Vec<&str> = item.split("::").collect();
                if p.len() >= f.len() && p.iter().zip(&f).all(|(a, b)| a == b) {
                    self.report(item, line);
                }
            }
            for item in FORBIDDEN_CALLS {
                let f: Vec<&str> = item.split("::").collect();
                if p.windows(f.len())
                    .any(|w| w.iter().zip(&f).all(|(a, b)| a == b))
                {
                    self.report(item, line);
                }
            }
        }
    }

    fn report(&mut self, item: &str, line: usize) {
        let v = Violation {
            file: self.file.to_string(),
            line,
            item: item.to_string(),
        };
        if !self.out.contains(&v) {
            self.out.push(v);
        }
    }
}

fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn line_of(path: &syn::Path) -> usize {
    path.segments
        .first()
        .map(|s| s.ident.span().start().line)
        .unwrap_or(0)
}

impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test(item_attrs(item)) {
            return;
        }
        match item {
            syn::Item::Use(u) => {
                let mut leaves = Vec::new();
                self.names
                    .use_leaves(Vec::new(), u.leading_colon.is_some(), &u.tree, &mut leaves);
                let line = u.use_token.span.start().line;
                for leaf in leaves {
                    self.check(true, &leaf, line);
                    // A glob or a leaf that is an ancestor of a forbidden path brings it in
                    // (`use std::*;` then `fs::read`): the uses are checked under the glob.
                }
            }
            syn::Item::ExternCrate(e) => {
                let line = e.extern_token.span.start().line;
                self.check(true, &[e.ident.to_string()], line);
            }
            _ => syn::visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Fn(f) => &f.attrs,
            syn::ImplItem::Const(c) => &c.attrs,
            syn::ImplItem::Type(t) => &t.attrs,
            syn::ImplItem::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_impl_item(self, item),
        };
        if !is_test(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.check(path.leading_colon.is_some(), &segments(path), line_of(path));
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let line = line_of(&mac.path);
        if let Some(last) = mac.path.segments.last() {
            let name = format!("{}!", last.ident);
            if FORBIDDEN_CALLS.contains(&name.as_str()) {
                self.report(&name, line);
            }
        }
        self.visit_path(&mac.path);
        let mut paths = Vec::new();
        token_paths(mac.tokens.clone(), &mut paths);
        for (leading, segs, line) in paths {
            self.check(leading, &segs, line);
        }
    }
}

/// The forbidden uses in one file of the core (`rel`: its path from the crate root).
fn scan_file(rel: &str, text: &str) -> Vec<Violation> {
    let file = match syn::parse_file(text) {
        Ok(f) => f,
        Err(e) => {
            return vec![Violation {
                file: rel.to_string(),
                line: e.span().start().line,
                item: format!("unparsable source ({e})"),
            }];
        }
    };
    if is_test(&file.attrs) {
        return Vec::new();
    }
    let mut names = Names {
        module: module_path(rel),
        ..Names::default()
    };
    // Twice: an import may name another that comes later in the file.
    for _ in 0..2 {
        syn::visit::Visit::visit_file(&mut Imports(&mut names), &file);
    }
    let mut finder = Finder {
        names: &names,
        file: rel,
        out: Vec::new(),
    };
    syn::visit::Visit::visit_file(&mut finder, &file);
    finder.out
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
        out.extend(scan_file(&rel, &text));
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

/// The check of one file's text, as if it were at `rel` in the core (for the check's own
/// tests: the whole core need not be copied for each case).
fn check_file(rel: &str, text: &str) -> Result<(), String> {
    let problems: Vec<String> = scan_file(rel, text)
        .into_iter()
        .filter(|v| {
            !ALLOWED
                .iter()
                .any(|(f, item, _)| *f == v.file && *item == v.item)
        })
        .map(|v| format!("{}:{}: the pure core uses {}", v.file, v.line, v.item))
        .collect();
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
        // Imports under another name, globs, `extern crate` renames and paths inside macro
        // arguments: what text matching let through.
        (
            "use std as s;\npub fn f() -> Vec<u8> { s::fs::read(\"x\").unwrap_or_default() }\n",
            "std::fs",
        ),
        (
            "use std::fs as f;\npub fn g() { let _ = f::read(\"x\"); }\n",
            "std::fs",
        ),
        (
            "use std::io;\npub fn r() { let _ = io::stdin(); }\n",
            "std::io::stdin",
        ),
        (
            "use std::*;\npub fn g() { let _ = env::var(\"HOME\"); }\n",
            "std::env",
        ),
        (
            "extern crate std as s;\npub fn g() { let _ = s::process::id(); }\n",
            "std::process",
        ),
        (
            "pub fn g() -> String { format!(\"{:?}\", ::std::env::var(\"HOME\")) }\n",
            "std::env",
        ),
        (
            "use crate as c;\npub fn g() { c::driver::x(); }\n",
            "crate::driver",
        ),
        (
            "use std::time::SystemTime as Clock;\npub fn t() { let _ = Clock::now(); }\n",
            "SystemTime::now",
        ),
        (
            "use std::time;\npub fn t() { let _ = time::Instant::now(); }\n",
            "Instant::now",
        ),
        ("pub fn p() { std::println!(\"secret\"); }\n", "println!"),
        (
            "pub fn k() -> u8 { 0 }\n#[cfg(test)]\nmod tests {}\npub fn later() { let _ = std::fs::read(\"x\"); }\n",
            "std::fs",
        ),
        ("use std::os::unix::fs::OpenOptionsExt;\n", "std::os"),
        ("use super::super::driver::Session;\n", "crate::driver"),
    ] {
        let e = check_file("src/tuf/leak.rs", code).expect_err(code);
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
        let e = check_file("src/ceremony/engine/leak.rs", code).expect_err(code);
        assert!(
            e.contains("src/ceremony/engine/leak.rs:") && e.contains(item),
            "{code}: {e}"
        );
    }
    // `super` within the core stays within the core.
    assert_eq!(
        check_file(
            "src/ceremony/engine/fine.rs",
            "use super::super::script::Script;\nuse super::Engine;\n",
        ),
        Ok(())
    );
    // The same code in the file's tests, in a comment or in a string is not checked.
    assert_eq!(
        check_file(
            "src/ceremony/fine.rs",
            "pub const HELP: &str = \"std::fs::read is not called here\";\n",
        ),
        Ok(())
    );
    assert_eq!(
        check_file(
            "src/ceremony/fine.rs",
            "pub fn f() {}\n#[cfg(test)]\nfn helper() { let _ = std::fs::read(\"x\"); }\n",
        ),
        Ok(())
    );
    assert_eq!(
        check_file(
            "src/ceremony/fine.rs",
            "// std::fs is not used here\npub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    use std::fs;\n}\n",
        ),
        Ok(())
    );
    assert_eq!(
        check_file(
            "src/ceremony/fine/tests.rs",
            "//! Tests.\n\n#![cfg(test)]\n\nuse std::fs;\n",
        ),
        Ok(())
    );
    // Names that only look alike are not violations.
    assert_eq!(
        check_file(
            "src/ceremony/fine.rs",
            "use crate::signers_list::X;\npub fn envelope() {}\n",
        ),
        Ok(())
    );
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
