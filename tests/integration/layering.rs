//! The shape of `src/`, held to the house rules: imports point one way down the layers (no
//! circle between top-level modules, no module importing one on its own floor or above it), no
//! two files import each other (except a SIMD twin nested in its scalar module), no source file
//! over 500 lines, and the import graph in `docs/architecture.md` is the code's.
//!
//! Imports are read from the source text: `use` trees and paths that start with `crate::`,
//! `super::`, `self::` or a module the file declares, outside comments, strings and
//! `#[cfg(test)]` modules (test-only files are not part of the graph).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, top to bottom: a module may import only modules on lower floors.
const FLOORS: &[(&str, &[&str])] = &[
    ("entry point", &["main"]),
    ("commands", &["commands"]),
    ("command line", &["cli"]),
    ("doors", &["intake"]),
    ("assembly", &["app"]),
    ("configuration", &["config"]),
    ("pipeline", &["worker"]),
    (
        "engine and CPU services",
        &["engine", "mockup", "prepress", "fetch", "output", "webhook"],
    ),
    ("job contract", &["job"]),
    (
        "ground floor",
        &[
            "s3",
            "metrics",
            "encode",
            "backoff",
            "shutdown",
            "telemetry",
            "memory",
        ],
    ),
    (
        "the address guard, below the ground floor's S3 clients",
        &["net"],
    ),
    ("ground floor, below the rest", &["error", "redact"]),
];

/// Longest source file, in lines.
const MAX_LINES: usize = 500;

/// Where the import graph is drawn for readers.
const GRAPH_DOC: &str = "docs/architecture.md";
const GRAPH_START: &str = "<!-- import-graph:start -->";
const GRAPH_END: &str = "<!-- import-graph:end -->";

/// A module path from the crate root (`["engine", "thread", "handle"]`); the root is empty.
type ModPath = Vec<String>;

