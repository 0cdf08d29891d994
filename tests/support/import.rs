//! Harness for `benchkeep import`: run it on fixtures, and read back the runs it stored by
//! their source locator.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::store::all_metadata;
use super::{bk_std, fixture, out};

/// `tests/fixtures/import/<rel>`.
pub fn import_fixture(rel: &str) -> PathBuf {
    fixture(&format!("import/{rel}"))
}

/// Run `benchkeep import` with `args`; the exit code, stdout and stderr.
pub fn import(store: &Path, args: &[&str], paths: &[PathBuf]) -> (i32, String, String) {
    let mut c = bk_std(store);
    c.arg("import").args(args).args(paths);
    out(&mut c)
}

/// Every stored run whose `source.format` is `format`, ordered by locator.
pub fn runs_of(store: &Path, format: &str) -> Vec<Value> {
    let mut v: Vec<Value> = all_metadata(store)
        .into_iter()
        .filter(|m| m["source"]["format"] == format)
        .collect();
    v.sort_by_key(|m| {
        let loc = m["source"]["locator"].as_str().unwrap_or("").to_string();
        // benchmarks[10] after benchmarks[9]
        let digits: String = loc.chars().filter(char::is_ascii_digit).collect();
        (
            loc.split('[').next().unwrap_or("").to_string(),
            digits.parse::<u64>().unwrap_or(0),
            loc,
        )
    });
    v
}

/// A number at a JSON pointer of a run.
pub fn f(m: &Value, ptr: &str) -> f64 {
    m.pointer(ptr)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{ptr} missing in {}", m["test_id"]))
}
