//! Prompt calibration: before a synthetic run, learn how many prompt tokens the server
//! counts for a prompt of a given number of words (its tokenizer and chat template
//! included), so that `--input-tokens N` sends N of the server's tokens, not N words.
//!
//! The count is asked of the server itself, in one of two ways:
//! - `tokenize`: vLLM's `POST /tokenize` with the same `messages` (or `prompt`) the run
//!   sends; exact and cheap (no generation), used when the server answers it;
//! - `probe_usage`: a real request of the run's shape with one output token, reading the
//!   prompt tokens the server reports (`usage.prompt_tokens`, Ollama's
//!   `prompt_eval_count`); everywhere else.
//!
//! The count is fitted as `tokens = overhead + tokens_per_word x words` over probes of 16
//! words and of a longer prompt, then checked with a probe at the words solved for the
//! target mean, refitting (least squares over every probe) until it lands within 1% (at
//! most [`MAX_VERIFY`] checks). Each probe is the mean over several prompts of that many
//! words ([`TOKENIZE_SAMPLES`] through `/tokenize`, [`USAGE_SAMPLES`] real requests): words
//! differ in their token count, and a real tokenizer with few words per prompt gives
//! counts that spread by 10% or more from one prompt to the next, so one prompt per length
//! fits the line to that prompt, not to the run's mean (measured on the vLLM CPU peer: a
//! chat target of 32 tokens missed by 8.75% with one prompt per length). Probes are not requests of the run: they are not in the
//! raw log or the results. A calibration that fails does not stop the run: it sends one
//! word per token, with `method: none` and the `error` in the metadata (a server that
//! fails every request still gets a recorded, failed run). After the run, the prompt
//! tokens the server reported for the run's own requests give the achieved distribution
//! ([`achieved`]).
//!
//! A probe is a real request, so on a server that loads models on demand (Ollama) the
//! first probe pays the model load, not the run's first request. That load is not lost:
//! the probes' `load_duration`s are summed into `server_load_ms`. A benchmark of the cold
//! start itself uses `--calibrate off`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::http::{self, HeaderMap, Uri};
use serde_json::{Value, json};

use super::synthetic::{Sizing, Synthetic};
use crate::client::{Api, BaseUrl, Client, body};
use crate::error::Error;

mod with_tokenizer;
pub use with_tokenizer::{TOKENIZER_SAMPLES, calibrate_with_tokenizer};

/// Index space of calibration probes (disjoint from measured and warm-up requests).
const PROBE_BASE: u64 = 3 << 61;
/// Checks at the solved length after the first fit.
pub const MAX_VERIFY: u32 = 3;
/// Words of the short probe.
const SHORT_WORDS: u32 = 16;
/// Prompts averaged per probe length through `/tokenize` (no generation: cheap).
pub const TOKENIZE_SAMPLES: u64 = 8;
/// Prompts averaged per probe length through real 1-token requests.
pub const USAGE_SAMPLES: u64 = 3;
/// Time allowed for one `/tokenize` call.
const TOKENIZE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the prompts of a run were sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Tokenize,
    ProbeUsage,
    /// `--tokenizer FILE`: the text counted by a local tokenizer (`with_tokenizer.rs`).
    Tokenizer,
    /// `--calibrate off`: one word per token.
    None,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Tokenize => "tokenize",
            Method::ProbeUsage => "probe_usage",
            Method::Tokenizer => "tokenizer",
            Method::None => "none",
        }
    }
}

/// The outcome of a calibration: the sizing the run uses, and how it was found.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub method: Method,
    pub sizing: Sizing,
    /// The target mean prompt length, in tokens.
    pub target: f64,
    /// `(words, mean tokens)` of each probe length, in order.
    pub probes: Vec<(u32, f64)>,
    /// Why the calibration failed (the run then sends one word per token).
    pub error: Option<String>,
    /// The model load time the server reported for the probes (Ollama's
    /// `load_duration`, summed), ms: the load the run's first request would otherwise carry.
    pub server_load_ms: Option<f64>,
    /// More keys of `test.prompt_calibration` (the tokenizer's file and the template's
    /// count, `with_tokenizer.rs`).
    pub extra: serde_json::Map<String, Value>,
}

impl Calibration {
    /// No calibration: one word per token.
    pub fn off(spec: &Synthetic, nonce: u64) -> Calibration {
        Calibration {
            method: Method::None,
            sizing: Sizing {
                nonce: Some(nonce),
                ..Sizing::default()
            },
            target: spec.input.mean(),
            probes: Vec::new(),
            error: None,
            server_load_ms: None,
            extra: Default::default(),
        }
    }

