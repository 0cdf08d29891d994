//! Where requests come from: an input file (OpenAI Batch input lines such as the seed's
//! `batch_5k.jsonl`, or plain lines with `messages` or `prompt`), or a synthetic workload
//! of N-token prompts asking for exactly M tokens (`synthetic.rs`).
//!
//! Bodies are rendered once per API and model, deterministically, so the same input sends
//! byte-identical requests to every server that speaks the same API. The input's sha256
//! (for synthetic workloads: of a canonical description of the spec and seed; with
//! `--max-tokens`: of a description naming the file's sha256 and the limit) goes into the
//! metadata, so runs that sent the same requests can be compared head to head.
//!
//! An input file is read line by line (hashed as it is read); the parsed requests stay in
//! memory, so the file is capped at [`MAX_FILE_BYTES`] and a line at [`MAX_LINE_BYTES`].

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::digest::{self, sha256_hex};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::client::Api;
use crate::client::body::{self, GenRequest, Prompt, Sampling};
use crate::error::Error;

pub use super::synthetic::{Sizing, Synthetic};

/// The requests of a run, before rendering.
#[derive(Debug, Clone)]
pub enum Input {
    File {
        path: PathBuf,
        /// Shared: a plan cloned for every point of a sweep holds one copy.
        items: std::sync::Arc<[Item]>,
        sha256: String,
    },
    Synthetic(Synthetic),
}

/// One request of an input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The line's `custom_id`, if it has one.
    pub custom_id: Option<String>,
    pub request: GenRequest,
}

/// Largest input file accepted (its requests are held in memory for the whole run).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Longest line of an input file.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Caps on an input file (tests use small ones).
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    pub max_file_bytes: u64,
    pub max_line_bytes: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_file_bytes: MAX_FILE_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
        }
    }
}

impl Input {
    /// Read and check a whole input file; any bad line is an error naming the line.
    pub fn from_file(path: &Path) -> Result<Input, Error> {
        Input::from_file_with(path, FileLimits::default())
    }

