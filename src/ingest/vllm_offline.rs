//! `vllm-offline`: dumps of vLLM's offline `RequestOutput` (`LLM.generate` / `LLM.chat`).
//!
//! vLLM has no serializer for these, so every script writes its own shape (FORMATS.md §3).
//! The reader is tolerant and documents where each value comes from:
//!
//! * Text: `text`, or `outputs[].text` (only its presence is checked; text is not kept).
//! * Prompt tokens: `num_prompt_tokens`, `prompt_tokens`, `num_input_tokens`,
//!   `input_tokens`, `usage.prompt_tokens`, else the length of `prompt_token_ids`.
//! * Completion tokens: `num_output_tokens`, `completion_tokens`, `output_tokens`,
//!   `num_generated_tokens`, `usage.completion_tokens`, else the summed length of
//!   `outputs[].token_ids`, else the length of `token_ids`, else
//!   `metrics.num_generation_tokens`.
//! * `finish_reason`: top level, else `outputs[0].finish_reason`; `abort` / `error` fail
//!   the request (kind `aborted`). `finished: false` (not a final output) fails it as
//!   `cut_short`; an `error` key fails it as `other`.
//! * Timings from `metrics` (an object, or its Python repr string `RequestMetrics(a=1, ...)`
//!   when the script used `default=str`):
//!   - ttft: V1 `first_token_latency` (s, wall clock, from arrival), else V0
//!     `first_token_time - arrival_time`;
//!   - e2e: V0 `finished_time - arrival_time`, else V1 `first_token_latency` plus the
//!     decode time `last_token_ts - first_token_ts` (both on the engine's monotonic clock),
//!     else V0 `last_token_time - arrival_time`;
//!   - server timings (ns): prefill = `first_token_ts - scheduled_ts` (V1) or
//!     `first_token_time - first_scheduled_time` (V0); decode = `last_token_ts -
//!     first_token_ts` or `last_token_time - first_token_time`; total = e2e;
//!   - `sent_s` = `arrival_time` and `end_s` = arrival + e2e, in epoch seconds (only their
//!     differences matter), so `analyze` can take the run's span as its total time.
//!
//! A script-level `elapsed_s` / `latency` is ignored: it is not clear whether it is per
//! request or per batch.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};

use crate::ingest::Outcome;
use crate::ingest::detect::describe_json;
use crate::ingest::lenient::{ApiError, Count, Flag, Num, Present, Text, Uint};
use crate::ingest::line::{is_failed_finish, json_reason};
use crate::ingest::openai::Usage;
use crate::schema::{ErrorKind, RequestRecord, ServerTimings};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OfflineLine<'a> {
    #[serde(borrow)]
    request_id: Text<'a>,
    prompt: Present,
    prompt_token_ids: Count,
    text: Present,
    token_ids: Count,
    #[serde(borrow)]
    finish_reason: Text<'a>,
    #[serde(borrow)]
    outputs: Outputs<'a>,
    finished: Flag,
    metrics: Metrics,
    error: ApiError,
    usage: Option<Usage>,
    num_prompt_tokens: Uint,
    prompt_tokens: Uint,
    num_input_tokens: Uint,
    input_tokens: Uint,
    num_output_tokens: Uint,
    completion_tokens: Uint,
    output_tokens: Uint,
    num_generated_tokens: Uint,
}

/// One `CompletionOutput`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Output<'a> {
    text: Present,
    token_ids: Count,
    #[serde(borrow)]
    finish_reason: Text<'a>,
}

/// `outputs`: an array of outputs (or a single output object).
#[derive(Debug, Default)]
struct Outputs<'a> {
    present: bool,
    text: bool,
    token_count: Option<u64>,
    finish_reason: Text<'a>,
}

