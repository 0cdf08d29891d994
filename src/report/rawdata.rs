//! Reading what the HTML report draws from raw files: latency distributions and example
//! errors from the per-request log, and the GPU time series (`raw/<test_id>.gpu.jsonl`).
//!
//! Memory stays bounded whatever the file size: the per-request log is streamed line by
//! line and only three numbers per request are kept (ttft, e2e, completion tokens ->
//! tpot), halved by decimation past [`MAX_VALUES`]; a distribution is then reduced to
//! [`CDF_POINTS`] quantiles. GPU series are cut to [`MAX_GPU_POINTS`] points per GPU.
//! benchkeep's own raw format is read with a lean parser that looks at nothing else; other
//! formats go through the ingest parser. Files are read in parallel.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;
use serde_json::Value;

use crate::ingest::{self, Format};
use crate::metrics::percentile;
use crate::schema::{Metadata, RequestRecord};
use crate::store::Store;
use crate::store::ids::file_safe;

/// Values kept per metric before decimation (3 x 8 MB per file at most).
pub const MAX_VALUES: usize = 1 << 20;
/// Quantiles in a CDF: every 0.5 %.
pub const CDF_POINTS: usize = 201;
/// Points per GPU and metric in a GPU chart.
pub const MAX_GPU_POINTS: usize = 600;
/// Lines of a GPU series file read at most.
const MAX_GPU_LINES: usize = 5_000_000;
/// Distinct example errors kept per run.
const MAX_ERROR_EXAMPLES: usize = 5;
/// Characters kept of an example error message.
const MAX_ERROR_CHARS: usize = 300;
/// Longest line of a raw log that is parsed (a longer one is skipped).
const MAX_LINE: usize = 16 << 20;

/// A latency distribution as quantiles: `values[i]` is the `i / (CDF_POINTS - 1)` quantile.
#[derive(Debug, Clone, PartialEq)]
pub struct Cdf {
    pub count: u64,
    pub values: Vec<f64>,
}

impl Cdf {
    fn from_values(mut v: Vec<f64>, count: u64) -> Option<Cdf> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let values = (0..CDF_POINTS)
            .map(|i| percentile(&v, 100.0 * i as f64 / (CDF_POINTS - 1) as f64))
            .collect();
        Some(Cdf { count, values })
    }

    /// (value, percent of requests at or below it) points for a chart.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, 100.0 * i as f64 / (CDF_POINTS - 1) as f64))
            .collect()
    }

    /// The value at a quantile in percent (nearest stored point).
    pub fn at(&self, pct: f64) -> f64 {
        let i = (pct / 100.0 * (CDF_POINTS - 1) as f64).round() as usize;
        self.values[i.min(CDF_POINTS - 1)]
    }
}

/// A failed request's kind and message, with how often exactly that pair occurred.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorExample {
    pub kind: String,
    pub message: String,
    pub count: u64,
}

/// What the raw log of one run says beyond its metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    pub ttft: Option<Cdf>,
    pub tpot: Option<Cdf>,
    pub e2e: Option<Cdf>,
    pub errors: Vec<ErrorExample>,
    /// Lines that were read.
    pub lines: u64,
}

/// One GPU's series: (t_s, value) per metric, downsampled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSeries {
    pub gpu: u32,
    pub memory_gb: Vec<(f64, f64)>,
    pub utilization_percent: Vec<(f64, f64)>,
    pub power_w: Vec<(f64, f64)>,
}

/// Keeps at most [`MAX_VALUES`] values by dropping every other one when full.
#[derive(Debug, Default)]
struct Decimator {
    values: Vec<f64>,
    stride: u64,
    seen: u64,
}

impl Decimator {
    fn push(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        if self.stride == 0 {
            self.stride = 1;
        }
        if self.seen.is_multiple_of(self.stride) {
            if self.values.len() >= MAX_VALUES {
                let mut keep = false;
                self.values.retain(|_| {
                    keep = !keep;
                    keep
                });
                self.stride *= 2;
                if self.seen.is_multiple_of(self.stride) {
                    self.values.push(v);
                }
            } else {
                self.values.push(v);
            }
        }
        self.seen += 1;
    }

