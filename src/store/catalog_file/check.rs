//! `verify`'s check of the catalog against the metadata files (read-only): a row for a
//! file that is gone, a file without a row, a row whose stat or figures differ from what
//! the file holds now (a file edited in place, the hole the cheap staleness check leaves).

use std::collections::HashMap;

use super::disk::{self, CATALOG_DIR};
use super::read_rows;
use super::row::{Row, row_of};
use crate::store::{Store, read_with_stat};

/// How one catalog row disagrees with the store (for `verify`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The metadata file (or the catalog itself).
    pub file: String,
    pub message: String,
}

/// Compare the catalog with the metadata files. Empty when there is no catalog (it is
/// optional). Returns the mismatches and the number of rows checked.
pub fn check(store: &Store) -> anyhow::Result<(Vec<Mismatch>, usize)> {
    let rows = match read_rows(store) {
        Ok(Some(rows)) => rows,
        Ok(None) => return Ok((Vec::new(), 0)),
        Err(why) => {
            return Ok((
                vec![Mismatch {
                    file: CATALOG_DIR.into(),
                    message: format!("the catalog is unusable: {why}"),
                }],
                0,
            ));
        }
    };
    let checked = rows.len();
    let listing = disk::list(store)?;
    let mut by_name: HashMap<&str, &Row> = rows.iter().map(|r| (r.file.as_str(), r)).collect();
    let dir = store.metadata_dir();
    let mut out = Vec::new();
    for (name, _) in &listing {
        let Some(row) = by_name.remove(name.as_str()) else {
            out.push(Mismatch {
                file: name.clone(),
                message: "has no row in the catalog".into(),
            });
            continue;
        };
        let (stat, result) = read_with_stat(&dir.join(name));
        let now = row_of(name, stat, result);
        let same = Row {
            stat: now.stat,
            skipped: now.skipped.clone(),
            ..row.clone()
        } == now;
        if !same || row.skipped.is_some() != now.skipped.is_some() {
            out.push(Mismatch {
                file: name.clone(),
                message: "its catalog row differs from the metadata file".into(),
            });
        } else if row.stat != now.stat {
            out.push(Mismatch {
                file: name.clone(),
                message: "its catalog row was made from an older version of the file (size, mtime or inode differ: edited in place?)".into(),
            });
        }
    }
    let mut gone: Vec<&str> = by_name.into_keys().collect();
    gone.sort_unstable();
    for name in gone {
        out.push(Mismatch {
            file: name.to_string(),
            message: "has a catalog row but no metadata file".into(),
        });
    }
    Ok((out, checked))
}
