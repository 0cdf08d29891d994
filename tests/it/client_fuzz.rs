//! Fuzz-style properties of the streaming client path (SSE and NDJSON: line splitting,
//! event assembly, the fast chunk scanner and the parsers, RELIABILITY P8): any bytes, cut
//! into reads at any points, never panic, never hand out a line or event over the cap, and
//! never keep more gaps than a record may hold. The corpus in tests/fixtures/fuzz/client/
//! (inputs that once were, or could be, trouble) is replayed under every split.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use crate::support::api::client::{
    Acc, EventReader, Flow, LineSplitter, Memo, SseAssembler, ollama, openai, openai_chunk,
};
use crate::support::api::schema::MAX_ITL_GAPS;
use crate::support::fixture;

/// Feed `text` cut at `cuts` through the client's reader and parser (`ndjson`: Ollama's
/// lines, else SSE events) with a line/event cap of `cap`; check every event against the
/// cap and the accumulator against its limits. Returns the accumulator.
fn drive(text: &[u8], cuts: &[usize], ndjson: bool, cap: usize) -> Acc {
    let mut reader = EventReader::new(ndjson, cap);
    let mut acc = Acc::new(Some(64));
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut on = |d: &[u8], acc: &mut Acc| {
        assert!(
            d.len() <= cap,
            "an event of {} bytes over the cap {cap}",
            d.len()
        );
        n += 1;
        let at = t0 + Duration::from_micros(n);
        if ndjson {
            ollama::on_line(d, at, acc)
        } else {
            openai::on_event(d, at, acc)
        }
    };
    let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(text.len())).collect();
    points.sort();
    points.push(text.len());
    let mut last = 0;
    let mut stopped = false;
    for p in points {
        if p == last {
            continue;
        }
        let piece = Bytes::copy_from_slice(&text[last..p]);
        last = p;
        match reader.feed(piece, |d| on(d, &mut acc)) {
            Err(_) | Ok(Flow::Done) => {
                stopped = true;
                break;
            }
            Ok(Flow::Continue) => {}
        }
    }
    if !stopped {
        let _ = reader.finish(|d| on(d, &mut acc));
    }
    assert!(acc.itl_ms.len() <= MAX_ITL_GAPS);
    assert!(acc.text.as_ref().is_none_or(|t| t.len() <= 64));
    acc
}

/// Bytes that look like a stream often enough to reach the parsers.
fn streamish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => Just(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n".to_vec()),
        1 => Just(b"data: [DONE]\n\n".to_vec()),
        1 => Just(b"{\"message\":{\"content\":\"a\"},\"done\":false}\n".to_vec()),
        1 => Just(b"{\"done\":true,\"eval_count\":3}\n".to_vec()),
        1 => Just(b"data: {\"usage\":{\"completion_tokens\":7},\"choices\":[]}\n\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b": ping\n".to_vec()),
        1 => Just("\u{feff}".as_bytes().to_vec()),
        2 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => "[{}\\[\\]\":,a-z0-9\\\\u ]{0,40}".prop_map(|s| s.into_bytes()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::support::fuzz_cases(512)))]

    #[test]
    fn any_bytes_any_reads_never_panic_nor_pass_the_caps(
        text in streamish(),
        cuts in proptest::collection::vec(0usize..600, 0..8),
        ndjson in any::<bool>(),
        cap in prop_oneof![Just(16usize), Just(64), Just(1 << 16)],
    ) {
        drive(&text, &cuts, ndjson, cap);
    }

    #[test]
    fn the_pieces_never_panic_nor_pass_their_caps(
        text in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..8),
    ) {
        // the line splitter alone
        let mut lines = LineSplitter::new(32);
        let mut last = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c).min(text.len())).collect();
        points.sort();
        points.push(text.len());
        'feed: for p in points {
            lines.feed(Bytes::copy_from_slice(&text[last..p]));
            last = p;
            loop {
                match lines.next_line() {
                    Ok(Some(l)) => prop_assert!(l.bytes.len() <= 32),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
        // the assembler, one line per newline
        let mut sse = SseAssembler::new(32);
        for line in text.split(|b| *b == b'\n') {
            match sse.line(line) {
                Ok(Some(d)) => prop_assert!(d.len() <= 32),
                Ok(None) => {}
                Err(_) => {}
            }
        }
        // the fast scanner on anything
        let mut memo = Memo::default();
        let _ = openai_chunk(&text, &mut memo);
    }
}

/// Every corpus file, whole and cut at every point near its start and end, through both
/// readers and two caps.
#[test]
fn the_corpus_replays_without_panics_or_overruns() {
    let dir = fixture("fuzz/client");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for path in names {
        let text = std::fs::read(&path).unwrap();
        let ndjson = path.extension().is_some_and(|e| e == "ndjson");
        for cap in [64, 1 << 20] {
            drive(&text, &[], ndjson, cap);
            for cut in (0..text.len().min(200)).chain(text.len().saturating_sub(50)..text.len()) {
                drive(&text, &[cut], ndjson, cap);
                drive(&text, &[cut, cut + 1, cut + 7], !ndjson, cap);
            }
        }
    }
    // known outcomes
    let acc = drive(
        &std::fs::read(dir.join("sse_basic.sse")).unwrap(),
        &[],
        false,
        1 << 20,
    );
    assert!(acc.done && acc.failure.is_none());
    assert_eq!(acc.chunks, 2);
    let acc = drive(
        &std::fs::read(dir.join("ndjson_basic.ndjson")).unwrap(),
        &[5],
        true,
        1 << 20,
    );
    assert!(acc.done && acc.failure.is_none());
    assert_eq!(acc.completion_tokens, Some(2));
    let acc = drive(
        &std::fs::read(dir.join("sse_bad_utf8.sse")).unwrap(),
        &[],
        false,
        1 << 20,
    );
    assert!(acc.failure.is_some());
}

/// More events than a record keeps gaps for: the count goes on, the gaps stop at the cap.
#[test]
fn endless_tiny_events_stop_at_the_gap_cap() {
    let event = b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n";
    let text = event.repeat(MAX_ITL_GAPS + 100);
    let acc = drive(&text, &[1000, 70_000, 900_000], false, 1 << 20);
    assert_eq!(acc.chunks, MAX_ITL_GAPS as u64 + 100);
    assert_eq!(acc.itl_ms.len(), MAX_ITL_GAPS);
    assert_eq!(acc.itl_overflow.unwrap().gaps, 99);
}
