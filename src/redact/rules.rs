//! The redaction rules: which words, flags, assignments, headers, auth schemes and URL
//! parts hold a secret, found as byte ranges of a word and cut out.

use std::ops::Range;

use super::{REDACTED, is_secret_name};

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

/// Authorization schemes: the word after one of them is the credential.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest"];

/// What the next word is, after the words seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hide {
    /// An ordinary word.
    #[default]
    No,
    /// A secret as a whole (after `--api-key`, `Bearer`, ...).
    Next,
    /// A header value (after `Authorization:`): an auth scheme, kept, or the secret.
    Header,
}

/// Record a removed value (and the password of a `user:pass`).
pub(super) fn push_secret(found: &mut Vec<String>, value: &str) {
    found.push(value.to_string());
    if let Some((_, pass)) = value.split_once(':')
        && !pass.is_empty()
    {
        found.push(pass.to_string());
    }
}

/// The byte ranges of `w` to replace, given what came before (`hide`, updated for the next
/// word). A bare variable reference (`--api-key $KEY`, `"${HF_TOKEN}"`) is no secret and is
/// kept: it tells where the secret came from.
pub(super) fn word_cuts(w: &str, hide: &mut Hide) -> Vec<Range<usize>> {
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
pub(super) fn url_cuts(text: &str) -> Vec<Range<usize>> {
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
pub(super) fn merge(mut cuts: Vec<Range<usize>>) -> Vec<Range<usize>> {
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
pub(super) fn apply_cuts(s: &str, cuts: &[Range<usize>]) -> String {
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
