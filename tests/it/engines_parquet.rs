//! `export --format parquet`: with the cargo feature `parquet` (CI: `cargo test --features
//! parquet --test it engines_parquet`), a file the arrow-rs reader reads back with one row
//! per run and the figures `query` gives; without it, a clear refusal (exit 2) that says
//! how to get it. Either way it needs `--out FILE`. The engines' own snippets (DuckDB,
//! Polars, Spark) run in scripts/check_engines.sh.

use predicates::prelude::*;

use crate::support::bk;
use crate::support::cmd::populated_store;

#[test]
fn parquet_needs_an_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    for out in [&["--out", "-"][..], &[]] {
        bk(&store)
            .args(["export", "--format", "parquet"])
            .args(out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("give --out FILE"));
    }
}

#[cfg(not(feature = "parquet"))]
#[test]
fn without_the_feature_parquet_is_refused_with_the_way_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let out = dir.path().join("runs.parquet");
    bk(&store)
        .args(["export", "--format", "parquet", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--features parquet"))
        .stderr(predicate::str::contains("--format jsonl"));
    assert!(!out.exists());
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_reads_back_with_a_row_per_run_and_the_figures_query_gives() {
    use arrow_array::{Array, Float64Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let store = populated_store(dir.path());
    let out = dir.path().join("runs.parquet");
    bk(&store)
        .args(["export", "--format", "parquet", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("Exported 3 run(s)"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let b = &batches[0];
    let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
    let ids = col("test_id");
    let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
    let tput = col("results.throughput_tokens_per_sec");
    let tput = tput.as_any().downcast_ref::<Float64Array>().unwrap();
    let ok = col("results.success_count");
    let ok = ok.as_any().downcast_ref::<Int64Array>().unwrap();
    let gpu = col("labels.gpu");
    assert_eq!(gpu.null_count(), 2, "one run has the label, two lack it");

    let all = bk(&store)
        .args(["query", "--all", "--json"])
        .output()
        .unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    for i in 0..3 {
        let q = all
            .iter()
            .find(|r| r["test_id"] == ids.value(i))
            .expect("every exported run is a run of the store");
        assert_eq!(
            q["throughput_tokens_per_sec"].as_f64().unwrap(),
            tput.value(i)
        );
        assert_eq!(q["success_count"].as_i64().unwrap(), ok.value(i));
    }
}
