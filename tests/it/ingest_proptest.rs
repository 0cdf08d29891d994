//! Truncated and corrupted input (RELIABILITY.md, "truncated or corrupt input"): a valid
//! file of every format, cut at any byte or with bytes overwritten, never makes a reader
//! panic; every non-blank line is counted exactly once (record, skipped or unparseable);
//! and lines that were left intact give exactly the records they gave before.

use proptest::prelude::*;

use crate::support::api::error::{exit, exit_code_for};
use crate::support::api::ingest::{Format, Scan, scan_file};
use crate::support::api::schema::{ErrorKind, RequestRecord};
use crate::support::fixture;

/// `*` is every other fixture concatenated: a multi-format file, read as `openai` (its
/// first line's format), where the other formats' lines are unparseable.
const FIXTURES: [(&str, Format); 7] = [
    ("*", Format::OpenAi),
    ("openai_chat.jsonl", Format::OpenAi),
    ("openai_batch.jsonl", Format::OpenAiBatch),
    ("ollama_chat.jsonl", Format::Ollama),
    ("ollama_stream.jsonl", Format::Ollama),
    ("vllm_offline.jsonl", Format::VllmOffline),
    ("benchkeep_raw.jsonl", Format::Benchkeep),
];

/// The bytes of fixture `i` of [`FIXTURES`].
fn fixture_bytes(i: usize) -> Vec<u8> {
    let read = |name: &str| std::fs::read(fixture(&format!("ingest/{name}"))).unwrap();
    if FIXTURES[i].0 == "*" {
        return FIXTURES[1..]
            .iter()
            .flat_map(|(name, _)| read(name))
            .collect();
    }
    read(FIXTURES[i].0)
}

/// Non-blank lines as benchkeep defines them, counted independently of the reader.
fn nonblank_lines(bytes: &[u8]) -> u64 {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')))
        .count() as u64
}

fn scan_bytes(bytes: &[u8], forced: Option<Format>) -> anyhow::Result<(Scan, Vec<RequestRecord>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.jsonl");
    std::fs::write(&path, bytes).unwrap();
    let mut records = Vec::new();
    let scan = scan_file(&path, forced, |r| records.push(r))?;
    Ok((scan, records))
}

/// Checks that hold for any input that scans: accounting, size and hash.
fn check_accounting(bytes: &[u8], scan: &Scan, records: &[RequestRecord]) {
    assert_eq!(scan.records, records.len() as u64);
    assert_eq!(
        scan.records + scan.unparseable + scan.skipped,
        nonblank_lines(bytes)
    );
    assert_eq!(scan.bytes, bytes.len() as u64);
    assert!(scan.first_unparseable.len() as u64 <= scan.unparseable.min(20));
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(scan.sha256, want);
}

/// Records whose line lies entirely before `line` (for formats without cross-line state).
fn before(records: &[RequestRecord], line: u64) -> Vec<RequestRecord> {
    records.iter().filter(|r| r.seq < line).cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::support::fuzz_cases(192), .. ProptestConfig::default() })]

    #[test]
    fn cut_at_any_byte(which in 0..FIXTURES.len(), cut_frac in 0.0f64..=1.0, detect in any::<bool>()) {
        let full = fixture_bytes(which);
        let format = FIXTURES[which].1;
        let (_, full_records) = scan_bytes(&full, Some(format)).unwrap();
        let cut = ((full.len() as f64) * cut_frac) as usize;
        let bytes = &full[..cut];
        let forced = if detect { None } else { Some(format) };
        match scan_bytes(bytes, forced) {
            Err(e) => {
                // Only a cut that leaves nothing usable may fail, and then as bad input.
                prop_assert_eq!(exit_code_for(&e), exit::USAGE);
                let complete_lines = bytes.iter().filter(|b| **b == b'\n').count();
                prop_assert!(nonblank_lines(bytes) == 0 || (detect && complete_lines == 0),
                    "unexpected error: {:#}", e);
            }
            Ok((scan, records)) => {
                check_accounting(bytes, &scan, &records);
                if !detect {
                    prop_assert_eq!(scan.format, format);
                }
                if scan.format == format && format != Format::Ollama {
                    // Every complete line gives what it gave in the whole file.
                    let complete = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
                    prop_assert_eq!(before(&records, complete), before(&full_records, complete));
                }
                if scan.format == format && format == Format::Ollama {
                    // Stream state: requests ended by a complete line are all there.
                    let complete = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
                    let ended: Vec<_> = before(&full_records, complete)
                        .into_iter()
                        .filter(|r| r.error_kind != Some(ErrorKind::CutShort))
                        .collect();
                    let got: Vec<_> = before(&records, complete)
                        .into_iter()
                        .filter(|r| r.error_kind != Some(ErrorKind::CutShort))
                        .collect();
                    prop_assert_eq!(got, ended);
                }
            }
        }
    }

    #[test]
    fn overwritten_bytes(
        which in 0..FIXTURES.len(),
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..8),
        detect in any::<bool>(),
    ) {
        let full = fixture_bytes(which);
        let format = FIXTURES[which].1;
        let (_, full_records) = scan_bytes(&full, Some(format)).unwrap();
        let mut bytes = full.clone();
        let mut touched_lines = Vec::new();
        for (pos, value) in flips {
            let i = ((bytes.len() as f64) * pos) as usize;
            // Keep the line structure, so line numbers stay comparable.
            let value = if value == b'\n' { 0 } else { value };
            if bytes[i] == b'\n' {
                continue;
            }
            bytes[i] = value;
            touched_lines.push(full[..i].iter().filter(|b| **b == b'\n').count() as u64 + 1);
        }
        let forced = if detect { None } else { Some(format) };
        match scan_bytes(&bytes, forced) {
            Err(e) => {
                prop_assert_eq!(exit_code_for(&e), exit::USAGE);
                prop_assert!(detect, "only detection may fail: {:#}", e);
            }
            Ok((scan, records)) => {
                check_accounting(&bytes, &scan, &records);
                if scan.format == format && format == Format::Benchkeep {
                    // A benchkeep record carries its own `seq`, which a flip may change (the
                    // long fuzz run found `"seq":1` -> `"seq":0`): every untouched line must
                    // give the record it gave in the whole file, wherever it sits.
                    for want in full_records.iter().filter(|r| !touched_lines.contains(&r.seq)) {
                        prop_assert!(records.contains(want), "lost {:?}", want);
                    }
                } else if scan.format == format && format != Format::Ollama {
                    let intact = |r: &&RequestRecord| !touched_lines.contains(&r.seq);
                    let want: Vec<_> = full_records.iter().filter(intact).cloned().collect();
                    let got: Vec<_> = records.iter().filter(intact).cloned().collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
