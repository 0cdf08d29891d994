//! Talking to an MLflow tracking server over its REST API (`/api/2.0/mlflow/...`): find or
//! create an experiment, find a run by benchkeep's id, create a run, log its params,
//! metrics and tags in batches, and close it. Bodies are small JSON; answers are read up to
//! [`MAX_ANSWER_BYTES`]; credentials travel in a header and never in a message.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;

/// The most of an answer read (a search answer for one run is a few KB).
const MAX_ANSWER_BYTES: usize = 4 << 20;
/// MLflow's limits per `runs/log-batch` call.
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS: usize = 100;
const BATCH_TAGS: usize = 100;

/// One run as MLflow sees it (built by `report::trackers::mlflow_run`).
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowRun {
    pub name: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub finished: bool,
    pub failed: bool,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

/// A tracking server: its base URL (without credentials) and the auth header to send.
pub struct Tracker {
    base: String,
    shown: String,
    auth: Option<Auth>,
    http: reqwest::Client,
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// An `Authorization` header value (`Bearer ...`), from `MLFLOW_TRACKING_TOKEN`.
    Header(String),
    /// HTTP basic auth, from the URI's user info or `MLFLOW_TRACKING_USERNAME`/`_PASSWORD`.
    Basic(String, String),
}

/// What happened to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Created(String),
    AlreadyThere(String),
}

impl Tracker {
    /// `base` is the tracking URI (`http://host:5000`, a path prefix allowed; credentials
    /// in it are moved into basic auth); `auth` what the environment gave.
    pub fn new(base: &str, auth: Option<Auth>, timeout: Duration) -> Result<Tracker, Error> {
        let parsed = reqwest::Url::parse(base).map_err(|e| {
            Error::usage(format!(
                "--tracking-uri {}: {e}; expected http://HOST:PORT (an MLflow tracking server)",
                crate::redact::url(base)
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::usage(format!(
                "--tracking-uri {}: only http:// and https:// tracking servers can be pushed to (a file store or databricks:// URI is not a REST server)",
                crate::redact::url(base)
            )));
        }
        let mut auth = auth;
        let mut clean = parsed.clone();
        if !parsed.username().is_empty() {
            let user = urlencoding_decode(parsed.username());
            let pass = urlencoding_decode(parsed.password().unwrap_or_default());
            auth.get_or_insert(Auth::Basic(user, pass));
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
        }
        let base = clean.as_str().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Server(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Tracker {
            shown: base.clone(),
            base,
            auth,
            http,
        })
    }

    /// The server's URL as it may be printed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.http.request(method, &url);
        match &self.auth {
            Some(Auth::Header(v)) => req = req.header(reqwest::header::AUTHORIZATION, v),
            Some(Auth::Basic(u, p)) => req = req.basic_auth(u, Some(p)),
            None => {}
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let mut resp = req.send().await.map_err(|e| {
            Error::Server(format!(
                "MLflow at {} cannot be reached: {}; is `mlflow server` running there?",
                self.shown,
                without_url(&e)
            ))
        })?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::Server(format!("MLflow at {}: {}", self.shown, without_url(&e))))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Error::Server(format!(
                    "MLflow at {}: the answer to {path} is over {} MiB",
                    self.shown,
                    MAX_ANSWER_BYTES >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = v["error_code"].as_str().unwrap_or("");
            let msg = v["message"]
                .as_str()
                .map(crate::redact::url_in_text)
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
                });
            return Err(Error::Server(format!(
                "MLflow at {} answered {status} to {path}: {code} {msg}",
                self.shown
            )));
        }
        Ok(v)
    }