    fn finish(self) -> Option<Cdf> {
        let count = self.seen;
        Cdf::from_values(self.values, count)
    }
}

#[derive(Default)]
struct Collector {
    ttft: Decimator,
    tpot: Decimator,
    e2e: Decimator,
    errors: Vec<ErrorExample>,
    lines: u64,
}

impl Collector {
    fn push(
        &mut self,
        ok: bool,
        ttft: Option<f64>,
        e2e: Option<f64>,
        tokens: Option<u64>,
        err: Option<(&str, &str)>,
    ) {
        self.lines += 1;
        if ok {
            if let Some(t) = ttft {
                self.ttft.push(t);
            }
            if let Some(e) = e2e {
                self.e2e.push(e);
            }
            if let (Some(e), Some(t), Some(n)) = (e2e, ttft, tokens)
                && n > 1
            {
                self.tpot.push((e - t) / (n - 1) as f64);
            }
        } else if let Some((kind, message)) = err {
            let message = super::h2h::truncate(message, MAX_ERROR_CHARS);
            if let Some(e) = self
                .errors
                .iter_mut()
                .find(|e| e.kind == kind && e.message == message)
            {
                e.count += 1;
            } else if self.errors.len() < MAX_ERROR_EXAMPLES {
                self.errors.push(ErrorExample {
                    kind: kind.to_string(),
                    message,
                    count: 1,
                });
            }
        }
    }

    fn finish(self) -> Latency {
        Latency {
            ttft: self.ttft.finish(),
            tpot: self.tpot.finish(),
            e2e: self.e2e.finish(),
            errors: self.errors,
            lines: self.lines,
        }
    }
}

/// The fields of a benchkeep raw record the report needs; everything else is skipped.
#[derive(Deserialize)]
struct Lean<'a> {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    ttft_ms: Option<f64>,
    #[serde(default)]
    e2e_ms: Option<f64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default, borrow)]
    error_kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

/// A store-relative path that stays inside `raw/` (hand-edited metadata cannot point the
/// report at `/etc/passwd` or `../..`).
fn raw_path(store: &Store, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let mut comps = p.components();
    if comps.next() != Some(Component::Normal("raw".as_ref())) {
        return None;
    }
    if !comps.all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(store.resolve(rel))
}

/// The per-request log of a run, if it is where the metadata says.
pub fn log_path(store: &Store, m: &Metadata) -> Option<PathBuf> {
    raw_path(store, &m.test.output_file).or_else(|| {
        (file_safe(&m.test_id) == m.test_id)
            .then(|| store.raw_dir().join(format!("{}.jsonl", m.test_id)))
    })
}

/// The GPU series file of a run, if there is one.
pub fn gpu_path(store: &Store, m: &Metadata) -> Option<PathBuf> {
    let named = m
        .gpu
        .as_ref()
        .and_then(|g| g.extra.get("series_file"))
        .and_then(|v| v.as_str())
        .and_then(|rel| raw_path(store, rel));
    let default = (file_safe(&m.test_id) == m.test_id)
        .then(|| store.raw_dir().join(format!("{}.gpu.jsonl", m.test_id)));
    named.or(default).filter(|p| p.is_file())
}

/// Whether a run's log is worth reading for latency (its metadata has latencies).
pub fn has_latency(m: &Metadata) -> bool {
    m.results
        .latency_ms
        .as_ref()
        .is_some_and(|l| l.ttft.is_some() || l.e2e.is_some())
}

