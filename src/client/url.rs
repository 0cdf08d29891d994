//! The server's base URL: scheme, host, an optional path prefix, and credentials that are
//! turned into a header and never shown (RELIABILITY P9).
//!
//! `http://host:8000`, `http://host:8000/v1` and `http://host:11434/api` all name the same
//! server; endpoints (`/v1/chat/completions`, `/api/chat`, `/version`) are added to the
//! prefix that remains (`http://gw/vllm/v1` -> prefix `/vllm`).

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `--base-url`.
#[derive(Clone)]
pub struct BaseUrl {
    pub scheme: Scheme,
    /// `host[:port]`, without credentials.
    pub authority: String,
    /// Path prefix without a trailing `/`, `/v1` or `/api` (often empty).
    pub prefix: String,
    /// `user:password` from the URL, percent-decoded. Secret: never printed.
    credentials: Option<String>,
    /// `user:password` as written in the URL (percent-encoded). Secret: never printed.
    raw_credentials: Option<String>,
    /// The URL as given, with credentials replaced by `***`.
    redacted: String,
}

impl std::fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl BaseUrl {
    /// Parse a base URL; errors name `--base-url` and show only the redacted form.
    pub fn parse(s: &str) -> Result<BaseUrl, String> {
        let redacted = crate::redact::url(s.trim());
        let shown = redact_for_message(s.trim());
        let bad = |why: &str| {
            format!(
                "--base-url {shown}: {why}; expected e.g. http://127.0.0.1:8000 or http://localhost:11434"
            )
        };
        let s = s.trim();
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("must not have a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (credentials, raw_credentials, host) = match authority.rfind('@') {
            Some(i) => (
                Some(percent_decode(&authority[..i])),
                Some(authority[..i].to_string()),
                &authority[i + 1..],
            ),
            None => (None, None, authority),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("has no host"));
        }
        let mut prefix = path.trim_end_matches('/').to_string();
        for suffix in ["/v1", "/api"] {
            if let Some(p) = prefix.strip_suffix(suffix) {
                prefix = p.to_string();
                break;
            }
        }
        Ok(BaseUrl {
            scheme,
            authority: host.to_string(),
            prefix,
            credentials,
            raw_credentials,
            redacted,
        })
    }

    /// The full URL of an endpoint path (`/v1/models`), without credentials.
    pub fn endpoint(&self, path: &str) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}{path}", self.authority, self.prefix)
    }

    /// The URL as given, credentials replaced by `***`: safe to print and store.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `Basic <base64>` for credentials given in the URL.
    pub fn basic_auth(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .map(|c| format!("Basic {}", base64(c.as_bytes())))
    }

    /// The secret parts of the URL (to scrub from any message): the `Basic <base64>`
    /// header value as sent, its bare base64, `user:password` as given and decoded, and the
    /// password and user alone. A server that echoes the request headers in an error body
    /// shows the base64 form, which contains none of the plain strings.
    pub fn secrets(&self) -> Vec<String> {
        let Some(c) = &self.credentials else {
            return Vec::new();
        };
        let b64 = base64(c.as_bytes());
        let mut v = vec![format!("Basic {b64}"), b64, c.clone()];
        if let Some(raw) = &self.raw_credentials {
            v.push(raw.clone());
        }
        if let Some((user, pass)) = c.split_once(':') {
            v.push(pass.to_string());
            v.push(user.to_string());
        }
        v.retain(|s| s.len() >= 4);
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        v
    }

    /// Whether the URL carries `user:password@` (sent as Basic auth).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }
}