struct SourceTree {
    /// Every module file of the crate (test-only files excluded), by module path.
    files: BTreeMap<ModPath, PathBuf>,
    /// Module -> the modules it imports.
    imports: BTreeMap<ModPath, BTreeSet<ModPath>>,
    /// Children declared under `#[cfg(target_arch = ...)]`: a SIMD twin of its parent.
    simd_twins: BTreeSet<ModPath>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        let last = parts.pop().expect("checked");
        if last == "main" && parts.is_empty() {
            parts.push("main".to_owned());
        }
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments, string and character literals, and `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(raw) = rest.strip_prefix("r#\"") {
            i += 3 + raw.find("\"#").map_or(raw.len(), |e| e + 2);
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if let Some(len) = char_literal(rest) {
            i += len;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    without_test_modules(&out)
}

/// The length of a character literal at the start of `s` (not a lifetime).
fn char_literal(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'\'') {
        return None;
    }
    if b.get(1) == Some(&b'\\') {
        return s[2..].find('\'').map(|e| e + 3);
    }
    let c = s[1..].chars().next()?;
    (s[1 + c.len_utf8()..].starts_with('\'')).then_some(2 + c.len_utf8())
}

fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let item_vis = item
            .strip_prefix("pub(crate) ")
            .or_else(|| item.strip_prefix("pub(super) "))
            .or_else(|| item.strip_prefix("pub "))
            .unwrap_or(item);
        let is_module = item_vis.starts_with("mod ");
        let end = match (is_module, item.find(['{', ';'])) {
            (true, Some(open)) if item.as_bytes()[open] == b'{' => {
                let mut depth = 0usize;
                let mut close = item.len();
                for (k, c) in item.char_indices().skip(open) {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                close
            }
            (true, Some(semi)) => semi + 1,
            _ => 0,
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a `use` tree names (`a::{b, c::{d, e as f}}` -> `a::b`, `a::c::d`, `a::c::e`).
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default();
        return vec![path.replace(' ', "")];
    };
    let Some(close) = tree.rfind('}') else {
        return Vec::new();
    };
    let prefix = tree[..open].replace(' ', "");
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, open + 1);
    for (k, c) in tree.char_indices().take(close).skip(open + 1) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&tree[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items.push(&tree[start..close]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .flat_map(|i| {
            expand_use(i)
                .into_iter()
                .map(|p| format!("{prefix}{p}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The module file a path names, from module `from` that declares `children`.
fn resolve(
    files: &BTreeMap<ModPath, PathBuf>,
    from: &ModPath,
    children: &BTreeSet<String>,
    path: &str,
) -> Option<ModPath> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (ModPath, &[&str]) = match segs.first().copied()? {
        // `main.rs` reaches the library by its crate name.
        "crate" | "merchgen" => (Vec::new(), &segs[1..]),
        "self" => (from.clone(), &segs[1..]),
        "super" => {
            let ups = segs.iter().take_while(|s| **s == "super").count();
            let keep = from.len().checked_sub(ups)?;
            (from[..keep].to_vec(), &segs[ups..])
        }
        child if children.contains(child) => (from.clone(), &segs[..]),
        _ => return None,
    };
    let mut best = files.contains_key(&base).then(|| base.clone());
    for seg in rest {
        base.push((*seg).to_owned());
        if files.contains_key(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best
}

fn identifier_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) || (i > 0 && (word(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut j = i;
        loop {
            while j < bytes.len() && word(bytes[j]) {
                j += 1;
            }
            if code[j..].starts_with("::") && bytes.get(j + 2).is_some_and(|c| word(*c)) {
                j += 2;
            } else {
                break;
            }
        }
        if code[i..j].contains("::") {
            paths.push(code[i..j].to_owned());
        }
        i = j.max(i + 1);
    }
    paths
}

impl SourceTree {
    fn read() -> SourceTree {
        let src = src_dir();
        let mut all = Vec::new();
        rust_files(&src, &mut all);
        let codes: BTreeMap<ModPath, String> = all
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).expect("a readable source file");
                (module_path(&src, f), code_of(&text))
            })
            .collect();
        // Files declared only under `#[cfg(test)]` are tests, not part of the house.
        let declared: BTreeSet<ModPath> = codes
            .iter()
            .flat_map(|(m, code)| {
                declared_children(code)
                    .into_iter()
                    .map(move |c| child(m, &c))
            })
            .collect();
        let files: BTreeMap<ModPath, PathBuf> = all
            .iter()
            .map(|f| (module_path(&src, f), f.clone()))
            .filter(|(m, _)| m.is_empty() || m == &["main"] || declared.contains(m))
            .collect();
        let mut imports = BTreeMap::new();
        let mut simd_twins = BTreeSet::new();
        for (module, code) in &codes {
            if !files.contains_key(module) {
                continue;
            }
            let children: BTreeSet<String> = declared_children(code).into_iter().collect();
            for twin in simd_children(code) {
                simd_twins.insert(child(module, &twin));
            }
            let mut paths: Vec<String> = Vec::new();
            let mut rest = code.as_str();
            while let Some(at) = find_word(rest, "use") {
                let tail = &rest[at + 3..];
                let end = tail.find(';').unwrap_or(tail.len());
                paths.extend(expand_use(&tail[..end]));
                rest = &tail[end..];
            }
            paths.extend(identifier_paths(code));
            let targets: BTreeSet<ModPath> = paths
                .iter()
                .filter_map(|p| resolve(&files, module, &children, p))
                .filter(|t| t != module)
                .collect();
            imports.insert(module.clone(), targets);
        }
        SourceTree {
            files,
            imports,
            simd_twins,
        }
    }

    /// Top-level module -> the top-level modules it imports (with how many file imports).
    fn top_level(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut graph: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (from, targets) in &self.imports {
            let Some(a) = from.first() else { continue };
            for to in targets {
                let Some(b) = to.first() else { continue };
                if a != b {
                    *graph
                        .entry(a.clone())
                        .or_default()
                        .entry(b.clone())
                        .or_default() += 1;
                }
            }
        }
        graph
    }
}

fn child(parent: &ModPath, name: &str) -> ModPath {
    let mut m = parent.clone();
    m.push(name.to_owned());
    m
}

/// `at` where `word` starts as a whole word in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let at = from + at;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Modules a file declares with `mod name;`.
fn declared_children(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "mod") {
        let tail = rest[at + 3..].trim_start();
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if tail[name.len()..].trim_start().starts_with(';') && !name.is_empty() {
            found.push(name);
        }
        rest = &rest[at + 3..];
    }
    found
}

/// Modules declared right after a `#[cfg(target_arch = ...)]`.
fn simd_children(code: &str) -> Vec<String> {
    code.match_indices("#[cfg(target_arch")
        .filter_map(|(at, _)| {
            let after = &code[at..];
            let item = after[after.find(']')? + 1..].trim_start();
            let item = item.strip_prefix("pub ").unwrap_or(item);
            let name = item.strip_prefix("mod ")?;
            Some(
                name.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            )
        })
        .collect()
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, members)| members.contains(&module))
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "lib".to_owned()
    } else {
        m.join("/")
    }
}

/// The top-level import graph, floor by floor, as `docs/architecture.md` shows it.
fn graph_text(tree: &SourceTree) -> String {
    let graph = tree.top_level();
    let mut out = String::new();
    for (floor, members) in FLOORS {
        out.push_str(&format!("{floor}:\n"));
        for m in *members {
            let targets: Vec<String> = graph
                .get(*m)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            let arrow = if targets.is_empty() {
                "imports nothing of merchgen's".to_owned()
            } else {
                format!("-> {}", targets.join(", "))
            };
            out.push_str(&format!("  {m} {arrow}\n"));
        }
    }
    out
}

