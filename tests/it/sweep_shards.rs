//! Fleets: one sweep split into 3 shards, run as 3 processes at once (each with a spool of
//! its own, as on 3 machines) into one store: a directory, `file://`, and `s3://` on moto
//! with `--features external-it`. The report and the knee use the union of the points,
//! each point records its shard, a missing shard is reported, a retried shard keeps its
//! stored points, and bad shard settings are exit 2 naming the flag or variable.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::api::sim::Profile;
use crate::support::moto::{Target, kinds};
use crate::support::out;
use crate::support::sim::{start_blocking, timed};

const LOADS: &str = "1,2,3,4,5,6";

/// `sweep` of shard `index` of 3 into sweep `id`, through `spool`.
fn shard(t: &Target, spool: &Path, url: &str, id: &str, index: u32) -> Command {
    shard_of(t, spool, url, id, index, "3", "8")
}

/// [`shard`] of `count` shards, `requests` per point.
fn shard_of(
    t: &Target,
    spool: &Path,
    url: &str,
    id: &str,
    index: u32,
    count: &str,
    requests: &str,
) -> Command {
    let mut c = t.cmd_with_spool(spool);
    c.args([
        "sweep",
        "--platform",
        "vllm",
        "--model",
        "sim-model",
        "--base-url",
        url,
        "--synthetic",
        "--input-tokens",
        "8",
        "--output-tokens",
        "6",
        "--gpu",
        "off",
        "--num-requests",
        requests,
        "--concurrency",
        LOADS,
        "--no-early-stop",
        "--sweep-id",
        id,
        "--shard-count",
        count,
        "--shard-index",
        &index.to_string(),
    ]);
    c
}

