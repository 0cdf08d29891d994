//! Secrets in free text (a line a recorded command printed), found by their form and by
//! their shape, without knowing the value beforehand:
//!
//! - a secret name and its value, as Python, JSON, YAML, shells, `.env` files and HTTP
//!   logs write them: `api_key='X'`, `{'api_key': 'X'}`, `"api_key": "X"`, `token: X`,
//!   `KEY = X`, `Authorization: Bearer X`, `X-Api-Key: X` (the value is cut, the name and
//!   the quoting kept);
//! - `Cookie:` and `Set-Cookie:` header values (each cookie's value; attributes kept);
//! - a bare `Bearer X`;
//! - the token shapes of the big providers anywhere: `sk-...` (OpenAI, Anthropic),
//!   `hf_...`, GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, Slack `xox?-`, AWS
//!   access key ids `AKIA...`/`ASIA...`, JWTs `eyJ...`.
//!
//! A value such as `None`, `null`, `***` or `$VAR` is no secret and is kept; a secret word
//! in prose without a value ("the token expired") is kept.

use std::ops::Range;
use std::sync::LazyLock;

use regex::bytes::Regex;

/// `name <sep> value`: a name ending in a secret word, optionally quoted, then `=`, `:`,
/// `=>` or `:=`, then a quoted or bare value.
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?ix)
        (?:^|[^A-Za-z0-9_.-])
        ["']?
        (?P<name>[A-Za-z0-9_.-]*
            (?:key|token|secret|password|passwd|pwd|credentials?|auth|authorization|apikey|signature))
        ["']?
        \s*(?:=>|:=|=|:)\s*
        (?:
            "(?P<dq>[^"]*)"
          | '(?P<sq>[^']*)'
          | (?P<bare>[^\s,;&)}\]\['"{(]+(?:\s+[A-Za-z0-9._~+/=*-]+)?)
        )"#,
    )
    .expect("valid pattern")
});

/// `Cookie:` / `Set-Cookie:` (also `cookie=`, `"cookie": "..."`) and the rest of the value.
static COOKIE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[^A-Za-z0-9_-])["']?(?P<name>set-cookie|cookies?)["']?\s*[:=]\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^'"\r\n]+))"#,
    )
    .expect("valid pattern")
});

/// `Bearer X` (the token at least 8 characters, so prose "bearer of news" is kept).
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Za-z0-9_-])bearer\s+(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)")
        .expect("valid pattern")
});

/// Provider token shapes, anywhere.
static SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:^|[^A-Za-z0-9_-])
        (?P<v>
            sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}
          | hf_[A-Za-z0-9]{16,}
          | gh[pousr]_[A-Za-z0-9]{20,}
          | github_pat_[A-Za-z0-9_]{20,}
          | xox[abposre]-[A-Za-z0-9-]{10,}
          | (?:AKIA|ASIA)[A-Z0-9]{16}
          | eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*
        )",
    )
    .expect("valid pattern")
});

/// Values that name no secret.
fn is_placeholder(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    if t.is_empty() || t.iter().all(|&b| b == b'*' || b == b'x' || b == b'X') {
        return true;
    }
    if t.first() == Some(&b'$') || t.starts_with(b"<") || t.starts_with(b"%(") {
        return true;
    }
    [
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "redacted",
        "<redacted>",
        "[redacted]",
        "(none)",
        "not set",
        "unset",
    ]
    .iter()
    .any(|p| t.eq_ignore_ascii_case(p.as_bytes()))
}

const SCHEMES: [&str; 4] = ["bearer", "basic", "token", "digest"];

/// The value range without a leading auth scheme (`Bearer X` -> `X`).
fn skip_scheme(line: &[u8], r: Range<usize>) -> Range<usize> {
    let v = &line[r.clone()];
    let word_end = v
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(v.len());
    if word_end < v.len()
        && SCHEMES
            .iter()
            .any(|s| v[..word_end].eq_ignore_ascii_case(s.as_bytes()))
    {
        let rest = v[word_end..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(v.len(), |i| word_end + i);
        return r.start + rest..r.end;
    }
    r
}

/// The cuts inside a cookie header value: each cookie's value; `Path=/`, `HttpOnly`, ...
/// are kept.
fn cookie_cuts(line: &[u8], r: Range<usize>, cuts: &mut Vec<Range<usize>>) {
    const ATTRS: [&str; 9] = [
        "path",
        "domain",
        "expires",
        "max-age",
        "samesite",
        "secure",
        "httponly",
        "priority",
        "partitioned",
    ];
    let mut at = r.start;
    for part in line[r.clone()].split(|&b| b == b';') {
        let start = at;
        at += part.len() + 1;
        let lead = part.len() - part.trim_ascii_start().len();
        let p = part.trim_ascii();
        if p.is_empty() {
            continue;
        }
        let (name, value_at) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (&p[..eq], Some(eq + 1)),
            None => (p, None),
        };
        if ATTRS
            .iter()
            .any(|a| name.trim_ascii().eq_ignore_ascii_case(a.as_bytes()))
        {
            continue;
        }
        let (from, to) = match value_at {
            Some(v) => (start + lead + v, start + lead + p.len()),
            None => (start + lead, start + lead + p.len()),
        };
        if from < to && !is_placeholder(&line[from..to]) {
            cuts.push(from..to);
        }
    }
}

