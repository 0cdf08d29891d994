//! GPU telemetry: a sampler thread that reads every visible GPU at a fixed interval (NVML,
//! else `nvidia-smi`, else `rocm-smi`), writes the time series to a JSON Lines file and
//! aggregates it into the run's `gpu` block. Used by `record` and `run`.
//!
//! Telemetry never fails a run: when no source works the summary is `None` (`"gpu": null`)
//! and one note goes to stderr.
//!
//! ```no_run
//! use std::time::Duration;
//! use benchkeep::telemetry::{GpuMode, GpuSampler, VisibleDevices};
//! let visible = VisibleDevices::parse(None); // the CLI passes CUDA_VISIBLE_DEVICES
//! let sampler = GpuSampler::start(GpuMode::Auto, visible, Duration::from_millis(500), None);
//! // ... the benchmark runs ...
//! if let Some(summary) = sampler.finish() {
//!     println!("{:?} W on average", summary.power_avg_w);
//! }
//! ```

pub mod aggregate;
pub mod nvidia_smi;
pub mod nvml;
pub mod rocm;
pub mod server_gpus;
pub mod visible;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use aggregate::{Accumulator, DeviceSummary, GpuSummary};
pub use visible::VisibleDevices;

/// The default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);
/// The shortest interval accepted (nvidia-smi itself needs tens of milliseconds).
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// After this many failed samples in a row the sampler gives up (with a note).
const MAX_CONSECUTIVE_ERRORS: u32 = 20;
/// The series file is synced at least this often (RELIABILITY.md P1).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Which telemetry source to use (`--gpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuMode {
    /// No telemetry.
    Off,
    /// NVML, else nvidia-smi, else rocm-smi, else none.
    Auto,
    Nvml,
    NvidiaSmi,
    RocmSmi,
}

impl GpuMode {
    pub const NAMES: [&'static str; 5] = ["off", "auto", "nvml", "nvidia-smi", "rocm-smi"];

    /// Parse a `--gpu` value.
    pub fn from_name(name: &str) -> Option<GpuMode> {
        Some(match name {
            "off" | "none" => GpuMode::Off,
            "auto" => GpuMode::Auto,
            "nvml" => GpuMode::Nvml,
            "nvidia-smi" => GpuMode::NvidiaSmi,
            "rocm-smi" | "rocm" => GpuMode::RocmSmi,
            _ => return None,
        })
    }
}

/// One GPU at one moment. Units are in the names; `None` when the source cannot tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    /// The tool's index (nvidia-smi/NVML order, or `cardN` for rocm-smi).
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory_total_mib: Option<f64>,
    pub memory_used_mib: Option<f64>,
    pub utilization_percent: Option<f64>,
    pub power_w: Option<f64>,
    pub temperature_c: Option<f64>,
    /// NVML's energy counter (millijoules since the driver loaded), Volta and newer.
    pub energy_mj: Option<u64>,
}

/// One line of the series file `raw/<test_id>.gpu.jsonl`: one GPU at one sample.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesLine<'a> {
    /// Seconds since the sampler started.
    pub t_s: f64,
    pub gpu: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
}

impl<'a> SeriesLine<'a> {
    fn new(t_s: f64, r: &'a GpuReading) -> Self {
        let r2 = |v: Option<f64>| v.map(|x| crate::schema::round(x, 2));
        SeriesLine {
            t_s: crate::schema::round(t_s, 3),
            gpu: r.index,
            name: r.name.as_deref(),
            memory_used_mib: r2(r.memory_used_mib),
            memory_total_mib: r2(r.memory_total_mib),
            utilization_percent: r.utilization_percent,
            power_w: r2(r.power_w),
            temperature_c: r.temperature_c,
        }
    }
}

/// A telemetry source.
pub trait Backend: Send {
    /// `nvml`, `nvidia-smi`, `rocm-smi`.
    fn source(&self) -> &'static str;
    fn driver(&self) -> Option<String>;
    /// Read every visible GPU once.
    fn sample(&mut self) -> Result<Vec<GpuReading>, String>;
}

