//! Credentials for `run`: which `Authorization` is sent when several are given, extra
//! headers (values never printed or stored), and the command line with every secret hidden.

use hyper::http::{HeaderMap, HeaderName, HeaderValue, header};

use super::args::TargetArgs;
use crate::client::BaseUrl;
use crate::error::Error;

/// The API keys the environment offers, read once by the CLI: the one `--api-key-env`
/// names, and `$OPENAI_API_KEY`.
#[derive(Debug, Clone, Default)]
pub struct EnvKeys {
    /// `Some(Err(var))` when `--api-key-env VAR` names an unset or empty variable.
    pub explicit: Option<Result<String, String>>,
    pub implicit: Option<String>,
}

impl EnvKeys {
    pub fn read(args: &TargetArgs) -> EnvKeys {
        EnvKeys {
            explicit: args
                .api_key_env
                .as_ref()
                .map(|var| match std::env::var(var) {
                    Ok(k) if !k.is_empty() => Ok(k),
                    _ => Err(var.clone()),
                }),
            implicit: std::env::var("OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        }
    }
}

/// The command line with every `--header` value hidden (before the generic redaction).
pub fn redacted_command(argv: &[String]) -> String {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for a in argv {
        if hide_next {
            out.push(hide_header_value(a));
            hide_next = false;
        } else if a == "--header" {
            out.push(a.clone());
            hide_next = true;
        } else if let Some(v) = a.strip_prefix("--header=") {
            out.push(format!("--header={}", hide_header_value(v)));
        } else {
            out.push(a.clone());
        }
    }
    crate::redact::command_line(&out)
}

fn hide_header_value(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) => format!("{}: {}", name.trim(), crate::redact::REDACTED),
        None => crate::redact::REDACTED.to_string(),
    }
}

/// Headers and the secrets to scrub from messages.
/// Headers that frame the HTTP exchange: the transport sets them, and a user's value would
/// break every request (a wrong length, a second host, a closed connection).
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

pub fn build_headers(
    args: &TargetArgs,
    keys: &EnvKeys,
    base: &BaseUrl,
) -> Result<(HeaderMap, Vec<String>), Error> {
    let mut headers = HeaderMap::new();
    let mut secrets = base.secrets();
    for h in &args.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| {
            Error::usage(
                "--header: expected 'Name: value', e.g. --header 'X-Request-Source: bench'",
            )
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::usage(format!(
                "--header {:?}: not a valid header name",
                name.trim()
            ))
        })?;
        if FRAMING_HEADERS.contains(&name.as_str()) {
            return Err(Error::usage(format!(
                "--header {name}: benchkeep sets this header itself (it frames the HTTP \
                 request; a different value would break every request); drop the flag"
            )));
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            Error::usage(format!(
                "--header {name}: the value is not a valid header value (value not shown)"
            ))
        })?;
        value.set_sensitive(true);
        secrets.push(value.to_str().unwrap_or_default().to_string());
        headers.append(name, value);
    }
    let explicit_key = match &keys.explicit {
        Some(Ok(k)) => Some(k.clone()),
        Some(Err(var)) => {
            return Err(Error::usage(format!(
                "--api-key-env {var}: ${var} is not set; export it or drop the flag"
            )));
        }
        None => None,
    };
    let implicit_key = keys.implicit.clone();
    for k in explicit_key.iter().chain(implicit_key.iter()) {
        secrets.push(k.clone());
    }
    let bearer = |k: &str| {
        HeaderValue::from_str(&format!("Bearer {k}"))
            .map_err(|_| Error::usage("the API key contains characters not allowed in a header"))
    };
    if let Some(w) = auth_warning(
        headers.contains_key(header::AUTHORIZATION),
        explicit_key.as_ref().and(args.api_key_env.as_deref()),
        base.has_credentials(),
        implicit_key.is_some(),
    ) {
        eprintln!("{w}");
    }
    let auth = if headers.contains_key(header::AUTHORIZATION) {
        None
    } else if let Some(k) = &explicit_key {
        Some(bearer(k)?)
    } else if let Some(basic) = base.basic_auth() {
        Some(HeaderValue::from_str(&basic).map_err(|_| {
            Error::usage("--base-url: the user:password part is not usable as a header")
        })?)
    } else if let Some(k) = &implicit_key {
        Some(bearer(k)?)
    } else {
        None
    };
    if let Some(mut v) = auth {
        v.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, v);
    }
    Ok((headers, secrets))
}

/// One line saying which credentials are sent when several are given (only one
/// `Authorization` header can be), and which are not; never the values. The order: a
/// `--header Authorization`, then `--api-key-env VAR`, then the URL's `user:password`,
/// then `$OPENAI_API_KEY`.
fn auth_warning(
    header: bool,
    explicit_var: Option<&str>,
    url: bool,
    implicit: bool,
) -> Option<String> {
    let mut given: Vec<String> = Vec::new();
    if header {
        given.push("the --header Authorization value".into());
    }
    if let Some(var) = explicit_var {
        given.push(format!("the API key from ${var} (Bearer)"));
    }
    if url {
        given.push("the --base-url user:password (Basic)".into());
    }
    if implicit && explicit_var.is_none() {
        given.push("the API key from $OPENAI_API_KEY (Bearer)".into());
    }
    if given.len() < 2 {
        return None;
    }
    let sent = given.remove(0);
    Some(format!(
        "warning: several credentials given; sending {sent}, not {}",
        given.join(" nor ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_warning_names_what_is_sent() {
        assert_eq!(auth_warning(false, None, true, false), None);
        assert_eq!(auth_warning(false, None, false, true), None);
        let w = auth_warning(false, None, true, true).unwrap();
        assert_eq!(
            w,
            "warning: several credentials given; sending the --base-url user:password (Basic), not the API key from $OPENAI_API_KEY (Bearer)"
        );
        let w = auth_warning(false, Some("MY_KEY"), true, true).unwrap();
        assert!(
            w.contains("sending the API key from $MY_KEY (Bearer), not the --base-url"),
            "{w}"
        );
        assert!(!w.contains("OPENAI_API_KEY"), "{w}");
        let w = auth_warning(true, None, true, true).unwrap();
        assert!(
            w.contains("sending the --header Authorization value, not"),
            "{w}"
        );
    }

    #[test]
    fn header_values_never_reach_the_command_line() {
        let argv: Vec<String> = [
            "benchkeep",
            "run",
            "--header",
            "X-Key: CANARY1",
            "--header=X-Other: CANARY2",
            "--base-url",
            "http://u:CANARY3@h:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = redacted_command(&argv);
        assert!(!c.contains("CANARY"), "{c}");
        assert!(c.contains("X-Key: ***"), "{c}");
    }
}
