//! GPU readings from the `nvidia-smi` command line tool (FORMATS.md §7.1): the fallback when
//! NVML cannot be loaded. Each sample runs one `nvidia-smi --query-gpu=...` with a timeout.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Backend, GpuReading, VisibleDevices};

/// The fields benchkeep asks for, in this order.
pub const QUERY_FIELDS: [&str; 9] = [
    "index",
    "name",
    "uuid",
    "driver_version",
    "memory.total",
    "memory.used",
    "utilization.gpu",
    "power.draw",
    "temperature.gpu",
];

/// The longest one `nvidia-smi` call may take before it is killed (a wedged driver can make
/// it hang for minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Parse `--format=csv,noheader,nounits` output of a query with the given `fields`.
///
/// One line per GPU, fields separated by `,` and trimmed. The `name` field may itself hold
/// commas: it takes whatever lies between the fields before and after it. `[N/A]`,
/// `[Not Supported]`, `N/A`, `[Unknown Error]`, `[Insufficient Permissions]` and empty
/// fields become `None`; units left in by some drivers (` MiB`, ` W`, ` %`) are stripped.
/// A line that cannot be split into the fields, or whose `index` is not a number (a header
/// line), is skipped. Returns the readings and the driver version, when asked for.
pub fn parse_csv(text: &str, fields: &[&str]) -> (Vec<GpuReading>, Option<String>) {
    let name_at = fields.iter().position(|f| *f == "name");
    let mut readings = Vec::new();
    let mut driver = None;
    for (position, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(values) = split_fields(line, fields.len(), name_at) else {
            continue;
        };
        let mut r = GpuReading {
            index: position as u32,
            ..Default::default()
        };
        let mut header = false;
        for (field, raw) in fields.iter().zip(values) {
            let value = clean(&raw);
            match *field {
                "index" => match value.map(str::parse::<u32>) {
                    Some(Ok(i)) => r.index = i,
                    _ => header = true,
                },
                "name" => r.name = value.map(str::to_string),
                "uuid" => r.uuid = value.map(str::to_string),
                "driver_version" if driver.is_none() => driver = value.map(str::to_string),
                "memory.total" => r.memory_total_mib = number(value),
                "memory.used" => r.memory_used_mib = number(value),
                "utilization.gpu" => r.utilization_percent = number(value),
                "power.draw" | "power.draw.average" | "power.draw.instant" => {
                    r.power_w = number(value)
                }
                "temperature.gpu" => r.temperature_c = number(value),
                _ => {}
            }
        }
        if header {
            continue;
        }
        readings.push(r);
    }
    (readings, driver)
}

/// Split one CSV line into exactly `n` fields; surplus commas belong to the `name` field.
fn split_fields(line: &str, n: usize, name_at: Option<usize>) -> Option<Vec<String>> {
    let parts: Vec<&str> = line.split(',').collect();
    if parts.len() == n {
        return Some(parts.into_iter().map(str::to_string).collect());
    }
    let name_at = name_at?;
    if parts.len() < n {
        return None;
    }
    let extra = parts.len() - n;
    let mut out: Vec<String> = parts[..name_at].iter().map(|s| s.to_string()).collect();
    out.push(parts[name_at..=name_at + extra].join(","));
    out.extend(parts[name_at + extra + 1..].iter().map(|s| s.to_string()));
    Some(out)
}

/// Trim a field; `None` for the tool's "no value" spellings.
fn clean(raw: &str) -> Option<&str> {
    let v = raw.trim();
    let lower = v.to_ascii_lowercase();
    if v.is_empty() || v.starts_with('[') || lower == "n/a" || lower == "not supported" {
        None
    } else {
        Some(v)
    }
}

/// A number, with a unit suffix some drivers keep despite `nounits` stripped.
fn number(value: Option<&str>) -> Option<f64> {
    let v = value?;
    let v = ["MiB", "W", "%", "C"]
        .iter()
        .find_map(|unit| v.strip_suffix(unit))
        .unwrap_or(v)
        .trim();
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Samples by running `nvidia-smi` once per tick.
pub struct NvidiaSmi {
    program: String,
    visible: VisibleDevices,
    driver: Option<String>,
}

impl NvidiaSmi {
    /// Run `nvidia-smi` once; it must answer with at least one GPU.
    pub fn open(visible: VisibleDevices) -> Result<NvidiaSmi, String> {
        let mut smi = NvidiaSmi {
            program: "nvidia-smi".to_string(),
            visible,
            driver: None,
        };
        let (readings, driver) = smi.query()?;
        if readings.is_empty() {
            return Err("nvidia-smi lists no GPU".into());
        }
        smi.driver = driver;
        Ok(smi)
    }

    fn query(&self) -> Result<(Vec<GpuReading>, Option<String>), String> {
        let query = format!("--query-gpu={}", QUERY_FIELDS.join(","));
        let output = run_with_timeout(
            Command::new(&self.program)
                .arg(query)
                .arg("--format=csv,noheader,nounits"),
            CALL_TIMEOUT,
        )?;
        let (readings, driver) = parse_csv(&output, &QUERY_FIELDS);
        Ok((self.visible.filter(readings), driver))
    }
}

impl Backend for NvidiaSmi {
    fn source(&self) -> &'static str {
        "nvidia-smi"
    }

    fn driver(&self) -> Option<String> {
        self.driver.clone()
    }

    fn sample(&mut self) -> Result<Vec<GpuReading>, String> {
        self.query().map(|(readings, _)| readings)
    }
}

