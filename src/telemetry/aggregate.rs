//! Aggregation of GPU samples into the run's `gpu` block: streaming (a 6-hour run at two
//! samples a second is never held in memory), one accumulator per GPU.
//!
//! Definitions (also in docs/record.md):
//! - `vram_total_gb`: memory of all sampled GPUs together, GiB (nvidia-smi's "GB");
//! - `vram_used_gb`: the peak, over samples, of the memory used on all sampled GPUs together;
//! - `utilization_avg_percent` (= `results.gpu_utilization_percent`): mean over samples and
//!   GPUs;
//! - `power_avg_w`: mean power of all sampled GPUs together;
//! - `energy_joules`: per GPU, the difference of NVML's energy counter between the first and
//!   last sample when it has one, else power integrated over time (trapezoids); summed.
//!   With a window ([`Accumulator::finish_window`], what `run` uses), exactly over the
//!   run's window: what the samples outside it cover is cut off (power interpolated
//!   linearly, from the first and last [`EDGE`] samples kept), and a window edge beyond the
//!   samples is filled with the nearest sample's power.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

use super::GpuReading;
use crate::schema::round;
use crate::schema::{GpuInfo, Metadata};

const MIB_PER_GIB: f64 = 1024.0;

/// How many power samples are kept at each end of the run to cut the energy at the
/// window's edges: 256 at the shortest interval (50 ms) is 12.8 s, more than the sampler
/// runs outside the load. An edge further in than that is cut at the last kept sample
/// (the energy then keeps what lies beyond it). Memory: 2 x 256 x 24 bytes a GPU.
const EDGE: usize = 256;

/// One power sample: time (s), power (W), energy integrated from the first sample (J).
#[derive(Debug, Clone, Copy)]
struct PowerPoint {
    t: f64,
    w: f64,
    e: f64,
}

/// The energy integrated from the first sample up to `x` (linear power between samples),
/// when `x` lies within the span of `points` (sorted by time).
fn energy_at<'a>(points: impl IntoIterator<Item = &'a PowerPoint>, x: f64) -> Option<f64> {
    let mut prev: Option<&PowerPoint> = None;
    for p in points {
        if x <= p.t {
            let a = prev?;
            if p.t <= a.t {
                return Some(a.e);
            }
            let wx = a.w + (p.w - a.w) * (x - a.t) / (p.t - a.t);
            return Some(a.e + (a.w + wx) / 2.0 * (x - a.t));
        }
        prev = Some(p);
    }
    None
}

