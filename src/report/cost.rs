//! What a run's throughput costs: dollars per 1M output tokens and per 1,000 requests at a
//! price per GPU hour, and joules (kWh) per 1M output tokens where GPU energy was measured.
//!
//! * cost per 1M output tokens = price per GPU hour x GPUs / 3600 / output tok/s x 1e6
//! * cost per 1,000 requests = price per GPU hour x GPUs / 3600 / req/s x 1000
//! * joules per 1M output tokens = GPU energy (J) / output tokens x 1e6 (kWh = J / 3.6e6)
//!
//! The price comes from the report settings (`--gpu-hourly-usd`), else the run's label
//! `gpu_hourly_usd`, else its config value `gpu_hourly_usd`; GPUs from `gpu.count`, else 1.

use serde::Serialize;
use serde_json::Value;

use crate::schema::Metadata;

/// The formula, as the reports state it.
pub const FORMULA: &str = "cost per 1M output tokens = price per GPU hour x GPUs / 3600 / output tok/s x 1,000,000; cost per 1,000 requests = price per GPU hour x GPUs / 3600 / req/s x 1,000; GPUs = gpu.count, else 1; energy per 1M output tokens = GPU joules / output tokens x 1,000,000 (1 kWh = 3.6 MJ)";

/// The name of the label and config value that carry a run's price.
pub const PRICE_KEY: &str = "gpu_hourly_usd";

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    Flag,
    Label,
    Config,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Flag => "--gpu-hourly-usd",
            PriceSource::Label => "label gpu_hourly_usd",
            PriceSource::Config => "config gpu_hourly_usd",
        }
    }
}

/// The cost figures of one run (each None where its input is unknown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunCost {
    pub gpu_hourly_usd: Option<f64>,
    pub price_source: Option<PriceSource>,
    pub gpus: u32,
    /// Whether `gpu.count` said so (else 1 is assumed).
    pub gpus_recorded: bool,
    pub usd_per_1m_output_tokens: Option<f64>,
    pub usd_per_1000_requests: Option<f64>,
    pub joules_per_1m_output_tokens: Option<f64>,
    pub kwh_per_1m_output_tokens: Option<f64>,
}

/// A positive, finite price.
pub fn valid_price(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn price_of(value: Option<&Value>) -> Option<f64> {
    let v = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_start_matches('$').parse().ok()?,
        _ => return None,
    };
    valid_price(v).then_some(v)
}

/// The price that applies to a run: the flag's, else its label's, else its config's.
pub fn price(m: &Metadata, flag: Option<f64>) -> Option<(f64, PriceSource)> {
    if let Some(p) = flag.filter(|&p| valid_price(p)) {
        return Some((p, PriceSource::Flag));
    }
    let label = m.labels.get(PRICE_KEY).map(|s| Value::String(s.clone()));
    if let Some(p) = price_of(label.as_ref()) {
        return Some((p, PriceSource::Label));
    }
    price_of(m.config.get(PRICE_KEY)).map(|p| (p, PriceSource::Config))
}

/// Dollars per 1M output tokens.
pub fn per_1m_output_tokens(price: f64, gpus: u32, output_tps: f64) -> Option<f64> {
    (output_tps > 0.0 && output_tps.is_finite())
        .then(|| price * gpus as f64 / 3600.0 / output_tps * 1e6)
}

/// Dollars per 1,000 requests.
pub fn per_1000_requests(price: f64, gpus: u32, rps: f64) -> Option<f64> {
    (rps > 0.0 && rps.is_finite()).then(|| price * gpus as f64 / 3600.0 / rps * 1000.0)
}