/// Run these shards at once, each through a spool of its own and against its own server
/// (`urls[i]`, as each machine of a fleet has one); all must exit 0.
fn run_shards(t: &Target, urls: &[String], id: &str, shards: &[u32]) {
    let children: Vec<_> = shards
        .iter()
        .map(|&i| {
            shard(t, &t.fresh_spool(), &urls[i as usize], id, i)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (c, i) in children.into_iter().zip(shards) {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{:?} shard {i}: {}{}",
            t.kind,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `benchkeep report` through a fresh spool (what another machine sees); the sweep's
/// conclusions file and COMPARISON.md it derived.
fn report(t: &Target, id: &str) -> (Value, String) {
    let spool = t.fresh_spool();
    let (code, so, se) = out(t.cmd_with_spool(&spool).arg("report"));
    assert_eq!(code, 0, "{:?}: {so}{se}", t.kind);
    let doc = std::fs::read(spool.join(format!("analysis/sweeps/{id}.json"))).unwrap();
    let md = std::fs::read_to_string(spool.join("reports/COMPARISON.md")).unwrap();
    (serde_json::from_slice(&doc).unwrap(), md)
}

/// Every stored point of sweep `id`, by index, read through a fresh spool (export's flat
/// rows: `sweep.index` is one key).
fn points(t: &Target, id: &str) -> Vec<Value> {
    let (code, so, se) = out(t
        .cmd_with_spool(&t.fresh_spool())
        .args(["export", "--format", "jsonl"]));
    assert_eq!(code, 0, "{so}{se}");
    let mut p: Vec<Value> = so
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["sweep.id"] == id)
        .collect();
    p.sort_by_key(|m| m["sweep.index"].as_u64());
    p
}

#[test]
fn three_shards_make_one_sweep_and_a_missing_shard_is_reported() {
    // One server per shard, alike, each at its own address (the fleet's machines).
    let sims: Vec<_> = (0..3)
        .map(|_| {
            let mut c = timed(Profile::Vllm, 2.0, 2.0);
            c.max_num_seqs = 4;
            start_blocking(c)
        })
        .collect();
    let urls: Vec<String> = sims.iter().map(|s| s.base_url()).collect();
    for kind in kinds() {
        let t = Target::new(kind);
        let id = "fleet-test-1";
        run_shards(&t, &urls, id, &[0, 1, 2]);

        // Every point of the plan, once, with its shard (k % 3).
        let p = points(&t, id);
        let indices: Vec<u64> = p
            .iter()
            .map(|m| m["sweep.index"].as_u64().unwrap())
            .collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 5], "{kind:?}");
        for m in &p {
            let k = m["sweep.index"].as_u64().unwrap();
            assert_eq!(m["sweep.shard"], format!("{}/3", k % 3), "{kind:?}");
            assert_eq!(m["sweep.shard_source"], "--shard-index");
            assert_eq!(m["sweep.planned"], 6);
            assert_eq!(m["sweep.value"].as_f64(), Some(k as f64 + 1.0));
            assert_eq!(m["status"], "completed");
        }

        // The analysis is over all six points: each shard alone has two loads, too few
        // for a knee ("too few loads"); the union has six, so that is never the reason.
        let (doc, md) = report(&t, id);
        assert_eq!(doc["derived_from"].as_array().unwrap().len(), 6, "{doc:#}");
        assert_eq!(doc["points"].as_array().unwrap().len(), 6);
        let reason = doc["knee"]["reason"].as_str().unwrap_or("");
        assert!(!reason.contains("too few"), "{:#}", doc["knee"]);
        assert_eq!(doc["shards"]["count"], 3);
        assert!(md.contains("shards: 3 of 3 complete"), "{md}");
        for m in &p {
            assert!(md.contains(m["test_id"].as_str().unwrap()), "{md}");
        }
        let (code, so, se) = out(t.cmd_with_spool(&t.fresh_spool()).args([
            "query",
            "--sweep",
            id,
            "--metric",
            "knee.status",
        ]));
        assert_eq!(code, 0, "{so}{se}");
        assert!(["ok", "no_knee"].contains(&so.trim()), "{so}");

        // A sweep whose shard 1 never ran: the report says so.
        let id2 = "fleet-test-2";
        run_shards(&t, &urls, id2, &[0, 2]);
        let (doc, md) = report(&t, id2);
        assert_eq!(doc["derived_from"].as_array().unwrap().len(), 4);
        assert!(
            md.contains("shards: 2 of 3 complete; missing: 1/3 (no point stored)"),
            "{md}"
        );
        let states: Vec<&str> = doc["shards"]["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, vec!["complete", "missing", "complete"]);

        // A retried shard (a Job's pod restarted) keeps its stored points and runs none.
        let before = points(&t, id2).len();
        let (code, so, se) = out(&mut shard(&t, &t.fresh_spool(), &urls[0], id2, 0));
        assert_eq!(code, 0, "{so}{se}");
        assert!(so.contains("stored"), "{so}");
        assert_eq!(points(&t, id2).len(), before);

        // Joining with another split, or another plan, is refused before anything runs.
        let (code, _, se) = out(&mut shard_of(
            &t,
            &t.fresh_spool(),
            &urls[1],
            id2,
            1,
            "4",
            "8",
        ));
        assert_eq!(code, 2, "{se}");
        assert!(
            se.contains("split into 3 shards") && se.contains("same --shard-count"),
            "{se}"
        );
        let (code, _, se) = out(&mut shard_of(
            &t,
            &t.fresh_spool(),
            &urls[1],
            id2,
            1,
            "3",
            "9",
        ));
        assert_eq!(code, 2, "{se}");
        assert!(se.contains("plan a different sweep"), "{se}");
        assert_eq!(points(&t, id2).len(), before);
    }
}

/// Flags, environment, and a word the error must contain.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn bad_shard_settings_exit_2_naming_the_flag_or_variable() {
    let t = Target::new(crate::support::moto::Kind::Dir);
    // Nothing listens here: every case is refused before the server is reached.
    let url = "http://127.0.0.1:9";
    let cases: Vec<Case> = vec![
        (
            vec![
                "--shard-index",
                "3",
                "--shard-count",
                "3",
                "--sweep-id",
                "a",
            ],
            vec![],
            "--shard-index 3",
        ),
        (
            vec![
                "--shard-index",
                "0",
                "--shard-count",
                "0",
                "--sweep-id",
                "a",
            ],
            vec![],
            "--shard-count 0",
        ),
        (
            vec!["--shard-index", "0", "--shard-count", "2"],
            vec![],
            "--sweep-id",
        ),
        (
            vec!["--shard-count", "2"],
            vec![("JOB_COMPLETION_INDEX", "x")],
            "JOB_COMPLETION_INDEX \"x\"",
        ),
        (vec![], vec![("JOB_COMPLETION_INDEX", "1")], "--shard-count"),
        (
            vec![],
            vec![
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "many"),
            ],
            "SLURM_ARRAY_TASK_COUNT",
        ),
        (vec!["--sweep-id", "../x"], vec![], "--sweep-id"),
    ];
    for (flags, env, word) in cases {
        let mut c = t.cmd("sweep");
        c.args([
            "--platform",
            "vllm",
            "--model",
            "m",
            "--base-url",
            url,
            "--synthetic",
            "--input-tokens",
            "8",
            "--output-tokens",
            "4",
            "--gpu",
            "off",
            "--concurrency",
            "1,2",
        ]);
        c.args(&flags).envs(env.iter().copied());
        let (code, so, se) = out(&mut c);
        assert_eq!(code, 2, "{flags:?} {env:?}: {so}{se}");
        assert!(se.contains(word), "{flags:?} {env:?}: {se}");
    }
    // --auto cannot be split.
    let mut c = t.cmd("sweep");
    c.args([
        "--platform",
        "vllm",
        "--model",
        "m",
        "--base-url",
        url,
        "--synthetic",
        "--input-tokens",
        "8",
        "--output-tokens",
        "4",
        "--auto",
        "--shard-index",
        "0",
        "--shard-count",
        "2",
        "--sweep-id",
        "a",
    ]);
    let (code, _, se) = out(&mut c);
    assert_eq!(code, 2, "{se}");
    assert!(se.contains("cannot be split"), "{se}");
    assert!(crate::support::store::all_files(Path::new(&t.url)).is_empty());
}

