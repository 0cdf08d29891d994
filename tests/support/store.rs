//! Readers for what benchkeep left in a store: metadata (as JSON or typed), raw logs,
//! file lists. None of them writes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::api::schema::{Metadata, RequestRecord};

/// Every entry of `metadata/` (whatever its name), sorted; empty when there is none.
pub fn metadata_files(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store.join("metadata"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The `*.json` files of `metadata/`, sorted, without the hidden temp files an atomic
/// replace writes first (`.tmp-...-<id>.json`): a test reading the store while a run
/// replaces its metadata would otherwise read a file still being written.
pub fn metadata_json_files(store: &Path) -> Vec<PathBuf> {
    let mut files = metadata_files(store);
    files.retain(|p| {
        p.extension().is_some_and(|e| e == "json")
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    files
}

/// A JSON file, parsed.
pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Every metadata file of the store, parsed, sorted by name.
pub fn all_metadata(store: &Path) -> Vec<Value> {
    metadata_json_files(store)
        .iter()
        .map(|p| read_json(p))
        .collect()
}

/// The one run of the store, as JSON.
pub fn only_metadata(store: &Path) -> Value {
    let all = all_metadata(store);
    assert_eq!(all.len(), 1, "expected exactly one run: {all:#?}");
    all.into_iter().next().unwrap()
}

/// The one metadata file of the store, typed, and its path.
pub fn only_run(store: &Path) -> (PathBuf, Metadata) {
    let files = metadata_json_files(store);
    assert_eq!(files.len(), 1, "{files:?}");
    let m: Metadata = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    (files[0].clone(), m)
}

/// The raw file of a run.
pub fn raw_path(store: &Path, m: &Metadata) -> PathBuf {
    store.join(&m.test.output_file)
}

/// The records of a raw log, checking that every line parses with `seq` 1, 2, 3, ...
pub fn records(path: &Path) -> Vec<RequestRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let r: RequestRecord =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        assert_eq!(r.seq, i as u64 + 1, "seq of line {}", i + 1);
        out.push(r);
    }
    assert!(text.is_empty() || text.ends_with('\n'));
    out
}

/// The raw log of the only run in `store`, once it exists.
pub fn find_raw(store: &Path) -> Option<PathBuf> {
    let dir = store.join("raw");
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        p.extension().is_some_and(|x| x == "jsonl").then_some(p)
    })
}

/// Names in `raw/`, sorted.
pub fn raw_names(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("raw"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Read a store-relative file.
pub fn read_rel(store: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(store.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Lines in a file (0 when it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Every file under `dir`, recursively (none when `dir` does not exist).
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// No temp file is left in the store's directories.
pub fn assert_no_temp_files(store: &Path) {
    for dir in ["raw", "metadata", "analysis", "reports"] {
        if let Ok(rd) = std::fs::read_dir(store.join(dir)) {
            for e in rd {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with(".tmp-"), "temp file left: {dir}/{name}");
            }
        }
    }
}

/// Today's date (UTC) as run ids spell it.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// A pid that no process has now (a child that has exited and been reaped).
pub fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// A store at `root` with one `benchkeep run` cut off by kill -9: metadata marked
/// `running` on this host with the pid `pid`, and a raw log of `records` good lines
/// followed by a torn tail. Returns the run's id and its raw log's path.
pub fn crashed_run(root: &Path, records: u64, pid: u32) -> (String, PathBuf) {
    use super::api::schema::{HostInfo, Status};
    use super::api::store::Store;
    use super::report::{Spec, metadata, write_raw_log};
    let store = Store::new(root);
    store.ensure_layout().unwrap();
    let mut m = metadata(&Spec::new("vllm", "m", "2026-01-01T00:00:00Z", 10.0));
    m.status = Status::Running;
    m.pid = Some(pid);
    m.host = HostInfo::this();
    store.publish_new("vllm-m-crashed", &mut m).unwrap();
    write_raw_log(&store, &m.test_id, records, 50.0, 0, "");
    let raw = store.raw_dir().join(format!("{}.jsonl", m.test_id));
    let mut f = std::fs::OpenOptions::new().append(true).open(&raw).unwrap();
    std::io::Write::write_all(&mut f, br#"{"seq":99999,"ok":tr"#).unwrap();
    (m.test_id, raw)
}

/// Make a FIFO at `path` (a hostile store puts one where a file should be).
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string and mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}
