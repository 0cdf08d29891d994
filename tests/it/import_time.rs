//! An imported run's `timestamp` is its own time (the tool's record of when it ran, else the
//! file's modification time), the import time is kept in `source.imported_at`, and
//! `source.kind` is `import`: "latest" means the run that ran last, not the one imported
//! last.

use std::path::Path;

use serde_json::Value;

use crate::support::import::{import, import_fixture, runs_of};
use crate::support::{bk_std, out};

/// A one-run `vllm bench serve` file that ran at `date` (vLLM's `YYYYMMDD-HHMMSS`) for
/// `duration` seconds.
fn serve_file(dir: &Path, name: &str, date: &str, duration: f64) -> std::path::PathBuf {
    let text = std::fs::read_to_string(import_fixture("vllm_serve/append.jsonl")).unwrap();
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v["date"] = date.into();
    v["duration"] = duration.into();
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

fn query(store: &Path, args: &[&str]) -> String {
    let (code, o, e) = out(bk_std(store).arg("query").args(args));
    assert_eq!(code, 0, "{o}{e}");
    o
}

#[test]
fn latest_is_the_run_that_ran_last_not_the_one_imported_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let later = serve_file(dir.path(), "later.json", "20260305-120000", 3.0);
    let earlier = serve_file(dir.path(), "earlier.json", "20260301-120000", 2.0);
    // Imported in the opposite order of their own times.
    for f in [&later, &earlier] {
        let (code, o, e) = import(&store, &[], std::slice::from_ref(f));
        assert_eq!(code, 0, "{o}{e}");
    }
    let latest = ["--platform", "vllm", "--metric", "total_time_seconds"];
    assert_eq!(query(&store, &latest), "3.0\n");
    // Every run, oldest first (`<test id>\t<value>` lines).
    let ts = ["--platform", "vllm", "--metric", "timestamp", "--all"];
    let times: Vec<String> = query(&store, &ts)
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(times, ["2026-03-01T12:00:00Z", "2026-03-05T12:00:00Z"]);
    for m in runs_of(&store, "vllm-bench-serve") {
        assert_eq!(m["source"]["kind"], "import");
        assert_eq!(m["source"]["timestamp_from"], "file");
        let imported = m["source"]["imported_at"].as_str().unwrap();
        assert!(
            imported.starts_with("20") && imported.ends_with('Z'),
            "{imported}"
        );
        assert_ne!(m["timestamp"].as_str().unwrap(), imported);
    }
    // `show` says where it came from.
    let id = runs_of(&store, "vllm-bench-serve")[0]["test_id"].clone();
    let (code, shown, _) = out(bk_std(&store).args(["show", id.as_str().unwrap()]));
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("source        import"), "{shown}");
}

#[test]
fn each_tools_time_and_the_mtime_when_the_file_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // `vllm bench throughput` writes no time: the file's modification time stands.
    let thr = dir.path().join("throughput.json");
    std::fs::copy(import_fixture("vllm_throughput/throughput.json"), &thr).unwrap();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_934_245);
    std::fs::File::options()
        .write(true)
        .open(&thr)
        .unwrap()
        .set_modified(at)
        .unwrap();
    let inputs = [
        thr,
        import_fixture("guidellm/benchmarks.json"),
        import_fixture("inference_benchmarker"),
        import_fixture("llmperf"),
        import_fixture("aiperf"),
    ];
    let (code, o, e) = import(&store, &[], &inputs);
    assert_eq!(code, 0, "{o}{e}");
    let t = &runs_of(&store, "vllm-bench-throughput")[0];
    assert_eq!(t["timestamp"], "2020-01-02T03:04:05Z");
    assert_eq!(t["source"]["timestamp_from"], "file_mtime");
    // The tools' own times: epoch seconds (GuideLLM, llmperf), RFC 3339 with a zone
    // (inference-benchmarker), a local time without a zone (AIPerf: read as UTC here).
    for (format, want) in [
        ("guidellm", None),
        ("inference-benchmarker", Some("2026-03-01T10:15:00Z")),
        ("llmperf", Some("2026-03-01T10:15:00Z")),
        ("aiperf", Some("2026-12-02T14:08:57Z")),
    ] {
        let runs = runs_of(&store, format);
        assert!(!runs.is_empty(), "{format}");
        for m in &runs {
            assert_eq!(m["source"]["timestamp_from"], "file", "{format}");
            if let Some(w) = want {
                assert_eq!(m["timestamp"], w, "{format}");
            }
        }
    }
    // GuideLLM: each benchmark its own start time, in the order they ran.
    let g = runs_of(&store, "guidellm");
    let times: Vec<&str> = g.iter().map(|m| m["timestamp"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(times[0].starts_with("2026-12-02T"), "{times:?}");
}