#[test]
fn every_top_level_module_has_a_floor() {
    let tree = SourceTree::read();
    let missing: Vec<String> = tree
        .files
        .keys()
        .filter_map(|m| m.first())
        .filter(|m| floor_of(m).is_none())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        missing.is_empty(),
        "give these top-level modules a floor in FLOORS (and in docs/architecture.md): {missing:?}"
    );
}

#[test]
fn imports_point_only_down_the_floors() {
    let tree = SourceTree::read();
    let mut wrong = Vec::new();
    for (a, targets) in tree.top_level() {
        for b in targets.keys() {
            if let (Some(fa), Some(fb)) = (floor_of(&a), floor_of(b)) {
                if fa >= fb {
                    let files: Vec<String> = tree
                        .imports
                        .iter()
                        .filter(|(f, t)| {
                            f.first() == Some(&a) && t.iter().any(|x| x.first() == Some(b))
                        })
                        .map(|(f, _)| name(f))
                        .collect();
                    wrong.push(format!("{a} -> {b} (from {})", files.join(", ")));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_circle_between_top_level_modules() {
    let graph = SourceTree::read().top_level();
    // Every module reachable from itself is on a circle.
    let mut on_circles = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].keys().collect();
        while let Some(m) = stack.pop() {
            if seen.insert(m.clone()) {
                if let Some(next) = graph.get(m) {
                    stack.extend(next.keys());
                }
            }
        }
        if seen.contains(start) {
            on_circles.push(start.clone());
        }
    }
    assert!(
        on_circles.is_empty(),
        "top-level modules on an import circle: {on_circles:?}"
    );
}

#[test]
fn no_two_files_import_each_other_except_a_nested_simd_twin() {
    let tree = SourceTree::read();
    let mut pairs = Vec::new();
    for (a, targets) in &tree.imports {
        for b in targets.iter().filter(|b| a < *b) {
            let mutual = tree.imports.get(b).is_some_and(|t| t.contains(a));
            let twin = tree.simd_twins.contains(b) && b[..b.len() - 1] == a[..];
            if mutual && !twin {
                pairs.push(format!("{} <-> {}", name(a), name(b)));
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "files that import each other:\n{}",
        pairs.join("\n")
    );
}

#[test]
fn no_source_file_is_over_500_lines() {
    let tree = SourceTree::read();
    let long: Vec<String> = tree
        .files
        .values()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these along their seams: {long:?}");
}

#[test]
fn the_import_graph_in_the_docs_is_the_codes() {
    let tree = SourceTree::read();
    let drawn = graph_text(&tree);
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GRAPH_DOC);
    let doc = std::fs::read_to_string(&doc_path).expect("docs/architecture.md exists");
    let start = doc.find(GRAPH_START).expect("the graph's start marker") + GRAPH_START.len();
    let end = doc.find(GRAPH_END).expect("the graph's end marker");
    let block = format!("\n```text\n{drawn}```\n");
    if doc[start..end] != block {
        if std::env::var_os("MERCHGEN_UPDATE_IMPORT_GRAPH").is_some() {
            let updated = format!("{}{block}{}", &doc[..start], &doc[end..]);
            std::fs::write(&doc_path, updated).expect("docs/architecture.md is writable");
            return;
        }
        panic!(
            "{GRAPH_DOC} shows another import graph; the code's is below (rerun with \
             MERCHGEN_UPDATE_IMPORT_GRAPH=1 to write it there):\n{drawn}"
        );
    }
}

#[test]
fn use_trees_and_paths_are_read_as_the_compiler_reads_them() {
    assert_eq!(
        expand_use("crate::a::{b, c::{d, e as f}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
    assert_eq!(
        identifier_paths("let x = super::y::z(w::v); a.b::<T>()"),
        ["super::y::z", "w::v"]
    );
    let code = code_of("use a::b; // use c::d;\nconst S: &str = \"use e::f;\";\n#[cfg(test)]\nmod tests { use g::h; }\nlet c = '{';\n#[cfg(test)]\npub(crate) mod more { use i::j; }");
    assert!(code.contains("a::b") && !code.contains("c::d") && !code.contains("e::f"));
    assert!(!code.contains("g::h") && !code.contains("'{'"), "{code}");
    assert!(!code.contains("i::j"), "{code}");
    assert_eq!(
        declared_children("pub mod a;\nmod b;\nmod c { }"),
        ["a", "b"]
    );
    assert_eq!(
        simd_children("#[cfg(target_arch = \"x86_64\")]\nmod avx2;"),
        ["avx2"]
    );
}