/// Read the latency distribution of a run's raw log. Errors name the file.
pub fn read_latency(store: &Store, m: &Metadata) -> anyhow::Result<Latency> {
    let path = log_path(store, m)
        .ok_or_else(|| anyhow::anyhow!("{}: raw file path is outside raw/", m.test_id))?;
    let rel = path
        .strip_prefix(store.root())
        .unwrap_or(&path)
        .display()
        .to_string();
    let mut c = Collector::default();
    // A run imported from a whole document (one file, several runs): its records are the
    // ones at its locator in that file.
    if let Some(doc_format) = ingest::DocumentFormat::from_name(&m.source.format) {
        let locator = m.source.extra.get("locator").and_then(Value::as_str);
        let doc = ingest::read_document_as(&path, Some(doc_format))?
            .ok_or_else(|| anyhow::anyhow!("{rel} is no longer a {} file", doc_format.name()))?;
        for run in doc
            .runs
            .iter()
            .filter(|r| Some(r.locator.as_str()) == locator)
        {
            for r in &run.records {
                let kind = r.error_kind.map(|k| k.as_str()).unwrap_or("other");
                let err = r.error.as_deref().map(|e| (kind, e));
                c.push(r.ok, r.ttft_ms, r.e2e_ms, r.completion_tokens, err);
            }
        }
        return Ok(c.finish());
    }
    let format = Format::from_name(&m.source.format).unwrap_or(Format::Benchkeep);
    if format == Format::Benchkeep {
        // Never through a symlink, never a FIFO or device (P11).
        let file = crate::store::nofollow::open_read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("{rel} is missing (`benchkeep verify` checks the store)")
            }
            _ => anyhow::anyhow!("cannot read {rel}: {e}"),
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| anyhow::anyhow!("cannot read {rel}: {e}"))?;
            if n == 0 {
                break;
            }
            if n > MAX_LINE || line.last() != Some(&b'\n') {
                // An oversized line, or a torn tail: not a record.
                continue;
            }
            let Ok(r) = serde_json::from_slice::<Lean>(&line) else {
                continue;
            };
            let Some(ok) = r.ok else { continue };
            let err = r
                .error
                .as_deref()
                .map(|e| (r.error_kind.as_deref().unwrap_or("other"), e));
            c.push(ok, r.ttft_ms, r.e2e_ms, r.completion_tokens, err);
        }
    } else {
        // The reader below opens by name: refuse a symlink, FIFO or device first (P11).
        drop(
            crate::store::nofollow::open_read(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {rel}: {e}"))?,
        );
        ingest::scan_file(&path, Some(format), |r: RequestRecord| {
            let kind = r.error_kind.map(|k| k.as_str()).unwrap_or("other");
            let err = r.error.as_deref().map(|e| (kind, e));
            c.push(r.ok, r.ttft_ms, r.e2e_ms, r.completion_tokens, err);
        })?;
    }
    Ok(c.finish())
}

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_f64))
        .filter(|x| x.is_finite())
}

/// Reduce a series to at most `max` points by averaging equal-width time buckets.
fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let width = ((t1 - t0) / max as f64).max(f64::MIN_POSITIVE);
    let mut buckets: Vec<(f64, f64, u32)> = vec![(0.0, 0.0, 0); max];
    for &(t, v) in points {
        let i = (((t - t0) / width) as usize).min(max - 1);
        let b = &mut buckets[i];
        b.0 += t;
        b.1 += v;
        b.2 += 1;
    }
    buckets
        .into_iter()
        .filter(|b| b.2 > 0)
        .map(|(t, v, n)| (t / n as f64, v / n as f64))
        .collect()
}

