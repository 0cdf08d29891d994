//! Workload flags end to end: length distributions (`MEAN:STDDEV`, `@histogram.csv`)
//! reproducible by seed, the shared prefix's checks, a ShareGPT-style dataset as the
//! requests, and bad values named with exit 2.

use crate::support::api::sim::Profile;
use crate::support::workloads::{run, run_err, sim_counting};

fn lengths(ran: &crate::support::workloads::Ran, key: &str) -> Vec<u64> {
    let mut v: Vec<(u64, u64)> = ran
        .records
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().parse().unwrap(),
                r[key].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

/// `--input-tokens 64:16 --output-tokens 12:4`: lengths spread around the means, the same
/// per request for the same seed, others for another seed; the identity follows.
#[test]
fn normal_lengths_are_reproducible_by_seed() {
    let sim = sim_counting(Profile::Vllm, 1.0, 0);
    let dir = tempfile::tempdir().unwrap();
    let go = |name: &str, seed: &str| {
        run(
            &dir.path().join(name),
            "vllm",
            &sim.base_url(),
            "sim-model",
            &[
                "--synthetic",
                "--input-tokens",
                "64:16",
                "--output-tokens",
                "12:4",
                "--num-requests",
                "60",
                "--concurrency",
                "8",
                "--seed",
                seed,
            ],
        )
    };
    let (a, b, c) = (go("a", "1"), go("b", "1"), go("c", "2"));
    let (pa, oa) = (
        lengths(&a, "prompt_tokens"),
        lengths(&a, "completion_tokens"),
    );
    assert_eq!(
        pa,
        lengths(&b, "prompt_tokens"),
        "same seed, same prompt lengths"
    );
    assert_eq!(oa, lengths(&b, "completion_tokens"));
    assert_ne!(pa, lengths(&c, "prompt_tokens"), "another seed");
    let (lo, hi) = (pa.iter().min().unwrap(), pa.iter().max().unwrap());
    assert!(*lo < 56 && *hi > 72, "spread: {lo}..{hi}");
    let mean = pa.iter().sum::<u64>() as f64 / 60.0;
    assert!((mean - 64.0).abs() < 8.0, "{mean}");
    let err = a.calibration()["achieved"]["error_pct"].as_f64().unwrap();
    assert!(err.abs() <= 2.0, "against the drawn targets: {err}");
    assert!(
        oa.iter().any(|n| *n != 12),
        "output lengths vary too: {oa:?}"
    );
    assert_eq!(
        a.meta["test"]["input_sha256"],
        b.meta["test"]["input_sha256"]
    );
    assert_ne!(
        a.meta["test"]["input_sha256"],
        c.meta["test"]["input_sha256"]
    );
    assert_eq!(
        a.meta["test"]["synthetic"]["input_tokens"]["dist"],
        "normal"
    );
}

/// `--input-tokens @hist.csv`: only the listed lengths, in the server's tokens.
#[test]
fn histogram_lengths() {
    let sim = sim_counting(Profile::Vllm, 1.5, 5);
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist.csv");
    std::fs::write(&hist, "length,weight\n40,1\n200,1\n").unwrap();
    let spec = format!("@{}", hist.display());
    let ran = run(
        &dir.path().join("s"),
        "vllm",
        &sim.base_url(),
        "sim-model",
        &[
            "--synthetic",
            "--input-tokens",
            &spec,
            "--output-tokens",
            "4",
            "--num-requests",
            "40",
            "--concurrency",
            "8",
        ],
    );
    let p = lengths(&ran, "prompt_tokens");
    assert!(
        p.iter()
            .all(|n| n.abs_diff(40) <= 2 || n.abs_diff(200) <= 2),
        "{p:?}"
    );
    assert!(
        p.iter().any(|n| *n < 100) && p.iter().any(|n| *n > 100),
        "{p:?}"
    );
    let h = &ran.meta["test"]["synthetic"]["input_tokens"];
    assert_eq!(h["dist"], "histogram");
    assert_eq!(h["bins"], 2);
}

/// A shared prefix is sent and recorded; values that cannot hold are exit 2, naming the flag.
#[test]
fn shared_prefix_and_bad_values() {
    let sim = sim_counting(Profile::Vllm, 1.0, 0);
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let ran = run(
        &dir.path().join("ok"),
        "vllm",
        &base,
        "sim-model",
        &[
            "--synthetic",
            "--input-tokens",
            "64",
            "--output-tokens",
            "4",
            "--num-requests",
            "5",
            "--shared-prefix",
            "32",
        ],
    );
    assert_eq!(ran.meta["test"]["synthetic"]["prefix"], "shared");
    assert_eq!(ran.meta["test"]["synthetic"]["shared_prefix_tokens"], 32);
    assert!(lengths(&ran, "prompt_tokens").iter().all(|n| *n == 64));

    let target = [
        "--platform",
        "vllm",
        "--base-url",
        &base,
        "--model",
        "sim-model",
    ];
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--synthetic",
                "--input-tokens",
                "64",
                "--output-tokens",
                "4",
                "--shared-prefix",
                "64",
            ],
            "--shared-prefix 64: must be shorter",
        ),
        (
            &[
                "--synthetic",
                "--input-tokens",
                "abc",
                "--output-tokens",
                "4",
            ],
            "--input-tokens abc",
        ),
        (
            &[
                "--synthetic",
                "--input-tokens",
                "8",
                "--output-tokens",
                "5:-1",
            ],
            "--output-tokens 5:-1",
        ),
        (
            &[
                "--synthetic",
                "--input-tokens",
                "@/nonexistent/h.csv",
                "--output-tokens",
                "4",
            ],
            "cannot read the histogram file",
        ),
        (
            &[
                "--synthetic",
                "--input-tokens",
                "8",
                "--output-tokens",
                "4",
                "--calibrate",
                "maybe",
            ],
            "--calibrate",
        ),
    ];
    for (n, (args, want)) in cases.iter().enumerate() {
        let mut all: Vec<&str> = target.to_vec();
        all.extend_from_slice(args);
        let (code, stderr) = run_err(&dir.path().join(format!("bad{n}")), &all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// `run --sharegpt FILE`: each first human turn is a request asking for the reply's length
/// in words; conversations without one are passed over; the identity pairs two runs.
#[test]
fn sharegpt_dataset_as_requests() {
    let sim = sim_counting(Profile::Vllm, 1.0, 0);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sharegpt.json");
    std::fs::write(
        &data,
        r#"[
  {"id": "a", "conversations": [{"from": "human", "value": "Tell me about rivers"}, {"from": "gpt", "value": "Rivers carry water to the sea."}]},
  {"id": "b", "conversations": [{"from": "gpt", "value": "no human first"}]},
  {"id": "c", "conversations": [{"from": "human", "value": "Why is the sky blue today"}, {"from": "gpt", "value": "Scattering."}]}
]"#,
    )
    .unwrap();
    let d = data.display().to_string();
    let go = |name: &str| {
        run(
            &dir.path().join(name),
            "vllm",
            &sim.base_url(),
            "sim-model",
            &["--sharegpt", &d],
        )
    };
    let (a, b) = (go("a"), go("b"));
    assert_eq!(lengths(&a, "prompt_tokens"), vec![4, 6]);
    assert_eq!(lengths(&a, "completion_tokens"), vec![6, 1]);
    assert_eq!(a.meta["test"]["input_file"], d);
    assert_eq!(
        a.meta["test"]["input_sha256"],
        b.meta["test"]["input_sha256"]
    );
    assert!(a.meta["test"].get("prompt_calibration").is_none());

    let (code, stderr) = run_err(
        &dir.path().join("bad"),
        &[
            "--platform",
            "vllm",
            "--base-url",
            &sim.base_url(),
            "--model",
            "sim-model",
            "--sharegpt",
            &d,
            "--input-tokens",
            "8",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("for --synthetic"), "{stderr}");
}
