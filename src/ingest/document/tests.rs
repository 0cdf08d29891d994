//! Unit tests of the document reader: one object or lines, the cap, names.

use super::*;

const RUN: &str = r#"{"date":"20260301-101500","backend":"openai-chat","model_id":"m","duration":2.0,"completed":2,"failed":0,"total_input_tokens":20,"total_output_tokens":8,"request_throughput":1.0,"output_throughput":4.0,"mean_ttft_ms":10.0,"latencies":[0.5,0.7],"request_rate":"inf","max_concurrency":2}"#;

#[test]
fn one_object_or_lines_with_a_cut_tail() {
    let doc = parse_document(RUN.as_bytes(), None).unwrap();
    assert_eq!(doc.format, DocumentFormat::VllmBenchServe);
    assert_eq!(doc.runs.len(), 1);
    assert_eq!(doc.runs[0].locator, "line 1");
    let text = format!("{RUN}\n{RUN}\n{}", &RUN[..40]);
    let doc = parse_document(text.as_bytes(), None).unwrap();
    assert_eq!(doc.runs.len(), 2);
    assert_eq!(doc.runs[1].locator, "line 2");
    assert_eq!(doc.unparseable, 1);
    assert_eq!(doc.first_unparseable[0].line, 3);
    assert!(doc.first_unparseable[0].reason.contains("truncated"));
}

#[test]
fn pretty_printed_object_is_the_whole_file() {
    let v: Value = serde_json::from_str(RUN).unwrap();
    let text = serde_json::to_string_pretty(&v).unwrap();
    let doc = parse_document(format!("\u{feff}{text}").as_bytes(), None).unwrap();
    assert_eq!(doc.runs[0].locator, "whole file");
}

#[test]
fn not_claimed() {
    assert!(parse_document(br#"{"a":1}"#, None).is_none());
    assert!(parse_document(b"[1,2]", None).is_none());
    assert!(parse_document(b"not json", None).is_none());
    assert!(parse_document(b"", None).is_none());
    let forced = Some(DocumentFormat::VllmBenchServe);
    assert!(parse_document(br#"{"a":1}"#, forced).is_none());
    // A later object that is not a run is unparseable, not the end.
    let text = format!("{RUN}\n{{\"a\":1}}\n");
    let doc = parse_document(text.as_bytes(), None).unwrap();
    assert_eq!((doc.runs.len(), doc.unparseable), (1, 1));
}

#[test]
fn names_cover_both_kinds() {
    assert_eq!(
        InputFormat::from_name("vllm-bench-serve"),
        Some(InputFormat::Document(DocumentFormat::VllmBenchServe))
    );
    assert_eq!(
        InputFormat::from_name("ollama"),
        Some(InputFormat::Lines(Format::Ollama))
    );
    assert!(InputFormat::names().contains(&"vllm-bench-serve"));
    assert_eq!(InputFormat::from_name("nope"), None);
}

#[test]
fn the_cap_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, RUN).unwrap();
    let err = read_document_capped(&path, None, 10).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("big.json") && text.contains("limit"),
        "{text}"
    );
    assert!(
        read_document_capped(&path, None, 1 << 20)
            .unwrap()
            .is_some()
    );
}
