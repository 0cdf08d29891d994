//! Which GPUs are sampled: the server's (`--gpu-index`, or found from the processes of a
//! local server, `server_gpus.rs`), or those `CUDA_VISIBLE_DEVICES` leaves visible, else
//! every GPU; and how that choice is described in `gpu.selection`.

use super::GpuReading;

/// The GPUs the benchmark can see, from `CUDA_VISIBLE_DEVICES` (indices or `GPU-` UUID
/// prefixes). NVML and nvidia-smi list every GPU of the host; only these are sampled.
/// Note that CUDA numbers GPUs fastest first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`; on hosts
/// with identical GPUs the orders agree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisibleDevices {
    /// `None`: all GPUs.
    only: Option<Vec<String>>,
    /// Where the selection came from (`--gpu-index 0`, `CUDA_VISIBLE_DEVICES=1`).
    why: Option<String>,
    /// Named by the user (`--gpu-index`): never replaced by the server's GPUs.
    explicit: bool,
}

impl VisibleDevices {
    /// From a `CUDA_VISIBLE_DEVICES` value. MIG ids cannot be mapped to a GPU here, so a
    /// list with one keeps every GPU.
    pub fn parse(value: Option<&str>) -> Self {
        let Some(v) = value else {
            return VisibleDevices::default();
        };
        let why = Some(format!("CUDA_VISIBLE_DEVICES={}", v.trim()));
        let items: Vec<String> = v
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if items.iter().any(|s| s.starts_with("MIG-")) {
            return VisibleDevices::default();
        }
        // CUDA stops at the first invalid entry (e.g. -1).
        let valid: Vec<String> = items
            .into_iter()
            .take_while(|s| s.parse::<u32>().is_ok() || s.starts_with("GPU-"))
            .collect();
        VisibleDevices {
            only: Some(valid),
            why,
            ..Default::default()
        }
    }

    /// The GPUs given with `--gpu-index` (indices or `GPU-` UUID prefixes, comma-separated):
    /// the server's GPUs, whatever benchkeep itself can see. `Err` names the bad item.
    pub fn chosen(list: &str) -> Result<Self, String> {
        let items: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
        if let Some(bad) = items
            .iter()
            .find(|s| s.parse::<u32>().is_err() && !(s.starts_with("GPU-") && s.len() > 4))
        {
            return Err(format!(
                "--gpu-index {list}: {bad:?} is not a GPU index or a GPU- UUID; give the server's GPUs as nvidia-smi numbers them, e.g. --gpu-index 0,1"
            ));
        }
        Ok(VisibleDevices {
            only: Some(items),
            why: Some(format!("--gpu-index {}", list.trim())),
            explicit: true,
        })
    }

    /// The server's GPUs, by uuid, found from its processes (`server_gpus.rs`).
    pub fn server(uuids: Vec<String>, why: String) -> Self {
        VisibleDevices {
            only: Some(uuids),
            why: Some(why),
            explicit: false,
        }
    }

    /// This selection, kept because the server's GPUs were not found (`reason`).
    pub fn server_not_found(mut self, reason: String) -> Self {
        self.why = Some(format!(
            "{}; the server's own GPUs were not found: {reason}",
            self.describe()
        ));
        self
    }

    /// Whether the user named the GPUs (`--gpu-index`).
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Which GPUs are sampled and why, for the `gpu.selection` key.
    pub fn describe(&self) -> String {
        match &self.why {
            Some(w) => w.clone(),
            None => "every GPU benchkeep can see (no --gpu-index, no CUDA_VISIBLE_DEVICES)".into(),
        }
    }

    /// Whether the GPUs were chosen (by `--gpu-index` or `CUDA_VISIBLE_DEVICES`).
    pub fn is_chosen(&self) -> bool {
        self.only.is_some()
    }

    /// Keep the readings of visible GPUs.
    pub fn filter(&self, readings: Vec<GpuReading>) -> Vec<GpuReading> {
        let Some(only) = &self.only else {
            return readings;
        };
        readings
            .into_iter()
            .filter(|r| {
                only.iter().any(|id| match id.parse::<u32>() {
                    Ok(i) => i == r.index,
                    Err(_) => r
                        .uuid
                        .as_deref()
                        .is_some_and(|u| u.starts_with(id.as_str())),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(index: u32, uuid: &str) -> GpuReading {
        GpuReading {
            index,
            uuid: Some(uuid.into()),
            ..Default::default()
        }
    }

    #[test]
    fn visible_devices() {
        let all = || vec![r(0, "GPU-aa11"), r(1, "GPU-bb22"), r(2, "GPU-cc33")];
        let idx = |v: Vec<GpuReading>| v.iter().map(|r| r.index).collect::<Vec<_>>();
        assert_eq!(idx(VisibleDevices::parse(None).filter(all())), [0, 1, 2]);
        assert_eq!(idx(VisibleDevices::parse(Some("1")).filter(all())), [1]);
        assert_eq!(
            idx(VisibleDevices::parse(Some("2, 0")).filter(all())),
            [0, 2]
        );
        assert_eq!(
            idx(VisibleDevices::parse(Some("GPU-bb")).filter(all())),
            [1]
        );
        assert_eq!(
            idx(VisibleDevices::parse(Some("")).filter(all())),
            [0u32; 0]
        );
        assert_eq!(
            idx(VisibleDevices::parse(Some("-1")).filter(all())),
            [0u32; 0]
        );
        assert_eq!(
            idx(VisibleDevices::parse(Some("0,-1,2")).filter(all())),
            [0]
        );
        assert_eq!(
            idx(VisibleDevices::parse(Some("MIG-abc")).filter(all())),
            [0, 1, 2]
        );
    }

    #[test]
    fn chosen_gpus() {
        let all = || vec![r(0, "GPU-aa11"), r(1, "GPU-bb22"), r(2, "GPU-cc33")];
        let idx = |v: Vec<GpuReading>| v.iter().map(|r| r.index).collect::<Vec<_>>();
        let c = VisibleDevices::chosen("1, GPU-cc").unwrap();
        assert_eq!(idx(c.filter(all())), [1, 2]);
        assert_eq!(c.describe(), "--gpu-index 1, GPU-cc");
        assert!(
            VisibleDevices::chosen("one")
                .unwrap_err()
                .contains("\"one\"")
        );
        assert!(VisibleDevices::chosen("0,").is_err());
        assert_eq!(
            VisibleDevices::parse(Some("0")).describe(),
            "CUDA_VISIBLE_DEVICES=0"
        );
        assert!(!VisibleDevices::parse(None).is_chosen());
        assert!(c.is_explicit() && !VisibleDevices::parse(Some("0")).is_explicit());
        let kept = VisibleDevices::parse(Some("1")).server_not_found("nothing listens".into());
        assert_eq!(
            kept.describe(),
            "CUDA_VISIBLE_DEVICES=1; the server's own GPUs were not found: nothing listens"
        );
        assert_eq!(idx(kept.filter(all())), [1]);
        let server = VisibleDevices::server(vec!["GPU-bb22".into()], "server process 9".into());
        assert_eq!(idx(server.filter(all())), [1]);
        assert!(server.is_chosen() && !server.is_explicit());
    }
}