/// Open the source `mode` asks for. `Err` holds the one-line reason for the note.
pub fn open_backend(mode: GpuMode, visible: VisibleDevices) -> Result<Box<dyn Backend>, String> {
    match mode {
        GpuMode::Off => Err("off (--gpu off)".into()),
        GpuMode::Nvml => nvml::Nvml::open(visible).map(|b| Box::new(b) as Box<dyn Backend>),
        GpuMode::NvidiaSmi => {
            nvidia_smi::NvidiaSmi::open(visible).map(|b| Box::new(b) as Box<dyn Backend>)
        }
        GpuMode::RocmSmi => rocm::RocmSmi::open().map(|b| Box::new(b) as Box<dyn Backend>),
        GpuMode::Auto => {
            let mut reasons = Vec::new();
            match nvml::Nvml::open(visible.clone()) {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => reasons.push(e),
            }
            match nvidia_smi::NvidiaSmi::open(visible) {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => reasons.push(e),
            }
            match rocm::RocmSmi::open() {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => reasons.push(e),
            }
            // The usual case on a machine without a GPU: say it in one short line.
            if reasons
                .iter()
                .all(|r| r.contains("cannot open") || r.contains("not found"))
            {
                return Err("no NVIDIA or AMD GPU tools here (libnvidia-ml, nvidia-smi, rocm-smi); `--gpu off` silences this".into());
            }
            Err(reasons.join("; "))
        }
    }
}

/// A running sampler. Start it when the benchmark starts, [`finish`](Self::finish) it when
/// the benchmark ends.
pub struct GpuSampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Option<Accumulator>>>,
    /// What [`halt`](Self::halt) collected, until the summary is asked for.
    halted: Option<Box<Accumulator>>,
    /// Time 0 of the samples.
    t0: Instant,
}

/// How long [`GpuSampler::start`] waits for the first sample (opening NVML or running
/// nvidia-smi the first time), so that the run's window starts after it.
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(3);

impl GpuSampler {
    /// Start sampling every `interval` on a background thread (nothing at all with
    /// [`GpuMode::Off`]). The source is opened on that thread, so this returns at once;
    /// when no source works, one note goes to stderr and [`finish`](Self::finish) gives
    /// `None`. It returns once the first sample is taken (or after a few seconds at most),
    /// so a benchmark started after it has a sample at its start. With `series_out`, each
    /// reading is appended to that file as a JSON line
    /// (created exclusively; a file that cannot be created only costs the series, with a
    /// note). Times (`t_s`) count from this call. `visible` is the CLI's reading of
    /// `CUDA_VISIBLE_DEVICES` (library code never reads the environment).
    pub fn start(
        mode: GpuMode,
        visible: VisibleDevices,
        interval: Duration,
        series_out: Option<PathBuf>,
    ) -> GpuSampler {
        if mode == GpuMode::Off {
            return GpuSampler {
                stop: None,
                thread: None,
                halted: None,
                t0: Instant::now(),
            };
        }
        Self::spawn(
            move || {
                open_backend(mode, visible)
                    .inspect_err(|reason| note(reason))
                    .ok()
            },
            interval,
            series_out,
        )
    }

    /// Like [`start`](Self::start), with the source given (tests, other sources).
    pub fn start_with(
        backend: Box<dyn Backend>,
        interval: Duration,
        series_out: Option<PathBuf>,
    ) -> GpuSampler {
        Self::spawn(move || Some(backend), interval, series_out)
    }

