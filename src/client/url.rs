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
        let bad = |why: &str| {
            format!(
                "--base-url {redacted}: {why}; expected e.g. http://127.0.0.1:8000 or http://localhost:11434"
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
        let (credentials, host) = match authority.rfind('@') {
            Some(i) => (Some(percent_decode(&authority[..i])), &authority[i + 1..]),
            None => (None, authority),
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

    /// The secret parts of the URL (to scrub from any message).
    pub fn secrets(&self) -> Vec<String> {
        let Some(c) = &self.credentials else {
            return Vec::new();
        };
        let mut v = vec![c.clone()];
        if let Some((user, pass)) = c.split_once(':') {
            v.push(pass.to_string());
            v.push(user.to_string());
        }
        v.retain(|s| s.len() >= 4);
        v
    }
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

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