    /// No calibration because it failed (`error` says why): one word per token.
    pub fn failed(spec: &Synthetic, nonce: u64, error: String) -> Calibration {
        Calibration {
            error: Some(error),
            ..Calibration::off(spec, nonce)
        }
    }

    /// `test.prompt_calibration` in the metadata (`achieved` added after the run).
    pub fn to_json(&self) -> Value {
        let r = |x: f64| crate::schema::round(x, 4);
        let mut v = json!({
            "method": self.method.name(),
            "target": r(self.target),
            "tokens_per_word": r(self.sizing.tokens_per_word),
            "overhead_tokens": r(self.sizing.overhead),
            "probes": self.probes.len(),
            "probe_points": self.probes.iter().map(|(w, t)| json!({"words": w, "tokens": r(*t)})).collect::<Vec<_>>(),
        });
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        if let Some(ms) = self.server_load_ms {
            v["server_load_ms"] = json!(r(ms));
        }
        for (k, x) in &self.extra {
            v[k] = x.clone();
        }
        v
    }
}

/// Where and how to ask.
pub struct Target<'a> {
    pub client: &'a Client,
    pub base: &'a BaseUrl,
    pub headers: &'a HeaderMap,
    pub api: Api,
    pub model: &'a str,
    pub stream: bool,
}

/// Calibrate `spec`'s prompts against the server. An answer that cannot be used (a probe
/// failed, no prompt token count in the answer, counts that do not grow) is an
/// `Error::Server` saying why; the driver then sends word-sized prompts
/// ([`Calibration::failed`]) and the run records what the server did with them.
pub async fn calibrate(t: &Target<'_>, spec: &Synthetic, nonce: u64) -> Result<Calibration, Error> {
    let sizing0 = Sizing {
        nonce: Some(nonce),
        ..Sizing::default()
    };
    let target = spec.input.mean();
    let mut probes: Vec<(u32, f64)> = Vec::new();
    let mut k = 0u64;
    let mut method = Method::Tokenize;
    let mut load_ns: Option<u64> = None;
    // The mean count over several prompts of `words` words (distinct indices).
    let mut count = async |words: u32, method: &mut Method| -> Result<f64, Error> {
        let mut sum = 0.0;
        let mut n = 0u64;
        while n < if *method == Method::Tokenize {
            TOKENIZE_SAMPLES
        } else {
            USAGE_SAMPLES
        } {
            k += 1;
            let req = spec.request_of(&sizing0, PROBE_BASE + k, words, 1);
            if *method == Method::Tokenize {
                match tokenize(t, &prompt_text(&req)).await {
                    Some(c) => {
                        sum += f64::from(c);
                        n += 1;
                        continue;
                    }
                    // No endpoint: every sample (this one included) through requests.
                    None if n == 0 => *method = Method::ProbeUsage,
                    None => {
                        return Err(Error::Server(
                            "prompt calibration: /tokenize answered, then stopped answering"
                                .to_string(),
                        ));
                    }
                }
            }
            let (count, load) = probe_usage(t, &req, words).await?;
            if let Some(ns) = load {
                load_ns = Some(load_ns.unwrap_or(0).saturating_add(ns));
            }
            sum += f64::from(count);
            n += 1;
        }
        Ok(sum / n as f64)
    };
    let long = (2.0 * target).round().clamp(64.0, 256.0) as u32;
    for words in [SHORT_WORDS, long] {
        let n = count(words, &mut method).await?;
        probes.push((words, n));
    }
    let mut fit = fit(&probes).ok_or_else(|| not_linear(&probes))?;
    for _ in 0..MAX_VERIFY {
        let words = words_for(fit, target);
        if probes.iter().any(|(w, _)| *w == words) {
            break;
        }
        let n = count(words, &mut method).await?;
        probes.push((words, n));
        fit = self::fit(&probes).ok_or_else(|| not_linear(&probes))?;
        if (n - target).abs() <= (0.01 * target).max(0.5) {
            break;
        }
    }
    Ok(Calibration {
        method,
        sizing: Sizing {
            tokens_per_word: fit.1,
            overhead: fit.0,
            nonce: Some(nonce),
        },
        target,
        probes,
        error: None,
        server_load_ms: load_ns.map(|ns| ns as f64 / 1e6),
        extra: Default::default(),
    })
}