/// Running totals of one GPU.
#[derive(Debug, Default, Clone)]
struct DeviceAcc {
    name: Option<String>,
    uuid: Option<String>,
    memory_total_mib: Option<f64>,
    memory_used_peak_mib: Option<f64>,
    util_sum: f64,
    util_n: u64,
    power_sum: f64,
    power_n: u64,
    temperature_max_c: Option<f64>,
    /// The first [`EDGE`] power samples, as (t, W, energy integrated up to t), to cut the
    /// energy before the window's start exactly.
    head: Vec<PowerPoint>,
    /// The last [`EDGE`] power samples, the same way, to cut the energy after its end.
    tail: VecDeque<PowerPoint>,
    energy_integrated_j: f64,
    energy_integrated: bool,
    energy_first_mj: Option<u64>,
    energy_last_mj: Option<u64>,
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl DeviceAcc {
    fn add(&mut self, t_s: f64, r: &GpuReading) {
        if r.name.is_some() {
            self.name.clone_from(&r.name);
        }
        if r.uuid.is_some() {
            self.uuid.clone_from(&r.uuid);
        }
        self.memory_total_mib = max_opt(self.memory_total_mib, r.memory_total_mib);
        self.memory_used_peak_mib = max_opt(self.memory_used_peak_mib, r.memory_used_mib);
        self.temperature_max_c = max_opt(self.temperature_max_c, r.temperature_c);
        if let Some(u) = r.utilization_percent {
            self.util_sum += u;
            self.util_n += 1;
        }
        if let Some(p) = r.power_w {
            self.power_sum += p;
            self.power_n += 1;
            let mut e = 0.0;
            if let Some(last) = self.tail.back() {
                if t_s <= last.t {
                    // Out of order (a clock step): not integrated, not an edge point.
                    return self.add_energy(r);
                }
                e = last.e + (last.w + p) / 2.0 * (t_s - last.t);
                self.energy_integrated_j = e;
                self.energy_integrated = true;
            }
            let point = PowerPoint { t: t_s, w: p, e };
            if self.head.len() < EDGE {
                self.head.push(point);
            }
            if self.tail.len() == EDGE {
                self.tail.pop_front();
            }
            self.tail.push_back(point);
        }
        self.add_energy(r);
    }

    fn add_energy(&mut self, r: &GpuReading) {
        if let Some(e) = r.energy_mj {
            self.energy_first_mj.get_or_insert(e);
            self.energy_last_mj = Some(e);
        }
    }

    fn energy_j(&self) -> Option<f64> {
        match (self.energy_first_mj, self.energy_last_mj) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1000.0),
            _ if self.energy_integrated => Some(self.energy_integrated_j),
            _ => None,
        }
    }

    /// The energy over exactly `[start, end]` (seconds on the sampler's clock): the energy
    /// between the first and last sample, less what of it lies outside the window (power
    /// interpolated linearly, from the kept edge samples), plus the window's edges beyond
    /// the samples at the nearest sample's power.
    fn energy_in(&self, start: f64, end: f64) -> Option<f64> {
        let mut e = self.energy_j()?;
        let (Some(first), Some(last)) = (self.head.first(), self.tail.back()) else {
            return Some(e);
        };
        // Where a cut falls in neither kept end, the nearest kept sample stands in.
        let at = |x: f64, fallback: f64| {
            energy_at(&self.head, x)
                .or_else(|| energy_at(&self.tail, x))
                .unwrap_or(fallback)
        };
        if start < first.t {
            e += first.w * (first.t - start);
        } else {
            e -= at(start, self.head.last().map_or(0.0, |p| p.e));
        }
        if end > last.t {
            e += last.w * (end - last.t);
        } else {
            let from = self.tail.front().map_or(last.e, |p| p.e);
            e -= last.e - at(end.max(start), from);
        }
        Some(e.max(0.0))
    }

    fn summary(&self, index: u32, window: Option<(f64, f64)>) -> DeviceSummary {
        let energy = match window {
            Some((a, b)) => self.energy_in(a, b),
            None => self.energy_j(),
        };
        DeviceSummary {
            index,
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            vram_total_gb: self.memory_total_mib.map(gib),
            vram_used_gb: self.memory_used_peak_mib.map(gib),
            utilization_avg_percent: mean(self.util_sum, self.util_n).map(|v| round(v, 1)),
            power_avg_w: mean(self.power_sum, self.power_n).map(|v| round(v, 1)),
            energy_joules: energy.map(|v| round(v, 1)),
            temperature_max_c: self.temperature_max_c,
        }
    }
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

fn gib(mib: f64) -> f64 {
    round(mib / MIB_PER_GIB, 2)
}

/// Streaming aggregation of samples.
#[derive(Debug, Clone)]
pub struct Accumulator {
    source: &'static str,
    driver: Option<String>,
    devices: BTreeMap<u32, DeviceAcc>,
    samples: u64,
    first_t_s: Option<f64>,
    last_t_s: Option<f64>,
    used_total_peak_mib: Option<f64>,
    power_total_sum: f64,
    power_total_n: u64,
}

impl Accumulator {
    pub fn new(source: &'static str, driver: Option<String>) -> Self {
        Accumulator {
            source,
            driver,
            devices: BTreeMap::new(),
            samples: 0,
            first_t_s: None,
            last_t_s: None,
            used_total_peak_mib: None,
            power_total_sum: 0.0,
            power_total_n: 0,
        }
    }

    /// Add one sample: the readings of every GPU at `t_s` seconds since the start.
    pub fn add(&mut self, t_s: f64, readings: &[GpuReading]) {
        if readings.is_empty() {
            return;
        }
        self.samples += 1;
        self.first_t_s.get_or_insert(t_s);
        self.last_t_s = Some(t_s);
        let mut used = None;
        let mut power = None;
        for r in readings {
            self.devices.entry(r.index).or_default().add(t_s, r);
            if let Some(u) = r.memory_used_mib {
                used = Some(used.unwrap_or(0.0) + u);
            }
            if let Some(p) = r.power_w {
                power = Some(power.unwrap_or(0.0) + p);
            }
        }
        self.used_total_peak_mib = max_opt(self.used_total_peak_mib, used);
        if let Some(p) = power {
            self.power_total_sum += p;
            self.power_total_n += 1;
        }
    }

    /// The summary, or `None` when no sample had any GPU in it.
    pub fn finish(&self) -> Option<GpuSummary> {
        self.summarize(None)
    }

    /// The summary with the energy over exactly `[start_s, end_s]` (seconds since the
    /// sampler started): the run's window, not the samples' span.
    pub fn finish_window(&self, start_s: f64, end_s: f64) -> Option<GpuSummary> {
        self.summarize(Some((start_s, end_s.max(start_s))))
    }