    /// The id of the experiment named `name`, created if it does not exist.
    pub async fn experiment(&self, name: &str) -> Result<String, Error> {
        let q = format!(
            "experiments/get-by-name?experiment_name={}",
            percent_encode(name)
        );
        match self.call(reqwest::Method::GET, &q, None).await {
            Ok(v) => v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Server(format!("MLflow at {}: no experiment_id in {v}", self.shown))
                }),
            Err(Error::Server(m)) if m.contains("RESOURCE_DOES_NOT_EXIST") || m.contains("404") => {
                let v = self
                    .call(
                        reqwest::Method::POST,
                        "experiments/create",
                        Some(json!({ "name": name })),
                    )
                    .await?;
                v["experiment_id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::Server(format!("MLflow at {}: no experiment_id in {v}", self.shown))
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// The MLflow run id of the run tagged `benchkeep.test_id = test_id`, if one exists.
    pub async fn find(&self, experiment: &str, test_id: &str) -> Result<Option<String>, Error> {
        let v = self
            .call(
                reqwest::Method::POST,
                "runs/search",
                Some(json!({
                    "experiment_ids": [experiment],
                    "filter": format!("tags.`benchkeep.test_id` = '{}'", test_id.replace('\'', "\\'")),
                    "max_results": 1,
                })),
            )
            .await?;
        Ok(v["runs"][0]["info"]["run_id"].as_str().map(str::to_string))
    }

    /// Push one run unless a run with its benchkeep id is already in the experiment.
    pub async fn push(&self, experiment: &str, run: &MlflowRun) -> Result<Pushed, Error> {
        let test_id = run
            .tags
            .get("benchkeep.test_id")
            .cloned()
            .unwrap_or_default();
        if let Some(id) = self.find(experiment, &test_id).await? {
            return Ok(Pushed::AlreadyThere(id));
        }
        let mut create = json!({ "experiment_id": experiment, "run_name": run.name });
        if let Some(s) = run.start_ms {
            create["start_time"] = json!(s);
        }
        // The id tag goes in with the create, so a push cut short is still found next time.
        create["tags"] = json!([{ "key": "benchkeep.test_id", "value": test_id }]);
        let v = self
            .call(reqwest::Method::POST, "runs/create", Some(create))
            .await?;
        let run_id = v["run"]["info"]["run_id"]
            .as_str()
            .ok_or_else(|| Error::Server(format!("MLflow at {}: no run_id in {v}", self.shown)))?
            .to_string();
        let ts = run.end_ms.or(run.start_ms).unwrap_or(0);
        let metrics: Vec<Value> = run
            .metrics
            .iter()
            .map(|(k, v)| json!({ "key": key(k), "value": v, "timestamp": ts, "step": 0 }))
            .collect();
        let params: Vec<Value> = run
            .params
            .iter()
            .map(|(k, v)| json!({ "key": key(k), "value": v }))
            .collect();
        let tags: Vec<Value> = run
            .tags
            .iter()
            .filter(|(k, _)| k.as_str() != "benchkeep.test_id")
            .map(|(k, v)| json!({ "key": key(k), "value": v }))
            .collect();
        for c in metrics.chunks(BATCH_METRICS) {
            self.log_batch(&run_id, c, &[], &[]).await?;
        }
        for c in params.chunks(BATCH_PARAMS) {
            self.log_batch(&run_id, &[], c, &[]).await?;
        }
        for c in tags.chunks(BATCH_TAGS) {
            self.log_batch(&run_id, &[], &[], c).await?;
        }
        let status = match (run.finished, run.failed) {
            (false, _) => "RUNNING",
            (true, true) => "FAILED",
            (true, false) => "FINISHED",
        };
        let mut update = json!({ "run_id": run_id, "status": status });
        if let Some(e) = run.end_ms {
            update["end_time"] = json!(e);
        }
        self.call(reqwest::Method::POST, "runs/update", Some(update))
            .await?;
        Ok(Pushed::Created(run_id))
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Value],
        params: &[Value],
        tags: &[Value],
    ) -> Result<(), Error> {
        self.call(
            reqwest::Method::POST,
            "runs/log-batch",
            Some(json!({ "run_id": run_id, "metrics": metrics, "params": params, "tags": tags })),
        )
        .await
        .map(|_| ())
    }
}

/// MLflow's key alphabet: alphanumerics, `_ - . / ` and space; anything else becomes `_`.
fn key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(250)
        .collect()
}

/// A reqwest error's text without the URL (which may name a path with a token in it).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(u) = e.url() {
        text = text.replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    crate::redact::url_in_text(&text)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_cut_to_mlflows_alphabet() {
        assert_eq!(key("config.max_num_seqs"), "config.max_num_seqs");
        assert_eq!(key("label.a:b=c"), "label.a_b_c");
    }

    #[test]
    fn credentials_in_the_uri_become_a_header_and_leave_the_shown_url() {
        let t = Tracker::new(
            "http://bob:s3cr%21t@127.0.0.1:5000/",
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(t.shown(), "http://127.0.0.1:5000");
        assert!(!t.shown().contains("s3cr"));
        assert_eq!(t.auth, Some(Auth::Basic("bob".into(), "s3cr!t".into())));
    }

    #[test]
    fn a_non_http_uri_is_a_usage_error() {
        let e = Tracker::new("file:///tmp/mlruns", None, Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Usage(_)), "{e}");
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(percent_encode("bench keep/α"), "bench%20keep%2F%CE%B1");
    }
}
