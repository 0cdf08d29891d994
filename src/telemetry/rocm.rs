//! GPU readings on AMD hosts from `rocm-smi --json` (FORMATS.md §7.3).
//!
//! All values are strings and key spellings vary across ROCm releases, so keys are matched
//! case-insensitively against a list of alternatives; `N/A` becomes `None`.

use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};

use super::nvidia_smi::run_with_timeout;
use super::{Backend, GpuReading};

const ARGS: [&str; 9] = [
    "--showproductname",
    "--showmeminfo",
    "vram",
    "--showuse",
    "--showpower",
    "--showtemp",
    "--showdriverversion",
    "--showuniqueid",
    "--json",
];

const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const MIB: f64 = 1024.0 * 1024.0;

const NAME_KEYS: &[&str] = &["card series", "card model", "device name", "card sku"];
const TOTAL_KEYS: &[&str] = &["vram total memory (b)"];
const USED_KEYS: &[&str] = &["vram total used memory (b)"];
const USE_KEYS: &[&str] = &["gpu use (%)"];
const POWER_KEYS: &[&str] = &[
    "current socket graphics package power (w)",
    "average graphics package power (w)",
];
const TEMP_KEYS: &[&str] = &[
    "temperature (sensor junction) (c)",
    "temperature (sensor edge) (c)",
];
const DRIVER_KEYS: &[&str] = &["driver version"];
const UUID_KEYS: &[&str] = &["unique id"];

/// Parse `rocm-smi ... --json` output: an object keyed `card0`, `card1`, ... (and sometimes
/// `system`). Text before the first `{` (warnings) is skipped.
pub fn parse_json(text: &str) -> Result<(Vec<GpuReading>, Option<String>), String> {
    let start = text.find('{').ok_or("rocm-smi printed no JSON")?;
    let value: Value = serde_json::from_str(text[start..].trim())
        .map_err(|e| format!("rocm-smi printed invalid JSON ({e})"))?;
    let Value::Object(top) = value else {
        return Err("rocm-smi JSON is not an object".into());
    };
    let mut readings = Vec::new();
    let mut driver = None;
    for (key, v) in &top {
        let Value::Object(card) = v else { continue };
        if driver.is_none() {
            driver = string(card, DRIVER_KEYS);
        }
        let Some(index) = key
            .to_ascii_lowercase()
            .strip_prefix("card")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        readings.push(GpuReading {
            index,
            name: string(card, NAME_KEYS),
            uuid: string(card, UUID_KEYS),
            memory_total_mib: number(card, TOTAL_KEYS).map(|b| b / MIB),
            memory_used_mib: number(card, USED_KEYS).map(|b| b / MIB),
            utilization_percent: number(card, USE_KEYS),
            power_w: number(card, POWER_KEYS),
            temperature_c: number(card, TEMP_KEYS),
            energy_mj: None,
        });
    }
    readings.sort_by_key(|r| r.index);
    Ok((readings, driver))
}

/// The first of `keys` present (case-insensitive) with a usable value.
fn string(card: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|want| {
        card.iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(want))
            .and_then(|(_, v)| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("n/a"))
    })
}

fn number(card: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|want| {
        string(card, &[want])
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|x| x.is_finite())
    })
}

/// Samples by running `rocm-smi --json` once per tick.
pub struct RocmSmi {
    driver: Option<String>,
}

impl RocmSmi {
    /// Run `rocm-smi` once; it must list at least one GPU.
    pub fn open() -> Result<RocmSmi, String> {
        let (readings, driver) = query()?;
        if readings.is_empty() {
            return Err("rocm-smi lists no GPU".into());
        }
        Ok(RocmSmi { driver })
    }
}

fn query() -> Result<(Vec<GpuReading>, Option<String>), String> {
    let text = run_with_timeout(Command::new("rocm-smi").args(ARGS), CALL_TIMEOUT)?;
    parse_json(&text)
}

impl Backend for RocmSmi {
    fn source(&self) -> &'static str {
        "rocm-smi"
    }

    fn driver(&self) -> Option<String> {
        self.driver.clone()
    }

    fn sample(&mut self) -> Result<Vec<GpuReading>, String> {
        query().map(|(r, _)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_sample() {
        let text = r#"{"card0": {"Card series": "AMD Instinct MI300X", "Card model": "0x74a1", "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "M3000100",
           "VRAM Total Memory (B)": "206141652992", "VRAM Total Used Memory (B)": "297992192",
           "GPU use (%)": "0", "Current Socket Graphics Package Power (W)": "139.0",
           "Temperature (Sensor edge) (C)": "N/A", "Temperature (Sensor junction) (C)": "41.0"}}"#;
        let (r, driver) = parse_json(text).unwrap();
        assert_eq!(driver, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].index, 0);
        assert_eq!(r[0].name.as_deref(), Some("AMD Instinct MI300X"));
        assert_eq!(r[0].memory_total_mib, Some(206141652992.0 / MIB));
        assert_eq!(r[0].memory_used_mib, Some(297992192.0 / MIB));
        assert_eq!(r[0].utilization_percent, Some(0.0));
        assert_eq!(r[0].power_w, Some(139.0));
        assert_eq!(r[0].temperature_c, Some(41.0));
    }

    #[test]
    fn other_spellings_warnings_and_system_block() {
        let text = "WARNING: something\n{\"system\": {\"Driver version\": \"6.7.0\"},\
            \"card1\": {\"Card Series\": \"Radeon RX 7900 XTX\", \"Average Graphics Package Power (W)\": \"N/A\",\
            \"Temperature (Sensor edge) (C)\": \"50.0\", \"GPU use (%)\": \"97\"},\
            \"card0\": {\"Card Series\": \"Radeon RX 7900 XTX\"}}";
        let (r, driver) = parse_json(text).unwrap();
        assert_eq!(driver.as_deref(), Some("6.7.0"));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].index, 0);
        assert_eq!(r[1].index, 1);
        assert_eq!(r[1].name.as_deref(), Some("Radeon RX 7900 XTX"));
        assert_eq!(r[1].power_w, None);
        assert_eq!(r[1].temperature_c, Some(50.0));
        assert_eq!(r[1].utilization_percent, Some(97.0));
    }

    #[test]
    fn junk_is_an_error() {
        assert!(parse_json("").is_err());
        assert!(parse_json("{not json").is_err());
        assert!(parse_json("[1]").is_err());
        assert!(parse_json("{}").unwrap().0.is_empty());
    }
}
