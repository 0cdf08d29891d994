//! `benchkeep bundle ID [--out DIR]`: an upstream bug report for one run, as a folder
//! `DIR/benchkeep-bundle-<test_id>/` and a `.tar.gz` of it beside. The content comes from
//! `report::bundle` (redacted there); this command only writes it, never over an existing
//! bundle and never inside the store.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::cli::print_out;
use crate::error::{Error, exit};
use crate::redact;
use crate::report::bundle;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The run (test id or a unique prefix).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Where the bundle folder and its .tar.gz go (default: the current directory; not
    /// inside the store).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// An absolute path with symlinks of its existing part resolved (the rest may not exist).
fn real(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        out.push(name);
    }
    out
}

/// Secret values in this process's environment (`*_KEY`, `*_TOKEN`, ...), to cut from
/// every text of the bundle.
fn env_secrets() -> Vec<String> {
    std::env::vars()
        .filter(|(k, v)| redact::is_secret_name(k) && v.trim().chars().count() >= 6)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

pub fn run(store: &Store, args: BundleArgs) -> Result<i32> {
    let out = real(&args.out);
    let root = real(store.root());
    if out.starts_with(&root) {
        return Err(Error::usage(format!(
            "--out {}: inside the store {}; write the bundle elsewhere (the store holds only runs and their derived files)",
            args.out.display(),
            root.display()
        ))
        .into());
    }
    let m = store.find(&args.id)?;
    let name = format!("benchkeep-bundle-{}", m.test_id);
    let folder = out.join(&name);
    let archive = out.join(format!("{name}.tar.gz"));
    for p in [&folder, &archive] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(Error::usage(format!(
                "{} already exists; remove it or choose another --out",
                p.display()
            ))
            .into());
        }
    }
    let files = bundle::build(store, &m, &env_secrets())?;
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    fs::create_dir(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    for (file, bytes) in &files {
        let p = folder.join(file);
        fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    write_tar_gz(&archive, &folder, &name)?;
    let list: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
    print_out(&format!(
        "Bundle for {}: {}\n  {}\n  archive: {}\nSecrets are replaced by ***; read ISSUE.md before you post it.\n",
        m.test_id,
        folder.display(),
        list.join(", "),
        archive.display()
    ))?;
    Ok(exit::OK)
}

fn write_tar_gz(archive: &Path, folder: &Path, name: &str) -> Result<()> {
    let file = fs::File::create_new(archive)
        .with_context(|| format!("cannot create {}", archive.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(name, folder)
        .with_context(|| format!("cannot archive {}", folder.display()))?;
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?.sync_all()?;
    Ok(())
}
