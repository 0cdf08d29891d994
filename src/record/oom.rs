//! Out-of-memory recognition: scan a failed command's log (the end of `raw/<id>.log`,
//! bounded) for the messages vLLM, PyTorch (CUDA and ROCm/HIP), llama.cpp and Ollama print
//! when a model or its KV cache does not fit. A failed `record` run whose log matches gets
//! the error kind `oom` and `command.failure_reason` (the matched line, redacted).

use std::path::Path;
use std::sync::LazyLock;

use regex::bytes::Regex;

/// How much of the end of the log is scanned: the failure is near the end, and a huge log
/// must not be read whole.
pub const SCAN_BYTES: u64 = 8 << 20;
/// Longest matched line kept, in characters.
pub const REASON_CHARS: usize = 400;

/// The messages (case-insensitive), as the tools print them:
/// - PyTorch: `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ...`,
///   `torch.cuda.OutOfMemoryError`, ROCm's `HIP out of memory`, the runtime's
///   `CUDA error: out of memory`, `hipErrorOutOfMemory`, `cudaErrorMemoryAllocation`,
///   `CUBLAS_STATUS_ALLOC_FAILED`;
/// - vLLM: `No available memory for the cache blocks`, `... KV cache is needed, which is
///   larger than the available KV cache memory`, `Free memory on device ... is less than
///   desired GPU memory utilization`, `InsufficientMemoryError`;
/// - llama.cpp (under Ollama): `cudaMalloc failed: out of memory`;
/// - Ollama: `model requires more system memory (X GiB) than is available (Y GiB)`.
const PATTERN: &str = r"(?i)(?:CUDA out of memory|HIP out of memory|OutOfMemoryError|CUDA error: out of memory|hipErrorOutOfMemory|cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED|No available memory for the cache blocks|larger than the available KV cache memory|is less than desired GPU memory utilization|InsufficientMemoryError|cudaMalloc failed: out of memory|model requires more system memory)";

static OOM: LazyLock<Regex> = LazyLock::new(|| Regex::new(PATTERN).expect("valid regex"));

/// The first line of `text` that says the model ran out of memory, secrets cut
/// (`redact::in_text`), trimmed and cut to [`REASON_CHARS`].
pub fn find_in(text: &[u8]) -> Option<String> {
    let line = text
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|line| OOM.is_match(line))?;
    let line = crate::redact::in_text(line).unwrap_or_else(|| line.to_vec());
    let s = String::from_utf8_lossy(&line);
    let s = s.trim();
    Some(match s.char_indices().nth(REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    })
}

/// [`find_in`] over the last [`SCAN_BYTES`] of the log file; `None` when it cannot be
/// read or holds no such line.
pub fn scan_log(path: &Path) -> Option<String> {
    let len = std::fs::symlink_metadata(path).ok()?.len();
    let buf = crate::store::nofollow::read_tail(path, SCAN_BYTES).ok()?;
    let start = len.saturating_sub(SCAN_BYTES);
    // A scan that starts mid-line drops that partial first line.
    let text = if start > 0 {
        match memchr::memchr(b'\n', &buf) {
            Some(i) => &buf[i + 1..],
            None => &buf[..0],
        }
    } else {
        &buf[..]
    };
    find_in(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_never_follows_a_link_nor_blocks_on_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.log");
        std::fs::write(&target, "torch.OutOfMemoryError: CUDA out of memory.\n").unwrap();
        let link = dir.path().join("run.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(scan_log(&link), None, "a planted link is not read");
        let fifo = dir.path().join("fifo.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(scan_log(&fifo), None, "returns at once, no writer needed");
        assert!(scan_log(&target).is_some());
    }

    fn hit(s: &str) -> Option<String> {
        find_in(s.as_bytes())
    }

    #[test]
    fn pytorch_cuda() {
        let log = "INFO loading\nTraceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB\n";
        assert!(
            hit(log)
                .unwrap()
                .starts_with("torch.OutOfMemoryError: CUDA out of")
        );
        assert!(hit("torch.cuda.OutOfMemoryError: boom").is_some());
        assert!(hit("RuntimeError: CUDA error: out of memory").is_some());
        assert!(hit("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling").is_some());
        assert!(hit("cudaErrorMemoryAllocation").is_some());
    }

    #[test]
    fn rocm_hip() {
        assert!(
            hit("torch.OutOfMemoryError: HIP out of memory. Tried to allocate 1 GiB").is_some()
        );
        assert!(hit("error: hipErrorOutOfMemory").is_some());
    }

    #[test]
    fn vllm() {
        assert!(hit("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.").is_some());
        assert!(hit("(EngineCore_DP0 pid=1) ERROR [core.py:708] (5.62 GiB KV cache is needed, which is larger than the available KV cache memory (4.50 GiB).").is_some());
        assert!(hit("ValueError: Free memory on device (6.92/8.0 GiB) on startup is less than desired GPU memory utilization (0.9, 7.2 GiB)").is_some());
        assert!(hit("vllm.v1.engine.InsufficientMemoryError: not enough").is_some());
    }

    #[test]
    fn ollama_and_llama_cpp() {
        assert!(
            hit(
                "Error: model requires more system memory (164.8 GiB) than is available (13.4 GiB)"
            )
            .is_some()
        );
        assert!(hit("ggml_cuda_init: cudaMalloc failed: out of memory").is_some());
    }

    #[test]
    fn other_failures_are_not_oom() {
        assert_eq!(hit("ValueError: bad model name\nKilled\n"), None);
        assert_eq!(
            hit("memory usage: 3 GiB; out of 10 requests 2 failed"),
            None
        );
        assert_eq!(hit(""), None);
    }

    #[test]
    fn the_line_is_redacted_and_cut() {
        let line = format!(
            "CUDA out of memory api_key='sk-abcdefghijklmnopqrstuvwx' {}",
            "x".repeat(1000)
        );
        let got = hit(&line).unwrap();
        assert!(!got.contains("sk-abcdefghijklmnopqrstuvwx"), "{got}");
        assert!(got.chars().count() <= REASON_CHARS + 3);
    }

    #[test]
    fn scans_only_the_end_of_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.log");
        std::fs::write(&p, "start\nCUDA out of memory\nend\n").unwrap();
        assert_eq!(scan_log(&p).as_deref(), Some("CUDA out of memory"));
        assert_eq!(scan_log(&dir.path().join("missing.log")), None);
        // An OOM line before the scanned window is not read.
        let mut big = b"CUDA out of memory\n".to_vec();
        big.resize(big.len() + SCAN_BYTES as usize + 10, b'.');
        big.extend_from_slice(b"\ndone\n");
        std::fs::write(&p, &big).unwrap();
        assert_eq!(scan_log(&p), None);
    }
}
