//! Secrets a recorded command prints, in the forms Python, JSON, YAML, shells and HTTP logs
//! use and in the token shapes of the big providers, never reach `raw/<id>.log` (P9); a
//! secret word in prose without a value is kept.

use crate::support::bk;
use crate::support::store::{only_metadata, read_rel};

/// Input line -> the line the log keeps.
const FORMS: &[(&str, &str)] = &[
    // Python
    (
        "{'api_key': 'sk-CANARY0000000000000001'}",
        "{'api_key': '***'}",
    ),
    (
        "Namespace(api_key='CANARY2', model='m', hf_token=None)",
        "Namespace(api_key='***', model='m', hf_token=None)",
    ),
    // JSON
    (
        r#"{"api_key": "CANARY3", "n": 3}"#,
        r#"{"api_key": "***", "n": 3}"#,
    ),
    (r#"{"access_token":"CANARY4"}"#, r#"{"access_token":"***"}"#),
    // YAML
    ("token: hf_CANARY5aaaaaaaaaaaaaaaa", "token: ***"),
    ("  api_key: CANARY6", "  api_key: ***"),
    // shells, .env
    ("OPENAI_API_KEY = CANARY7", "OPENAI_API_KEY = ***"),
    ("export HF_TOKEN=\"CANARY8\"", "export HF_TOKEN=\"***\""),
    ("DB_PASSWORD='CANARY9'", "DB_PASSWORD='***'"),
    // HTTP
    (
        "Authorization: Bearer CANARY10",
        "Authorization: Bearer ***",
    ),
    (
        "> authorization: Basic CANARY11",
        "> authorization: Basic ***",
    ),
    ("X-Api-Key: CANARY12", "X-Api-Key: ***"),
    (
        "retrying with Bearer CANARY13xyz",
        "retrying with Bearer ***",
    ),
    (
        "Cookie: session=CANARY14; theme=CANARY15",
        "Cookie: session=***; theme=***",
    ),
    (
        "< Set-Cookie: sid=CANARY16; Path=/; HttpOnly",
        "< Set-Cookie: sid=***; Path=/; HttpOnly",
    ),
    (r#"{"cookie": "sid=CANARY17"}"#, r#"{"cookie": "sid=***"}"#),
    // token shapes
    ("key is sk-proj-CANARY18aaaaaaaaaaaa", "key is ***"),
    ("ghp_CANARY19aaaaaaaaaaaaaaaaaaaaaa used", "*** used"),
    ("slack xoxb-CANARY20-aaaaaaaa", "slack ***"),
    ("AKIACANARY21AAAAAAAA", "***"),
    (
        "aws_secret_access_key = CANARY22/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = ***",
    ),
    ("jwt=eyJCANARY23.eyJhbGciOi.c2ln", "jwt=***"),
    // kept
    ("the token expired, retrying", "the token expired, retrying"),
    (
        "max_tokens: 128 prompt_tokens=12",
        "max_tokens: 128 prompt_tokens=12",
    ),
    ("api_key=None", "api_key=None"),
    ("bearer of bad news", "bearer of bad news"),
];

#[test]
fn every_form_is_cut_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let lines = dir.path().join("lines.txt");
    let text: String = FORMS.iter().map(|(i, _)| format!("{i}\n")).collect();
    std::fs::write(&lines, text).unwrap();
    let out = dir.path().join("out.jsonl");
    let _ = bk(&store)
        .args(["record", "--platform", "p", "--model", "m", "--gpu", "off"])
        .args(["--output", out.to_str().unwrap(), "--", "cat"])
        .arg(&lines)
        .assert();
    let m = only_metadata(&store);
    let id = m["test_id"].as_str().unwrap();
    let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
    assert!(!log.contains("CANARY"), "{log}");
    let kept: Vec<&str> = log.lines().collect();
    for (input, want) in FORMS {
        assert!(
            kept.contains(want),
            "{input:?} should be kept as {want:?}; the log:\n{log}"
        );
    }
    let tail = m["command"]["log_tail"].to_string();
    assert!(!tail.contains("CANARY"), "{tail}");
}

/// A process the recorded command leaves behind (holding its output) is reported in the
/// log, on stderr and in the metadata, never dropped without a word (issue 10 #13).
#[test]
fn a_forked_child_that_outlives_the_command_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out.jsonl");
    let a = bk(&store)
        .args(["record", "--platform", "p", "--model", "m", "--gpu", "off"])
        .args(["--output", out.to_str().unwrap(), "--"])
        .args(["sh", "-c", "echo first; (sleep 4; echo late) &"])
        .assert();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("keeps its output open"), "{err}");
    let m = only_metadata(&store);
    assert_eq!(m["command"]["log_cut_after_exit"], true, "{m}");
    let id = m["test_id"].as_str().unwrap();
    let log = String::from_utf8(read_rel(&store, &format!("raw/{id}.log"))).unwrap();
    assert!(log.contains("first"), "{log}");
    assert!(log.contains("still holds its output"), "{log}");
}
