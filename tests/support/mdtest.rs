//! The docs harness: every command example in README.md and docs/*.md runs, in document
//! order, as one bash session per file, against two simulators, and its output is compared
//! where the document shows it. The conventions (also in docs/guide.md, "How the examples
//! are tested"):
//!
//! - ```` ```console ````: `$ ` lines are commands (a line ending in `\` continues), the
//!   lines after a command are its expected output (stdout and stderr together). No lines
//!   after a command: its output is not checked. In expected output, `[..]` matches any
//!   text within a line and a line `...` matches any number of lines.
//! - ```` ```sh ```` / ```` ```bash ````: every command runs; its output is not checked.
//! - Every command must exit 0 (write `; echo $?` to show a failing one's code).
//! - ```` ```text ```` / ```` ```json ````: not commands (layouts, synopses, output shapes).
//! - `<!-- skip: REASON -->` on the line before a block: not run; the reason is required.
//!   Any other block (no info string, python, sql, rust, ...) without it fails the test.
//! - `<!-- setup ... -->`: a hidden sh block (commands that only prepare a later example).
//! - `<!-- output: numbers vary -->` before a console block: numbers in its output and in
//!   the expected text match whatever number (and runs of spaces count as one).
//! - Redacted on both sides before comparing: dates (`[DATE]`), times of day (`[TIME]`),
//!   the session's temp directory (removed, so paths read `benchmarks/...`).
//! - Rewritten in commands: `cargo run --release -- ` runs the test binary,
//!   `http://127.0.0.1:8000` is the vLLM-like simulator's address, `http://127.0.0.1:11434`
//!   the Ollama-like one's (both started on free ports with `--no-delay`, serving
//!   `google/gemma-3-4b-it` and `gemma3:4b`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How a block runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Console,
    Script,
    Skip(String),
    Illustration,
}

/// One command to run, with where it came from and what it should print.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    pub cmd: String,
    pub expected: Option<Vec<String>>,
    pub numbers_vary: bool,
}

/// Parse a Markdown file into the steps to run, or the blocks that have no run mode.
pub fn steps(md: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.starts_with("<!-- setup") {
            let mut body = Vec::new();
            let start = i + 1;
            i += 1;
            while i < lines.len() && lines[i].trim() != "-->" {
                body.push((start + body.len(), lines[i].to_string()));
                i += 1;
            }
            out.extend(script_steps(&body));
            i += 1;
            continue;
        }
        let Some(info) = t.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - lines[i].trim_start().len();
        let fence_line = i + 1;
        let before: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("<!--"))
            .collect();
        let skip = before.iter().find_map(|l| {
            l.strip_prefix("<!-- skip:")
                .map(|r| r.trim_end_matches("-->").trim().to_string())
        });
        let numbers_vary = before.iter().any(|l| l.contains("output: numbers vary"));
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim().starts_with("```") {
            let l = lines[i];
            let cut = l.len() - l.trim_start().len();
            body.push((i + 1, l[cut.min(indent)..].to_string()));
            i += 1;
        }
        i += 1;
        let mode = match (skip, info.trim()) {
            (Some(r), _) if r.is_empty() => {
                errors.push(format!("line {fence_line}: a skip needs a reason"));
                continue;
            }
            (Some(r), _) => Mode::Skip(r),
            (None, "console") => Mode::Console,
            (None, "sh" | "bash") => Mode::Script,
            (None, "text" | "json") => Mode::Illustration,
            (None, other) => {
                errors.push(format!(
                    "line {fence_line}: a ```{other} block has no run mode: make it console/sh (run), text (not a command), or put `<!-- skip: REASON -->` before it"
                ));
                continue;
            }
        };
        match mode {
            Mode::Console => out.extend(console_steps(&body, numbers_vary)),
            Mode::Script => out.extend(script_steps(&body)),
            Mode::Skip(_) | Mode::Illustration => {}
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

fn console_steps(body: &[(usize, String)], numbers_vary: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut cont = false;
    for (n, l) in body {
        if cont {
            let s = steps.last_mut().expect("a command");
            s.cmd.push('\n');
            s.cmd.push_str(l);
            cont = l.ends_with('\\');
        } else if let Some(c) = l.strip_prefix("$ ") {
            steps.push(Step {
                line: *n,
                cmd: c.to_string(),
                expected: None,
                numbers_vary,
            });
            cont = c.ends_with('\\');
        } else if let Some(s) = steps.last_mut() {
            s.expected.get_or_insert_with(Vec::new).push(l.clone());
        }
    }
    for s in &mut steps {
        if let Some(e) = &mut s.expected {
            while e.last().is_some_and(|l| l.trim().is_empty()) {
                e.pop();
            }
        }
    }
    steps
}

fn script_steps(body: &[(usize, String)]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut cont = false;
    for (n, l) in body {
        if cont {
            let s = steps.last_mut().expect("a command");
            s.cmd.push('\n');
            s.cmd.push_str(l);
        } else if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        } else {
            steps.push(Step {
                line: *n,
                cmd: l.clone(),
                expected: None,
                numbers_vary: false,
            });
        }
        cont = l.ends_with('\\');
    }
    steps
}

/// The rewrites of commands (module doc).
pub fn rewrite(cmd: &str) -> String {
    cmd.replace("cargo run --release -- ", "benchkeep ")
        .replace("http://127.0.0.1:8000", "$BASE_VLLM")
        .replace("http://127.0.0.1:11434", "$BASE_OLLAMA")
}

/// Redact what changes from run to run (module doc).
pub fn redact(text: &str, work: &str, numbers_vary: bool) -> Vec<String> {
    let text = if work.is_empty() {
        text.to_string()
    } else {
        text.replace(&format!("{work}/"), "").replace(work, ".")
    };
    text.lines()
        .map(|l| {
            let mut l = mask(l, numbers_vary);
            let trimmed = l.trim_end().len();
            l.truncate(trimmed);
            l
        })
        .collect()
}