/// The byte ranges of `line` that hold a secret, sorted and merged.
pub fn cuts(line: &[u8]) -> Vec<Range<usize>> {
    let mut cuts: Vec<Range<usize>> = Vec::new();
    let mut cookie_names: Vec<Range<usize>> = Vec::new();
    for c in COOKIE.captures_iter(line) {
        let v = c
            .name("dq")
            .or_else(|| c.name("sq"))
            .or_else(|| c.name("bare"));
        if let (Some(v), Some(n)) = (v, c.name("name")) {
            cookie_names.push(n.range());
            cookie_cuts(line, v.range(), &mut cuts);
        }
    }
    for c in PAIR.captures_iter(line) {
        let Some(name) = c.name("name") else { continue };
        if name.as_bytes().eq_ignore_ascii_case(b"key")
            || cookie_names.iter().any(|r| r.contains(&name.start()))
        {
            // A bare `key: x` is too common in logs ("cache key: ...") to be a secret.
            continue;
        }
        let v = if let Some(v) = c.name("dq").or_else(|| c.name("sq")) {
            v.range()
        } else if let Some(v) = c.name("bare") {
            let r = v.range();
            // A bare value is one word, unless the first is an auth scheme.
            let first_end = line[r.clone()]
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .map_or(r.end, |i| r.start + i);
            let first = &line[r.start..first_end];
            if SCHEMES
                .iter()
                .any(|s| first.eq_ignore_ascii_case(s.as_bytes()))
            {
                if first_end == r.end {
                    // `Authorization: Bearer` and nothing after: no value here.
                    continue;
                }
                r
            } else {
                r.start..first_end
            }
        } else {
            continue;
        };
        let v = skip_scheme(line, v);
        if v.start < v.end && !is_placeholder(&line[v.clone()]) {
            cuts.push(v);
        }
    }
    for re in [&*BEARER, &*SHAPES] {
        for c in re.captures_iter(line) {
            if let Some(v) = c.name("v") {
                cuts.push(v.range());
            }
        }
    }
    cuts.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(cuts.len());
    for r in cuts {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// `line` with every secret [`cuts`] finds replaced by `***`; `None` when there is none.
pub fn line(line: &[u8]) -> Option<Vec<u8>> {
    let cuts = cuts(line);
    if cuts.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(line.len());
    let mut at = 0;
    for r in cuts {
        out.extend_from_slice(&line[at..r.start]);
        out.extend_from_slice(super::REDACTED.as_bytes());
        at = r.end;
    }
    out.extend_from_slice(&line[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(s: &str) -> String {
        match line(s.as_bytes()) {
            Some(v) => String::from_utf8(v).unwrap(),
            None => s.to_string(),
        }
    }

    #[test]
    fn forms_and_shapes() {
        let cases = [
            // Python
            ("{'api_key': 'sk-abc'}", "{'api_key': '***'}"),
            (
                "Namespace(api_key='s3cr3t', model='m', hf_token=None)",
                "Namespace(api_key='***', model='m', hf_token=None)",
            ),
            // JSON
            (
                r#"{"api_key": "abc123", "n": 3}"#,
                r#"{"api_key": "***", "n": 3}"#,
            ),
            (r#"{"token":"t0k3n"}"#, r#"{"token":"***"}"#),
            // YAML, .env, shells
            ("token: hf_abcdefghijklmnopqrstu", "token: ***"),
            ("OPENAI_API_KEY = abc123", "OPENAI_API_KEY = ***"),
            ("export HF_TOKEN=\"abc\"", "export HF_TOKEN=\"***\""),
            ("password => hunter2", "password => ***"),
            // HTTP
            ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
            (
                "authorization: Basic dXNlcjpwYXNz",
                "authorization: Basic ***",
            ),
            ("X-Api-Key: abc123", "X-Api-Key: ***"),
            ("sent Bearer abcdefgh12345", "sent Bearer ***"),
            ("Authorization: Bearer *** x", "Authorization: Bearer *** x"),
            ("Authorization: Bearer", "Authorization: Bearer"),
            // Cookies
            ("Cookie: sid=abc; theme=dark", "Cookie: sid=***; theme=***"),
            (
                "Set-Cookie: sid=abc123; Path=/; HttpOnly; Secure",
                "Set-Cookie: sid=***; Path=/; HttpOnly; Secure",
            ),
            (r#"{"cookie": "sid=abc"}"#, r#"{"cookie": "sid=***"}"#),
            // Shapes
            ("using sk-proj-AbCdEfGhIjKlMnOpQrSt now", "using *** now"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123", "***"),
            ("slack xoxb-1234567890-abcdef", "slack ***"),
            ("id AKIAIOSFODNN7EXAMPLE.", "id ***."),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = ***",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x",
                "jwt ***",
            ),
            // Kept
            ("the token expired", "the token expired"),
            (
                "max_tokens: 128, prompt_tokens=12",
                "max_tokens: 128, prompt_tokens=12",
            ),
            ("api_key=None token: null", "api_key=None token: null"),
            ("api_key=$OPENAI_API_KEY", "api_key=$OPENAI_API_KEY"),
            ("cache key: abc", "cache key: abc"),
            ("bearer of bad news", "bearer of bad news"),
            ("tokenizer: gpt2", "tokenizer: gpt2"),
            ("ask-me skip", "ask-me skip"),
        ];
        for (input, want) in cases {
            assert_eq!(red(input), want, "{input}");
        }
    }

    #[test]
    fn odd_bytes_never_panic() {
        for s in [
            &b""[..],
            b"\xff\xfe token: \xff",
            b"Cookie:",
            b"Cookie: ;;;=",
            b"api_key='",
            b"Authorization: Bearer",
        ] {
            let _ = line(s);
        }
    }
}
