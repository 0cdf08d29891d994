//! Secrets never reach a file or a log (RELIABILITY.md P9): redaction of command lines,
//! URLs and header values before anything is stored or printed.
//!
//! A command line is redacted word by word: the word after a secret flag (`--api-key X`)
//! and the value in `--api-key=X`, `NAME_KEY=X` assignments (`*_TOKEN`, `*_SECRET`,
//! `*_PASSWORD`, ...), the value of an `Authorization:` (or `X-Api-Key:`, ...) header, the
//! token after `Bearer`/`Basic`, `user:pass@` in URLs and secret query values
//! (`?api_key=X`, `&token=X`). A word that is itself a shell command line (the argument of
//! `sh -c`, `bash -c`, `zsh -c`, `dash -c`, or any word with spaces) is split into its
//! shell words, which get the same rules; only the secret parts change, the rest of the
//! string keeps its text and quoting.

use std::ops::Range;

/// Replacement text for a removed secret.
pub const REDACTED: &str = "***";

/// Flags whose value is a secret (`--api-key X` or `--api-key=X`). Any `--...-key`,
/// `--...-token`, `--...-secret`, `--...-password` flag is one too.
const SECRET_FLAGS: &[&str] = &[
    "--api-key",
    "--api_key",
    "--apikey",
    "--token",
    "--hf-token",
    "--password",
    "--passwd",
    "--secret",
    "--auth",
    "--authorization",
];

/// Programs whose `-c` argument is a shell command line.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash"];

/// Authorization schemes: the word after one of them is the credential.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest"];

/// Nesting limit for shell command lines inside shell command lines (`sh -c "bash -c '...'"`).
const MAX_DEPTH: u8 = 4;

/// Remove `user:pass@` (or `token@`) from a URL, and the values of secret query
/// parameters: `http://u:p@h:8000/v1?api_key=k` -> `http://***@h:8000/v1?api_key=***`.
pub fn url(u: &str) -> String {
    apply_cuts(u, &url_cuts(u))
}

/// Whether an environment-style name holds a secret (`OPENAI_API_KEY`, `HF_TOKEN`, ...).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("KEY")
        || n.ends_with("TOKEN")
        || n.ends_with("SECRET")
        || n.ends_with("PASSWORD")
        || n.ends_with("PASSWD")
}

/// Redact a command line given as arguments: values of secret flags, `NAME_KEY=...` and
/// `NAME_TOKEN=...` assignments, `Authorization:` header values, `Bearer` tokens, URL
/// credentials and secret query values, also inside shell command strings (`sh -c "..."`).
pub fn args(argv: &[String]) -> Vec<String> {
    scan(argv).0
}

/// The secret values [`args`] removes from a command line (each cut part; for `user:pass`
/// also the password on its own), so that they can be cut from logs too.
pub fn secrets(argv: &[String]) -> Vec<String> {
    scan(argv).1
}

/// Redact every URL credential (and secret query value) inside free text.
pub fn url_in_text(text: &str) -> String {
    url(text)
}