/// Read a GPU series file (one JSON object per line per GPU sample; unknown or bad lines
/// are skipped). Field names follow `benchkeep record`/`run` (`t_s`, `gpu`,
/// `memory_used_mib`, `utilization_percent`, `power_w`), with a few spellings tolerated.
pub fn read_gpu(path: &Path) -> anyhow::Result<Vec<GpuSeries>> {
    let file = crate::store::nofollow::open_read(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let reader = BufReader::new(file);
    type Raw = (Vec<(f64, f64)>, Vec<(f64, f64)>, Vec<(f64, f64)>);
    let mut by_gpu: BTreeMap<u32, Raw> = BTreeMap::new();
    let mut t_first_abs: Option<f64> = None;
    for (n, line) in reader.split(b'\n').enumerate() {
        if n >= MAX_GPU_LINES {
            break;
        }
        let Ok(line) = line else { break };
        if line.len() > 64 * 1024 {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        let t = match num(&v, &["t_s", "elapsed_s", "time_s", "t"]) {
            Some(t) => t,
            None => match num(&v, &["unix_s", "ts", "timestamp_s"]) {
                Some(abs) => abs - *t_first_abs.get_or_insert(abs),
                None => n as f64,
            },
        };
        let gpu = num(&v, &["gpu", "index", "gpu_index"]).unwrap_or(0.0) as u32;
        let entry = by_gpu.entry(gpu).or_default();
        let mem = num(&v, &["memory_used_gb", "vram_used_gb"])
            .or_else(|| num(&v, &["memory_used_mib"]).map(|m| m / 1024.0))
            .or_else(|| num(&v, &["memory_used_mb"]).map(|m| m / 1000.0));
        if let Some(m) = mem {
            entry.0.push((t, m));
        }
        if let Some(u) = num(
            &v,
            &[
                "utilization_percent",
                "utilization_gpu_percent",
                "gpu_utilization_percent",
                "utilization",
            ],
        ) {
            entry.1.push((t, u));
        }
        if let Some(p) = num(&v, &["power_w", "power_draw_w", "power_watts"]) {
            entry.2.push((t, p));
        }
    }
    Ok(by_gpu
        .into_iter()
        .filter(|(_, (m, u, p))| !(m.is_empty() && u.is_empty() && p.is_empty()))
        .map(|(gpu, (mut m, mut u, mut p))| {
            for s in [&mut m, &mut u, &mut p] {
                s.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            GpuSeries {
                gpu,
                memory_gb: downsample(&m, MAX_GPU_POINTS),
                utilization_percent: downsample(&u, MAX_GPU_POINTS),
                power_w: downsample(&p, MAX_GPU_POINTS),
            }
        })
        .collect())
}

/// Run `f` over `items` on every core (work-stealing, order kept).
pub fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len())
        .min(16);
    if threads < 2 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&items[i]);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item was processed")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimator_is_bounded_and_even() {
        let mut d = Decimator::default();
        for i in 0..(MAX_VALUES * 3) {
            d.push(i as f64);
        }
        assert!(d.values.len() <= MAX_VALUES);
        assert_eq!(d.seen, (MAX_VALUES * 3) as u64);
        let cdf = d.finish().unwrap();
        let median = cdf.at(50.0);
        let expect = (MAX_VALUES * 3) as f64 / 2.0;
        assert!(
            (median - expect).abs() / expect < 0.01,
            "{median} vs {expect}"
        );
    }

    #[test]
    fn cdf_quantiles() {
        let cdf = Cdf::from_values((1..=100).map(f64::from).collect(), 100).unwrap();
        assert_eq!(cdf.values.len(), CDF_POINTS);
        assert_eq!(cdf.at(0.0), 1.0);
        assert_eq!(cdf.at(100.0), 100.0);
        assert!((cdf.at(50.0) - 50.5).abs() < 1e-9);
        assert_eq!(cdf.points()[200], (100.0, 100.0));
    }

    #[test]
    fn downsample_keeps_shape() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, 5.0)).collect();
        let d = downsample(&pts, 100);
        assert!(d.len() <= 100);
        assert!(d.iter().all(|&(_, v)| v == 5.0));
    }

    #[test]
    fn raw_paths_stay_inside() {
        let s = Store::new("/s");
        assert!(raw_path(&s, "raw/x.jsonl").is_some());
        assert!(raw_path(&s, "raw/../../etc/passwd").is_none());
        assert!(raw_path(&s, "/etc/passwd").is_none());
        assert!(raw_path(&s, "metadata/x.json").is_none());
    }

    #[test]
    fn parallel_keeps_order() {
        let v: Vec<u32> = (0..100).collect();
        assert_eq!(
            parallel(&v, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
    }
}
