//! Flag parsing shared by several commands: `--config`, `--label`, dates, output policy.

use std::collections::BTreeMap;

use clap::Args;
use serde_json::{Map, Value};

use crate::catalog::Filter;
use crate::error::Error;

/// Run filters shared by `compare`, `query` and `export`.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterArgs {
    /// Only runs of this platform (repeatable).
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// Only runs of this model, as written or file-safe: gemma3:12b = gemma3-12b (repeatable).
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Only runs with this label (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Only runs on or after this date (2024-10-28) or timestamp.
    #[arg(long)]
    pub since: Option<String>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Result<Filter, Error> {
        Ok(Filter {
            platforms: self.platforms.clone(),
            models: self.models.clone(),
            labels: parse_labels(&self.labels)?,
            since: self.since.as_deref().map(parse_since).transpose()?,
        })
    }
}

/// `--gpu-hourly-usd 2.50` (or `$2.50`): a finite price above zero.
pub fn gpu_price(arg: Option<&str>) -> Result<Option<f64>, Error> {
    let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    match arg.trim_start_matches('$').parse::<f64>() {
        Ok(v) if crate::report::cost::valid_price(v) => Ok(Some(v)),
        _ => Err(Error::usage(format!(
            "--gpu-hourly-usd {arg:?}: expected the price of one GPU hour in US dollars, a number above zero, e.g. --gpu-hourly-usd 2.50"
        ))),
    }
}

