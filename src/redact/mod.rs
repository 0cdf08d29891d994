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

mod lexer;
mod rules;
mod shell;
mod text;

use rules::{Hide, apply_cuts, push_secret, url_cuts, word_cuts};
use shell::{is_shell_code, shell_line, shell_quote};

/// Replacement text for a removed secret.
pub const REDACTED: &str = "***";

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

/// Secrets in a line of free text (what a recorded command printed), found by their form
/// (`api_key='X'`, `"token": "X"`, `Authorization: Bearer X`, `Cookie: a=X`, ...) and by
/// their shape (`sk-...`, `hf_...`, `ghp_...`, `AKIA...`, JWTs, ...): the line with each
/// one replaced by `***`, or `None` when it holds none.
pub fn in_text(line: &[u8]) -> Option<Vec<u8>> {
    text::line(line)
}

/// A command line as one string, redacted, with shell-style quoting of odd arguments.
pub fn command_line(argv: &[String]) -> String {
    args(argv)
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
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