    fn spawn(
        open: impl FnOnce() -> Option<Box<dyn Backend>> + Send + 'static,
        interval: Duration,
        series_out: Option<PathBuf>,
    ) -> GpuSampler {
        let t0 = Instant::now();
        let interval = interval.max(MIN_INTERVAL);
        let (tx, rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gpu-sampler".into())
            .spawn(move || {
                let backend = open();
                let Some(backend) = backend else {
                    drop(ready_tx);
                    return None;
                };
                sample_loop(backend, interval, series_out, t0, rx, ready_tx)
            })
            .ok();
        if thread.is_some() {
            // Returns at the first sample, or at once when no source opened.
            let _ = ready_rx.recv_timeout(FIRST_SAMPLE_WAIT);
        }
        GpuSampler {
            stop: Some(tx),
            thread,
            halted: None,
            t0,
        }
    }

    fn stop(&mut self) -> Option<Accumulator> {
        drop(self.stop.take());
        match self.thread.take() {
            Some(t) => t.join().ok().flatten(),
            None => self.halted.take().map(|a| *a),
        }
    }

    /// Take one last sample and stop sampling now (the load is over), keeping the samples
    /// for the summary asked for later: what the run does after its last response (the
    /// final scrape, writing metadata) is not in the GPU figures. Blocks for one sample.
    pub fn halt(&mut self) {
        if self.thread.is_some() {
            self.halted = self.stop().map(Box::new);
        }
    }

    /// Take one last sample, stop, and summarize (`None`: no telemetry).
    pub fn finish(mut self) -> Option<GpuSummary> {
        self.stop()?.finish()
    }

    /// Take one last sample, stop, and summarize with the energy over exactly the window
    /// from `start` to `end` (the run's first send to its last response), not the span of
    /// the samples.
    pub fn finish_window(mut self, start: Instant, end: Instant) -> Option<GpuSummary> {
        let at = |t: Instant| {
            if t >= self.t0 {
                t.duration_since(self.t0).as_secs_f64()
            } else {
                -self.t0.duration_since(t).as_secs_f64()
            }
        };
        let (a, b) = (at(start), at(end));
        self.stop()?.finish_window(a, b)
    }
}

impl Drop for GpuSampler {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

/// Warn when several GPUs were sampled and nobody said which are the server's: the figures
/// then cover them all (an idle GPU halves the utilization and adds its power).
pub fn warn_unchosen(visible: &VisibleDevices, sampled: u32) {
    if sampled > 1 && !visible.is_chosen() {
        eprintln!(
            "benchkeep: warning: the GPU figures cover all {sampled} GPUs this machine shows, not only the server's; name the server's with --gpu-index (e.g. --gpu-index 0)"
        );
    }
}

fn note(text: &str) {
    eprintln!("benchkeep: no GPU telemetry: {text}");
}

/// The series file: one complete line per write, synced at least every second.
struct Series {
    file: File,
    path: PathBuf,
    last_sync: Instant,
    broken: bool,
}

impl Series {
    fn create(path: PathBuf) -> Option<Series> {
        match OpenOptions::new().append(true).create_new(true).open(&path) {
            Ok(file) => Some(Series {
                file,
                path,
                last_sync: Instant::now(),
                broken: false,
            }),
            Err(e) => {
                eprintln!(
                    "benchkeep: warning: cannot create the GPU series {}: {e}; sampling goes on without it",
                    path.display()
                );
                None
            }
        }
    }

