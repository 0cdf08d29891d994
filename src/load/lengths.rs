//! Request lengths, in tokens: one fixed length (`512`), a normal distribution
//! (`512:128`, mean:stddev, rounded and clipped at 1), or a histogram file
//! (`@lengths.csv`, `length,weight` lines). Each request's length is a pure function of
//! (seed, request index, which length), so a run is reproducible and two servers get the
//! same lengths.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

use crate::digest::sha256_hex;

/// Largest length accepted (more than any model's context).
pub const MAX_LENGTH: u32 = 10_000_000;
/// Largest histogram file read.
pub const MAX_HISTOGRAM_BYTES: u64 = 1 << 20;

/// How long each request is.
#[derive(Debug, Clone, PartialEq)]
pub enum Lengths {
    Fixed(u32),
    /// Normal, rounded, clipped to `1..=MAX_LENGTH`.
    Normal {
        mean: f64,
        stddev: f64,
    },
    /// Lengths drawn with probability proportional to their weight.
    Histogram {
        /// The file as named (for the metadata).
        path: String,
        /// sha256 of the file's bytes (part of the workload's identity).
        sha256: String,
        /// `(length, cumulative weight)`, by length as listed.
        bins: Arc<[(u32, f64)]>,
    },
}

impl Lengths {
    /// Parse `N`, `MEAN:STDDEV` or `@FILE` (`flag` names the flag in errors).
    pub fn parse(text: &str, flag: &str) -> Result<Lengths, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix('@') {
            return read_histogram(Path::new(path), flag);
        }
        let number = |s: &str, what: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!("{flag} {text}: the {what} `{s}` is not a number; give N, MEAN:STDDEV (e.g. 512:128) or @lengths.csv")
                })
        };
        match text.split_once(':') {
            None => {
                let n: u32 = text.parse().map_err(|_| {
                    format!("{flag} {text}: give a whole number of tokens (e.g. 512), MEAN:STDDEV (e.g. 512:128) or @lengths.csv")
                })?;
                if n == 0 || n > MAX_LENGTH {
                    return Err(format!("{flag} {n}: must be 1 to {MAX_LENGTH}"));
                }
                Ok(Lengths::Fixed(n))
            }
            Some((m, s)) => {
                let (mean, stddev) = (number(m, "mean")?, number(s, "stddev")?);
                if !(1.0..=f64::from(MAX_LENGTH)).contains(&mean) || stddev < 0.0 {
                    return Err(format!(
                        "{flag} {text}: the mean must be 1 to {MAX_LENGTH} and the stddev at least 0"
                    ));
                }
                Ok(if stddev == 0.0 {
                    Lengths::Fixed(mean.round() as u32)
                } else {
                    Lengths::Normal { mean, stddev }
                })
            }
        }
    }

    /// The length of request `index` (`stream` separates the input's draw from the output's).
    pub fn sample(&self, seed: u64, index: u64, stream: u64) -> u32 {
        match self {
            Lengths::Fixed(n) => *n,
            Lengths::Normal { mean, stddev } => {
                let x = match Normal::new(*mean, *stddev) {
                    Ok(normal) => normal.sample(&mut rng(seed, index, stream)),
                    Err(_) => *mean,
                };
                x.round().clamp(1.0, f64::from(MAX_LENGTH)) as u32
            }
            Lengths::Histogram { bins, .. } => {
                let total = bins.last().map_or(0.0, |b| b.1);
                let x = unit(&mut rng(seed, index, stream)) * total;
                let i = bins.partition_point(|b| b.1 <= x).min(bins.len() - 1);
                bins[i].0
            }
        }
    }

    /// The distribution's mean (the normal's before clipping, which matters only when
    /// the stddev is large against the mean).
    pub fn mean(&self) -> f64 {
        match self {
            Lengths::Fixed(n) => f64::from(*n),
            Lengths::Normal { mean, .. } => *mean,
            Lengths::Histogram { bins, .. } => {
                let mut prev = 0.0;
                let mut sum = 0.0;
                for (len, cum) in bins.iter() {
                    sum += f64::from(*len) * (cum - prev);
                    prev = *cum;
                }
                if prev > 0.0 { sum / prev } else { 0.0 }
            }
        }
    }

    /// The longest length it can give (the normal's: mean + 4 stddev).
    pub fn max(&self) -> u32 {
        match self {
            Lengths::Fixed(n) => *n,
            Lengths::Normal { mean, stddev } => {
                (mean + 4.0 * stddev).round().min(f64::from(MAX_LENGTH)) as u32
            }
            Lengths::Histogram { bins, .. } => bins.iter().map(|b| b.0).max().unwrap_or(1),
        }
    }

    /// The canonical text of this distribution in the workload's identity: `512`,
    /// `normal:512:128`, `histogram:<sha256>`.
    pub fn identity(&self) -> String {
        match self {
            Lengths::Fixed(n) => n.to_string(),
            Lengths::Normal { mean, stddev } => format!("normal:{mean}:{stddev}"),
            Lengths::Histogram { sha256, .. } => format!("histogram:{sha256}"),
        }
    }

    /// The metadata's description: a number for a fixed length, else an object.
    pub fn describe(&self) -> Value {
        match self {
            Lengths::Fixed(n) => json!(n),
            Lengths::Normal { mean, stddev } => {
                json!({"dist": "normal", "mean": mean, "stddev": stddev})
            }
            Lengths::Histogram {
                path, sha256, bins, ..
            } => json!({
                "dist": "histogram",
                "file": path,
                "sha256": sha256,
                "bins": bins.len(),
                "mean": crate::schema::round(self.mean(), 3),
            }),
        }
    }
}

