//! Fuzz-style property tests for every line reader in `src/ingest/`: arbitrary bytes and
//! foreign lines under each forced `--format` never panic, and every non-blank line is
//! counted exactly once (a record, skipped, or unparseable). A small corpus of inputs
//! found interesting is replayed from `tests/fixtures/fuzz/ingest/`.

use proptest::prelude::*;

use crate::support::api::ingest::{DocumentFormat, Format, parse_document, scan_file};
use crate::support::fixture;

/// Non-blank lines as the readers count them (a BOM on line 1 is not content).
fn nonblank(bytes: &[u8]) -> u64 {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r')))
        .count() as u64
}

/// Scan `bytes` under every format; check the counting invariant.
fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, bytes).unwrap();
    let want = nonblank(bytes);
    for format in Format::ALL {
        let mut seen = 0u64;
        match scan_file(&path, Some(format), |_| seen += 1) {
            Ok(scan) => {
                prop_assert_eq!(scan.records, seen);
                prop_assert_eq!(
                    scan.records + scan.unparseable + scan.skipped,
                    want,
                    "{:?} on {:?}",
                    format,
                    String::from_utf8_lossy(bytes)
                );
                prop_assert!(scan.invalid_counts <= 64 * want.max(1));
            }
            Err(_) => prop_assert_eq!(want, 0, "{:?}: only an empty file is refused", format),
        }
    }
    Ok(())
}

/// Lines of each format and a few hostile shapes, to mix.
const LINES: &[&str] = &[
    r#"{"id":"c","object":"chat.completion","choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":-2}}"#,
    r#"{"id":"b","custom_id":"r1","response":{"status_code":200,"body":{"choices":[]}},"error":null}"#,
    r#"{"model":"m","created_at":"t","done":true,"eval_count":3,"prompt_eval_count":-1}"#,
    r#"{"model":"m","created_at":"t","done":false}"#,
    r#"{"request_id":"1","num_output_tokens":3,"metrics":"RequestMetrics(num_generation_tokens=-4)"}"#,
    r#"{"seq":1,"ok":true,"prompt_tokens":1,"completion_tokens":2}"#,
    "[1,2,3]",
    "[]",
    "{}",
    "null",
    "\"text\"",
    "-1",
    "{\"a\":",
    "",
    "   ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::support::fuzz_cases(64), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_counted_once(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_all(&bytes)?;
    }

    #[test]
    fn foreign_and_mixed_lines_are_counted_once(
        picks in proptest::collection::vec((0..LINES.len(), any::<bool>()), 1..20),
        cut in any::<u16>(),
    ) {
        let mut text: Vec<u8> = Vec::new();
        for (i, crlf) in picks {
            text.extend_from_slice(LINES[i].as_bytes());
            text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        check_all(&text)?;
        // And cut anywhere.
        let at = cut as usize % (text.len() + 1);
        check_all(&text[..at])?;
    }
}

/// The whole-document reader (`vllm bench serve` results): a real fixture cut anywhere or
/// with one byte changed, or arbitrary bytes, never panics, and every run it returns has
/// finite timings.
fn check_document(bytes: &[u8]) -> Result<(), TestCaseError> {
    for format in [None, Some(DocumentFormat::VllmBenchServe)] {
        if let Some(doc) = parse_document(bytes, format) {
            for run in &doc.runs {
                prop_assert!(run.duration_s.is_none_or(f64::is_finite));
                for r in &run.records {
                    prop_assert!(r.ttft_ms.is_none_or(f64::is_finite));
                    prop_assert!(r.e2e_ms.is_none_or(f64::is_finite));
                    prop_assert!(r.itl_ms.iter().all(|x| x.is_finite()));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::support::fuzz_cases(64), ..ProptestConfig::default() })]

    #[test]
    fn documents_cut_or_changed_anywhere_never_panic(
        which in 0..3usize,
        cut in any::<u32>(),
        at in any::<u32>(),
        byte in any::<u8>(),
    ) {
        let name = ["vllm_serve_detailed.json", "vllm_serve_plain.json", "vllm_serve_append.jsonl"][which];
        let mut bytes = std::fs::read(fixture(&format!("document/{name}"))).unwrap();
        let len = bytes.len();
        check_document(&bytes[..cut as usize % (len + 1)])?;
        bytes[at as usize % len] = byte;
        check_document(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_are_no_document_to_panic_on(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_document(&bytes)?;
    }
}

#[test]
fn the_corpus_replays() {
    let dir = fixture("fuzz/ingest");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        check_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 4, "the corpus is in {}", dir.display());
}