    fn summarize(&self, window: Option<(f64, f64)>) -> Option<GpuSummary> {
        if self.samples == 0 {
            return None;
        }
        let devices: Vec<DeviceSummary> = self
            .devices
            .iter()
            .map(|(i, d)| d.summary(*i, window))
            .collect();
        let sum_known = |f: &dyn Fn(&DeviceSummary) -> Option<f64>| {
            let vals: Vec<f64> = devices.iter().filter_map(f).collect();
            (!vals.is_empty()).then(|| vals.iter().sum::<f64>())
        };
        let utils: Vec<f64> = self
            .devices
            .values()
            .filter_map(|d| mean(d.util_sum, d.util_n))
            .collect();
        let mut names: Vec<String> = Vec::new();
        for d in &devices {
            if let Some(n) = &d.name
                && !names.contains(n)
            {
                names.push(n.clone());
            }
        }
        let vram_total_mib: Vec<f64> = self
            .devices
            .values()
            .filter_map(|d| d.memory_total_mib)
            .collect();
        Some(GpuSummary {
            source: self.source,
            driver: self.driver.clone(),
            name: (!names.is_empty()).then(|| names.join(" + ")),
            count: devices.len() as u32,
            vram_total_gb: (!vram_total_mib.is_empty()).then(|| gib(vram_total_mib.iter().sum())),
            vram_used_gb: self.used_total_peak_mib.map(gib),
            utilization_avg_percent: (!utils.is_empty())
                .then(|| round(utils.iter().sum::<f64>() / utils.len() as f64, 1)),
            power_avg_w: mean(self.power_total_sum, self.power_total_n).map(|v| round(v, 1)),
            energy_joules: sum_known(&|d| d.energy_joules).map(|v| round(v, 1)),
            temperature_max_c: devices
                .iter()
                .filter_map(|d| d.temperature_max_c)
                .reduce(f64::max),
            samples: self.samples,
            energy_window_s: window.map(|(a, b)| round(b - a, 3)),
            span_s: match (self.first_t_s, self.last_t_s) {
                (Some(a), Some(b)) => round(b - a, 3),
                _ => 0.0,
            },
            devices,
        })
    }
}

/// One GPU over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub index: u32,
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub vram_total_gb: Option<f64>,
    /// Peak.
    pub vram_used_gb: Option<f64>,
    pub utilization_avg_percent: Option<f64>,
    pub power_avg_w: Option<f64>,
    pub energy_joules: Option<f64>,
    pub temperature_max_c: Option<f64>,
}

/// What the sampler saw over a run, all GPUs together (definitions: module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSummary {
    /// `nvml`, `nvidia-smi` or `rocm-smi`.
    pub source: &'static str,
    pub driver: Option<String>,
    /// The GPU name; distinct names joined with ` + ` on a mixed host.
    pub name: Option<String>,
    pub count: u32,
    pub vram_total_gb: Option<f64>,
    pub vram_used_gb: Option<f64>,
    pub utilization_avg_percent: Option<f64>,
    pub power_avg_w: Option<f64>,
    pub energy_joules: Option<f64>,
    pub temperature_max_c: Option<f64>,
    /// Sampling ticks that returned readings.
    pub samples: u64,
    /// Seconds from the first to the last sample.
    pub span_s: f64,
    /// The window the energy covers, seconds (the run's), when one was given.
    pub energy_window_s: Option<f64>,
    pub devices: Vec<DeviceSummary>,
}

impl GpuSummary {
    /// The seed's `gpu` block, extended: `devices`, `temperature_max_c`, `sampled_seconds`
    /// and (when given) `series_file` go to its extra keys.
    pub fn gpu_info(&self, series_file: Option<&str>) -> GpuInfo {
        let mut info = GpuInfo {
            name: self.name.clone(),
            vram_total_gb: self.vram_total_gb,
            vram_used_gb: self.vram_used_gb,
            count: Some(self.count),
            utilization_avg_percent: self.utilization_avg_percent,
            power_avg_w: self.power_avg_w,
            energy_joules: self.energy_joules,
            samples: Some(self.samples),
            driver: self.driver.clone(),
            source: Some(self.source.to_string()),
            ..Default::default()
        };
        if let Some(t) = self.temperature_max_c {
            info.extra.insert("temperature_max_c".into(), t.into());
        }
        info.extra
            .insert("sampled_seconds".into(), Value::from(self.span_s));
        if let Some(w) = self.energy_window_s {
            info.extra.insert("energy_window_s".into(), Value::from(w));
        }
        if let Some(f) = series_file {
            info.extra.insert("series_file".into(), f.into());
        }
        if let Ok(v) = serde_json::to_value(&self.devices) {
            info.extra.insert("devices".into(), v);
        }
        info
    }