/// A command line as one string, redacted, with shell-style quoting of odd arguments.
pub fn command_line(argv: &[String]) -> String {
    args(argv)
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a` as one shell word: as is when plain, else in single quotes.
fn shell_quote(a: &str) -> String {
    if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
        format!("'{}'", a.replace('\'', r"'\''"))
    } else {
        a.to_string()
    }
}

/// What the next word is, after the words seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Hide {
    /// An ordinary word.
    #[default]
    No,
    /// A secret as a whole (after `--api-key`, `Bearer`, ...).
    Next,
    /// A header value (after `Authorization:`): an auth scheme, kept, or the secret.
    Header,
}

/// Redact an argument list; also returns the removed values.
fn scan(argv: &[String]) -> (Vec<String>, Vec<String>) {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut hide = Hide::No;
    let mut out = Vec::with_capacity(argv.len());
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if hide == Hide::No && (is_shell_code(&words[..i]) || w.contains(char::is_whitespace)) {
            let (red, secrets) = shell_line(w, 0);
            out.push(red);
            found.extend(secrets);
            continue;
        }
        let cuts = word_cuts(w, &mut hide);
        for r in &cuts {
            push_secret(&mut found, &w[r.clone()]);
        }
        out.push(apply_cuts(w, &cuts));
    }
    (out, found)
}

/// Record a removed value (and the password of a `user:pass`).
fn push_secret(found: &mut Vec<String>, value: &str) {
    found.push(value.to_string());
    if let Some((_, pass)) = value.split_once(':')
        && !pass.is_empty()
    {
        found.push(pass.to_string());
    }
}

/// Whether the word after `before` is a shell command line: `before` ends with a short
/// option cluster holding `c` (`-c`, `-lc`, `-ec`) and names a shell (`sh`, `/bin/bash`).
fn is_shell_code(before: &[&str]) -> bool {
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

/// The byte ranges of `w` to replace, given what came before (`hide`, updated for the next
/// word). A bare variable reference (`--api-key $KEY`, `"${HF_TOKEN}"`) is no secret and is
/// kept: it tells where the secret came from.
fn word_cuts(w: &str, hide: &mut Hide) -> Vec<Range<usize>> {
    let mut cuts = secret_parts(w, hide);
    cuts.retain(|r| !is_variable_reference(&w[r.clone()]));
    cuts
}

/// `$NAME` or `${NAME}`.
fn is_variable_reference(s: &str) -> bool {
    s.strip_prefix('$').is_some_and(|v| {
        is_identifier(v)
            || v.strip_prefix('{')
                .and_then(|v| v.strip_suffix('}'))
                .is_some_and(is_identifier)
    })
}

fn secret_parts(w: &str, hide: &mut Hide) -> Vec<Range<usize>> {
    let whole = || {
        if w.is_empty() {
            Vec::new()
        } else {
            std::iter::once(0..w.len()).collect()
        }
    };
    match std::mem::take(hide) {
        Hide::Next => return whole(),
        Hide::Header => {
            if is_scheme(w) {
                *hide = Hide::Next;
                return vec![];
            }
            return whole();
        }
        Hide::No => {}
    }
    if is_secret_flag(w) {
        *hide = Hide::Next;
        return vec![];
    }
    let (cuts, next) = cuts_in_word(w);
    *hide = next;
    cuts
}

fn is_scheme(w: &str) -> bool {
    AUTH_SCHEMES.iter().any(|s| w.eq_ignore_ascii_case(s))
}

/// `--api-key`, `--hf-token`, `--db-password`, ... (a flag whose value is a secret).
fn is_secret_flag(w: &str) -> bool {
    if SECRET_FLAGS.iter().any(|f| w.eq_ignore_ascii_case(f)) {
        return true;
    }
    let Some(name) = w.strip_prefix("--") else {
        return false;
    };
    let n = name.to_ascii_uppercase().replace('-', "_");
    ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD"]
        .iter()
        .any(|s| n.ends_with(s))
}

/// `Authorization`, `Proxy-Authorization`, `X-Api-Key`, `X-Auth-Token`, ...
fn is_secret_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
        || is_secret_name(&name.replace('-', "_"))
}

/// A shell variable name.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A character of an auth token (RFC 7235 token68, plus `:` for `user:pass`).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=:".contains(c)
}

/// The secrets inside one word on its own, and what the next word is.
fn cuts_in_word(w: &str) -> (Vec<Range<usize>>, Hide) {
    let mut cuts = url_cuts(w);
    let mut next = Hide::No;
    // `--api-key=X`, `OPENAI_API_KEY=X`
    if let Some((name, value)) = w.split_once('=')
        && !value.is_empty()
        && ((name.starts_with('-') && is_secret_flag(name))
            || (is_identifier(name) && is_secret_name(name)))
    {
        cuts.push(name.len() + 1..w.len());
    }
    // `Authorization: Bearer X`, `X-Api-Key:X`, `--header=Authorization: X`
    for (colon, _) in w.match_indices(':') {
        let name_start = w[..colon]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &w[name_start..colon];
        if name.is_empty() || w[colon + 1..].starts_with("//") || !is_secret_header(name) {
            continue;
        }
        let skip_spaces = |i: usize| i + (w.len() - i - w[i..].trim_start().len());
        let mut v = skip_spaces(colon + 1);
        let scheme_end = v + w[v..].find(char::is_whitespace).unwrap_or(w.len() - v);
        let has_scheme = is_scheme(&w[v..scheme_end]);
        if has_scheme {
            v = skip_spaces(scheme_end);
        }
        if v < w.len() {
            cuts.push(v..w.len());
        } else if has_scheme {
            next = Hide::Next;
        } else {
            next = Hide::Header;
        }
        break;
    }
    // `Bearer X` anywhere in the word; a word that is just `Bearer`: the next one.
    if is_scheme(w) && !w.eq_ignore_ascii_case("token") {
        next = Hide::Next;
    }
    let lower = w.to_ascii_lowercase();
    for scheme in ["bearer ", "basic "] {
        for (i, _) in lower.match_indices(scheme) {
            if i > 0 && lower.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let v = i + scheme.len();
            let v = v + (w.len() - v - w[v..].trim_start().len());
            let end = v + w[v..].find(|c| !is_token_char(c)).unwrap_or(w.len() - v);
            if end > v {
                cuts.push(v..end);
            }
        }
    }
    (merge(cuts), next)
}

/// URL credentials and secret query values anywhere in `text`.
fn url_cuts(text: &str) -> Vec<Range<usize>> {
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(p) = text[from..].find("://") {
        let start = from + p + 3;
        let len = text[start..]
            .find(|c: char| c.is_whitespace() || "'\"`<>".contains(c))
            .unwrap_or(text.len() - start);
        let u = &text[start..start + len];
        let authority_end = u.find(['/', '?', '#']).unwrap_or(u.len());
        if let Some(at) = u[..authority_end].rfind('@')
            && at > 0
        {
            cuts.push(start..start + at);
        }
        if let Some(q) = u.find('?') {
            let query_end = u[q..].find('#').map_or(u.len(), |h| q + h);
            let mut pos = q + 1;
            for param in u[q + 1..query_end].split('&') {
                if let Some((name, value)) = param.split_once('=')
                    && !value.is_empty()
                    && is_secret_param(name)
                {
                    let v = start + pos + name.len() + 1;
                    cuts.push(v..v + value.len());
                }
                pos += param.len() + 1;
            }
        }
        from = start + len;
    }
    cuts
}

