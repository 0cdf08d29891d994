//! Every example in README.md and docs/*.md is a test: the harness in
//! tests/support/mdtest.rs runs each file's command blocks in document order against two
//! simulators and compares the output the document shows (conventions in its module doc
//! and docs/guide.md). A new docs/*.md file is found and run automatically.

use crate::support::mdtest::{self, lines_match, redact, steps};

#[test]
fn every_readme_and_docs_example_runs_and_prints_what_it_shows() {
    let files = mdtest::doc_files();
    let handles: Vec<_> = files
        .into_iter()
        .map(|f| std::thread::spawn(move || mdtest::run_file(&f)))
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("a doc session"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_harness_catches_drift_and_unmarked_blocks() {
    // A block without a run mode and a skip without a reason are errors.
    assert!(steps("```python\nprint(1)\n```\n").is_err());
    assert!(steps("<!-- skip: -->\n```sh\nfalse\n```\n").is_err());
    assert!(
        steps("<!-- skip: needs a GPU -->\n```sh\nnvidia-smi\n```\n")
            .unwrap()
            .is_empty()
    );
    // Console blocks: commands with continuations, and their expected output.
    let s = steps("```console\n$ benchkeep a \\\n  --b\nline one\n...\n$ x\n```\n").unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].cmd, "benchkeep a \\\n  --b");
    assert_eq!(s[0].expected.as_deref().unwrap(), ["line one", "..."]);
    assert!(s[1].expected.is_none());
    // Matching: wildcards work, and a changed figure does not match.
    let exp = vec![
        "Saved [..].json".to_string(),
        "...".to_string(),
        "  Requests: 5/5".to_string(),
    ];
    let ok = redact(
        "Saved /w/benchmarks/m/x-2026-12-02.json\nA\nB\n  Requests: 5/5\n",
        "/w",
        false,
    );
    assert_eq!(ok[0], "Saved benchmarks/m/x-[DATE].json");
    assert!(lines_match(&exp, &ok));
    let drifted = redact("Saved x.json\n  Requests: 4/5\n", "", false);
    assert!(!lines_match(&exp, &drifted));
    // Numbers that vary: any number matches, but words still count.
    let a = redact("vllm   3664 tok/s  1.4", "", true);
    let b = redact("vllm 12 tok/s 0.9", "", true);
    assert_eq!(a, b);
    assert_ne!(a, redact("vllm 12 req/s 0.9", "", true));
}
