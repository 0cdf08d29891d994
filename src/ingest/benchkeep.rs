//! `benchkeep`: benchkeep's own raw records (`raw/<test_id>.jsonl` of `benchkeep run`).
//!
//! Each line is a serialized [`RequestRecord`] (`seq` and `ok` are required, every other
//! field optional, unknown fields ignored so newer files still read). Records keep their
//! own `seq` (the raw log's position), not the line number, so `recover`ed logs and
//! imported copies count alike.

use crate::ingest::Outcome;
use crate::ingest::line::json_reason;
use crate::schema::RequestRecord;

/// Parse one non-blank line of a benchkeep raw log.
pub(crate) fn parse_line(text: &str) -> Outcome {
    match serde_json::from_str::<RequestRecord>(text) {
        Ok(r) => Outcome::Record(r),
        Err(e) => Outcome::Unparseable(json_reason(&e, "benchkeep")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ErrorKind;

    #[test]
    fn reads_records_and_keeps_their_seq() {
        let Outcome::Record(r) = parse_line(
            r#"{"seq":41,"id":"r-41","ok":true,"prompt_tokens":12,"completion_tokens":30,"ttft_ms":81.5,"e2e_ms":900.0,"itl_ms":[20.0,21.5],"server":{"eval_duration_ns":5},"new_field":1}"#,
        ) else {
            panic!()
        };
        assert_eq!((r.seq, r.ok, r.completion_tokens), (41, true, Some(30)));
        assert_eq!(r.itl_ms, vec![20.0, 21.5]);
        let Outcome::Record(r) = parse_line(
            r#"{"seq":2,"ok":false,"error_kind":"http_status","error":"HTTP 503","http_status":503}"#,
        ) else {
            panic!()
        };
        assert_eq!(r.error_kind, Some(ErrorKind::HttpStatus));
    }

    #[test]
    fn missing_ok_is_not_a_record() {
        match parse_line(r#"{"seq": 1}"#) {
            Outcome::Unparseable(m) => assert!(m.contains("missing field `ok`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