/// The largest `--config @file` read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// `--config '{"max_model_len": 4096}'` or `--config @file.json`: must be a JSON object.
pub fn parse_config(arg: Option<&str>) -> Result<Map<String, Value>, Error> {
    let Some(arg) = arg else {
        return Ok(Map::new());
    };
    let (text, origin) = if let Some(path) = arg.strip_prefix('@') {
        let cannot = |e: &dyn std::fmt::Display| {
            Error::usage(format!(
                "--config @{path}: cannot read the file ({e}); give a JSON object inline or @path/to/config.json"
            ))
        };
        let file = crate::userfile::open(std::path::Path::new(path)).map_err(|e| cannot(&e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| cannot(&e))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(Error::usage(format!(
                "--config @{path}: the file is over {} MiB; a config is a small JSON object of engine settings",
                MAX_CONFIG_BYTES >> 20
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| cannot(&e))?;
        (text, format!("--config @{path}"))
    } else {
        (arg.to_string(), "--config".to_string())
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Error::usage(format!(
            "{origin}: expected a JSON object like '{{\"max_model_len\": 4096}}', got {}",
            kind_of(&other)
        ))),
        Err(e) => Err(Error::usage(format!(
            "{origin}: not valid JSON ({e}); example: --config '{{\"max_model_len\": 4096, \"gpu_memory_utilization\": 0.9}}'"
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `--label key=value`, repeatable.
pub fn parse_labels(args: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut labels = BTreeMap::new();
    for arg in args {
        let (k, v) = parse_label(arg)?;
        labels.insert(k, v);
    }
    Ok(labels)
}

/// One `key=value` label.
pub fn parse_label(arg: &str) -> Result<(String, String), Error> {
    match arg.split_once('=') {
        Some((k, _)) if k.contains('.') => Err(Error::usage(format!(
            "--label {arg:?}: a label key may not contain a dot (it would collide with nested names in `export` and `query --metric`); use - or _ instead, e.g. --label {}=...",
            k.trim().replace('.', "_")
        ))),
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Error::usage(format!(
            "--label {arg:?}: expected key=value, e.g. --label gpu=rtx4080"
        ))),
    }
}

/// `--since 2024-10-28` (midnight UTC) or a full RFC 3339 timestamp with any UTC offset
/// (`2024-10-28T09:38:12+02:00`; `t`/`z` in either case): checked here, compared as an
/// instant by [`Filter`].
pub fn parse_since(arg: &str) -> Result<String, Error> {
    if crate::catalog::instant(arg).is_some() {
        Ok(arg.trim().to_string())
    } else {
        Err(Error::usage(format!(
            "--since {arg:?}: expected a date like 2024-10-28 or a timestamp like 2024-10-28T07:38:12Z (any UTC offset)"
        )))
    }
}

/// The GPUs `CUDA_VISIBLE_DEVICES` leaves visible to this process (and to a server or
/// command it starts).
pub fn visible_gpus() -> crate::telemetry::VisibleDevices {
    crate::telemetry::VisibleDevices::parse(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref())
}

/// How to reach a store at a URL (`--store s3://...`), from the provider's standard
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...; `GOOGLE_*`, `AZURE_*`),
/// passed to the library as options that live in memory only.
pub fn remote_config(url: &str) -> crate::store::remote::RemoteConfig {
    let options = remote_options(url, std::env::vars());
    let secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    crate::store::remote::RemoteConfig {
        url: url.to_string(),
        options,
        timeout: std::time::Duration::from_secs(secs("BENCHKEEP_REMOTE_TIMEOUT_S", 30).max(1)),
        retries: secs("BENCHKEEP_REMOTE_RETRIES", 3) as usize,
    }
}

/// The options of a store URL's provider from variables: every non-empty `AWS_*`
/// (`GOOGLE_*` for gs://, `AZURE_*` for az:// and abfs[s]://) by its lowercased name; and
/// for Azure, the az CLI's `AZURE_STORAGE_ACCOUNT` and `AZURE_STORAGE_KEY` as the account
/// name and key when those are not given by object_store's own names.
fn remote_options(
    url: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    let azure = scheme == "az" || scheme.starts_with("abfs");
    let prefix = match scheme.as_str() {
        "gs" => "GOOGLE_",
        _ if azure => "AZURE_",
        _ => "AWS_",
    };
    let mut options: Vec<(String, String)> = vars
        .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    if azure {
        for (cli, ours) in [
            ("azure_storage_account", "azure_storage_account_name"),
            ("azure_storage_key", "azure_storage_account_key"),
        ] {
            let given = options.iter().any(|(k, _)| k == ours);
            let alias = options
                .iter()
                .find(|(k, _)| k == cli)
                .map(|(_, v)| v.clone());
            // First: object_store applies options in order, so any of its own names
            // for the same thing (e.g. `azure_storage_access_key`) given later wins.
            if let (false, Some(v)) = (given, alias) {
                options.insert(0, (ours.to_string(), v));
            }
        }
    }
    options
}

/// The spool (local working copy) of a URL store: `--spool`/`BENCHKEEP_SPOOL`, else
/// `$XDG_CACHE_HOME/benchkeep/spool/<sha256 of the URL without credentials>` (or under
/// `~/.cache`, else the temp directory).
pub fn spool_dir(url: &str, given: Option<std::path::PathBuf>) -> std::path::PathBuf {
    if let Some(dir) = given {
        return dir;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    let hash = crate::digest::sha256_hex(crate::redact::url(url.trim_end_matches('/')));
    cache.join("benchkeep").join("spool").join(&hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_inline_and_errors() {
        let m = parse_config(Some(r#"{"max_model_len": 4096}"#)).unwrap();
        assert_eq!(m["max_model_len"], 4096);
        assert!(parse_config(None).unwrap().is_empty());
        let e = parse_config(Some("{max_model_len: 4096}")).unwrap_err();
        assert!(e.to_string().contains("--config: not valid JSON"), "{e}");
        let e = parse_config(Some("[1]")).unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        let e = parse_config(Some(&format!("@{}", big.display()))).unwrap_err();
        assert!(e.to_string().contains("over 1 MiB"), "{e}");
        let e = parse_config(Some("@/nonexistent/c.json")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn each_provider_takes_its_own_variables() {
        let vars = || {
            [
                ("AWS_ACCESS_KEY_ID", "a"),
                ("GOOGLE_APPLICATION_CREDENTIALS", "/k.json"),
                ("AZURE_STORAGE_ACCOUNT", "acct"),
                ("AZURE_STORAGE_KEY", "k1"),
                ("AZURE_STORAGE_ENDPOINT", ""),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
        };
        let names = |url: &str| -> Vec<String> {
            remote_options(url, vars())
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(names("s3://b/p"), ["aws_access_key_id"]);
        assert_eq!(names("gs://b/p"), ["google_application_credentials"]);
        let az = remote_options("az://c/p", vars());
        assert!(az.contains(&("azure_storage_account_name".into(), "acct".into())));
        assert!(az.contains(&("azure_storage_account_key".into(), "k1".into())));
        assert!(
            !az.iter().any(|(k, _)| k == "azure_storage_endpoint"),
            "empty is unset"
        );
        // object_store's own names win over the az CLI's.
        let given = vars().chain([("AZURE_STORAGE_ACCOUNT_NAME".into(), "mine".into())]);
        let az = remote_options("abfss://c/p", given);
        assert!(az.contains(&("azure_storage_account_name".into(), "mine".into())));
        assert!(!az.contains(&("azure_storage_account_name".into(), "acct".into())));
        // ... as do its other names for the key: the alias comes first, they override it.
        let given = vars().chain([("AZURE_STORAGE_ACCESS_KEY".into(), "k2".into())]);
        let az = remote_options("az://c/p", given);
        let at = |k: &str| az.iter().position(|(n, _)| n == k).unwrap();
        assert!(
            at("azure_storage_account_key") < at("azure_storage_access_key"),
            "{az:?}"
        );
    }

    #[test]
    fn prices() {
        assert_eq!(gpu_price(Some("2.50")).unwrap(), Some(2.5));
        assert_eq!(gpu_price(Some("$3")).unwrap(), Some(3.0));
        assert_eq!(gpu_price(None).unwrap(), None);
        for bad in ["0", "-1", "nan", "inf", "cheap"] {
            assert!(gpu_price(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        let l = parse_labels(&["gpu=rtx4080".into(), "note=a=b".into()]).unwrap();
        assert_eq!(l["gpu"], "rtx4080");
        assert_eq!(l["note"], "a=b");
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
        let e = parse_label("a.b=1").unwrap_err();
        assert!(e.to_string().contains("may not contain a dot"), "{e}");
    }
}
