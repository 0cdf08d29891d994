//! Value parsers for clap (`value_parser = ...`): durations, SLOs, names of enums. One
//! parser per kind of value, shared by every command, so that `--timeout 30s` and
//! `--gpu-interval 500ms` read the same way and a bad value is a usage error (exit 2) that
//! says what would have been right.

use std::time::Duration;

use crate::client::Api;
use crate::ingest::Format;
use crate::metrics::Slo;
use crate::telemetry::{GpuMode, MIN_INTERVAL};

/// One of a fixed set of names: `from` maps a name to its value, `names` lists them all.
pub fn named<T>(
    what: &str,
    s: &str,
    names: &[&str],
    from: impl Fn(&str) -> Option<T>,
) -> Result<T, String> {
    from(s).ok_or_else(|| format!("unknown {what} {s:?}; one of: {}", names.join(", ")))
}

/// `--api`: openai-chat, openai-completions, ollama-chat, ollama-generate.
pub fn api(s: &str) -> Result<Api, String> {
    named("API", s, &Api::ALL.map(|a| a.name()), Api::from_name)
}

/// `--format` of a results file.
pub fn format(s: &str) -> Result<Format, String> {
    named(
        "format",
        s,
        &Format::ALL.map(|f| f.name()),
        Format::from_name,
    )
}

/// `--gpu`: off, auto, nvml, nvidia-smi, rocm-smi.
pub fn gpu_mode(s: &str) -> Result<GpuMode, String> {
    named("GPU source", s, &GpuMode::NAMES, GpuMode::from_name)
}

/// `30s`, `250ms`, `5m`, `1h`, `1.5s`; a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let (secs, _) = scaled(s, 1.0)
        .ok_or_else(|| format!("{s:?} is not a duration; write e.g. 250ms, 30s, 5m or 1h"))?;
    if !(secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--gpu-interval`: `500ms`, `1s`, `2.5s`, `1m`; a bare number is seconds. Between
/// [`MIN_INTERVAL`] and one hour (minutes at most as a unit).
pub fn interval(s: &str) -> Result<Duration, String> {
    let seconds = match scaled(s, 1.0) {
        Some((_, "h")) => return Err(format!("{s:?}: unknown unit \"h\"; use ms, s or m")),
        Some((seconds, _)) => seconds,
        None => return Err(format!("{s:?}: expected a duration like 500ms or 1s")),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!("{s:?}: must be between 50ms and 1h"));
    }
    let d = Duration::from_secs_f64(seconds);
    if d < MIN_INTERVAL {
        return Err(format!("{s:?}: at least 50ms"));
    }
    Ok(d)
}

/// A number with an optional unit, in seconds, and the unit; a bare number is multiplied
/// by `bare`.
fn scaled(s: &str, bare: f64) -> Option<(f64, &str)> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let unit = unit.trim();
    let scale = match unit {
        "" => bare,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(v * scale).filter(|x| x.is_finite()).map(|x| (x, unit))
}

/// `ttft=200ms,tpot=50ms,e2e=10s` (a bare number is milliseconds).
pub fn slo(s: &str) -> Result<Slo, String> {
    let mut slo = Slo::default();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected name=limit, e.g. ttft=200ms"))?;
        let ms = scaled(v, 1e-3)
            .map(|(x, _)| x)
            .filter(|x| *x > 0.0)
            .ok_or_else(|| format!("{v:?} is not a positive time; write e.g. 200ms or 10s"))?
            * 1000.0;
        let key = k.trim();
        let field = match key {
            "ttft" => &mut slo.ttft_ms,
            "tpot" => &mut slo.tpot_ms,
            "e2e" => &mut slo.e2e_ms,
            other => return Err(format!("unknown SLO {other:?}; use ttft, tpot or e2e")),
        };
        if field.is_some() {
            return Err(format!(
                "the SLO {key:?} is given twice; give each of ttft, tpot, e2e at most once"
            ));
        }
        *field = Some(ms);
    }
    if slo.is_empty() {
        return Err("no SLO given; write e.g. ttft=200ms,tpot=50ms,e2e=10s".into());
    }
    Ok(slo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_slos() {
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("3").unwrap(), Duration::from_secs(3));
        assert!(duration("0s").is_err());
        assert!(duration("soon").is_err());
        let s = slo("ttft=200ms,tpot=50,e2e=10s").unwrap();
        assert_eq!(s.ttft_ms, Some(200.0));
        assert_eq!(s.tpot_ms, Some(50.0));
        assert_eq!(s.e2e_ms, Some(10_000.0));
        assert!(slo("ttfb=1s").unwrap_err().contains("unknown SLO"));
        assert!(slo("ttft").is_err());
        assert!(slo("ttft=1s,ttft=2s").unwrap_err().contains("twice"));
    }

    #[test]
    fn intervals_and_gpu_modes() {
        assert_eq!(interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(interval("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(interval("2"), Ok(Duration::from_secs(2)));
        assert!(interval("10ms").is_err());
        assert!(interval("0s").is_err());
        assert!(interval("fast").is_err());
        assert!(interval("1h").is_err());
        assert_eq!(gpu_mode("nvidia-smi"), Ok(GpuMode::NvidiaSmi));
        assert!(gpu_mode("cuda").unwrap_err().contains("nvidia-smi"));
    }

    #[test]
    fn names() {
        assert!(api("grpc").unwrap_err().contains("unknown API"));
        assert!(
            format("csv")
                .unwrap_err()
                .starts_with("unknown format \"csv\"; one of: ")
        );
    }
}
