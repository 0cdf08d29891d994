//! What a failed object store request means for the user: a missing bucket (or Azure
//! container), refused credentials, an endpoint out of reach, or another store error, each
//! with the fix in the provider's own variables (AWS_*, GOOGLE_*, AZURE_*).

use crate::error::Error;

/// Classify a failed request on `rel` (redacted; never the credentials): a missing
/// bucket, refused credentials or another store failure are store errors (exit 4); an
/// endpoint that cannot be reached is a server error (exit 5).
pub fn classify(
    e: &object_store::Error,
    action: &str,
    rel: &str,
    shown: &str,
    endpoint: Option<&str>,
) -> Error {
    let text = detail(e);
    let lower = text.to_ascii_lowercase();
    let bucket = bucket_of(shown);
    let scheme = shown.split_once("://").map_or("", |(s, _)| s);
    if missing_bucket(&lower) {
        let what = if is_azure(scheme) {
            "container"
        } else {
            "bucket"
        };
        return Error::StoreIo(format!(
            "{shown}: the {what} {bucket} does not exist (or these credentials cannot see it); create it, or fix the {what} in --store / BENCHKEEP_STORE"
        ));
    }
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "accessdenied",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "403 forbidden",
        "status 403",
        "401 unauthorized",
        "missing credentials",
        "could not find credentials",
    ]
    .iter()
    .any(|k| lower.contains(k));
    if denied {
        return Error::StoreIo(format!(
            "{shown}: access denied while trying to {action} {rel}: check {} (the provider's credential variables) and the {}'s permissions",
            credential_vars(scheme),
            if is_azure(scheme) {
                "container"
            } else {
                "bucket"
            }
        ));
    }
    let unreachable = [
        "error sending request",
        "connection refused",
        "tcp connect error",
        "dns error",
        "failed to lookup address",
        "operation timed out",
        "timed out",
        "connection reset",
        "client error (connect)",
    ]
    .iter()
    .any(|k| lower.contains(k));
    if unreachable {
        let at = endpoint.map_or_else(|| shown.to_string(), str::to_string);
        return Error::Server(format!(
            "{shown}: cannot reach the object store at {at} ({}); check the network, and {}",
            short(&text),
            endpoint_hint(scheme)
        ));
    }
    Error::StoreIo(format!("{shown}: cannot {action} {rel}: {}", short(&text)))
}

/// Whether a "not found" is the bucket's (or Azure container's), not the object's.
pub fn no_bucket(e: &object_store::Error) -> bool {
    missing_bucket(&detail(e).to_ascii_lowercase())
}

/// Whether a lowercased error detail says the bucket or container is missing: S3's and
/// GCS's XML `NoSuchBucket`, Azure's `ContainerNotFound`.
fn missing_bucket(lower: &str) -> bool {
    ["nosuchbucket", "bucket does not exist", "containernotfound"]
        .iter()
        .any(|k| lower.contains(k))
}

fn is_azure(scheme: &str) -> bool {
    let s = scheme.to_ascii_lowercase();
    s == "az" || s.starts_with("abfs")
}

/// The credential variables of a store URL's provider, for messages.
pub fn credential_vars(scheme: &str) -> &'static str {
    match scheme.to_ascii_lowercase().as_str() {
        "gs" => {
            "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT (a service account key file), or GOOGLE_SERVICE_ACCOUNT_KEY"
        }
        s if is_azure(s) => {
            "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID"
        }
        _ => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_SESSION_TOKEN)",
    }
}

/// Where a store URL's provider takes a custom endpoint, for messages.
fn endpoint_hint(scheme: &str) -> &'static str {
    match scheme.to_ascii_lowercase().as_str() {
        "gs" => "GOOGLE_BASE_URL for a GCS-compatible server",
        s if is_azure(s) => {
            "AZURE_STORAGE_ENDPOINT (or AZURE_STORAGE_USE_EMULATOR) for an Azure-compatible server"
        }
        _ => "AWS_ENDPOINT_URL for an S3-compatible server",
    }
}

/// The error and its causes as one redacted line.
fn detail(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        src = s.source();
    }
    let text = crate::redact::url_in_text(&text);
    match crate::redact::in_text(text.as_bytes()) {
        Some(cut) => String::from_utf8_lossy(&cut).into_owned(),
        None => text,
    }
}

/// At most 400 characters of a detail (a server's HTML error page is no message).
fn short(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(400) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

/// The bucket (or container, or directory) of a store URL.
fn bucket_of(shown: &str) -> String {
    let rest = shown.split_once("://").map_or(shown, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_string().into(),
        }
    }

    #[test]
    fn each_failure_gets_its_fix_and_code() {
        let e = classify(
            &generic("Client error with status 404 Not Found: <Code>NoSuchBucket</Code>"),
            "read",
            "benchkeep.json",
            "s3://nope/p",
            None,
        );
        assert!(
            e.to_string().contains("the bucket nope does not exist"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 4);
        let e = classify(
            &generic("<Code>InvalidAccessKeyId</Code>"),
            "read",
            "x",
            "s3://b",
            None,
        );
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        assert_eq!(e.exit_code(), 4);
        let e = classify(
            &generic(
                "error sending request: client error (Connect): tcp connect error: Connection refused",
            ),
            "read",
            "x",
            "s3://b",
            Some("http://127.0.0.1:9"),
        );
        assert!(e.to_string().contains("http://127.0.0.1:9"), "{e}");
        assert_eq!(e.exit_code(), 5);
        let e = classify(&generic("weird"), "read", "x", "s3://b", None);
        assert_eq!(e.exit_code(), 4);
    }

    #[test]
    fn each_provider_gets_its_own_variables() {
        let e = classify(
            &generic("<Code>ContainerNotFound</Code>"),
            "read",
            "x",
            "az://box/p",
            None,
        );
        assert!(
            e.to_string().contains("the container box does not exist"),
            "{e}"
        );
        let e = classify(&generic("status 403"), "read", "x", "gs://b/p", None);
        assert!(
            e.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{e}"
        );
        assert!(!e.to_string().contains("AWS_"), "{e}");
        let e = classify(&generic("status 403"), "read", "x", "az://b/p", None);
        assert!(e.to_string().contains("AZURE_STORAGE_ACCOUNT_KEY"), "{e}");
        let e = classify(&generic("connection refused"), "read", "x", "az://b", None);
        assert!(e.to_string().contains("AZURE_STORAGE_ENDPOINT"), "{e}");
        assert_eq!(e.exit_code(), 5);
        let e = classify(&generic("connection refused"), "read", "x", "gs://b", None);
        assert!(e.to_string().contains("GOOGLE_BASE_URL"), "{e}");
    }

    #[test]
    fn details_are_redacted() {
        let e = classify(
            &generic("failed http://user:hunter2@host/x?token=abc123"),
            "read",
            "x",
            "s3://b",
            None,
        );
        let t = e.to_string();
        assert!(!t.contains("hunter2") && !t.contains("abc123"), "{t}");
    }
}