/// Dates -> [DATE], times -> [TIME]; with `numbers_vary`, numbers -> # and runs of spaces
/// -> one space.
fn mask(line: &str, numbers_vary: bool) -> String {
    let b = line.as_bytes();
    let digits =
        |at: usize, n: usize| at + n <= b.len() && b[at..at + n].iter().all(u8::is_ascii_digit);
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let prev_alnum = i > 0 && b[i - 1].is_ascii_alphanumeric();
        if !prev_alnum
            && digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2)
        {
            out.push_str("[DATE]");
            i += 10;
            continue;
        }
        if !prev_alnum
            && digits(i, 2)
            && b.get(i + 2) == Some(&b':')
            && digits(i + 3, 2)
            && b.get(i + 5) == Some(&b':')
            && digits(i + 6, 2)
        {
            i += 8;
            while i < b.len()
                && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'Z' | b'+' | b':'))
            {
                i += 1;
            }
            out.push_str("[TIME]");
            continue;
        }
        if numbers_vary && b[i].is_ascii_digit() && !prev_alnum {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b',') {
                i += 1;
            }
            out.push('#');
            continue;
        }
        if numbers_vary && b[i] == b' ' && out.ends_with(' ') {
            i += 1;
            continue;
        }
        let ch = line[i..].chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// One line against an expected line with `[..]` wildcards.
pub fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first)
        || actual.len() < first.len() + last.len()
        || !actual.ends_with(last)
    {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

/// Expected lines (with `...` lines) against actual lines.
pub fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e.trim() == "..." => {
            (0..=actual.len()).any(|k| lines_match(rest, &actual[k..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, arest)| line_matches(e, a) && lines_match(rest, arest)),
    }
}

/// A simulator child process (killed on drop) and its base URL.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `benchkeep simulate --port 0 --no-delay --profile PROFILE --model MODEL`.
pub fn start_sim(profile: &str, model: &str) -> Sim {
    use std::io::BufRead;
    let mut child = Command::new(super::BIN)
        .args([
            "simulate",
            "--port",
            "0",
            "--no-delay",
            "--profile",
            profile,
            "--model",
            model,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simulator starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on")
        .to_string();
    Sim { child, url }
}

/// Run every step of `md_path` in a fresh temp dir as one bash session; return the
/// failures, each naming the file and line.
pub fn run_file(md_path: &Path) -> Vec<String> {
    run_session(md_path).0
}

/// [`run_file`], and the session's directory (its store is `benchmarks/`), kept until the
/// returned `TempDir` drops.
pub fn run_session(md_path: &Path) -> (Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = std::fs::read_to_string(md_path).expect("the doc reads");
    let name = md_path.display().to_string();
    let steps = match steps(&md) {
        Ok(s) => s,
        Err(e) => return (vec![format!("{name}:\n{e}")], dir),
    };
    if steps.is_empty() {
        return (Vec::new(), dir);
    }
    let work = std::fs::canonicalize(dir.path()).expect("canonical");
    let outs = work.join(".mdtest");
    std::fs::create_dir(&outs).expect("out dir");
    let vllm = start_sim("vllm", "google/gemma-3-4b-it");
    let ollama = start_sim("ollama", "gemma3:4b");
    let bin_dir = Path::new(super::BIN).parent().expect("bin dir");
    let mut script = String::from("cd \"$MDTEST_WORK\"\n");
    for (n, s) in steps.iter().enumerate() {
        script.push_str(&format!(
            "{{ {}\n}} > .mdtest/{n}.out 2>&1 < /dev/null; echo $? > .mdtest/{n}.rc\n",
            rewrite(&s.cmd)
        ));
    }
    let status = super::clean_env(&mut Command::new("timeout"))
        .arg("600")
        .arg("bash")
        .arg("-c")
        .arg(&script)
        .env("MDTEST_WORK", &work)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("BENCHKEEP_STORE", work.join("benchmarks"))
        .env("BASE_VLLM", &vllm.url)
        .env("BASE_OLLAMA", &ollama.url)
        .env(
            "MDTEST_FIXTURES",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        )
        .current_dir(&work)
        .status()
        .expect("bash runs");
    let mut failures = Vec::new();
    if !status.success() {
        failures.push(format!("{name}: the session ended with {status}"));
    }
    let w = work.display().to_string();
    for (n, s) in steps.iter().enumerate() {
        let out = std::fs::read_to_string(outs.join(format!("{n}.out"))).unwrap_or_default();
        let rc = std::fs::read_to_string(outs.join(format!("{n}.rc"))).unwrap_or_default();
        let actual = redact(&out, &w, s.numbers_vary);
        if rc.trim() != "0" {
            failures.push(format!(
                "{name}:{}: `{}` exited {}:\n{}",
                s.line,
                s.cmd,
                rc.trim(),
                actual.join("\n")
            ));
            continue;
        }
        if let Some(exp) = &s.expected {
            let exp: Vec<String> = exp
                .iter()
                .map(|l| redact(l, "", s.numbers_vary).pop().unwrap_or_default())
                .collect();
            if !lines_match(&exp, &actual) {
                failures.push(format!(
                    "{name}:{}: `{}` printed something else.\n--- expected\n{}\n--- actual\n{}",
                    s.line,
                    s.cmd,
                    exp.join("\n"),
                    actual.join("\n")
                ));
            }
        }
    }
    drop((vllm, ollama));
    (failures, dir)
}

/// README.md and every docs/*.md, sorted: the files the harness runs.
pub fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}
