//! Shell command lines inside a command line (`sh -c '...'`, a word with spaces): each
//! shell word gets the rules of an argument, and only the secrets in the line change.

use std::ops::Range;

use super::REDACTED;
use super::lexer::{Token, Word, tokenize};
use super::rules::{Hide, apply_cuts, merge, push_secret, word_cuts};

/// Programs whose `-c` argument is a shell command line.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash"];

/// Nesting limit for shell command lines inside shell command lines (`sh -c "bash -c '...'"`).
const MAX_DEPTH: u8 = 4;

/// `a` as one shell word: as is when plain, else in single quotes.
pub(super) fn shell_quote(a: &str) -> String {
    if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
        format!("'{}'", a.replace('\'', r"'\''"))
    } else {
        a.to_string()
    }
}

/// Whether the word after `before` is a shell command line: `before` ends with a short
/// option cluster holding `c` (`-c`, `-lc`, `-ec`) and names a shell (`sh`, `/bin/bash`).
pub(super) fn is_shell_code(before: &[&str]) -> bool {
    let Some((flag, earlier)) = before.split_last() else {
        return false;
    };
    let cluster = flag.strip_prefix('-').is_some_and(|f| {
        !f.is_empty() && f.chars().all(|c| c.is_ascii_alphabetic()) && f.contains('c')
    });
    cluster
        && earlier
            .iter()
            .any(|w| SHELLS.contains(&w.rsplit('/').next().unwrap_or(w)))
}

/// The secrets in a string of words apart (by whitespace), as byte ranges of it.
fn spaced_cuts(s: &str, found: &mut Vec<String>) -> Vec<Range<usize>> {
    let mut hide = Hide::No;
    let mut cuts = Vec::new();
    for part in s.split_whitespace() {
        let offset = part.as_ptr() as usize - s.as_ptr() as usize;
        for r in word_cuts(part, &mut hide) {
            push_secret(found, &part[r.clone()]);
            cuts.push(offset + r.start..offset + r.end);
        }
    }
    merge(cuts)
}

/// Replace the parts `cuts` of a word's value in the line: where they stand when each
/// starts and ends under the same quoting (the line stays well quoted), else by writing
/// the whole word anew, redacted and quoted.
fn edit_word(w: &Word, cuts: &[Range<usize>], edits: &mut Vec<(Range<usize>, String)>) {
    if cuts.is_empty() {
        return;
    }
    if cuts.iter().all(|r| w.quote[r.start] == w.quote[r.end - 1]) {
        for r in cuts {
            edits.push((w.start[r.start]..w.end[r.end - 1], REDACTED.to_string()));
        }
    } else {
        edits.push((w.span.clone(), shell_quote(&apply_cuts(&w.value, cuts))));
    }
}

/// Redact a shell command line: each word by the same rules as an argument list; only the
/// secrets change (see [`edit_word`]), the rest of the line stays as it was.
pub(super) fn shell_line(s: &str, depth: u8) -> (String, Vec<String>) {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut found = Vec::new();
    let mut hide = Hide::No;
    // The words of the current simple command, to spot `bash -c '...'` inside.
    let mut command: Vec<String> = Vec::new();
    for token in tokenize(s) {
        let w = match token {
            Token::Operator => {
                hide = Hide::No;
                command.clear();
                continue;
            }
            Token::Word(w) => w,
        };
        let before: Vec<&str> = command.iter().map(String::as_str).collect();
        let code = is_shell_code(&before);
        let spaced = w.value.contains(char::is_whitespace);
        if hide == Hide::No && depth < MAX_DEPTH && (code || spaced) {
            if code || w.value.contains(['\'', '"', '\\']) {
                // A shell line in a shell line (`bash -c '...'`): redacted on its own, and
                // its word written anew when that changed it.
                let (red, secrets) = shell_line(&w.value, depth + 1);
                if red != w.value {
                    edits.push((w.span.clone(), shell_quote(&red)));
                    found.extend(secrets);
                }
            } else {
                // Words in a quoted string (`-H "Authorization: Bearer X"`).
                let cuts = spaced_cuts(&w.value, &mut found);
                edit_word(&w, &cuts, &mut edits);
            }
        } else {
            let cuts = word_cuts(&w.value, &mut hide);
            for r in &cuts {
                push_secret(&mut found, &w.value[r.clone()]);
            }
            edit_word(&w, &cuts, &mut edits);
        }
        command.push(w.value);
    }
    if edits.is_empty() {
        return (s.to_string(), found);
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (r, text) in edits {
        out.push_str(&s[at..r.start]);
        out.push_str(&text);
        at = r.end;
    }
    out.push_str(&s[at..]);
    (out, found)
}