/// A `--base-url` as it may be shown in an error message: `user:password@` becomes `***@`
/// and every query value and the fragment become `***` (`?api-key=***`), so a secret in a
/// URL that is refused never reaches the terminal.
pub fn redact_for_message(s: &str) -> String {
    let (scheme, rest) = match s.find("://") {
        Some(i) => s.split_at(i + 3),
        None => ("", s),
    };
    let (before_query, query, fragment) = {
        let q = rest.find(['?', '#']).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(q);
        let (query, fragment) = match tail.find('#') {
            Some(f) => (&tail[..f], Some(&tail[f..])),
            None => (tail, None),
        };
        (head, query, fragment)
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let mut out = String::with_capacity(s.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(crate::redact::REDACTED);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(q) = query.strip_prefix('?') {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}={}", crate::redact::REDACTED),
                None if kv.is_empty() => String::new(),
                // A bare value (`?SECRET`) may be the secret itself.
                None => crate::redact::REDACTED.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    if fragment.is_some() {
        out.push('#');
        out.push_str(crate::redact::REDACTED);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(A[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_endpoints() {
        let u = BaseUrl::parse("http://127.0.0.1:8000/v1/").unwrap();
        assert_eq!(
            u.endpoint("/v1/chat/completions"),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
        let u = BaseUrl::parse("https://gw.example/vllm/v1").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.endpoint("/version"), "https://gw.example/vllm/version");
        let u = BaseUrl::parse("http://localhost:11434/api").unwrap();
        assert_eq!(u.endpoint("/api/ps"), "http://localhost:11434/api/ps");
        assert!(BaseUrl::parse("localhost:8000").is_err());
        assert!(BaseUrl::parse("http://h/v1?key=x").is_err());
        assert!(BaseUrl::parse("http:///v1").is_err());
    }

    #[test]
    fn credentials_never_show() {
        let u = BaseUrl::parse("http://user:CAN%41RY@127.0.0.1:9/v1").unwrap();
        assert_eq!(
            u.basic_auth().unwrap(),
            format!("Basic {}", base64(b"user:CANARY"))
        );
        assert!(!format!("{u:?}").contains("CAN"));
        assert!(!u.redacted().contains("CAN"));
        assert!(!u.endpoint("/x").contains("CAN"));
        assert!(u.secrets().contains(&"CANARY".to_string()));
        let e = BaseUrl::parse("ftp://u:CANARY@h").unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
    }

    /// A server that echoes the request headers shows `Basic <base64>`: that, the bare
    /// base64, `user:password` (decoded and as written) and the password are all scrubbed.
    #[test]
    fn basic_auth_secrets_include_the_header_forms() {
        let u = BaseUrl::parse("http://u:CANARY%50W2@127.0.0.1:9").unwrap();
        let s = u.secrets();
        let b64 = base64(b"u:CANARYPW2");
        for want in [
            format!("Basic {b64}"),
            b64.clone(),
            "u:CANARYPW2".to_string(),
            "u:CANARY%50W2".to_string(),
            "CANARYPW2".to_string(),
        ] {
            assert!(s.contains(&want), "{want} missing from {} secrets", s.len());
        }
        assert!(s.iter().all(|x| x.len() >= 4), "too short to scrub safely");
        let scrubber = crate::client::Scrubber::new(s);
        let echoed = format!("{{'authorization': 'Basic {b64}', 'x': '{b64}'}} u:CANARYPW2");
        let clean = scrubber.scrub(&echoed);
        assert!(
            !clean.contains("CANARY") && !clean.contains(&b64),
            "{clean}"
        );
        assert!(clean.contains("'authorization': '***'"), "{clean}");
        assert!(BaseUrl::parse("http://h:1").unwrap().secrets().is_empty());
    }

    /// A refused URL is echoed with its query values, fragment and userinfo hidden.
    #[test]
    fn refused_urls_never_echo_a_query_secret() {
        let e = BaseUrl::parse("http://127.0.0.1:44469/v1?api-key=CANARYQS1").unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
        assert!(e.contains("http://127.0.0.1:44469/v1?api-key=***"), "{e}");
        let e = BaseUrl::parse("http://u:CANARY1@h/v1?a=CANARY2&CANARY3#CANARY4").unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
        assert!(e.contains("http://***@h/v1?a=***&***#***"), "{e}");
        let e = BaseUrl::parse("u:CANARY5@h:8000/v1?k=CANARY6").unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
        assert_eq!(redact_for_message("http://h:1/v1"), "http://h:1/v1");
        assert_eq!(redact_for_message("http://h:1/x?"), "http://h:1/x?");
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
