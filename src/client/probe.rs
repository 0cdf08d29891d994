//! Asking the server about itself before any load (FORMATS.md §4, §5.5): version, context
//! length, and the engine settings it exposes. vLLM: `/version`, `/v1/models`, the labels
//! of `vllm:cache_config_info` on `/metrics`. Ollama: `/api/version`, `/api/show`,
//! `/api/ps` (quantization, parameter size, `size_vram`, allocated context).
//!
//! A server that cannot be reached, rejects the credentials, or does not serve the model is
//! an [`Error::Server`] (exit 5) before anything is written; missing optional endpoints
//! are not errors.

use std::time::Duration;

use bytes::Bytes;
use hyper::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};

use super::http::{SendError, Transport};
use super::{Api, BaseUrl, apierror};
use crate::error::Error;
use crate::schema::ServerInfo;

/// Time allowed for each probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of a probe response kept (server info is a few KiB; a longer body is cut here).
pub const PROBE_MAX_BYTES: usize = 1 << 20;
/// Most read past it and thrown away, so a body that is a little long frees its
/// connection; a longer one loses the connection instead.
const PROBE_DISCARD_BYTES: usize = 4 << 20;

/// The answer to one probe request.
enum Answer {
    Ok(Bytes),
    Status(u16, String),
}

struct Prober<'a> {
    transport: &'a Transport,
    base: &'a BaseUrl,
    headers: &'a HeaderMap,
}

impl Prober<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, Error> {
        let url = self.base.endpoint(path);
        let shown = format!("{}{path}", self.base.redacted().trim_end_matches('/'));
        let uri: Uri = url.parse().map_err(|_| {
            Error::usage(format!(
                "--base-url {}: not a valid URL",
                self.base.redacted()
            ))
        })?;
        let body = body.map(|b| Bytes::from(b.to_string()));
        let fut = async {
            let mut resp = self
                .transport
                .send(method, &uri, self.headers, body)
                .await
                .map_err(|e| match e {
                    SendError::Connect(m) | SendError::Closed(m) | SendError::Other(m) => m,
                })?;
            let mut buf = Vec::new();
            let mut discarded = 0usize;
            while let Some(chunk) = resp.body.chunk().await? {
                let room = PROBE_MAX_BYTES - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                discarded += chunk.len().saturating_sub(room);
                if discarded > PROBE_DISCARD_BYTES {
                    break;
                }
            }
            Ok::<_, String>((resp.status, Bytes::from(buf)))
        };
        match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
            Err(_) => Err(Error::Server(format!(
                "the server at {} did not answer {shown} within {}s; is it up and is --base-url right?",
                self.base.redacted(),
                PROBE_TIMEOUT.as_secs()
            ))),
            Ok(Err(m)) => Err(Error::Server(format!(
                "cannot reach the server at {} ({m}); is it running, and is --base-url right?",
                self.base.redacted()
            ))),
            Ok(Ok((status, body))) if (200..300).contains(&status) => Ok(Answer::Ok(body)),
            Ok(Ok((status, body))) => {
                if status == 401 || status == 403 {
                    return Err(Error::Server(format!(
                        "HTTP {status} from {shown}: {}; give the API key with --api-key-env VAR (default OPENAI_API_KEY) or --header 'Authorization: Bearer ...'",
                        apierror::snippet(&body)
                    )));
                }
                Ok(Answer::Status(status, apierror::snippet(&body)))
            }
        }
    }
}

/// Query the server before a run. `api` decides which family of endpoints is asked first.
pub async fn probe(
    transport: &Transport,
    base: &BaseUrl,
    headers: &HeaderMap,
    api: Api,
    model: &str,
) -> Result<ServerInfo, Error> {
    let p = Prober {
        transport,
        base,
        headers,
    };
    let mut info = ServerInfo {
        api: api.name().to_string(),
        base_url: base.redacted().to_string(),
        ..Default::default()
    };
    if api.is_ollama() {
        probe_ollama(&p, model, &mut info, true).await?;
    } else {
        probe_openai(&p, model, &mut info).await?;
        // An OpenAI API in front of Ollama: its native endpoints say more.
        if info.version.is_none()
            && let Ok(Answer::Ok(_)) = p.call(Method::GET, "/api/version", None).await
        {
            let _ = probe_ollama(&p, model, &mut info, false).await;
        }
    }
    Ok(info)
}

