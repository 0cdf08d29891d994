//! What a sweep is: its mode (a list of loads, `--auto`, or the max-goodput search), the
//! per-point load, the early-stop rules, the value lists users write (`1,2,4`,
//! `1..64x2`, `2..10+2`), and the plan's fingerprint that `--resume` checks.

use serde_json::{Value, json};

use crate::error::Error;
use crate::load::RunPlan;
use crate::load::schedule::Arrival;

/// The most points one sweep list may have.
pub const MAX_POINTS: usize = crate::catalog::shards::MAX_PLANNED as usize;

/// The load axis of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Concurrency,
    Rate,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Concurrency => "concurrency",
            Axis::Rate => "rate",
        }
    }
}

/// How the points are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The given loads, in order.
    List { axis: Axis, values: Vec<f64> },
    /// Synchronous (concurrency 1), throughput (concurrency `max_concurrency`), then
    /// `points` evenly spaced rates up to the throughput step's rate, capped at
    /// `max_concurrency` in flight (GuideLLM's sweep profile).
    Auto { points: u32, max_concurrency: u32 },
    /// Max goodput under the SLO: concurrency doubled from 1 until a probe fails, then
    /// bisected down to `tolerance` (relative, at least 1).
    Goodput {
        target: f64,
        tolerance: f64,
        max_concurrency: u32,
        max_probes: u32,
    },
}

/// When a sweep stops before its last point.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// `false`: run every planned point (`--no-early-stop`).
    pub enabled: bool,
    /// Stop when more than this fraction of a point's requests failed.
    pub max_error_rate: f64,
}

/// A whole sweep: the base plan every point copies (target, workload, output), its mode,
/// its rules, the arrival process of rate points, and the sweep to resume.
#[derive(Debug, Clone)]
pub struct Spec {
    pub base: RunPlan,
    pub mode: Mode,
    pub rules: Rules,
    pub arrival: Arrival,
    pub burstiness: f64,
    /// `Some(id)`: run only the points of sweep `id` that are missing.
    pub resume: Option<String>,
    /// The tuning-matrix combination this sweep runs under (`sweep --matrix`): its settings
    /// go into every point's `sweep.settings` (and, by the CLI, `config`).
    pub combination: Option<Combination>,
    /// The sweep id to create or join (`--sweep-id`): the shards of a fleet share it. Its
    /// points already stored that this process would run are taken as they are.
    pub sweep_id: Option<String>,
    /// The part of the plan this process runs (`--shard-index/--shard-count`): list points
    /// `k` with `k % count == index` ([`super::shard`]).
    pub shard: Option<super::shard::Shard>,
    /// Runs of each point (`--repeat N`, 1 by default): the point's figures are their
    /// means (`repeats.rs`).
    pub repeat: u32,
}

/// One combination of `sweep --matrix ... --server-cmd`: the matrix it belongs to and its
/// settings, in the order of the `--matrix` flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    pub matrix_id: String,
    pub index: u32,
    pub settings: Vec<(String, String)>,
    /// The shard (`index/count`) that runs this combination when a fleet splits the matrix.
    pub shard: Option<String>,
}

impl Spec {
    /// The plan's fingerprint (sha256 of its canonical JSON), recorded in every point as
    /// `sweep.plan_sha256`: `--resume` refuses flags that plan a different sweep. Only what
    /// changes the points counts (not `--quiet`, `--json`, `--grace`, credentials; not the
    /// target URL of a split sweep, whose shards each have a server of their own).
    pub fn fingerprint(&self) -> String {
        crate::digest::sha256_hex(self.canonical().to_string().as_bytes())
    }

    fn canonical(&self) -> Value {
        let b = &self.base;
        let mode = match &self.mode {
            Mode::List { axis, values } => json!({"list": axis.name(), "values": values}),
            Mode::Auto {
                points,
                max_concurrency,
            } => json!({"auto": points, "max_concurrency": max_concurrency}),
            Mode::Goodput {
                target,
                tolerance,
                max_concurrency,
                max_probes,
            } => json!({"goodput": target, "tolerance": tolerance,
                "max_concurrency": max_concurrency, "max_probes": max_probes}),
        };
        let mut v = json!({
            "platform": b.platform,
            "model": b.model,
            // The shards of a fleet may each reach their own server by its own address.
            "base_url": if self.shard.is_some() { None } else { Some(b.base.redacted()) },
            "api": format!("{:?}", b.client.api),
            "stream": b.client.stream,
            "input_sha256": b.input.sha256(b.load.num_requests, b.max_tokens),
            "input_file": b.input_file,
            "max_tokens": b.max_tokens,
            "slo_ms": b.slo.to_json(),
            "labels": b.labels,
            "config": b.config,
            "num_requests": b.load.num_requests,
            "duration_s": b.load.duration.map(|d| d.as_secs_f64()),
            "warmup": b.load.warmup,
            "seed": b.load.seed,
            "arrival": self.arrival.name(),
            "burstiness": self.burstiness,
            "mode": mode,
            "early_stop": self.rules.enabled,
            "max_error_rate": self.rules.max_error_rate,
            "settings": self.combination.as_ref().map(|c| &c.settings),
        });
        // only when given, so the fingerprints of sweeps without repeats stay as they were
        if self.repeat > 1 {
            v["repeat"] = json!(self.repeat);
        }
        v
    }
}