impl<'a> Outputs<'a> {
    fn add(&mut self, o: Output<'a>) {
        if !self.present {
            self.finish_reason = o.finish_reason;
        }
        self.present = true;
        self.text |= o.text.0;
        if let Some(n) = o.token_ids.0 {
            self.token_count = Some(self.token_count.unwrap_or(0) + n);
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Outputs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Outputs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of outputs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outputs<'de>, A::Error> {
                let mut out = Outputs::default();
                while let Some(o) = seq.next_element::<Output<'de>>()? {
                    out.add(o);
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Outputs<'de>, A::Error> {
                let mut out = Outputs::default();
                out.add(Output::deserialize(MapAccessDeserializer::new(map))?);
                Ok(out)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Outputs<'de>, E> {
                Ok(Outputs::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// V0 `RequestMetrics` and V1 `RequestStateStats` fields (seconds).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MetricFields {
    arrival_time: Num,
    first_scheduled_time: Num,
    first_token_time: Num,
    last_token_time: Num,
    finished_time: Num,
    first_token_latency: Num,
    scheduled_ts: Num,
    first_token_ts: Num,
    last_token_ts: Num,
    num_generation_tokens: Uint,
}

/// `metrics`: an object, its Python repr string, or null.
#[derive(Debug, Default)]
struct Metrics(Option<MetricFields>);

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metrics object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Metrics, A::Error> {
                Ok(Metrics(Some(MetricFields::deserialize(
                    MapAccessDeserializer::new(map),
                )?)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Metrics, E> {
                Ok(Metrics(Some(from_repr(v))))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Metrics, E> {
                Ok(Metrics(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Metrics, E> {
                Ok(Metrics(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Metrics, E> {
                Ok(Metrics(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Metrics, E> {
                Ok(Metrics(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Metrics, E> {
                Ok(Metrics(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Metrics, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Metrics(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Read `name=number` pairs out of a Python repr like `RequestMetrics(arrival_time=1.5, ...)`.
fn from_repr(s: &str) -> MetricFields {
    let get = |name: &str| -> Option<f64> {
        let mut rest = s;
        while let Some(i) = rest.find(name) {
            let before_ok = i == 0
                || !(rest.as_bytes()[i - 1].is_ascii_alphanumeric()
                    || rest.as_bytes()[i - 1] == b'_');
            let after = &rest[i + name.len()..];
            if before_ok && let Some(v) = after.strip_prefix('=') {
                let end = v
                    .find(|c: char| {
                        !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
                    })
                    .unwrap_or(v.len());
                return v[..end].parse().ok().filter(|x: &f64| x.is_finite());
            }
            rest = after;
        }
        None
    };
    MetricFields {
        arrival_time: Num(get("arrival_time")),
        first_scheduled_time: Num(get("first_scheduled_time")),
        first_token_time: Num(get("first_token_time")),
        last_token_time: Num(get("last_token_time")),
        finished_time: Num(get("finished_time")),
        first_token_latency: Num(get("first_token_latency")),
        scheduled_ts: Num(get("scheduled_ts")),
        first_token_ts: Num(get("first_token_ts")),
        last_token_ts: Num(get("last_token_ts")),
        num_generation_tokens: Uint(get("num_generation_tokens").and_then(|v| {
            if v < 0.0 {
                crate::ingest::lenient::note_invalid();
                return None;
            }
            Some(v as u64)
        })),
    }
}

impl OfflineLine<'_> {
    fn looks_like_offline(&self) -> bool {
        self.request_id.0.is_some()
            || self.prompt_token_ids.0.is_some()
            || self.token_ids.0.is_some()
            || self.outputs.present
            || self.text.0
            || self.num_output_tokens.0.is_some()
            || self.metrics.0.is_some()
    }
}

/// A non-negative difference of two times, in seconds.
fn span(from: Num, to: Num) -> Option<f64> {
    Some(to.0? - from.0?).filter(|d| *d >= 0.0)
}

fn ns(seconds: Option<f64>) -> Option<u64> {
    seconds.map(|s| (s * 1e9).round() as u64)
}

/// Parse one non-blank line of a `vllm-offline` file.
pub(crate) fn parse_line(seq: u64, text: &str) -> Outcome {
    let l = match serde_json::from_str::<OfflineLine>(text) {
        Ok(l) => l,
        Err(e) => return Outcome::Unparseable(json_reason(&e, "vllm-offline")),
    };
    if !l.looks_like_offline() {
        return Outcome::Unparseable(format!(
            "not a vLLM RequestOutput dump (no `request_id`, `text`, `outputs` or token ids): {}",
            describe_json(text)
        ));
    }
    let usage = l.usage.as_ref();
    let prompt_tokens = [
        l.num_prompt_tokens,
        l.prompt_tokens,
        l.num_input_tokens,
        l.input_tokens,
    ]
    .iter()
    .find_map(|u| u.0)
    .or_else(|| usage.and_then(|u| u.prompt_tokens.0))
    .or(l.prompt_token_ids.0);
    let m = l.metrics.0.unwrap_or_default();
    let completion_tokens = [
        l.num_output_tokens,
        l.completion_tokens,
        l.output_tokens,
        l.num_generated_tokens,
    ]
    .iter()
    .find_map(|u| u.0)
    .or_else(|| usage.and_then(|u| u.completion_tokens.0))
    .or(l.outputs.token_count)
    .or(l.token_ids.0)
    .or(m.num_generation_tokens.0);
    let finish = l.finish_reason.0.or(l.outputs.finish_reason.0);
    let ttft_s = m
        .first_token_latency
        .0
        .filter(|v| *v >= 0.0)
        .or_else(|| span(m.arrival_time, m.first_token_time));
    let decode_s = span(m.first_token_ts, m.last_token_ts)
        .or_else(|| span(m.first_token_time, m.last_token_time));
    let e2e_s = span(m.arrival_time, m.finished_time)
        .or_else(|| {
            Some(
                m.first_token_latency.0.filter(|v| *v >= 0.0)?
                    + span(m.first_token_ts, m.last_token_ts)?,
            )
        })
        .or_else(|| span(m.arrival_time, m.last_token_time));
    let prefill_s = span(m.scheduled_ts, m.first_token_ts)
        .or_else(|| span(m.first_scheduled_time, m.first_token_time));
    let mut r = RequestRecord {
        seq,
        id: l.request_id.to_owned_string(),
        ok: true,
        prompt_tokens,
        completion_tokens,
        finish_reason: finish.as_deref().map(str::to_owned),
        ttft_ms: ttft_s.map(|s| s * 1000.0),
        e2e_ms: e2e_s.map(|s| s * 1000.0),
        sent_s: e2e_s.and(m.arrival_time.0),
        end_s: e2e_s.and_then(|e| Some(m.arrival_time.0? + e)),
        server: ServerTimings {
            total_duration_ns: ns(e2e_s),
            load_duration_ns: None,
            prompt_eval_duration_ns: ns(prefill_s),
            eval_duration_ns: ns(decode_s),
        },
        ..Default::default()
    };
    if l.error.present {
        r.ok = false;
        r.error_kind = Some(ErrorKind::Other);
        r.error = Some(l.error.describe());
    } else if l.finished.0 == Some(false) {
        r.ok = false;
        r.error_kind = Some(ErrorKind::CutShort);
        r.error = Some("finished: false (not a final output)".into());
    } else if is_failed_finish(finish.as_deref()) {
        r.ok = false;
        r.error_kind = Some(ErrorKind::Aborted);
        r.error = Some(format!(
            "finish_reason {:?}",
            finish.as_deref().unwrap_or_default()
        ));
    }
    Outcome::Record(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> RequestRecord {
        match parse_line(2, line) {
            Outcome::Record(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn hand_rolled_v1_dump() {
        let r = record(
            r#"{"request_id": "0", "prompt": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n", "prompt_token_ids": [151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 151644, 77091, 198], "text": "2 + 2 = 4.", "token_ids": [17, 488, 220, 17, 284, 220, 19, 13, 151645], "finish_reason": "stop", "num_prompt_tokens": 15, "num_output_tokens": 9, "metrics": {"arrival_time": 1767225600.1234, "first_token_latency": 0.0412, "queued_ts": 8123.501, "scheduled_ts": 8123.502, "first_token_ts": 8123.541, "last_token_ts": 8123.655, "num_generation_tokens": 9, "num_preemptions": 0}}"#,
        );
        assert!(r.ok);
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(15), Some(9)));
        assert!((r.ttft_ms.unwrap() - 41.2).abs() < 1e-6);
        assert!((r.e2e_ms.unwrap() - 155.2).abs() < 1e-3);
        assert_eq!(r.server.prompt_eval_duration_ns, Some(39_000_000));
        assert_eq!(r.id.as_deref(), Some("0"));
    }

    #[test]
    fn nested_outputs_and_v0_metrics() {
        let r = record(
            r#"{"request_id": "1", "prompt_token_ids": [1, 2, 3], "outputs": [{"index": 0, "text": "hi", "token_ids": [5, 6], "finish_reason": "length"}, {"index": 1, "text": "yo", "token_ids": [7], "finish_reason": "stop"}], "metrics": {"arrival_time": 100.0, "first_scheduled_time": 100.5, "first_token_time": 101.0, "last_token_time": 102.0, "finished_time": 102.5}}"#,
        );
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(3), Some(3)));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert_eq!((r.ttft_ms, r.e2e_ms), (Some(1000.0), Some(2500.0)));
        assert_eq!((r.sent_s, r.end_s), (Some(100.0), Some(102.5)));
        assert_eq!(r.server.eval_duration_ns, Some(1_000_000_000));
    }

    #[test]
    fn repr_metrics_and_failures() {
        let r = record(
            r#"{"request_id": "2", "text": "x", "token_ids": [1], "finish_reason": "abort", "metrics": "RequestMetrics(arrival_time=10.0, last_token_time=10.5, first_scheduled_time=10.1, first_token_time=10.25, time_in_queue=0.1, finished_time=10.75)"}"#,
        );
        assert_eq!(r.error_kind, Some(ErrorKind::Aborted));
        assert_eq!(r.ttft_ms, Some(250.0));
        assert_eq!(r.e2e_ms, Some(750.0));
        let r = record(r#"{"request_id": "3", "outputs": [], "finished": false}"#);
        assert_eq!(r.error_kind, Some(ErrorKind::CutShort));
        assert!(matches!(
            parse_line(1, r#"{"foo": "bar"}"#),
            Outcome::Unparseable(_)
        ));
    }
}
