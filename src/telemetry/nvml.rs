//! GPU readings through NVML (`nvml-wrapper`, FORMATS.md §7.2): the first choice on NVIDIA
//! hosts. `libnvidia-ml.so.1` is loaded at run time, so on a machine without the driver
//! [`Nvml::open`] fails at once (the library is simply not found) and the sampler falls back.

use nvml_wrapper::Nvml as Lib;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

use super::{Backend, GpuReading, VisibleDevices};

/// Bytes per MiB (NVML reports memory in bytes, nvidia-smi in MiB).
const MIB: f64 = 1024.0 * 1024.0;

/// An initialized NVML and the GPUs it lists.
pub struct Nvml {
    lib: Lib,
    count: u32,
    visible: VisibleDevices,
    driver: Option<String>,
}

impl Nvml {
    /// Load and initialize NVML. Fails when the library is missing, the driver is not
    /// loaded, there is no GPU, or the GPUs cannot report their memory (then nvidia-smi,
    /// which can, is tried next).
    pub fn open(visible: VisibleDevices) -> Result<Nvml, String> {
        let lib = Lib::init().map_err(|e| format!("NVML unavailable ({e})"))?;
        let count = lib
            .device_count()
            .map_err(|e| format!("NVML cannot count GPUs ({e})"))?;
        if count == 0 {
            return Err("NVML lists no GPU".into());
        }
        let driver = lib.sys_driver_version().ok();
        let mut nvml = Nvml {
            lib,
            count,
            visible,
            driver,
        };
        let first = nvml.sample()?;
        if first.is_empty() {
            return Err("NVML: no visible GPU (see CUDA_VISIBLE_DEVICES)".into());
        }
        if first.iter().all(|r| r.memory_total_mib.is_none()) {
            return Err("NVML cannot read GPU memory on this driver".into());
        }
        Ok(nvml)
    }

    fn read(&self, index: u32) -> Option<GpuReading> {
        let dev = self.lib.device_by_index(index).ok()?;
        let memory = dev.memory_info().ok();
        Some(GpuReading {
            index,
            name: dev.name().ok(),
            uuid: dev.uuid().ok(),
            memory_total_mib: memory.as_ref().map(|m| m.total as f64 / MIB),
            memory_used_mib: memory.as_ref().map(|m| m.used as f64 / MIB),
            utilization_percent: dev.utilization_rates().ok().map(|u| u.gpu as f64),
            power_w: dev.power_usage().ok().map(|mw| mw as f64 / 1000.0),
            temperature_c: dev
                .temperature(TemperatureSensor::Gpu)
                .ok()
                .map(|c| c as f64),
            energy_mj: dev.total_energy_consumption().ok(),
        })
    }
}

/// `(pid, GPU uuid)` of every compute process NVML lists, on every GPU (the server's
/// GPUs are found from it, `server_gpus.rs`).
pub fn compute_apps() -> Result<Vec<(u32, String)>, String> {
    let lib = Lib::init().map_err(|e| format!("NVML unavailable ({e})"))?;
    let count = lib
        .device_count()
        .map_err(|e| format!("NVML cannot count GPUs ({e})"))?;
    gather_apps((0..count).map(|i| {
        let dev = lib.device_by_index(i).map_err(|e| e.to_string())?;
        let uuid = dev.uuid().map_err(|e| e.to_string())?;
        let procs = dev.running_compute_processes().map_err(|e| e.to_string())?;
        Ok((uuid, procs.into_iter().map(|p| p.pid).collect()))
    }))
}

/// The compute apps of each GPU (its uuid and pids, or why NVML could not list them),
/// gathered: a GPU that cannot answer is left out, but when none answers (or there is
/// none) that is an error, not "no compute process", so that the caller can ask
/// `nvidia-smi` instead and say why.
fn gather_apps(
    per_gpu: impl Iterator<Item = Result<(String, Vec<u32>), String>>,
) -> Result<Vec<(u32, String)>, String> {
    let (mut apps, mut answered, mut last_error, mut gpus) = (Vec::new(), 0, None, 0);
    for gpu in per_gpu {
        gpus += 1;
        match gpu {
            Ok((uuid, pids)) => {
                answered += 1;
                apps.extend(pids.into_iter().map(|pid| (pid, uuid.clone())));
            }
            Err(e) => last_error = Some(e),
        }
    }
    match (gpus, answered, last_error) {
        (0, _, _) => Err("NVML sees no GPU".into()),
        (n, 0, Some(e)) => Err(format!(
            "NVML could not list the compute processes of any of its {n} GPU(s) ({e})"
        )),
        _ => Ok(apps),
    }
}

impl Backend for Nvml {
    fn source(&self) -> &'static str {
        "nvml"
    }

    fn driver(&self) -> Option<String> {
        self.driver.clone()
    }

    fn sample(&mut self) -> Result<Vec<GpuReading>, String> {
        let readings: Vec<GpuReading> = (0..self.count).filter_map(|i| self.read(i)).collect();
        if readings.is_empty() {
            return Err("NVML: no GPU answered".into());
        }
        Ok(self.visible.filter(readings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_apps_say_when_no_gpu_could_answer() {
        let ok = |uuid: &str, pids: &[u32]| Ok((uuid.to_string(), pids.to_vec()));
        assert_eq!(
            gather_apps([ok("GPU-a", &[7, 9]), Err("lost".into()), ok("GPU-b", &[])].into_iter()),
            Ok(vec![(7, "GPU-a".into()), (9, "GPU-a".into())])
        );
        // Some GPU answered with no process: that is an answer.
        assert_eq!(gather_apps([ok("GPU-a", &[])].into_iter()), Ok(vec![]));
        let none = gather_apps(std::iter::empty()).unwrap_err();
        assert!(none.contains("no GPU"), "{none}");
        let failed = gather_apps(
            [
                Err("Insufficient Permissions".into()),
                Err("GPU is lost".into()),
            ]
            .into_iter(),
        )
        .unwrap_err();
        assert!(
            failed.contains("any of its 2 GPU(s)") && failed.contains("GPU is lost"),
            "{failed}"
        );
    }

    /// Without the driver (this CI), opening fails at once with a reason; with one, it works.
    #[test]
    fn opens_or_fails_fast() {
        let started = std::time::Instant::now();
        match Nvml::open(VisibleDevices::default()) {
            Ok(mut nvml) => assert!(!nvml.sample().unwrap().is_empty()),
            Err(reason) => assert!(reason.contains("NVML"), "{reason}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