/// Query parameters that carry credentials: `api_key`, `token`, `access_token`, `sig`, ...
fn is_secret_param(name: &str) -> bool {
    is_secret_name(name)
        || ["sig", "signature", "auth", "pass", "pwd"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
}

/// Sorted, overlapping ranges joined.
fn merge(mut cuts: Vec<Range<usize>>) -> Vec<Range<usize>> {
    cuts.retain(|r| r.start < r.end);
    cuts.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(cuts.len());
    for r in cuts {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `s` with each (sorted, disjoint) range replaced by `***`.
fn apply_cuts(s: &str, cuts: &[Range<usize>]) -> String {
    if cuts.is_empty() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for r in merge(cuts.to_vec()) {
        out.push_str(&s[at..r.start]);
        out.push_str(REDACTED);
        at = r.end;
    }
    out.push_str(&s[at..]);
    out
}

/// Quoting in force at a character of a shell line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// One shell word: its value (quotes and escapes removed) and, for each byte of the value,
/// where its source lies in the line and under which quoting.
#[derive(Debug)]
struct Word {
    value: String,
    start: Vec<usize>,
    end: Vec<usize>,
    quote: Vec<Quote>,
    /// The whole word in the line, quotes included.
    span: Range<usize>,
}

impl Word {
    fn at(i: usize) -> Word {
        Word {
            value: String::new(),
            start: Vec::new(),
            end: Vec::new(),
            quote: Vec::new(),
            span: i..i,
        }
    }

    fn push(&mut self, c: char, start: usize, end: usize, quote: Quote) {
        for _ in 0..c.len_utf8() {
            self.start.push(start);
            self.end.push(end);
            self.quote.push(quote);
        }
        self.value.push(c);
        self.span.end = end;
    }
}

#[derive(Debug)]
enum Token {
    Word(Word),
    /// `;`, `|`, `&`, `(`, `)`, `<`, `>` or a newline: the words around it are apart.
    Operator,
}

/// Split a shell command line into words, as POSIX `sh` would (no expansion). Never fails:
/// an unterminated quote runs to the end.
fn tokenize(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut cur: Option<Word> = None;
    let mut quote = Quote::None;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let after = i + c.len_utf8();
        match quote {
            Quote::Single => {
                let w = cur.get_or_insert_with(|| Word::at(i));
                if c == '\'' {
                    quote = Quote::None;
                    w.span.end = after;
                } else {
                    w.push(c, i, after, Quote::Single);
                }
            }
            Quote::Double => {
                let w = cur.get_or_insert_with(|| Word::at(i));
                if c == '"' {
                    quote = Quote::None;
                    w.span.end = after;
                } else if c == '\\'
                    && let Some(&(j, n)) = chars.peek()
                    && "$`\"\\\n".contains(n)
                {
                    chars.next();
                    let end = j + n.len_utf8();
                    if n == '\n' {
                        w.span.end = end;
                    } else {
                        w.push(n, i, end, Quote::Double);
                    }
                } else {
                    w.push(c, i, after, Quote::Double);
                }
            }
            Quote::None => {
                if c.is_whitespace() || ";|&()<>".contains(c) {
                    if let Some(w) = cur.take() {
                        tokens.push(Token::Word(w));
                    }
                    if !c.is_whitespace() || c == '\n' {
                        tokens.push(Token::Operator);
                    }
                } else if c == '\\' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                    // A line continuation: no character at all.
                    chars.next();
                    if let Some(w) = cur.as_mut() {
                        w.span.end = after + 1;
                    }
                } else {
                    let w = cur.get_or_insert_with(|| Word::at(i));
                    match c {
                        '\'' => {
                            quote = Quote::Single;
                            w.span.end = after;
                        }
                        '"' => {
                            quote = Quote::Double;
                            w.span.end = after;
                        }
                        '\\' => match chars.next() {
                            Some((j, n)) => w.push(n, i, j + n.len_utf8(), Quote::None),
                            None => w.push(c, i, after, Quote::None),
                        },
                        _ => w.push(c, i, after, Quote::None),
                    }
                }
            }
        }
    }
    if let Some(w) = cur.take() {
        tokens.push(Token::Word(w));
    }
    tokens
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
fn shell_line(s: &str, depth: u8) -> (String, Vec<String>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls() {
        assert_eq!(url("http://u:CANARY@h:8000/v1"), "http://***@h:8000/v1");
        assert_eq!(url("http://h:8000/v1?a=b@c"), "http://h:8000/v1?a=b@c");
        assert_eq!(url("h:8000"), "h:8000");
        assert_eq!(
            url("https://h/v1?api_key=CANARY&x=1&token=CANARY#f"),
            "https://h/v1?api_key=***&x=1&token=***#f"
        );
        assert_eq!(
            url_in_text("see http://a:CANARY@h/ and https://b@g/?key=CANARY"),
            "see http://***@h/ and https://***@g/?key=***"
        );
    }

    #[test]
    fn command_lines() {
        let got = args(&v(&[
            "vllm",
            "serve",
            "--api-key",
            "CANARY1",
            "--token=CANARY2",
            "HF_TOKEN=CANARY3",
            "http://a:CANARY4@x/",
            "Authorization: Bearer CANARY5",
            "--openai-api-key",
            "CANARY6",
            "--model",
            "m",
        ]));
        let joined = got.join(" ");
        assert!(!joined.contains("CANARY"), "{joined}");
        assert!(joined.contains("--model m"));
        assert!(joined.contains("HF_TOKEN=***"));
        assert!(joined.contains("Authorization: Bearer ***"), "{joined}");
        assert_eq!(command_line(&v(&["a b", "c"])), "'a b' c");
        // Not secrets: left alone.
        let plain = v(&[
            "vllm",
            "--api-key-env",
            "MY_VAR",
            "--max-tokens",
            "12",
            "--tokenizer",
            "t",
            "--key",
            "k",
        ]);
        assert_eq!(args(&plain), plain);
    }

    #[test]
    fn shell_command_strings_are_split_into_words() {
        let cases = [
            (
                v(&["sh", "-c", "python3 x.py --api-key CANARY1 --n 3"]),
                "python3 x.py --api-key *** --n 3",
            ),
            (
                v(&["bash", "-c", "OPENAI_API_KEY=CANARY2 python3 x.py"]),
                "OPENAI_API_KEY=*** python3 x.py",
            ),
            (
                v(&[
                    "sh",
                    "-c",
                    "curl -H 'Authorization: Bearer CANARY3' http://u:CANARY4@h/",
                ]),
                "curl -H 'Authorization: Bearer ***' http://***@h/",
            ),
            (
                v(&[
                    "/bin/zsh",
                    "-lc",
                    "export HF_TOKEN=\"CANARY5\"; run --token=CANARY6|tee l",
                ]),
                "export HF_TOKEN=\"***\"; run --token=***|tee l",
            ),
            (
                v(&["dash", "-c", "x --api-key=\"CAN\"'ARY7' --m 1"]),
                "x --api-key=*** --m 1",
            ),
            (
                v(&["sh", "-c", "bash -c 'A_SECRET=CANARY8 go'; echo ok"]),
                "bash -c 'A_SECRET=*** go'; echo ok",
            ),
            (
                v(&["sh", "-c", "curl 'https://h/v1?api_key=CANARY9&n=2'"]),
                "curl 'https://h/v1?api_key=***&n=2'",
            ),
            (
                v(&[
                    "sh",
                    "-c",
                    "curl -H \"Authorization: Bearer CANARY11\" -d @f x",
                ]),
                "curl -H \"Authorization: Bearer ***\" -d @f x",
            ),
            (
                v(&[
                    "bash",
                    "-c",
                    "run --api-key \\\n  CANARY12 --hf-token=$T --token \"${K}\"",
                ]),
                "run --api-key \\\n  *** --hf-token=$T --token \"${K}\"",
            ),
            // A word with spaces is split even without a shell.
            (
                v(&["ssh", "host", "run --password CANARY10 now"]),
                "run --password *** now",
            ),
            // Nothing secret: byte for byte the same.
            (
                v(&["sh", "-c", "echo 'a  \"b\"' \\\n  c; ls  -l # x=1"]),
                "echo 'a  \"b\"' \\\n  c; ls  -l # x=1",
            ),
        ];
        for (argv, want) in cases {
            let got = args(&argv);
            assert_eq!(got.last().unwrap(), want, "{argv:?}");
            assert_eq!(got.len(), argv.len());
            let s = secrets(&argv);
            for canary in s.iter() {
                assert!(canary.contains("CANARY"), "{canary:?} from {argv:?}");
            }
            let joined = argv.join(" ");
            let n = joined.matches("CANARY").count();
            assert!(s.len() >= n, "{s:?} from {argv:?}");
        }
        let s = secrets(&v(&[
            "sh",
            "-c",
            "curl -H 'Authorization: Bearer CANARY3' http://u:CANARY4@h/",
        ]));
        assert_eq!(s, ["CANARY3", "u:CANARY4", "CANARY4"]);
    }

    #[test]
    fn odd_shell_lines_never_panic() {
        for s in [
            "",
            "'",
            "\"",
            "\\",
            "a\\",
            "'unterminated --api-key x",
            "\"é --token ü\" ; |",
            "#",
            "--api-key",
            "Authorization:",
            "x=Bearer",
            "héllo wörld --token=ß",
        ] {
            let _ = args(&v(&["sh", "-c", s]));
            let _ = args(&v(&[s, s]));
        }
    }
}