    /// [`Input::from_file`] with explicit caps: a file over `max_file_bytes`, or a line over
    /// `max_line_bytes`, is an error naming the file (and the line) before it fills memory.
    pub fn from_file_with(path: &Path, limits: FileLimits) -> Result<Input, Error> {
        let cannot_read = |e: std::io::Error| {
            Error::input(
                path,
                format!("cannot read the input file ({e}); check --input"),
            )
        };
        let file = crate::userfile::open(path).map_err(cannot_read)?;
        let too_big = || {
            Error::input(
                path,
                format!(
                    "the input file is larger than {}; its requests are held in memory, so split it or use --synthetic",
                    fmt_bytes(limits.max_file_bytes)
                ),
            )
        };
        if file.metadata().map_err(cannot_read)?.len() > limits.max_file_bytes {
            return Err(too_big());
        }
        let mut reader = BufReader::with_capacity(64 << 10, file);
        let mut hasher = digest::Hasher::new();
        let mut total: u64 = 0;
        let mut buf: Vec<u8> = Vec::new();
        let mut items = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            // One byte more than a line may hold, plus its `\n`: enough to tell "too long".
            let cap = limits.max_line_bytes as u64 + 2;
            let n = (&mut reader)
                .take(cap)
                .read_until(b'\n', &mut buf)
                .map_err(cannot_read)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            total += n as u64;
            if total > limits.max_file_bytes {
                return Err(too_big());
            }
            let mut line: &[u8] = &buf;
            if let Some(l) = line.strip_suffix(b"\n") {
                line = l.strip_suffix(b"\r").unwrap_or(l);
            }
            if line.len() > limits.max_line_bytes {
                return Err(Error::input(
                    path,
                    format!(
                        "line {line_no}: longer than {}; a request line must be smaller",
                        fmt_bytes(limits.max_line_bytes as u64)
                    ),
                ));
            }
            hasher.update(&buf);
            let text = std::str::from_utf8(line).map_err(|e| {
                Error::input(
                    path,
                    format!("line {line_no}: not UTF-8 text ({e}); --input takes a JSONL file"),
                )
            })?;
            let text = if line_no == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            let item = parse_line(text)
                .map_err(|why| Error::input(path, format!("line {line_no}: {why}")))?;
            items.push(item);
        }
        let sha256 = hasher.hex();
        if items.is_empty() {
            return Err(Error::input(
                path,
                "no requests in the file; expected one JSON object per line, e.g. {\"body\": {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 64}}",
            ));
        }
        Ok(Input::File {
            path: path.to_path_buf(),
            items: items.into(),
            sha256,
        })
    }

    /// Requests in the file (`None` for a synthetic workload: as many as asked).
    pub fn requests(&self) -> Option<u64> {
        match self {
            Input::File { items, .. } => Some(items.len() as u64),
            Input::Synthetic(_) => None,
        }
    }

    /// `test.input_sha256`: the same for two runs exactly when they sent the same requests
    /// (before `model`). A file without `--max-tokens`: the file's own sha256 (as `record`
    /// and `analyze --requests` store it). A file with `--max-tokens N`: the sha256 of
    /// `benchkeep-input-v1\nfile_sha256=<hex>\nmax_tokens=N\n`. Synthetic: the sha256 of
    /// its description, with `--max-tokens` as the output length it sends.
    pub fn sha256(&self, num_requests: Option<u64>, max_tokens: Option<u64>) -> String {
        match self {
            Input::File { sha256, .. } => match max_tokens {
                None => sha256.clone(),
                Some(n) => {
                    let desc =
                        format!("benchkeep-input-v1\nfile_sha256={sha256}\nmax_tokens={n}\n");
                    sha256_hex(&desc)
                }
            },
            Input::Synthetic(s) => s.effective(max_tokens).sha256(num_requests),
        }
    }

    /// Render every request for `api` and `model`. `max_tokens` (the `--max-tokens` flag)
    /// replaces each request's own limit.
    pub fn render(&self, api: Api, model: &str, stream: bool, max_tokens: Option<u64>) -> Bodies {
        self.render_sized(api, model, stream, max_tokens, Sizing::default())
    }

    /// [`Input::render`] with synthetic prompts sized for the server (`calibrate.rs`).
    pub fn render_sized(
        &self,
        api: Api,
        model: &str,
        stream: bool,
        max_tokens: Option<u64>,
        sizing: Sizing,
    ) -> Bodies {
        match self {
            Input::File { items, .. } => Bodies::File(
                items
                    .iter()
                    .map(|it| {
                        let mut req = it.request.clone();
                        if max_tokens.is_some() {
                            req.max_tokens = max_tokens;
                        }
                        (it.custom_id.clone(), body::render(api, model, stream, &req))
                    })
                    .collect(),
            ),
            Input::Synthetic(s) => {
                let s = s.effective(max_tokens);
                Bodies::Synthetic {
                    spec: s,
                    api,
                    model: model.to_string(),
                    stream,
                    sizing,
                }
            }
        }
    }
}

/// Rendered request bodies, by request index (a file's lines repeat when the run asks for
/// more requests than it has).
#[derive(Debug, Clone)]
pub enum Bodies {
    File(Vec<(Option<String>, Bytes)>),
    Synthetic {
        spec: Synthetic,
        api: Api,
        model: String,
        stream: bool,
        sizing: Sizing,
    },
}

/// Index space of warm-up requests of a synthetic workload (disjoint from measured ones).
const WARMUP_BASE: u64 = 1 << 62;

impl Bodies {
    /// The id and body of measured request `index`.
    pub fn get(&self, index: u64) -> (String, Bytes) {
        match self {
            Bodies::File(v) => {
                let (id, b) = &v[(index % v.len() as u64) as usize];
                (id.clone().unwrap_or_else(|| index.to_string()), b.clone())
            }
            Bodies::Synthetic {
                spec,
                api,
                model,
                stream,
                sizing,
            } => (
                index.to_string(),
                body::render(*api, model, *stream, &spec.request(index, sizing)),
            ),
        }
    }

    /// The body of warm-up request `index` (file: its lines from the start; synthetic:
    /// prompts that no measured request uses).
    pub fn warmup(&self, index: u64) -> Bytes {
        match self {
            Bodies::File(_) => self.get(index).1,
            Bodies::Synthetic { .. } => self.get(WARMUP_BASE + index).1,
        }
    }
}