/// Run a tool with its stdout captured, killing it after `timeout`. The tool runs in its own
/// process group, so a Ctrl-C at the terminal meant for the benchmark does not kill it.
pub(crate) fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} not found on PATH")
            } else {
                format!("cannot run {program}: {e}")
            }
        })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read on a helper thread so a tool that fills the pipe cannot block the timeout.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.by_ref().take(4 << 20).read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not answer within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&out).into_owned();
    if !status.success() {
        let first = text.lines().next().unwrap_or("").trim();
        return Err(format!("{program} failed ({status}){}", {
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        }));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query and sample lines of FORMATS.md §7.1, verbatim.
    const DOC_FIELDS: [&str; 6] = [
        "name",
        "memory.total",
        "memory.used",
        "utilization.gpu",
        "power.draw",
        "temperature.gpu",
    ];
    const DOC_SAMPLE: &str = "NVIDIA H100 80GB HBM3, 81559, 4213, 37, 182.45, 41\n\
                              NVIDIA H100 80GB HBM3, 81559, 3, 0, 69.80, 33\n";

    #[test]
    fn doc_sample_two_gpus() {
        let (r, driver) = parse_csv(DOC_SAMPLE, &DOC_FIELDS);
        assert_eq!(driver, None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].index, 0);
        assert_eq!(r[1].index, 1);
        assert_eq!(r[0].name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(r[0].memory_total_mib, Some(81559.0));
        assert_eq!(r[0].memory_used_mib, Some(4213.0));
        assert_eq!(r[0].utilization_percent, Some(37.0));
        assert_eq!(r[0].power_w, Some(182.45));
        assert_eq!(r[0].temperature_c, Some(41.0));
        assert_eq!(r[1].memory_used_mib, Some(3.0));
        assert_eq!(r[1].power_w, Some(69.80));
    }

    #[test]
    fn not_available_fields_are_none() {
        let text = "0, NVIDIA A100-SXM4-40GB, GPU-aaaa, 550.54.15, 40960, 1024, [N/A], [Not Supported], 35\n\
                    1, NVIDIA A100-SXM4-40GB, GPU-bbbb, 550.54.15, 40960, [Unknown Error], N/A, [Insufficient Permissions], [N/A]\n";
        let (r, driver) = parse_csv(text, &QUERY_FIELDS);
        assert_eq!(driver.as_deref(), Some("550.54.15"));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].uuid.as_deref(), Some("GPU-aaaa"));
        assert_eq!(r[0].utilization_percent, None);
        assert_eq!(r[0].power_w, None);
        assert_eq!(r[0].temperature_c, Some(35.0));
        assert_eq!(r[1].index, 1);
        assert_eq!(r[1].memory_used_mib, None);
        assert_eq!(r[1].utilization_percent, None);
        assert_eq!(r[1].power_w, None);
        assert_eq!(r[1].temperature_c, None);
        assert_eq!(r[1].memory_total_mib, Some(40960.0));
    }

    #[test]
    fn units_headers_and_commas_in_names() {
        let text = "index, name, uuid, driver_version, memory.total [MiB], memory.used [MiB], utilization.gpu [%], power.draw [W], temperature.gpu\n\
                    3, Weird, Name GPU, GPU-c, 535.1, 16376 MiB, 14745 MiB, 96 %, 301.5 W, 70\n\
                    garbage line\n";
        let (r, _) = parse_csv(text, &QUERY_FIELDS);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].index, 3);
        assert_eq!(r[0].name.as_deref(), Some("Weird, Name GPU"));
        assert_eq!(r[0].memory_total_mib, Some(16376.0));
        assert_eq!(r[0].memory_used_mib, Some(14745.0));
        assert_eq!(r[0].utilization_percent, Some(96.0));
        assert_eq!(r[0].power_w, Some(301.5));
    }

    #[test]
    fn empty_and_junk_output() {
        assert!(parse_csv("", &QUERY_FIELDS).0.is_empty());
        assert!(
            parse_csv(
                "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
                &QUERY_FIELDS
            )
            .0
            .is_empty()
        );
        let (r, _) = parse_csv("x, y, NaN, inf, -, 1e3", &DOC_FIELDS);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].memory_total_mib, None);
        assert_eq!(r[0].memory_used_mib, None);
        assert_eq!(r[0].utilization_percent, None);
        assert_eq!(r[0].power_w, None);
        assert_eq!(r[0].temperature_c, Some(1000.0));
    }

    #[test]
    fn missing_tool_is_an_error_not_a_panic() {
        let err = run_with_timeout(
            &mut Command::new("benchkeep-no-such-tool-xyz"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.contains("not found"), "{err}");
        let err = run_with_timeout(Command::new("sh").args(["-c", "sleep 5"]), {
            Duration::from_millis(100)
        })
        .unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        let err = run_with_timeout(
            Command::new("sh").args(["-c", "echo 'NVIDIA-SMI has failed'; exit 9"]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.contains("NVIDIA-SMI has failed"), "{err}");
    }
}
