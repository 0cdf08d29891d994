//! The layers of `src/` (docs/ARCHITECTURE.md): every module imports only from layers below
//! its own, so data flows one way. A source scan, no compiler needed: it fails when a
//! module names `crate::X` for an `X` above it, when a file of src/ or tests/ grows past
//! 600 lines, when library code reads the environment, or when clap is used outside the
//! CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may import from any module listed before it (a module within a
/// layer may use the ones before it in that layer), never from one after it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["error", "userfile", "schema", "redact", "digest"],
    ),
    ("sources", &["ingest", "client", "telemetry", "sim"]),
    ("metrics", &["metrics"]),
    ("store", &["store", "catalog"]),
    (
        "producers",
        &[
            "analyze", "import", "load", "record", "recover", "demo", "sweep",
        ],
    ),
    ("report", &["report"]),
    ("derive", &["derive"]),
    ("cli", &["cli"]),
];

/// Files that may read the environment outside `cli/`, and why.
const ENV_ALLOWED: &[(&str, &str)] = &[(
    "store/atomic.rs",
    "the crash hook BENCHKEEP_CRASH_AT, read only in debug builds for the fault tests",
)];

fn rank(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .flat_map(|(_, mods)| mods.iter())
        .position(|m| *m == module)
}

fn layer_of(module: &str) -> &'static str {
    LAYERS
        .iter()
        .find(|(_, mods)| mods.contains(&module))
        .map_or("?", |(name, _)| name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source lines without comments (doc links to higher layers are not imports).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = l.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

fn src_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn top_module(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

#[test]
fn every_module_has_a_layer() {
    for (rel, _) in src_files() {
        let m = top_module(&rel);
        if m == "lib" || m == "main" {
            continue;
        }
        assert!(
            rank(m).is_some(),
            "src/{rel}: module `{m}` is in no layer; add it to LAYERS here and to docs/ARCHITECTURE.md"
        );
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let mut bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rel, text) in src_files() {
        let from = top_module(&rel);
        let Some(from_rank) = rank(from) else {
            continue;
        };
        for (line, code) in code_lines(&text) {
            for part in code.split("crate::").skip(1) {
                let to: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let Some(to_rank) = rank(&to) else { continue };
                if to_rank > from_rank {
                    bad.entry(format!("{from} ({})", layer_of(from)))
                        .or_default()
                        .push(format!("src/{rel}:{line} imports {to} ({})", layer_of(&to)));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "upward imports (a module may only use the layers below it):\n{}",
        bad.values()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut test_files = Vec::new();
    rust_files(&tests, &mut test_files);
    let test_files = test_files.into_iter().map(|p| {
        let rel = p
            .strip_prefix(tests.parent().unwrap())
            .unwrap()
            .display()
            .to_string();
        (rel, std::fs::read_to_string(&p).unwrap())
    });
    let long: Vec<String> = src_files()
        .into_iter()
        .map(|(rel, t)| (format!("src/{rel}"), t))
        .chain(test_files)
        .filter(|(_, t)| t.lines().count() > 600)
        .map(|(rel, t)| format!("{rel}: {} lines", t.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "split these along their seams:\n{}",
        long.join("\n")
    );
}

#[test]
fn only_the_cli_reads_the_environment_or_uses_clap() {
    let mut bad = Vec::new();
    for (rel, text) in src_files() {
        if rel.starts_with("cli/") || rel == "main.rs" {
            continue;
        }
        let env_ok = ENV_ALLOWED.iter().any(|(f, _)| *f == rel);
        for (line, code) in code_lines(&text) {
            if !env_ok && (code.contains("env::var") || code.contains("env::vars")) {
                bad.push(format!(
                    "src/{rel}:{line}: reads the environment: {}",
                    code.trim()
                ));
            }
            if code.contains("clap::") || code.contains("use clap") {
                bad.push(format!("src/{rel}:{line}: uses clap: {}", code.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "library code takes its settings from the CLI:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_catches_an_upward_import() {
    // The scanner itself: a made-up store file naming the CLI is caught.
    let code = "use crate::cli::print_out; // not a comment-only line";
    let found: Vec<String> = code_lines(code)
        .flat_map(|(_, c)| {
            c.split("crate::")
                .skip(1)
                .map(|p| p.chars().take_while(|c| c.is_alphanumeric()).collect())
                .collect::<Vec<String>>()
        })
        .collect();
    assert_eq!(found, ["cli"]);
    assert!(rank("cli") > rank("store"));
    assert_eq!(code_lines("//! see [`crate::cli`]").count(), 0);
}