/// `1 GiB`, `64 MiB`, `512 KiB`, `100 bytes`.
fn fmt_bytes(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

fn parse_line(line: &str) -> Result<Item, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(top) = v else {
        return Err("expected a JSON object".into());
    };
    let custom_id = top
        .get("custom_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let body: &Map<String, Value> = match top.get("body") {
        Some(Value::Object(b)) => b,
        Some(_) => return Err("`body` must be a JSON object".into()),
        None => &top,
    };
    let prompt = match (body.get("messages"), body.get("prompt")) {
        (Some(Value::Array(m)), _) if !m.is_empty() => Prompt::Messages(Value::Array(m.clone())),
        (Some(_), _) => return Err("`messages` must be a non-empty array".into()),
        (None, Some(Value::String(p))) => Prompt::Text(p.clone()),
        (None, Some(Value::Array(a))) if a.len() == 1 && a[0].is_string() => {
            Prompt::Text(a[0].as_str().unwrap_or_default().to_string())
        }
        (None, Some(_)) => return Err("`prompt` must be a string".into()),
        (None, None) => {
            return Err(
                "no `messages` or `prompt`; expected an OpenAI Batch line {\"body\": {\"messages\": [...]}} or {\"messages\": [...]} or {\"prompt\": \"...\"}"
                    .into(),
            );
        }
    };
    let num = |k: &str| body.get(k).and_then(Value::as_u64);
    let max_tokens = num("max_tokens")
        .or_else(|| num("max_completion_tokens"))
        .or_else(|| {
            body.get("options")
                .and_then(|o| o.get("num_predict"))
                .and_then(Value::as_u64)
        });
    let float = |k: &str| body.get(k).and_then(Value::as_f64);
    let sampling = Sampling {
        temperature: float("temperature"),
        top_p: float("top_p"),
        seed: body.get("seed").and_then(Value::as_i64),
        stop: body.get("stop").filter(|s| !s.is_null()).cloned(),
    };
    // Everything else is sent as given (the batch line's own fields are not the body's).
    let wrapper: &[&str] = if std::ptr::eq(body, &top) {
        &["custom_id", "method", "url"]
    } else {
        &[]
    };
    let extra = body
        .iter()
        .filter(|(k, _)| {
            !body::RUN_CONTROLLED.contains(&k.as_str()) && !wrapper.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Item {
        custom_id,
        request: GenRequest {
            prompt,
            max_tokens,
            exact: false,
            sampling,
            extra,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn batch_and_plain_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, r#"{{"custom_id": "request-0", "method": "POST", "url": "/v1/chat/completions", "body": {{"model": "x", "messages": [{{"role": "user", "content": "Hi"}}], "max_tokens": 16, "temperature": 0}}}}"#).unwrap();
        writeln!(f).unwrap();
        writeln!(f, r#"{{"prompt": "Why?"}}"#).unwrap();
        let input = Input::from_file(f.path()).unwrap();
        assert_eq!(input.requests(), Some(2));
        let Input::File { items, sha256, .. } = &input else {
            panic!()
        };
        assert_eq!(sha256.len(), 64);
        assert_eq!(items[0].custom_id.as_deref(), Some("request-0"));
        assert_eq!(items[0].request.max_tokens, Some(16));
        assert_eq!(items[0].request.sampling.temperature, Some(0.0));
        assert_eq!(items[1].request.prompt, Prompt::Text("Why?".into()));

        let bodies = input.render(Api::OpenAiChat, "m", true, Some(8));
        let (id, b) = bodies.get(3);
        assert_eq!(
            id, "3",
            "lines repeat; a line without custom_id is named by its index"
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["messages"][0]["content"], "Why?");
        assert_eq!(v["max_tokens"], 8);
        // same input, same API: the same bytes
        let again = input.render(Api::OpenAiChat, "m", true, Some(8));
        assert_eq!(again.get(0), bodies.get(0));
    }

    #[test]
    fn bad_lines_are_named() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, r#"{{"prompt": "ok"}}"#).unwrap();
        writeln!(f, r#"{{"input": "x"}}"#).unwrap();
        let e = Input::from_file(f.path()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("messages"), "{e}");
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = Input::from_file(f.path()).unwrap_err().to_string();
        assert!(e.contains("no requests"), "{e}");
    }

    /// `input_sha256` pairs runs that sent the same requests: a file's own sha256 without
    /// `--max-tokens` (as `record` stores it), something else with it; synthetic runs hash
    /// the output length they actually ask for.
    #[test]
    fn input_sha256_includes_a_max_tokens_override() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let text = "\u{feff}{\"prompt\": \"a\", \"max_tokens\": 8}\r\n\n{\"prompt\": \"b\"}";
        f.write_all(text.as_bytes()).unwrap();
        let input = Input::from_file(f.path()).unwrap();
        let plain = sha256_hex(text);
        assert_eq!(input.sha256(Some(2), None), plain, "the file's own sha256");
        let with64 = input.sha256(Some(2), Some(64));
        assert_ne!(with64, plain);
        assert_ne!(with64, input.sha256(Some(2), Some(65)));
        let desc = format!("benchkeep-input-v1\nfile_sha256={plain}\nmax_tokens=64\n");
        assert_eq!(with64, sha256_hex(&desc));
        assert_eq!(input.requests(), Some(2), "BOM, CRLF and a blank line");

        let s = Synthetic::fixed(8, 8, 0);
        let syn = Input::Synthetic(s.clone());
        assert_ne!(syn.sha256(Some(10), Some(64)), syn.sha256(Some(10), None));
        assert_eq!(syn.sha256(Some(10), None), s.sha256(Some(10)), "unchanged");
        let as64 = Synthetic::fixed(8, 64, 0);
        assert_eq!(
            syn.sha256(Some(10), Some(64)),
            as64.sha256(Some(10)),
            "the same requests are sent"
        );
        assert_eq!(
            syn.render(Api::OpenAiChat, "m", true, Some(64)).get(3),
            Input::Synthetic(as64)
                .render(Api::OpenAiChat, "m", true, None)
                .get(3)
        );
    }

    /// A file or a line over its cap is an error naming the file and the line, read no
    /// further; under the caps nothing changes.
    #[test]
    fn oversized_files_and_lines_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, r#"{{"prompt": "short"}}"#).unwrap();
        writeln!(f, r#"{{"prompt": "{}"}}"#, "x".repeat(200)).unwrap();
        let limits = FileLimits {
            max_file_bytes: 1 << 20,
            max_line_bytes: 100,
        };
        let e = Input::from_file_with(f.path(), limits).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let e = e.to_string();
        assert!(e.contains("line 2: longer than 100 bytes"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        let limits = FileLimits {
            max_file_bytes: 100,
            max_line_bytes: 1 << 20,
        };
        let e = Input::from_file_with(f.path(), limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 100 bytes"), "{e}");
        // exactly at the line cap (CRLF not counted) is fine
        let mut g = tempfile::NamedTempFile::new().unwrap();
        let line = format!(r#"{{"prompt": "{}"}}"#, "y".repeat(86));
        assert_eq!(line.len(), 100);
        write!(g, "{line}\r\n{line}").unwrap();
        let limits = FileLimits {
            max_file_bytes: 202,
            max_line_bytes: 100,
        };
        let input = Input::from_file_with(g.path(), limits).unwrap();
        assert_eq!(input.requests(), Some(2));
        assert_eq!(fmt_bytes(MAX_FILE_BYTES), "1 GiB");
        assert_eq!(fmt_bytes(MAX_LINE_BYTES as u64), "64 MiB");
    }

    #[test]
    fn synthetic_is_deterministic_and_exact() {
        let s = Synthetic::fixed(32, 16, 7);
        let input = Input::Synthetic(s);
        let b = input.render(Api::OpenAiChat, "m", true, None);
        let v: Value = serde_json::from_slice(&b.get(0).1).unwrap();
        assert_eq!(v["ignore_eos"], true);
        assert_eq!(v["min_tokens"], 16);
        assert_eq!(v["max_tokens"], 16);
        let b = input.render(Api::OllamaGenerate, "m", true, None);
        let v: Value = serde_json::from_slice(&b.get(0).1).unwrap();
        assert_eq!(v["options"]["num_predict"], 16);
        assert_ne!(b.warmup(0), b.get(0).1);
    }
}