fn prompt_text(req: &body::GenRequest) -> String {
    match &req.prompt {
        body::Prompt::Text(s) => s.clone(),
        body::Prompt::Messages(m) => m.to_string(),
    }
}

/// Least squares `tokens = a + b x words`; `None` unless the slope is positive.
/// The prompt length in words that the fitted line `tokens = a + b * words` says hits
/// `target`, at least 1 and at most 8 words a token (+64): a fit of hostile or broken counts
/// (a slope near 0) must not ask for a prompt of billions of words.
pub(crate) fn words_for(fit: (f64, f64), target: f64) -> u32 {
    let most = (8.0 * target + 64.0).min(f64::from(u32::MAX));
    ((target - fit.0) / fit.1).round().clamp(1.0, most) as u32
}

fn fit(points: &[(u32, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (w, t)| (sx + f64::from(*w), sy + t));
    let (mx, my) = (sx / n, sy / n);
    let (sxx, sxy) = points.iter().fold((0.0, 0.0), |(a, b), (w, t)| {
        let dx = f64::from(*w) - mx;
        (a + dx * dx, b + dx * (t - my))
    });
    let b = sxy / sxx;
    (sxx > 0.0 && b.is_finite() && b > 0.0).then_some((my - b * mx, b))
}

fn not_linear(probes: &[(u32, f64)]) -> Error {
    let seen: Vec<String> = probes
        .iter()
        .map(|(w, t)| format!("{t:.1} tokens for {w} words"))
        .collect();
    Error::Server(format!(
        "prompt calibration: the server's prompt token counts do not grow with the prompt ({})",
        seen.join(", ")
    ))
}

/// vLLM's `POST /tokenize` for the prompt as the run's API sends it. `None`: no such
/// endpoint, or an answer without a count (the caller probes with requests instead).
async fn tokenize(t: &Target<'_>, text: &str) -> Option<u32> {
    let body = match t.api {
        Api::OpenAiChat => json!({
            "model": t.model,
            "messages": [{"role": "user", "content": text}],
            "add_generation_prompt": true,
        }),
        Api::OpenAiCompletions => json!({"model": t.model, "prompt": text}),
        Api::OllamaChat | Api::OllamaGenerate => return None,
    };
    let uri: Uri = t.base.endpoint("/tokenize").parse().ok()?;
    let fut = async {
        let mut resp = t
            .client
            .transport()
            .send(
                http::Method::POST,
                &uri,
                t.headers,
                Some(Bytes::from(body.to_string())),
            )
            .await
            .ok()?;
        let mut buf = Vec::new();
        while let Some(chunk) = resp.body.chunk().await.ok()? {
            buf.extend_from_slice(&chunk);
            if buf.len() > 64 << 20 {
                return None;
            }
        }
        if resp.status != 200 {
            return None;
        }
        let v: Value = serde_json::from_slice(&buf).ok()?;
        v.get("count")?.as_u64().and_then(|n| u32::try_from(n).ok())
    };
    tokio::time::timeout(TOKENIZE_TIMEOUT, fut).await.ok()?
}

/// One request of the run's shape asking for one token; the prompt tokens it reports, and
/// the model load time it reports (Ollama), in ns.
async fn probe_usage(
    t: &Target<'_>,
    req: &body::GenRequest,
    words: u32,
) -> Result<(u32, Option<u64>), Error> {
    let bytes = body::render(t.api, t.model, t.stream, req);
    let now = Instant::now();
    let rec = t.client.generate(bytes, now, now).await;
    if !rec.ok {
        return Err(Error::Server(format!(
            "prompt calibration: a 1-token probe request of {words} words failed ({}: {})",
            rec.error_kind
                .map_or("error".to_string(), |k| k.as_str().to_string()),
            rec.error.as_deref().unwrap_or("no detail")
        )));
    }
    let load = rec.server.load_duration_ns;
    rec.prompt_tokens
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .map(|n| (n, load))
        .ok_or_else(|| {
            Error::Server(
                "prompt calibration: the server reported no prompt token count for a probe request (no usage.prompt_tokens, no prompt_eval_count)".to_string(),
            )
        })
}

/// The prompt tokens the server reported for the successful requests of a raw log:
/// `{requests, mean, p50, min, max, target_mean, error_pct}` (the targets of those same
/// requests, by their index, and the mean's distance from theirs), or `None` when none
/// reported one. Reads the log line by line; memory is one entry per distinct length.
pub fn achieved(raw: &Path, spec: &Synthetic) -> Option<Value> {
    use std::io::{BufRead, Read};
    /// The fields of a raw record this needs; the rest is skipped, not built.
    #[derive(serde::Deserialize)]
    struct Lean {
        #[serde(default)]
        ok: Option<bool>,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        prompt_tokens: Option<u64>,
    }
    // The run's own log in the store: never through a link, never blocking on a FIFO
    // (RELIABILITY P11), and no line held past the raw-line cap (P8).
    let file = crate::store::nofollow::open_read(raw).ok()?;
    let cap = crate::schema::MAX_RAW_LINE_BYTES as u64;
    let mut reader = std::io::BufReader::new(file);
    let mut counts: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut targets = 0.0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(cap + 1)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && n as u64 > cap {
            // Over the cap: not a record benchkeep wrote; skip to the next line.
            let mut rest = Vec::new();
            while (&mut reader).take(cap).read_until(b'\n', &mut rest).ok()? > 0
                && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Lean>(&line) else {
            continue;
        };
        if v.ok != Some(true) {
            continue;
        }
        let index = v.id.as_deref().and_then(|s| s.parse::<u64>().ok());
        if let (Some(p), Some(i)) = (v.prompt_tokens, index) {
            *counts.entry(p).or_default() += 1;
            targets += f64::from(spec.input_target(i));
        }
    }
    let mut out = summarize(&counts)?;
    let n: u64 = counts.values().sum();
    let target_mean = targets / n as f64;
    let mean = out["mean"].as_f64().unwrap_or(0.0);
    out["target_mean"] = json!(crate::schema::round(target_mean, 3));
    out["error_pct"] = json!(crate::schema::round(
        (mean - target_mean) / target_mean * 100.0,
        3
    ));
    Some(out)
}

fn summarize(counts: &std::collections::BTreeMap<u64, u64>) -> Option<Value> {
    let n: u64 = counts.values().sum();
    if n == 0 {
        return None;
    }
    let sum: f64 = counts.iter().map(|(k, c)| *k as f64 * *c as f64).sum();
    // The value at sorted position `i` (0-based).
    let at = |i: u64| {
        let mut seen = 0;
        for (k, c) in counts {
            seen += c;
            if i < seen {
                return *k as f64;
            }
        }
        0.0
    };
    // numpy's linear median
    let p50 = if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    };
    Some(json!({
        "requests": n,
        "mean": crate::schema::round(sum / n as f64, 3),
        "p50": p50,
        "min": counts.keys().next().copied(),
        "max": counts.keys().next_back().copied(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_line() {
        assert_eq!(
            words_for((0.0, 1e-9), 100.0),
            864,
            "a flat fit asks for a bounded prompt"
        );
        assert_eq!(words_for((500.0, 1.0), 100.0), 1, "at least one word");
        let (a, b) = fit(&[(16, 27.0), (256, 339.0)]).unwrap();
        assert!((b - 1.3).abs() < 1e-9 && (a - 6.2).abs() < 1e-9, "{a} {b}");
        assert!(fit(&[(16, 20.0), (256, 20.0)]).is_none(), "flat: no slope");
        assert!(
            fit(&[(16, 20.0), (16, 30.0)]).is_none(),
            "one length: no slope"
        );
    }

    #[test]
    fn achieved_never_follows_a_link_nor_blocks_on_a_fifo_nor_holds_an_endless_line() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Synthetic::fixed(7, 4, 0);
        let fifo = dir.path().join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain mkfifo on a path in our temp dir.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(
            achieved(&fifo, &spec).is_none(),
            "a FIFO is refused, not waited on"
        );
        let real = dir.path().join("real.jsonl");
        let rec = r#"{"ok":true,"id":"0","prompt_tokens":7}"#;
        let long = "x".repeat(crate::schema::MAX_RAW_LINE_BYTES + 10);
        std::fs::write(&real, format!("{long}\n{rec}\n")).unwrap();
        let v = achieved(&real, &spec).expect("the record after the over-long line counts");
        assert_eq!(v["requests"], 1, "{v}");
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(achieved(&link, &spec).is_none(), "a link is never followed");
    }

    #[test]
    fn achieved_summary() {
        let counts = [(30u64, 1u64), (32, 2), (34, 1)].into_iter().collect();
        let v = summarize(&counts).unwrap();
        assert_eq!(v["requests"], 4);
        assert_eq!(v["mean"], 32.0);
        assert_eq!(v["p50"], 32.0);
        assert_eq!(v["min"], 30);
        assert_eq!(v["max"], 34);
        assert!(summarize(&Default::default()).is_none());
    }
}