async fn probe_openai(p: &Prober<'_>, model: &str, info: &mut ServerInfo) -> Result<(), Error> {
    match p.call(Method::GET, "/v1/models", None).await? {
        Answer::Ok(body) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let models: Vec<&Value> = v
                .get("data")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let ids: Vec<&str> = models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .collect();
            let ours = models.iter().find(|m| {
                m.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| same_model(id, model))
            });
            if ours.is_none() && !ids.is_empty() {
                return Err(Error::Server(format!(
                    "the server at {} does not serve --model {model:?}; it serves: {}. Pass one of them with --model",
                    p.base.redacted(),
                    ids.join(", ")
                )));
            }
            if let Some(m) = ours {
                info.max_model_len = m.get("max_model_len").and_then(Value::as_u64);
                if let Some(root) = m.get("root").and_then(Value::as_str) {
                    info.details.insert("root".into(), json!(root));
                }
            }
            info.details.insert("served_models".into(), json!(ids));
        }
        Answer::Status(status, msg) => {
            info.details.insert(
                "models_endpoint".into(),
                json!(format!("HTTP {status}: {msg}")),
            );
        }
    }
    if let Ok(Answer::Ok(body)) = p.call(Method::GET, "/version", None).await
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
    {
        info.version = v.get("version").and_then(Value::as_str).map(str::to_string);
    }
    if let Ok(Answer::Ok(body)) = p.call(Method::GET, "/metrics", None).await {
        let text = String::from_utf8_lossy(&body);
        if let Some(labels) = metric_labels(&text, "vllm:cache_config_info") {
            info.details
                .insert("cache_config".into(), Value::Object(labels));
        }
    }
    Ok(())
}

async fn probe_ollama(
    p: &Prober<'_>,
    model: &str,
    info: &mut ServerInfo,
    required: bool,
) -> Result<(), Error> {
    match p.call(Method::GET, "/api/version", None).await? {
        Answer::Ok(body) => {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                info.version = v.get("version").and_then(Value::as_str).map(str::to_string);
            }
        }
        Answer::Status(status, msg) if required => {
            return Err(Error::Server(format!(
                "{} answered HTTP {status} on /api/version ({msg}): not an Ollama server? For vLLM or another OpenAI-compatible server use --api openai-chat",
                p.base.redacted()
            )));
        }
        Answer::Status(..) => {}
    }
    let d = &mut info.details;
    match p
        .call(Method::POST, "/api/show", Some(json!({ "model": model })))
        .await?
    {
        Answer::Ok(body) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(det) = v.get("details").and_then(Value::as_object) {
                for k in ["quantization_level", "parameter_size", "family", "format"] {
                    if let Some(x) = det.get(k).filter(|x| !x.is_null()) {
                        d.insert(k.into(), x.clone());
                    }
                }
            }
            let mi = v.get("model_info").or_else(|| v.get("modelinfo"));
            if let Some(mi) = mi.and_then(Value::as_object) {
                let arch = mi.get("general.architecture").and_then(Value::as_str);
                if let Some(n) = arch
                    .and_then(|a| mi.get(&format!("{a}.context_length")))
                    .and_then(Value::as_u64)
                {
                    d.insert("trained_context_length".into(), json!(n));
                }
                if let Some(n) = mi.get("general.parameter_count").and_then(Value::as_u64) {
                    d.insert("parameter_count".into(), json!(n));
                }
            }
        }
        Answer::Status(404, msg) if required => {
            return Err(Error::Server(format!(
                "the Ollama server at {} does not have --model {model:?} ({msg}); pull it with `ollama pull {model}` or pass another --model",
                p.base.redacted()
            )));
        }
        Answer::Status(..) => {}
    }
    ps_into(p, model, d).await;
    info.max_model_len = d
        .get("context_length")
        .or_else(|| d.get("trained_context_length"))
        .and_then(Value::as_u64)
        .or(info.max_model_len);
    Ok(())
}