/// A list of loads: numbers and ranges separated by commas. `A..BxF` multiplies by `F`
/// from `A` while at most `B` (`1..64x2` = 1,2,4,...,64); `A..B+S` adds `S`
/// (`2..10+4` = 2,6,10). The values must rise strictly. `flag` names the flag in errors;
/// `integers`: concurrency values (whole, at least 1).
pub fn parse_values(flag: &str, s: &str, integers: bool) -> Result<Vec<f64>, Error> {
    let bad = |why: String| {
        Error::usage(format!(
            "{flag} {s:?}: {why}; write a list like 1,2,4,8 or a range like 1..64x2 (multiply) or 2..20+2 (add)"
        ))
    };
    let num = |t: &str| -> Result<f64, Error> {
        let v: f64 = t
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not a number", t.trim())))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(format!("{v} must be > 0")));
        }
        if integers && v.fract() != 0.0 {
            return Err(bad(format!(
                "{v} is not a whole number of requests in flight"
            )));
        }
        if integers && v > crate::load::plan::MAX_CONCURRENCY as f64 {
            return Err(bad(format!(
                "{v} is above the largest concurrency, {}",
                crate::load::plan::MAX_CONCURRENCY
            )));
        }
        Ok(v)
    };
    let mut values = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((from, rest)) = part.split_once("..") else {
            values.push(num(part)?);
            continue;
        };
        let (to, step, multiply) = if let Some((to, f)) = rest.split_once('x') {
            (to, f, true)
        } else if let Some((to, a)) = rest.split_once('+') {
            (to, a, false)
        } else {
            return Err(bad(format!(
                "the range {part:?} needs a step: xF to multiply or +S to add"
            )));
        };
        let (from, to) = (num(from)?, num(to)?);
        let step: f64 = step
            .trim()
            .parse()
            .map_err(|_| bad(format!("the step {step:?} is not a number")))?;
        let least = if multiply { 1.0 } else { 0.0 };
        if !(step.is_finite() && step > least) {
            let what = if multiply { "factor" } else { "step" };
            return Err(bad(format!("the {what} {step} must be > {least}")));
        }
        let mut v = from;
        while v <= to * (1.0 + 1e-9) {
            values.push(if integers { v.round() } else { round6(v) });
            if values.len() > MAX_POINTS {
                return Err(bad(format!("more than {MAX_POINTS} points")));
            }
            v = if multiply { v * step } else { v + step };
        }
    }
    if values.is_empty() {
        return Err(bad("no value given".into()));
    }
    if values.len() > MAX_POINTS {
        return Err(bad(format!("more than {MAX_POINTS} points")));
    }
    if let Some(w) = values.windows(2).find(|w| w[1] <= w[0]) {
        return Err(bad(format!(
            "the loads must rise strictly ({} then {})",
            w[0], w[1]
        )));
    }
    Ok(values)
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::parse_values;

    #[test]
    fn lists_and_ranges() {
        let c = |s| parse_values("--concurrency", s, true);
        assert_eq!(c("1,2,4").unwrap(), vec![1.0, 2.0, 4.0]);
        assert_eq!(
            c("1..64x2").unwrap(),
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        );
        assert_eq!(c("1..60x2").unwrap().last(), Some(&32.0));
        assert_eq!(c("1,2..10+4").unwrap(), vec![1.0, 2.0, 6.0, 10.0]);
        assert_eq!(
            parse_values("--rate", "0.5..2+0.5", false).unwrap(),
            vec![0.5, 1.0, 1.5, 2.0]
        );
        for bad in [
            "", "0", "1.5", "4,2", "1..8", "1..8x1", "a", "1..8+0", "2,2",
        ] {
            let e = c(bad).unwrap_err().to_string();
            assert!(
                e.contains("--concurrency") && e.contains("1..64x2"),
                "{bad}: {e}"
            );
        }
        assert!(c("1..1000000x1.01").is_err());
    }
}
