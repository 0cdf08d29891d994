//! The per-request evidence a gate tests, read from a run's raw log: TTFT, TPOT and E2E
//! of each successful request (a fixed-seed reservoir of at most [`CAP`] values each) and
//! the batch-means rates of output tokens, all tokens and requests over completion time.
//!
//! Memory stays bounded: the log is streamed line by line; the completion times kept for
//! the batch means are halved (every other one dropped, the rest weighted double) past
//! [`CAP`].

use std::io::{BufRead, BufReader};

use serde::Deserialize;
use serde_json::Value;

use crate::ingest::{self, Format};
use crate::metrics::significance::{Reservoir, batch_rates};
use crate::report::rawdata::log_path;
use crate::schema::{Metadata, RequestRecord};
use crate::store::Store;

/// Values kept per latency metric and run (8 MB each).
pub const CAP: usize = 1 << 20;
/// Batches per run for the batch means of throughput.
pub const BATCHES: usize = 10;
/// Completions per batch at least (fewer batches for short runs).
pub const MIN_PER_BATCH: usize = 5;
/// Longest line of a raw log that is parsed.
const MAX_LINE: usize = 16 << 20;

/// One run's evidence.
#[derive(Debug, Clone, Default)]
pub struct RunSamples {
    /// Sorted ascending.
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    pub e2e: Vec<f64>,
    /// Batch means: output tok/s, total tok/s, req/s.
    pub out_tps: Vec<f64>,
    pub tot_tps: Vec<f64>,
    pub rps: Vec<f64>,
    /// Whether a latency sample was cut to [`CAP`] values.
    pub sampled: bool,
}

impl RunSamples {
    /// Several runs pooled into one sample (latencies re-sorted, batch means joined).
    pub fn pool(runs: Vec<RunSamples>) -> RunSamples {
        let mut all = RunSamples::default();
        for r in runs {
            all.ttft.extend(r.ttft);
            all.tpot.extend(r.tpot);
            all.e2e.extend(r.e2e);
            all.out_tps.extend(r.out_tps);
            all.tot_tps.extend(r.tot_tps);
            all.rps.extend(r.rps);
            all.sampled |= r.sampled;
        }
        for v in [&mut all.ttft, &mut all.tpot, &mut all.e2e] {
            v.sort_by(f64::total_cmp);
        }
        all
    }
}

struct Collector {
    ttft: Reservoir,
    tpot: Reservoir,
    e2e: Reservoir,
    /// (completion time s, output tokens, all tokens, weight)
    done: Vec<(f64, f64, f64, f64)>,
    weight: f64,
    cap: usize,
}

impl Collector {
    fn new(cap: usize) -> Self {
        Collector {
            ttft: Reservoir::new(cap),
            tpot: Reservoir::new(cap),
            e2e: Reservoir::new(cap),
            done: Vec::new(),
            weight: 1.0,
            cap: cap.max(2),
        }
    }

    fn push(&mut self, r: Lean) {
        if r.ok != Some(true) {
            return;
        }
        if let Some(t) = r.ttft_ms.filter(|t| *t >= 0.0) {
            self.ttft.push(t);
        }
        if let Some(e) = r.e2e_ms.filter(|e| *e >= 0.0) {
            self.e2e.push(e);
        }
        if let (Some(e), Some(t), Some(n)) = (r.e2e_ms, r.ttft_ms, r.completion_tokens)
            && n > 1
        {
            self.tpot.push((e - t) / (n - 1) as f64);
        }
        if let Some(end) = r.end_s.filter(|e| e.is_finite()) {
            let out = r.completion_tokens.unwrap_or(0) as f64;
            let all = out + r.prompt_tokens.unwrap_or(0) as f64;
            if self.done.len() >= self.cap {
                let mut keep = false;
                self.done.retain(|_| {
                    keep = !keep;
                    keep
                });
                for d in &mut self.done {
                    d.3 *= 2.0;
                }
                self.weight *= 2.0;
            }
            self.done.push((end, out, all, self.weight));
        }
    }

    fn finish(self) -> RunSamples {
        let sampled = self.ttft.sampled() || self.tpot.sampled() || self.e2e.sampled();
        let sorted = |r: Reservoir| {
            let mut v = r.values;
            v.sort_by(f64::total_cmp);
            v
        };
        let k = BATCHES.min(self.done.len().saturating_sub(1) / MIN_PER_BATCH);
        let rates = |f: fn(&(f64, f64, f64, f64)) -> f64| {
            let mut pts: Vec<(f64, f64)> = self.done.iter().map(|d| (d.0, f(d) * d.3)).collect();
            batch_rates(&mut pts, k)
        };
        RunSamples {
            out_tps: rates(|d| d.1),
            tot_tps: rates(|d| d.2),
            rps: rates(|_| 1.0),
            ttft: sorted(self.ttft),
            tpot: sorted(self.tpot),
            e2e: sorted(self.e2e),
            sampled,
        }
    }
}

/// The fields of a benchkeep raw record a gate needs; everything else is skipped.
#[derive(Deserialize, Default)]
struct Lean {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    ttft_ms: Option<f64>,
    #[serde(default)]
    e2e_ms: Option<f64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    end_s: Option<f64>,
}

fn lean(r: &RequestRecord) -> Lean {
    Lean {
        ok: Some(r.ok),
        ttft_ms: r.ttft_ms,
        e2e_ms: r.e2e_ms,
        completion_tokens: r.completion_tokens,
        prompt_tokens: r.prompt_tokens,
        end_s: r.end_s,
    }
}

/// Read one run's evidence, keeping at most `cap` values per latency metric. The error
/// is a sentence for "not enough data" (the log is missing, unreadable, elsewhere).
pub fn read(store: &Store, m: &Metadata, cap: usize) -> Result<RunSamples, String> {
    let path = log_path(store, m)
        .ok_or_else(|| format!("{}: its raw log path is outside raw/", m.test_id))?;
    let rel = path
        .strip_prefix(store.root())
        .unwrap_or(&path)
        .display()
        .to_string();
    let mut c = Collector::new(cap);
    if let Some(doc_format) = ingest::DocumentFormat::from_name(&m.source.format) {
        let locator = m.source.extra.get("locator").and_then(Value::as_str);
        let doc = ingest::read_document_as(&path, Some(doc_format))
            .map_err(|e| format!("cannot read {rel}: {e}"))?
            .ok_or_else(|| format!("{rel} is no longer a {} file", doc_format.name()))?;
        for run in doc
            .runs
            .iter()
            .filter(|r| Some(r.locator.as_str()) == locator)
        {
            for r in &run.records {
                c.push(lean(r));
            }
        }
        return Ok(c.finish());
    }
    // Never through a symlink, never a FIFO or device (P11).
    let file = crate::store::nofollow::open_read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{}: no raw log ({rel} is missing)", m.test_id),
        _ => format!("cannot read {rel}: {e}"),
    })?;
    let format = Format::from_name(&m.source.format).unwrap_or(Format::Benchkeep);
    if format != Format::Benchkeep {
        drop(file);
        ingest::scan_file(&path, Some(format), |r: RequestRecord| c.push(lean(&r)))
            .map_err(|e| format!("cannot read {rel}: {e}"))?;
        return Ok(c.finish());
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {rel}: {e}"))?;
        if n == 0 {
            break;
        }
        if n > MAX_LINE || line.last() != Some(&b'\n') {
            continue;
        }
        if let Ok(r) = serde_json::from_slice::<Lean>(&line) {
            c.push(r);
        }
    }
    Ok(c.finish())
}
