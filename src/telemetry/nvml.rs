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
    let mut apps = Vec::new();
    for i in 0..count {
        let Ok(dev) = lib.device_by_index(i) else {
            continue;
        };
        let (Ok(uuid), Ok(procs)) = (dev.uuid(), dev.running_compute_processes()) else {
            continue;
        };
        apps.extend(procs.into_iter().map(|p| (p.pid, uuid.clone())));
    }
    Ok(apps)
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