/// The cost figures of a run, or None when there is neither a price nor energy data.
pub fn of(m: &Metadata, flag: Option<f64>) -> Option<RunCost> {
    let price = price(m, flag);
    let count = m.gpu.as_ref().and_then(|g| g.count).filter(|&c| c > 0);
    let gpus = count.unwrap_or(1);
    let tokens = m.results.total_completion_tokens;
    let joules = m
        .gpu
        .as_ref()
        .and_then(|g| g.energy_joules)
        .filter(|&e| e > 0.0 && e.is_finite() && tokens > 0)
        .map(|e| e / tokens as f64 * 1e6);
    if price.is_none() && joules.is_none() {
        return None;
    }
    let r = &m.results;
    Some(RunCost {
        gpu_hourly_usd: price.map(|p| p.0),
        price_source: price.map(|p| p.1),
        gpus,
        gpus_recorded: count.is_some(),
        usd_per_1m_output_tokens: price
            .and_then(|(p, _)| per_1m_output_tokens(p, gpus, r.output_tokens_per_sec)),
        usd_per_1000_requests: price
            .and_then(|(p, _)| per_1000_requests(p, gpus, r.throughput_requests_per_sec)),
        joules_per_1m_output_tokens: joules,
        kwh_per_1m_output_tokens: joules.map(|j| j / 3.6e6),
    })
}

/// `$0.694`, `$12.50`, `$1,234`: cents kept where they matter.
pub fn fmt_usd(v: f64) -> String {
    if v >= 1000.0 {
        let whole = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("${out}")
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.3}")
    }
}

/// One line per run: "$0.694 per 1M output tokens, $0.012 per 1,000 requests (at $2.50
/// per GPU hour, --gpu-hourly-usd, 1 GPU assumed); 90.0 kJ (0.025 kWh) per 1M output tokens".
pub fn describe(c: &RunCost) -> String {
    let mut parts = Vec::new();
    if let (Some(p), Some(src)) = (c.gpu_hourly_usd, c.price_source) {
        let mut money = Vec::new();
        if let Some(v) = c.usd_per_1m_output_tokens {
            money.push(format!("{} per 1M output tokens", fmt_usd(v)));
        }
        if let Some(v) = c.usd_per_1000_requests {
            money.push(format!("{} per 1,000 requests", fmt_usd(v)));
        }
        if money.is_empty() {
            money.push("no throughput to price".into());
        }
        let gpus = if c.gpus_recorded {
            format!("{} GPU{}", c.gpus, if c.gpus == 1 { "" } else { "s" })
        } else {
            "1 GPU assumed".to_string()
        };
        parts.push(format!(
            "{} (at {} per GPU hour from {}, {gpus})",
            money.join(", "),
            fmt_usd(p),
            src.as_str()
        ));
    }
    if let (Some(j), Some(k)) = (c.joules_per_1m_output_tokens, c.kwh_per_1m_output_tokens) {
        parts.push(format!(
            "{:.1} kJ ({k:.3} kWh) of GPU energy per 1M output tokens",
            j / 1000.0
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_by_hand() {
        // $2.50/h, 1 GPU, 1000 output tok/s: 2.5 / 3600 / 1000 * 1e6 = 0.69444...
        let one = per_1m_output_tokens(2.5, 1, 1000.0).unwrap();
        assert!((one - 0.694_444).abs() < 1e-5, "{one}");
        assert_eq!(fmt_usd(one), "$0.694");
        let two = per_1m_output_tokens(2.5, 2, 1000.0).unwrap();
        assert!((two - 2.0 * one).abs() < 1e-12);
        // 2 req/s: 2.5 / 3600 / 2 * 1000 = 0.347...
        let r = per_1000_requests(2.5, 1, 2.0).unwrap();
        assert!((r - 0.347_222).abs() < 1e-5, "{r}");
        assert_eq!(per_1m_output_tokens(2.5, 1, 0.0), None);
        assert_eq!(fmt_usd(1234.6), "$1,235");
        assert_eq!(fmt_usd(12.5), "$12.50");
    }

    #[test]
    fn prices() {
        assert!(valid_price(2.5));
        assert!(!valid_price(0.0) && !valid_price(-1.0) && !valid_price(f64::NAN));
        assert_eq!(price_of(Some(&Value::String("$2.50".into()))), Some(2.5));
        assert_eq!(price_of(Some(&serde_json::json!(3))), Some(3.0));
        assert_eq!(price_of(Some(&Value::String("free".into()))), None);
    }
}
