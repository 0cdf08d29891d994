//! The store's contract for other tools: `schemas/metadata.schema.json` and
//! `schemas/raw-record.schema.json` hold for what the real binary writes (`run` against the
//! built-in simulator, `record` of a small command, `analyze` of fixtures, `recover` of a run
//! killed with kill -9), every key written is documented in them, and broken documents fail.
//!
//! Self-contained on purpose: its own small helpers, no shared test modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jsonschema::Validator;
use serde_json::{Value, json};

use crate::support::api::sim::{self, Profile};
use crate::support::cmd::{fake_smi_dir, python};
use crate::support::sim::timed;
use crate::support::{bk, bk_std, wait_until};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const INGEST_FIXTURES: &str = "tests/fixtures/ingest";
const RECORD_FIXTURES: &str = "tests/fixtures/record";

fn repo(rel: &str) -> PathBuf {
    Path::new(MANIFEST).join(rel)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema file `schemas/<name>`, checked against the 2020-12 meta-schema.
fn schema_json(name: &str) -> Value {
    let s = read_json(&repo(&format!("schemas/{name}")));
    if let Err(e) = jsonschema::draft202012::meta::validate(&s) {
        panic!("schemas/{name} is not a valid 2020-12 schema: {e}");
    }
    s
}

fn validator(name: &str) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema_json(name))
        .unwrap_or_else(|e| panic!("schemas/{name}: {e}"))
}

struct Schemas {
    metadata: Validator,
    metadata_json: Value,
    record: Validator,
    record_json: Value,
}

fn schemas() -> Schemas {
    Schemas {
        metadata: validator("metadata.schema.json"),
        metadata_json: schema_json("metadata.schema.json"),
        record: validator("raw-record.schema.json"),
        record_json: schema_json("raw-record.schema.json"),
    }
}

/// Every violation of `v` by `doc`, one per line, naming where.
fn violations(v: &Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

/// Follow `$ref`s (only `#/$defs/NAME` are used).
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        s = &root["$defs"][name];
    }
    s
}