/// The fleet manifests of examples/: the Kubernetes Indexed Job parses as YAML, runs as
/// many shards as its completions and parallelism, takes the store from BENCHKEEP_STORE
/// (s3://) and every credential from a Secret; the Slurm array and its gate are valid
/// shell, and the gate runs after the array only if every task succeeded.
/// (scripts/check_fleet_examples.sh runs the Slurm pair end to end.)
#[test]
fn fleet_manifests_parse_and_keep_credentials_out() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let text = std::fs::read_to_string(root.join("kubernetes/sweep-indexed-job.yaml")).unwrap();
    let job: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let pod = &spec["template"]["spec"];
    let bk = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "benchkeep")
        .unwrap();
    let args: Vec<&str> = bk["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "sweep");
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--shard-count"), n.to_string());
    assert!(after("--sweep-id").contains("$(JOB_UID)"));
    let env = bk["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).unwrap();
    assert!(
        var("BENCHKEEP_STORE")["value"]
            .as_str()
            .unwrap()
            .starts_with("s3://")
    );
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(var(key).get("value").is_none(), "{key} inline");
        assert!(var(key)["valueFrom"]["secretKeyRef"]["name"].is_string());
    }
    assert!(
        var("JOB_UID")["valueFrom"]["fieldRef"]["fieldPath"]
            .as_str()
            .unwrap()
            .contains("controller-uid")
    );
    // The server is a native sidecar that must be ready before benchkeep starts.
    let vllm = &pod["initContainers"][0];
    assert_eq!(vllm["restartPolicy"], "Always");
    assert!(vllm["startupProbe"].is_object());

    let array = std::fs::read_to_string(root.join("slurm/sweep-array.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=0-2"), "{array}");
    assert!(array.contains("--dependency=afterok:"), "{array}");
    for f in ["slurm/sweep-array.sbatch", "slurm/sweep-gate.sbatch"] {
        let o = Command::new("bash")
            .arg("-n")
            .arg(root.join(f))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(!text.contains("AWS_SECRET_ACCESS_KEY="), "{f}");
    }
}

/// `sweep --server-cmd ... --matrix`: shards split the combinations (combination i on
/// shard i % 2, its whole sweep there, as sweep `ID-c<i>` of matrix `ID`); without
/// `--matrix` they split the points, each starting a server of its own.
#[test]
fn shards_split_a_matrix_by_combination_and_a_managed_sweep_by_point() {
    use crate::support::{BIN, bk_std, free_port};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sweep = |port: u16, index: u32, id: &str, matrix: Option<&str>| {
        let mut c = bk_std(&store);
        c.args(["sweep", "--platform", "vllm", "--model", "sim-model", "--base-url"])
            .arg(format!("http://127.0.0.1:{port}"))
            .args(["--synthetic", "--input-tokens", "8", "--output-tokens", "8"])
            .args(["--num-requests", "8", "--gpu", "off", "-q", "--no-early-stop"])
            .args(["--concurrency", "1,2,4", "--server-ready-timeout", "60s"])
            .args(["--sweep-id", id, "--shard-count", "2", "--shard-index"])
            .arg(index.to_string())
            .arg("--server-cmd")
            .arg(format!(
                "exec {BIN} simulate --port {port} --model sim-model --max-num-seqs {} --itl-ms 2 --prefill-base-ms 2",
                if matrix.is_some() { "{max_num_seqs}" } else { "4" }
            ));
        if let Some(m) = matrix {
            c.args(["--matrix", m]);
        }
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_all = |children: Vec<std::process::Child>| {
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    };
    wait_all(
        (0..2)
            .map(|i| sweep(free_port(), i, "mx", Some("max_num_seqs=1,2,4")))
            .collect(),
    );
    let runs = crate::support::store::all_metadata(&store);
    assert_eq!(runs.len(), 9, "3 combinations x 3 points");
    for m in &runs {
        let s = &m["sweep"];
        let c = s["matrix"]["index"].as_u64().unwrap();
        assert_eq!(s["matrix"]["id"], "mx");
        assert_eq!(s["matrix"]["shard"], format!("{}/2", c % 2));
        assert_eq!(s["id"], format!("mx-c{c}"));
        assert!(s.get("shard").is_none(), "{s}");
    }

    wait_all(
        (0..2)
            .map(|i| sweep(free_port(), i, "managed", None))
            .collect(),
    );
    let mut shards: Vec<(u64, String)> = crate::support::store::all_metadata(&store)
        .iter()
        .filter(|m| m["sweep"]["id"] == "managed")
        .map(|m| {
            (
                m["sweep"]["index"].as_u64().unwrap(),
                m["sweep"]["shard"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    shards.sort();
    assert_eq!(
        shards,
        vec![(0, "0/2".into()), (1, "1/2".into()), (2, "0/2".into())]
    );
}
