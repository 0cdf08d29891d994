//! Readers for the derived catalog `analysis/catalog/part-NN.jsonl` (one JSON line per
//! metadata file, spread over parts), for the catalog and engine tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The catalog's folder in a store.
pub fn catalog_dir(store: &Path) -> PathBuf {
    store.join("analysis/catalog")
}

/// The catalog's part files, sorted by name.
pub fn catalog_parts(store: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(catalog_dir(store))
        .expect("the catalog exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    parts.sort();
    parts
}

/// Every row of the catalog, sorted by metadata file name (panics when a line is not
/// JSON).
pub fn catalog_rows(store: &Path) -> Vec<Value> {
    let mut rows: Vec<Value> = Vec::new();
    for part in catalog_parts(store) {
        let text = std::fs::read_to_string(part).unwrap();
        rows.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a catalog line is JSON")),
        );
    }
    rows.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    rows
}

/// The test ids of the catalog's runs, in file-name order.
pub fn catalog_ids(store: &Path) -> Vec<String> {
    catalog_rows(store)
        .iter()
        .filter(|r| r.get("run").is_some())
        .filter_map(|r| r["test_id"].as_str().map(str::to_string))
        .collect()
}