    fn write(&mut self, t_s: f64, readings: &[GpuReading]) {
        if self.broken {
            return;
        }
        let mut buf = Vec::new();
        for r in readings {
            if serde_json::to_writer(&mut buf, &SeriesLine::new(t_s, r)).is_ok() {
                buf.push(b'\n');
            }
        }
        if let Err(e) = self.file.write_all(&buf) {
            eprintln!(
                "benchkeep: warning: writing the GPU series {} failed: {e}; the series stops here",
                self.path.display()
            );
            self.broken = true;
            return;
        }
        if self.last_sync.elapsed() >= SYNC_EVERY {
            let _ = self.file.sync_data();
            self.last_sync = Instant::now();
        }
    }
}

impl Drop for Series {
    fn drop(&mut self) {
        let _ = self.file.sync_all();
    }
}

fn sample_loop(
    mut backend: Box<dyn Backend>,
    interval: Duration,
    series_out: Option<PathBuf>,
    t0: Instant,
    stop: mpsc::Receiver<()>,
    ready: mpsc::Sender<()>,
) -> Option<Accumulator> {
    let mut ready = Some(ready);
    let mut acc = Accumulator::new(backend.source(), backend.driver());
    let mut series = series_out.and_then(Series::create);
    let mut errors = 0u32;
    let mut next = Instant::now();
    let mut last = false;
    loop {
        let t_s = t0.elapsed().as_secs_f64();
        match backend.sample() {
            Ok(readings) => {
                errors = 0;
                acc.add(t_s, &readings);
                if let Some(s) = series.as_mut() {
                    s.write(t_s, &readings);
                }
            }
            Err(e) => {
                errors += 1;
                if errors >= MAX_CONSECUTIVE_ERRORS {
                    eprintln!(
                        "benchkeep: warning: GPU sampling stopped after {errors} failed samples in a row: {e}"
                    );
                    break;
                }
            }
        }
        // The first sample is taken (or failed): the run may start.
        drop(ready.take());
        if last {
            break;
        }
        next += interval;
        let now = Instant::now();
        if next < now {
            // Sampling is slower than the interval: go on from now, without a burst.
            next = now;
        }
        match stop.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stop asked: one last sample so energy covers the end of the run.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => last = true,
        }
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        for n in GpuMode::NAMES {
            assert!(GpuMode::from_name(n).is_some(), "{n}");
        }
        assert_eq!(GpuMode::from_name("nope"), None);
    }

    /// A backend that counts its calls.
    struct Fake(u32);
    impl Backend for Fake {
        fn source(&self) -> &'static str {
            "fake"
        }
        fn driver(&self) -> Option<String> {
            None
        }
        fn sample(&mut self) -> Result<Vec<GpuReading>, String> {
            self.0 += 1;
            Ok(vec![GpuReading {
                index: 0,
                power_w: Some(100.0),
                memory_used_mib: Some(self.0 as f64),
                ..Default::default()
            }])
        }
    }

    #[test]
    fn series_lines_are_complete_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.gpu.jsonl");
        let mut s = Series::create(path.clone()).unwrap();
        let mut fake = Fake(0);
        for t in [0.0, 0.5] {
            s.write(t, &fake.sample().unwrap());
        }
        drop(s);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["t_s"], 0.5);
        assert_eq!(lines[1]["memory_used_mib"], 2.0);
        assert!(lines[0].get("utilization_percent").is_none());
        // never overwrites
        assert!(Series::create(path).is_none());
    }

    #[test]
    fn sampler_thread_samples_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.gpu.jsonl");
        let s = GpuSampler::start_with(
            Box::new(Fake(0)),
            Duration::from_millis(50),
            Some(path.clone()),
        );
        std::thread::sleep(Duration::from_millis(180));
        let summary = s.finish().unwrap();
        assert_eq!(summary.source, "fake");
        // t=0, about three ticks, and the last sample at finish
        assert!(summary.samples >= 3, "{summary:?}");
        assert!(summary.span_s >= 0.15, "{summary:?}");
        let energy = summary.energy_joules.unwrap();
        assert!((energy - 100.0 * summary.span_s).abs() < 1.0, "{summary:?}");
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines as u64, summary.samples);
    }

    #[test]
    fn a_halted_sampler_takes_no_more_samples() {
        let mut s = GpuSampler::start_with(Box::new(Fake(0)), Duration::from_millis(50), None);
        std::thread::sleep(Duration::from_millis(120));
        s.halt();
        let at_halt = s.t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(200));
        let summary = s.finish().unwrap();
        assert!(summary.samples >= 2, "{summary:?}");
        // span_s is rounded to the millisecond: up to half of one above the true span.
        assert!(
            summary.span_s <= at_halt + 0.0005,
            "{summary:?} after a halt at {at_halt}"
        );
    }

    #[test]
    fn off_gives_none_at_once() {
        let s = GpuSampler::start(
            GpuMode::Off,
            VisibleDevices::default(),
            DEFAULT_INTERVAL,
            None,
        );
        assert!(s.finish().is_none());
    }
}