/// Keys of `doc` that the schema does not name: an object schema with `properties`
/// documents its keys; one without is free-form (`config`, `labels`, maps).
fn undocumented(root: &Value, schema: &Value, doc: &Value, path: &str, out: &mut Vec<String>) {
    let s = resolve(root, schema);
    if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
        for b in branches {
            let b = resolve(root, b);
            if b.get("type") == Some(&json!("object")) && doc.is_object() {
                undocumented(root, b, doc, path, out);
            }
        }
        return;
    }
    match doc {
        Value::Object(map) => {
            let Some(props) = s.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (k, v) in map {
                match props.get(k) {
                    Some(p) => undocumented(root, p, v, &format!("{path}/{k}"), out),
                    None => out.push(format!("{path}/{k}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(it) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    undocumented(root, it, v, &format!("{path}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// What a store held, for the callers' own checks.
#[derive(Debug, Default)]
struct Checked {
    metadata: Vec<Value>,
    /// Raw lines of `benchkeep`-format logs, parsed.
    records: Vec<Value>,
    /// Keys written that the schemas do not document.
    undocumented: BTreeSet<String>,
}

/// Validate every metadata file of `store`, and every complete line of the raw log of each
/// run whose raw file is in benchkeep's format. Panics listing every violation, and every
/// key this build wrote that the schemas do not document.
fn check_store(s: &Schemas, store: &Path) -> Checked {
    let mut bad = Vec::new();
    let mut c = Checked::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(store.join("metadata"))
        .expect("a metadata directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no metadata in {}", store.display());
    for path in files {
        let m = read_json(&path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        bad.extend(
            violations(&s.metadata, &m)
                .into_iter()
                .map(|v| format!("metadata/{name} {v}")),
        );
        let mut keys = Vec::new();
        undocumented(&s.metadata_json, &s.metadata_json, &m, "", &mut keys);
        c.undocumented
            .extend(keys.into_iter().map(|k| format!("metadata{k}")));
        let output = m["test"]["output_file"].as_str().unwrap_or_default();
        if m["source"]["format"] == "benchkeep" && output.ends_with(".jsonl") {
            let text = std::fs::read_to_string(store.join(output)).unwrap_or_default();
            // A run killed mid-write may end in a torn line: only complete lines count.
            let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            for (i, line) in complete.lines().enumerate() {
                let r: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{output} line {}: {e}: {line}", i + 1));
                bad.extend(
                    violations(&s.record, &r)
                        .into_iter()
                        .map(|v| format!("{output} line {} {v}: {line}", i + 1)),
                );
                // Lines this build wrote must use only documented keys; an imported log
                // may come from a newer benchkeep.
                if m["source"]["kind"] == "run" {
                    let mut keys = Vec::new();
                    undocumented(&s.record_json, &s.record_json, &r, "", &mut keys);
                    c.undocumented
                        .extend(keys.into_iter().map(|k| format!("raw record{k}")));
                }
                c.records.push(r);
            }
        }
        c.metadata.push(m);
    }
    assert!(bad.is_empty(), "schema violations:\n{}", bad.join("\n"));
    assert!(
        c.undocumented.is_empty(),
        "keys written but not documented in schemas/: {:?}",
        c.undocumented
    );
    c
}

/// Lines in the one `*.jsonl` raw log of `store` (0 before it exists).
fn raw_lines(store: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(store.join("raw")) else {
        return 0;
    };
    dir.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "jsonl")
                && !p.to_string_lossy().ends_with(".gpu.jsonl")
        })
        .map(|p| {
            std::fs::read(p)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn run_output_matches_the_schemas() {
    let s = schemas();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");

    // vLLM-like, with failures, GPU telemetry (fake nvidia-smi), SLOs, labels, config, text.
    let mut faulty = timed(Profile::Vllm, 2.0, 2.0);
    faulty.faults.error_rate = 0.25;
    faulty.faults.stream_error_rate = 0.25;
    let vllm = sim::start_blocking(faulty).unwrap();
    let smi = fake_smi_dir(dir.path());
    let config = r#"{"max_num_seqs": 8, "nested": {"a": [1, 2]}}"#;
    bk(&store)
        .env("PATH", &smi)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args(["run", "--platform", "vllm", "--model", "sim-model"])
        .args(["--base-url", &vllm.base_url(), "--synthetic"])
        .args(["--input-tokens", "4", "--output-tokens", "6"])
        .args(["--num-requests", "16", "--concurrency", "4"])
        .args(["--warmup", "1", "--slo", "ttft=200ms,e2e=5s"])
        .args(["--label", "suite=schema", "--config", config, "--save-text"])
        .args(["--gpu", "nvidia-smi", "--gpu-interval", "50ms", "--quiet"])
        .assert()
        .success();

    // Ollama-like, open loop, not streamed, no GPU.
    let ollama = sim::start_blocking(timed(Profile::Ollama, 2.0, 2.0)).unwrap();
    bk(&store)
        .args(["run", "--platform", "ollama", "--model", "llama3.2:latest"])
        .args(["--base-url", &ollama.base_url(), "--synthetic"])
        .args(["--input-tokens", "4", "--output-tokens", "4"])
        .args(["--num-requests", "6", "--rate", "200", "--no-stream"])
        .args(["--gpu", "off", "--quiet"])
        .assert()
        .success();

    let c = check_store(&s, &store);
    assert_eq!(c.metadata.len(), 2);
    assert!(c.metadata.iter().all(|m| m["source"]["kind"] == "run"));
    assert_eq!(c.records.len(), 16 + 6, "every measured request is a line");
    assert!(
        c.records.iter().all(|r| r["record_version"] == 1),
        "every line written carries record_version 1"
    );
    assert!(
        c.records.iter().any(|r| r["ok"] == false),
        "the faults made some requests fail"
    );
    let gpu = c.metadata.iter().find(|m| m["platform"] == "vllm").unwrap();
    assert_eq!(gpu["gpu"]["source"], "nvidia-smi", "{:#}", gpu["gpu"]);
}

#[test]
fn record_output_matches_the_schemas() {
    let s = schemas();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(&batch, "{}\n{}\n{}\n{}\n").unwrap();
    let smi = fake_smi_dir(dir.path());
    let script = repo(&format!("{RECORD_FIXTURES}/fake_run_batch.py"));
    bk(&store)
        .env("PATH", &smi)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args(["record", "--platform", "vllm-offline", "--model", "m"])
        .args(["--output", out.to_str().unwrap()])
        .args(["--config", r#"{"max_model_len": 4096}"#])
        .args(["--label", "gpu=fake"])
        .args(["--gpu", "nvidia-smi", "--gpu-interval", "50ms", "--"])
        .arg(python())
        .arg(&script)
        .args(["-o", out.to_str().unwrap(), "-i", batch.to_str().unwrap()])
        .args(["--requests", "4", "--errors", "1", "--sleep", "0.3"])
        .args(["--load-after", "0.1"])
        .assert()
        .success();
    // A command that fails without results: metadata pointing at the log.
    bk(&store)
        .args(["record", "--platform", "vllm-offline", "--model", "m"])
        .args(["--output", dir.path().join("none.jsonl").to_str().unwrap()])
        .args(["--gpu", "off", "--"])
        .arg(python())
        .arg(&script)
        .args(["--no-output", "--exit", "3", "--sleep", "0.1"])
        .assert()
        .failure();

    let c = check_store(&s, &store);
    assert_eq!(c.metadata.len(), 2);
    assert!(c.metadata.iter().all(|m| m["source"]["kind"] == "record"));
    assert!(c.metadata.iter().any(|m| m["gpu"]["devices"].is_array()));
    assert!(c.metadata.iter().any(|m| m["status"] == "failed"));
}

#[test]
fn analyze_output_matches_the_schemas() {
    let s = schemas();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fixtures = [
        ("openai_chat.jsonl", "vllm"),
        ("openai_batch.jsonl", "vllm-offline"),
        ("ollama_chat.jsonl", "ollama"),
        ("ollama_stream.jsonl", "ollama"),
        ("vllm_offline.jsonl", "vllm-offline"),
        // benchkeep's own raw log, from before lines had a record_version
        ("benchkeep_raw.jsonl", "vllm"),
    ];
    for (i, (file, platform)) in fixtures.iter().enumerate() {
        let mut c = bk(&store);
        c.args(["analyze", "--platform", platform, "--model", "m"])
            .args(["--config", "{}", "--total-time", "10", "--input"])
            .arg(repo(&format!("{INGEST_FIXTURES}/{file}")));
        if i == 0 {
            c.args(["--gpu-name", "RTX 4080", "--vram-total-gb", "16"])
                .args(["--gpu-util", "87.5", "--model-load-time", "12.5"]);
        }
        c.assert().success();
    }
    let c = check_store(&s, &store);
    assert_eq!(c.metadata.len(), fixtures.len());
    assert!(c.metadata.iter().all(|m| m["source"]["kind"] == "analyze"));
    assert!(
        !c.records.is_empty() && c.records.iter().all(|r| r.get("record_version").is_none()),
        "the old benchkeep log's lines are validated as they are"
    );
}

#[test]
fn recover_output_matches_the_schemas() {
    let s = schemas();
    let server = sim::start_blocking(timed(Profile::Vllm, 2.0, 2.0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = bk_std(&store)
        .args(["run", "--platform", "vllm", "--model", "sim-model"])
        .args(["--base-url", &server.base_url(), "--synthetic"])
        .args(["--input-tokens", "4", "--output-tokens", "8"])
        .args(["--num-requests", "100000", "--concurrency", "4"])
        .args(["--gpu", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "12 finished requests", || {
        raw_lines(&store) >= 12
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // What kill -9 leaves: metadata still `running` with its pid, and the raw log so far.
    let c = check_store(&s, &store);
    assert_eq!(c.metadata[0]["status"], "running");
    assert!(c.metadata[0]["pid"].is_u64());
    assert!(c.records.len() >= 12);

    let out = bk(&store).arg("recover").assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("Recovered:"), "{stdout}");
    let c = check_store(&s, &store);
    let m = &c.metadata[0];
    assert_eq!(m["status"], "interrupted");
    assert!(m.get("pid").is_none());
    assert!(m["test"]["recovered"].is_object(), "{m:#}");
    assert_eq!(m["results"]["success_count"], c.records.len());
}

/// Properties named in a schema that have no description (directly or where their `$ref`
/// points).
fn undescribed(root: &Value, node: &Value, path: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (k, p) in props {
                    if p.get("description").is_none()
                        && resolve(root, p).get("description").is_none()
                    {
                        out.push(format!("{path}/properties/{k}"));
                    }
                }
            }
            // `if`/`then`/`else`/`not` only constrain properties described elsewhere.
            for (k, v) in map {
                if !matches!(k.as_str(), "if" | "then" | "else" | "not") {
                    undescribed(root, v, &format!("{path}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                undescribed(root, v, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_property_is_described() {
    for name in ["metadata.schema.json", "raw-record.schema.json"] {
        let s = schema_json(name);
        let mut out = Vec::new();
        undescribed(&s, &s, "", &mut out);
        assert!(out.is_empty(), "schemas/{name}: no description for {out:?}");
    }
}

/// Breaks a copy of real metadata in one way.
type Breaker = fn(&mut Value);

/// The schemas can fail: broken copies of real output are rejected, each for its reason.
#[test]
fn broken_documents_fail_validation() {
    let s = schemas();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    bk(&store)
        .args(["analyze", "--platform", "vllm", "--model", "m"])
        .args(["--config", "{}", "--input"])
        .arg(repo(&format!("{INGEST_FIXTURES}/benchkeep_raw.jsonl")))
        .assert()
        .success();
    let c = check_store(&s, &store);
    let meta = c.metadata[0].clone();
    let record = c.records[0].clone();

    let broken_meta: [(&str, Breaker); 13] = [
        ("unknown status", |m: &mut Value| {
            m["status"] = json!("bogus")
        }),
        ("a string count", |m: &mut Value| {
            m["results"]["success_count"] = json!("3")
        }),
        ("a string time", |m: &mut Value| {
            m["results"]["total_time_seconds"] = json!("1.5")
        }),
        ("a fractional count", |m: &mut Value| {
            m["test"]["num_requests"] = json!(2.5)
        }),
        ("schema_version 0", |m: &mut Value| {
            m["schema_version"] = json!(0)
        }),
        ("no test_id", |m: &mut Value| {
            m.as_object_mut().unwrap().remove("test_id");
        }),
        ("a path as test_id", |m: &mut Value| {
            m["test_id"] = json!("../x")
        }),
        ("a local timestamp", |m: &mut Value| {
            m["timestamp"] = json!("2024-10-28 07:38:12")
        }),
        ("unknown source kind", |m: &mut Value| {
            m["source"]["kind"] = json!("sideloaded")
        }),
        ("a raw file outside the store", |m: &mut Value| {
            m["test"]["output_file"] = json!("../raw/x.jsonl")
        }),
        ("a number label", |m: &mut Value| {
            m["labels"] = json!({"gpu": 4080})
        }),
        ("null results", |m: &mut Value| m["results"] = Value::Null),
        ("a latency without p99", |m: &mut Value| {
            m["results"]["latency_ms"] = json!({"ttft": {
                "count": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p95": 1.0, "max": 1.0
            }})
        }),
    ];
    for (why, f) in broken_meta {
        let mut m = meta.clone();
        f(&mut m);
        assert!(
            !s.metadata.is_valid(&m),
            "metadata with {why} passed validation"
        );
    }
    // ... while unknown keys pass: readers must ignore them.
    let mut m = meta.clone();
    m["from_the_future"] = json!({"x": 1});
    m["results"]["new_metric"] = json!(1.0);
    assert!(s.metadata.is_valid(&m), "{:?}", violations(&s.metadata, &m));

    let broken_records: Vec<(&str, Value)> = vec![
        ("a string ok", json!({"seq": 1, "ok": "yes"})),
        ("a string seq", json!({"seq": "1", "ok": true})),
        ("seq 0", json!({"seq": 0, "ok": true})),
        ("no ok", json!({"seq": 1})),
        (
            "record_version 0",
            json!({"record_version": 0, "seq": 1, "ok": true}),
        ),
        (
            "a failure without its kind",
            json!({"seq": 1, "ok": false, "error": "x"}),
        ),
        (
            "a success with an error",
            json!({"seq": 1, "ok": true, "error_kind": "timeout", "error": "x"}),
        ),
        (
            "a null latency",
            json!({"seq": 1, "ok": true, "ttft_ms": null}),
        ),
        (
            "negative tokens",
            json!({"seq": 1, "ok": true, "completion_tokens": -1}),
        ),
        (
            "a string in itl_ms",
            json!({"seq": 1, "ok": true, "itl_ms": [1.0, "2"]}),
        ),
    ];
    for (why, r) in &broken_records {
        assert!(
            !s.record.is_valid(r),
            "a record with {why} passed validation"
        );
    }
    assert!(
        s.record.is_valid(&record),
        "{:?}",
        violations(&s.record, &record)
    );
    let newer = json!({"record_version": 2, "seq": 7, "ok": false, "error_kind": "brand_new", "error": "x", "new": 1});
    assert!(
        s.record.is_valid(&newer),
        "{:?}",
        violations(&s.record, &newer)
    );

    // And the store check itself fails on a broken metadata file, naming what is wrong.
    let mut m = meta.clone();
    m["status"] = json!("bogus");
    m["results"]["success_count"] = json!("3");
    let path = store.join(format!(
        "metadata/{}.json",
        meta["test_id"].as_str().unwrap()
    ));
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_store(&s, &store)));
    let message = failed.expect_err("a broken metadata file passed the store check");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("\"/status\"") && message.contains("\"/results/success_count\""),
        "{message}"
    );
}