/// Read `/api/ps` for the loaded model's `size_vram`, `size` and allocated
/// `context_length` into `details`.
async fn ps_into(p: &Prober<'_>, model: &str, d: &mut Map<String, Value>) {
    if let Ok(Answer::Ok(body)) = p.call(Method::GET, "/api/ps", None).await {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let loaded = v.get("models").and_then(Value::as_array).and_then(|ms| {
            ms.iter().find(|m| {
                ["name", "model"].iter().any(|k| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|n| same_model(n, model))
                })
            })
        });
        if let Some(m) = loaded {
            for k in ["size_vram", "size", "context_length"] {
                if let Some(x) = m.get(k).filter(|x| !x.is_null()) {
                    d.insert(k.into(), x.clone());
                }
            }
        }
    }
}

/// After a run against Ollama: the model is loaded now, so `/api/ps` can tell its
/// `size_vram` and allocated context (before the run it may not have been loaded yet).
/// Best effort: failures leave `info` as it was.
pub async fn refresh_ollama(
    transport: &Transport,
    base: &BaseUrl,
    headers: &HeaderMap,
    model: &str,
    info: &mut ServerInfo,
) {
    if info.details.contains_key("size_vram") {
        return;
    }
    let p = Prober {
        transport,
        base,
        headers,
    };
    ps_into(&p, model, &mut info.details).await;
    if let Some(n) = info.details.get("context_length").and_then(Value::as_u64) {
        info.max_model_len = Some(n);
    }
}

/// Model names match exactly, or as Ollama tags (`llama3.2` = `llama3.2:latest`).
fn same_model(served: &str, wanted: &str) -> bool {
    let norm = |s: &str| {
        if s.contains(':') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    served == wanted || norm(served) == norm(wanted)
}

/// The labels of the first sample of `metric` in a Prometheus text exposition, with
/// Python-style values made typed (`"True"` -> true, `"0.9"` -> 0.9, `"None"` -> null).
/// `engine` and `model_name` are dropped.
pub fn metric_labels(text: &str, metric: &str) -> Option<Map<String, Value>> {
    let line = text
        .lines()
        .find(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))?;
    let mut labels = Map::new();
    let mut rest = &line[metric.len() + 1..];
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.starts_with('}') || rest.is_empty() {
            break;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        rest = &rest[end? + 1..];
        if key != "engine" && key != "model_name" {
            labels.insert(key, typed(&value));
        }
    }
    Some(labels)
}

fn typed(v: &str) -> Value {
    match v {
        "True" | "true" => Value::Bool(true),
        "False" | "false" => Value::Bool(false),
        "None" | "" => Value::Null,
        _ => {
            if let Ok(i) = v.parse::<i64>() {
                json!(i)
            } else if let Ok(f) = v.parse::<f64>()
                && f.is_finite()
            {
                json!(f)
            } else {
                json!(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_config_labels() {
        let text = "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching=\"True\",engine=\"0\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"27648\",num_cpu_blocks=\"None\",odd=\"a\\\"b\"} 1.0\n";
        let l = metric_labels(text, "vllm:cache_config_info").unwrap();
        assert_eq!(l["block_size"], json!(16));
        assert_eq!(l["cache_dtype"], json!("auto"));
        assert_eq!(l["enable_prefix_caching"], json!(true));
        assert_eq!(l["gpu_memory_utilization"], json!(0.9));
        assert_eq!(l["num_cpu_blocks"], Value::Null);
        assert_eq!(l["odd"], json!("a\"b"));
        assert!(!l.contains_key("engine"));
        assert!(metric_labels("vllm:other{a=\"1\"} 1", "vllm:cache_config_info").is_none());
    }

    #[test]
    fn model_names() {
        assert!(same_model("llama3.2:latest", "llama3.2"));
        assert!(same_model("sim-model", "sim-model"));
        assert!(!same_model("llama3.2:1b", "llama3.2"));
    }
}
