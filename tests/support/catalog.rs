//! Readers for the derived catalog `analysis/catalog.jsonl` (one JSON line per metadata
//! file), for the catalog and engine tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The catalog's path in a store.
pub fn catalog_path(store: &Path) -> PathBuf {
    store.join("analysis/catalog.jsonl")
}

/// Every row of the catalog, in file order (panics when a line is not JSON).
pub fn catalog_rows(store: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(catalog_path(store)).expect("the catalog exists");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a catalog line is JSON"))
        .collect()
}

/// The test ids of the catalog's runs, in file order.
pub fn catalog_ids(store: &Path) -> Vec<String> {
    catalog_rows(store)
        .iter()
        .filter_map(|r| r["run"]["test_id"].as_str().map(str::to_string))
        .collect()
}
