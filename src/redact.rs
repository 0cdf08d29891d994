//! Secrets never reach a file or a log (RELIABILITY.md P9): redaction of command lines,
//! URLs and header values before anything is stored or printed.

/// Replacement text for a removed secret.
pub const REDACTED: &str = "***";

/// Flags whose value is a secret (`--api-key X` or `--api-key=X`).
const SECRET_FLAGS: &[&str] = &[
    "--api-key",
    "--api_key",
    "--token",
    "--hf-token",
    "--password",
    "--secret",
    "--auth",
    "--authorization",
];

/// Remove `user:pass@` (or `token@`) from a URL: `http://u:p@h:8000/v1` -> `http://***@h:8000/v1`.
pub fn url(u: &str) -> String {
    let Some(scheme_end) = u.find("://") else {
        return u.to_string();
    };
    let rest = &u[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{REDACTED}@{}", &u[..scheme_end + 3], &rest[at + 1..]),
        None => u.to_string(),
    }
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
/// `NAME_TOKEN=...` assignments, `Authorization:` header values and URL credentials.
pub fn args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for a in argv {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        let lower = a.to_ascii_lowercase();
        if SECRET_FLAGS.iter().any(|f| lower == *f) {
            out.push(a.clone());
            hide_next = true;
            continue;
        }
        if let Some((flag, _)) = a.split_once('=')
            && (SECRET_FLAGS.iter().any(|f| flag.eq_ignore_ascii_case(f))
                || (!flag.starts_with('-') && is_secret_name(flag)))
        {
            out.push(format!("{flag}={REDACTED}"));
            continue;
        }
        if lower.starts_with("authorization:") || lower.starts_with("x-api-key:") {
            let name = a.split(':').next().unwrap_or("");
            out.push(format!("{name}: {REDACTED}"));
            continue;
        }
        out.push(url_in_text(a));
    }
    out
}

/// Redact every URL credential inside free text.
pub fn url_in_text(text: &str) -> String {
    if !text.contains("://") || !text.contains('@') {
        return text.to_string();
    }
    text.split(' ')
        .map(|w| {
            if w.contains("://") {
                url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command line as one string, redacted, with shell-style quoting of odd arguments.
pub fn command_line(argv: &[String]) -> String {
    args(argv)
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
            "--model",
            "m",
        ]));
        let joined = got.join(" ");
        assert!(!joined.contains("CANARY"), "{joined}");
        assert!(joined.contains("--model m"));
        assert!(joined.contains("HF_TOKEN=***"));
        assert_eq!(command_line(&v(&["a b", "c"])), "'a b' c");
    }
}