fn rng(seed: u64, index: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(
        seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93),
    )
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Read `length,weight` lines (a `length,weight` header, blank lines and `#` comments
/// are skipped; a line with only a length has weight 1).
fn read_histogram(path: &Path, flag: &str) -> Result<Lengths, String> {
    let shown = path.display();
    let file = crate::userfile::open(path)
        .map_err(|e| format!("{flag} @{shown}: cannot read the histogram file ({e})"))?;
    let mut bytes = Vec::new();
    BufReader::new(file)
        .take(MAX_HISTOGRAM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{flag} @{shown}: cannot read the histogram file ({e})"))?;
    if bytes.len() as u64 > MAX_HISTOGRAM_BYTES {
        return Err(format!(
            "{flag} @{shown}: larger than 1 MiB; a histogram needs one `length,weight` line per length"
        ));
    }
    let sha256 = sha256_hex(&bytes);
    let mut bins: Vec<(u32, f64)> = Vec::new();
    let mut cum = 0.0;
    for (i, line) in bytes.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|_| format!("{flag} @{shown}: line {n}: not UTF-8 text"))?;
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split([',', ';', '\t']).map(str::trim);
        let (len, weight) = (parts.next().unwrap_or(""), parts.next().unwrap_or("1"));
        if bins.is_empty() && len.parse::<f64>().is_err() && cum == 0.0 && n <= 2 {
            continue; // a header such as `length,weight`
        }
        let bad = || {
            format!(
                "{flag} @{shown}: line {n}: `{line}` is not `length,weight` (a whole number of tokens >= 1, a weight >= 0)"
            )
        };
        let len: u32 = len.parse().map_err(|_| bad())?;
        let weight: f64 = weight.parse().map_err(|_| bad())?;
        if len == 0 || len > MAX_LENGTH || !weight.is_finite() || weight < 0.0 {
            return Err(bad());
        }
        if weight > 0.0 {
            cum += weight;
            bins.push((len, cum));
        }
    }
    if bins.is_empty() {
        return Err(format!(
            "{flag} @{shown}: no `length,weight` line with a weight above 0, e.g. `512,3`"
        ));
    }
    Ok(Lengths::Histogram {
        path: path.display().to_string(),
        sha256,
        bins: bins.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fixed_and_normal() {
        assert_eq!(
            Lengths::parse("512", "--input-tokens"),
            Ok(Lengths::Fixed(512))
        );
        let n = Lengths::parse("512:128", "--input-tokens").unwrap();
        assert_eq!(n.identity(), "normal:512:128");
        let draws: Vec<u32> = (0..4000).map(|i| n.sample(7, i, 0)).collect();
        let mean = draws.iter().map(|&d| f64::from(d)).sum::<f64>() / 4000.0;
        let var = draws
            .iter()
            .map(|&d| (f64::from(d) - mean).powi(2))
            .sum::<f64>()
            / 4000.0;
        assert!((mean - 512.0).abs() < 10.0, "{mean}");
        assert!((var.sqrt() - 128.0).abs() < 10.0, "{}", var.sqrt());
        assert_eq!(n.sample(7, 3, 0), n.sample(7, 3, 0), "deterministic");
        assert_ne!(
            (0..20).map(|i| n.sample(7, i, 0)).collect::<Vec<_>>(),
            (0..20).map(|i| n.sample(7, i, 1)).collect::<Vec<_>>(),
            "the output's draw is not the input's"
        );
        let wide = Lengths::parse("2:50", "--output-tokens").unwrap();
        assert!((0..500).all(|i| wide.sample(1, i, 0) >= 1), "clipped at 1");
        for bad in ["0", "x", "5:-1", "abc:3", "0:1"] {
            let e = Lengths::parse(bad, "--input-tokens").unwrap_err();
            assert!(e.starts_with("--input-tokens"), "{e}");
        }
        assert_eq!(Lengths::parse("64:0", "f"), Ok(Lengths::Fixed(64)));
    }

    #[test]
    fn histogram_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "length,weight\n# short ones\n100,3\n\n1000,1").unwrap();
        let spec = format!("@{}", f.path().display());
        let h = Lengths::parse(&spec, "--input-tokens").unwrap();
        assert!((h.mean() - 325.0).abs() < 1e-9, "{}", h.mean());
        assert_eq!(h.max(), 1000);
        let draws: Vec<u32> = (0..4000).map(|i| h.sample(1, i, 0)).collect();
        assert!(draws.iter().all(|d| *d == 100 || *d == 1000));
        let long = draws.iter().filter(|d| **d == 1000).count();
        assert!(
            (800..1200).contains(&long),
            "{long} of 4000 with weight 1/4"
        );
        assert!(h.identity().starts_with("histogram:"));

        let mut g = tempfile::NamedTempFile::new().unwrap();
        writeln!(g, "100,3\n20x,1").unwrap();
        let e = Lengths::parse(&format!("@{}", g.path().display()), "--input-tokens").unwrap_err();
        assert!(e.contains("line 2") && e.contains("20x"), "{e}");
        let e = Lengths::parse("@/nonexistent/h.csv", "--output-tokens").unwrap_err();
        assert!(e.contains("--output-tokens @/nonexistent/h.csv"), "{e}");
    }
}