    /// Fill a run's metadata: the `gpu` block, `results.gpu_utilization_percent` (mean
    /// utilization) and `results.output_tokens_per_joule` (completion tokens of successful
    /// requests / energy) when the energy is known. Call after `results` is computed.
    pub fn apply_to(&self, meta: &mut Metadata, series_file: Option<&str>) {
        meta.gpu = Some(Box::new(self.gpu_info(series_file)));
        meta.results.gpu_utilization_percent = self.utilization_avg_percent;
        meta.results.output_tokens_per_joule = self
            .energy_joules
            .filter(|e| *e > 0.0)
            .map(|e| round(meta.results.total_completion_tokens as f64 / e, 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One GPU sampled every 0.5 s from `first` to `last` s with `power(t)` watts and, with
    /// `counter`, NVML's energy counter (its exact integral).
    fn sampled(
        first: f64,
        last: f64,
        power: fn(f64) -> f64,
        counter: Option<fn(f64) -> f64>,
    ) -> Accumulator {
        let mut acc = Accumulator::new("nvml", None);
        let mut t = first;
        while t <= last + 1e-9 {
            acc.add(
                t,
                &[GpuReading {
                    power_w: Some(power(t)),
                    energy_mj: counter.map(|c| (c(t) * 1000.0).round() as u64),
                    ..Default::default()
                }],
            );
            t += 0.5;
        }
        acc
    }

    #[test]
    fn energy_covers_exactly_the_run_window() {
        // The audit's case: the first sample 0.1 s late, the last after the run's end.
        let flat = sampled(0.1, 3.6, |_| 100.0, None);
        assert_eq!(
            flat.finish().unwrap().energy_joules,
            Some(350.0),
            "the samples' span"
        );
        let w = flat.finish_window(0.0, 3.4).unwrap();
        assert_eq!(w.energy_joules, Some(340.0));
        assert_eq!(w.energy_window_s, Some(3.4));
        // A ramp: 100 W + 10 W/s; exact over [0, 3.5]: 350 + 5 * 3.5^2 = 411.25 J. Only the
        // first 0.1 s is estimated (held at the first sample's power: +0.005 J).
        let ramp = sampled(0.1, 3.6, |t| 100.0 + 10.0 * t, None);
        let e = ramp.finish_window(0.0, 3.5).unwrap().energy_joules.unwrap();
        assert!((e - 411.25).abs() <= 0.1, "{e}");
        // NVML's counter is cut the same way.
        let counted = sampled(0.1, 3.6, |_| 100.0, Some(|t| 100.0 * t));
        let e = counted
            .finish_window(0.0, 3.4)
            .unwrap()
            .energy_joules
            .unwrap();
        assert!((e - 340.0).abs() <= 0.1, "{e}");
    }

    #[test]
    fn energy_is_cut_exactly_with_many_samples_outside_the_window() {
        // Samples every 0.5 s from 0 to 10 s; the run from 2.2 to 6.3 s: four samples
        // before its start and seven after its end (the CI failure: only one interval was
        // cut at each end). A ramp 100 W + 10 W/s: exact 4.1 * 100 + 5 * (6.3^2 - 2.2^2).
        let ramp = sampled(0.0, 10.0, |t| 100.0 + 10.0 * t, None);
        let want = 410.0 + 5.0 * (6.3f64.powi(2) - 2.2f64.powi(2));
        let e = ramp.finish_window(2.2, 6.3).unwrap().energy_joules.unwrap();
        assert!((e - want).abs() <= 0.1, "{e} vs {want}");
        let counted = sampled(0.0, 10.0, |_| 300.0, Some(|t| 300.0 * t));
        let e = counted.finish_window(2.2, 6.3).unwrap();
        assert!((e.energy_joules.unwrap() - 1230.0).abs() <= 0.1, "{e:?}");
        // Past the kept edges (a 200 s sampling, 401 samples) the cut still holds at the
        // tail, and at the head within its 256 samples.
        let long = sampled(0.0, 200.0, |_| 300.0, None);
        let e = long.finish_window(100.0, 190.0).unwrap().energy_joules;
        assert_eq!(e, Some(27000.0));
    }

    fn reading(index: u32, used: f64, util: Option<f64>, power: Option<f64>) -> GpuReading {
        GpuReading {
            index,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            memory_total_mib: Some(81559.0),
            memory_used_mib: Some(used),
            utilization_percent: util,
            power_w: power,
            temperature_c: Some(40.0 + index as f64),
            ..Default::default()
        }
    }

    #[test]
    fn two_gpus_peak_mean_and_energy() {
        let mut acc = Accumulator::new("nvidia-smi", Some("550.54.15".into()));
        assert!(acc.finish().is_none());
        acc.add(
            0.0,
            &[reading(0, 1024.0, Some(20.0), Some(100.0)), {
                reading(1, 0.0, None, None)
            }],
        );
        acc.add(
            1.0,
            &[reading(0, 4096.0, Some(40.0), Some(300.0)), {
                reading(1, 2048.0, None, None)
            }],
        );
        acc.add(
            2.0,
            &[reading(0, 2048.0, Some(60.0), Some(300.0)), {
                reading(1, 1024.0, None, None)
            }],
        );
        let s = acc.finish().unwrap();
        assert_eq!(s.count, 2);
        assert_eq!(s.samples, 3);
        assert_eq!(s.span_s, 2.0);
        assert_eq!(s.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(s.vram_total_gb, Some(round(2.0 * 81559.0 / 1024.0, 2)));
        assert_eq!(s.vram_used_gb, Some(6.0)); // 4096 + 2048 MiB at t=1
        assert_eq!(s.utilization_avg_percent, Some(40.0)); // GPU 1 never reported
        assert_eq!(s.power_avg_w, Some(round(700.0 / 3.0, 1)));
        // trapezoids: (100+300)/2*1 + (300+300)/2*1 = 500 J
        assert_eq!(s.energy_joules, Some(500.0));
        assert_eq!(s.devices[0].energy_joules, Some(500.0));
        assert_eq!(s.devices[1].energy_joules, None);
        assert_eq!(s.devices[0].vram_used_gb, Some(4.0));
        assert_eq!(s.temperature_max_c, Some(41.0));

        let mut meta: Metadata = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "test_id": "x", "timestamp": "t", "platform": "p", "model": "m",
            "test": {"num_requests": 1, "output_file": "raw/x.jsonl"},
            "results": {"success_count": 1, "failure_count": 0, "total_time_seconds": 1.0,
                        "throughput_tokens_per_sec": 1.0, "throughput_requests_per_sec": 1.0,
                        "avg_prompt_tokens": 1.0, "avg_completion_tokens": 1.0,
                        "total_completion_tokens": 1000},
            "status": "completed", "tool": {"name": "benchkeep", "version": "0"},
            "source": {"kind": "record", "format": "openai-batch"}
        }))
        .unwrap();
        s.apply_to(&mut meta, Some("raw/x.gpu.jsonl"));
        let info = meta.gpu.as_ref().unwrap();
        assert_eq!(info.source.as_deref(), Some("nvidia-smi"));
        assert_eq!(info.driver.as_deref(), Some("550.54.15"));
        assert_eq!(info.count, Some(2));
        assert_eq!(info.samples, Some(3));
        assert_eq!(info.extra["series_file"], "raw/x.gpu.jsonl");
        assert_eq!(info.extra["devices"].as_array().unwrap().len(), 2);
        assert_eq!(meta.results.gpu_utilization_percent, Some(40.0));
        assert_eq!(meta.results.output_tokens_per_joule, Some(2.0));
    }

    #[test]
    fn energy_counter_wins_over_integration() {
        let mut acc = Accumulator::new("nvml", None);
        for (t, mj) in [(0.0, 1_000_000u64), (1.0, 1_250_000), (2.0, 1_600_000)] {
            let mut r = reading(0, 10.0, Some(50.0), Some(100.0));
            r.energy_mj = Some(mj);
            acc.add(t, &[r]);
        }
        let s = acc.finish().unwrap();
        assert_eq!(s.energy_joules, Some(600.0));
    }

    #[test]
    fn mixed_names_are_joined() {
        let mut acc = Accumulator::new("nvml", None);
        let mut other = reading(1, 1.0, None, None);
        other.name = Some("NVIDIA L4".into());
        acc.add(0.0, &[reading(0, 1.0, None, None), other]);
        acc.add(0.5, &[]);
        let s = acc.finish().unwrap();
        assert_eq!(s.samples, 1);
        assert_eq!(s.name.as_deref(), Some("NVIDIA H100 80GB HBM3 + NVIDIA L4"));
        assert_eq!(s.energy_joules, None);
        assert_eq!(s.power_avg_w, None);
        assert_eq!(s.utilization_avg_percent, None);
    }
}
