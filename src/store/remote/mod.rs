//! A store at a URL (`s3://bucket/prefix`, `file:///dir`; `gs://`, `az://` with the `gcp` /
//! `azure` features): the seed's layout under the prefix in object storage, worked on
//! through a local working copy (the spool).
//!
//! Ids are reserved in the object store by a create-if-absent put of `metadata/<id>.json`
//! ([`Remote::reserve`], used by [`crate::store::Store`] through [`ids::Reserver`]); the
//! producers then write the spool exactly as they write a local store, and [`sync`]
//! uploads a run's raw files and then its final metadata. Readers sync `metadata/` (and
//! `raw/` when they need it) into the spool first. `benchkeep.json` marks a store made by
//! [`Remote::init`], which also proves that the backend refuses a second create.
//! Secrets never leave this module: the URL is shown without credentials, error texts
//! are redacted, and options (credentials included) live only in memory.

mod errors;
pub mod packs;
pub mod parts;
pub mod sync;
mod transfer;

pub use transfer::{Fetch, Fetched};

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::store::ids;

pub use errors::classify;

/// The manifest `benchkeep init` writes at the root of a URL store.
pub const MANIFEST: &str = "benchkeep.json";
/// The most bytes a manifest may have (it is a few lines of JSON).
const MAX_MANIFEST_BYTES: usize = 64 << 10;
/// The layout version the manifest records (the seed's `raw/ metadata/ analysis/ reports/`).
pub const LAYOUT_VERSION: u32 = 1;

/// Whether `--store` names a URL (a scheme this build handles or names) rather than a
/// directory: `s3://`, `s3a://`, `gs://`, `az://`, `abfs://`, `file://`.
/// Whether two ETags name the same version. Backends quote them differently in a listing
/// and in a GET or PUT (Azure lists them bare and sends them quoted), and a weak one
/// starts with `W/`: compared without either. The raw form is kept for `If-Match`.
pub fn same_etag(a: &str, b: &str) -> bool {
    fn bare(e: &str) -> &str {
        let e = e.strip_prefix("W/").unwrap_or(e);
        e.strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(e)
    }
    bare(a) == bare(b)
}

pub fn is_url(store: &str) -> bool {
    [
        "s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://", "file://",
    ]
    .iter()
    .any(|s| {
        store.len() > s.len()
            && store
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
    })
}

/// How to reach a store at a URL. `options` are the provider's settings by their
/// standard names (`aws_access_key_id`, `aws_endpoint`, `aws_allow_http`, ...), read
/// from the environment by the CLI; they are kept in memory only.
#[derive(Clone)]
pub struct RemoteConfig {
    pub url: String,
    pub options: Vec<(String, String)>,
    /// Per request; also bounds connecting.
    pub timeout: Duration,
    /// Retries of a failed request (a refused connection is retried too).
    pub retries: usize,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("RemoteConfig")
            .field("url", &crate::redact::url(&self.url))
            .field("options", &names)
            .finish()
    }
}

/// The manifest's content.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub layout_version: u32,
    pub created_by: String,
    pub created_at: String,
}

/// A store at a URL.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    shown: String,
    endpoint: Option<String>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.shown).finish()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime may happen inside another runtime's task: never block there.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Remote {
    /// Open (no request is made yet). A URL this build cannot handle is a usage error.
    pub fn open(cfg: &RemoteConfig) -> Result<Remote> {
        let shown = crate::redact::url(&cfg.url);
        let bad = |why: String| Error::usage(format!("--store {shown}: {why}"));
        let url = url::Url::parse(&cfg.url).map_err(|e| {
            bad(format!(
                "not a valid URL ({e}); e.g. s3://bucket/prefix or file:///srv/benchmarks"
            ))
        })?;
        let scheme = url.scheme().to_ascii_lowercase();
        // abfs[s]://filesystem@account.dfs.core.windows.net/ names the file system there.
        let named_fs = scheme.starts_with("abfs") && url.password().is_none();
        if (!url.username().is_empty() && !named_fs) || url.password().is_some() {
            return Err(bad(format!(
                "credentials in the URL are refused; give them in the provider's variables ({})",
                errors::credential_vars(&scheme)
            ))
            .into());
        }
        let (store, prefix) = build(&url, cfg).map_err(|e| bad(crate::redact::url_in_text(&e)))?;
        let endpoint = cfg
            .options
            .iter()
            .find(|(k, _)| {
                matches!(
                    k.as_str(),
                    "aws_endpoint"
                        | "aws_endpoint_url"
                        | "google_base_url"
                        | "azure_storage_endpoint"
                        | "azure_endpoint"
                )
            })
            .map(|(_, v)| crate::redact::url(v));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("benchkeep-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::StoreIo(format!("cannot start the object store client: {e}")))?;
        Ok(Remote {
            store,
            prefix,
            shown,
            endpoint,
            rt: Some(rt),
        })
    }

    /// The URL without credentials, as printed and stored.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The object for a store-relative path (`metadata/x.json`).
    pub fn key(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |acc, part| acc.join(part))
    }

    /// The store-relative path of an object under the prefix (`None` outside it).
    pub fn rel(&self, key: &ObjPath) -> Option<String> {
        let parts: Vec<String> = key
            .prefix_match(&self.prefix)?
            .map(|p| p.as_ref().to_string())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Run a request to completion from any thread (also from inside another runtime).
    fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime lives as long as the Remote");
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("an object store request finished without an answer")
    }

    /// A store error for a failed request (exit 4; exit 5 when the endpoint cannot be
    /// reached), redacted, naming the store and the object.
    pub fn error(&self, e: object_store::Error, action: &str, rel: &str) -> anyhow::Error {
        classify(&e, action, rel, &self.shown, self.endpoint.as_deref()).into()
    }

    /// Create `rel` only if it does not exist: `Ok(false)` when it does.
    pub fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let store = self.store.clone();
        let key = self.key(rel);
        let res = self.block(async move {
            let opts = PutOptions::from(PutMode::Create);
            store.put_opts(&key, PutPayload::from(bytes), opts).await
        });
        match res {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.error(e, "create", rel)),
        }
    }

    /// Write `rel` (a new object or a new version of one we own); the new ETag.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<Option<String>> {
        let store = self.store.clone();
        let key = self.key(rel);
        let res = self.block(async move { store.put(&key, PutPayload::from(bytes)).await });
        res.map(|r| r.e_tag)
            .map_err(|e| self.error(e, "upload", rel))
    }

    /// Read a small object `rel` into memory (at most `limit` bytes: more is an error
    /// naming it); `Ok(None)` when there is no such object. Large objects are fetched to
    /// files ([`Remote::fetch_many`]).
    pub fn get(&self, rel: &str, limit: usize) -> Result<Option<Vec<u8>>> {
        use futures_util::StreamExt;
        let store = self.store.clone();
        let key = self.key(rel);
        let res = self.block(async move {
            let mut body = match store.get(&key).await {
                Ok(r) => r.into_stream(),
                Err(e @ object_store::Error::NotFound { .. }) if !errors::no_bucket(&e) => {
                    return Ok(None);
                }
                Err(e) => return Err(Some(e)),
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Some)?;
                if bytes.len() + chunk.len() > limit {
                    return Err(None);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some(bytes))
        });
        res.map_err(|e| match e {
            Some(e) => self.error(e, "read", rel),
            None => Error::StoreIo(format!(
                "{}: the object {rel} is larger than {limit} bytes; not read (remove or fix it)",
                self.shown
            ))
            .into(),
        })
    }

    /// Remove `rel` (gone already is fine).
    pub fn delete(&self, rel: &str) -> Result<()> {
        let store = self.store.clone();
        let key = self.key(rel);
        match self.block(async move { store.delete(&key).await }) {
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) if !errors::no_bucket(&e) => Ok(()),
            Err(e) => Err(self.error(e, "remove", rel)),
        }
    }

    /// Every object under `dir` (store-relative, e.g. `metadata`): its store-relative
    /// path, size and ETag.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, u64, Option<String>)>> {
        use futures_util::TryStreamExt;
        let store = self.store.clone();
        let key = self.key(dir);
        let res = self.block(async move {
            store
                .list(Some(&key))
                .try_collect::<Vec<object_store::ObjectMeta>>()
                .await
        });
        let metas = res.map_err(|e| self.error(e, "list", dir))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| Some((self.rel(&m.location)?, m.size, m.e_tag)))
            .collect())
    }

    /// `benchkeep init`: prove that the backend refuses a second create (a store that
    /// silently overwrites would hand one id to two writers), then write the manifest.
    /// `Ok(false)` when the store already had one (nothing changed).
    pub fn init(&self, manifest: &Manifest) -> Result<bool> {
        let probe = format!(".probe-{:016x}", rand::random::<u64>());
        if !self.create(&probe, b"1".to_vec())? {
            return Err(Error::StoreIo(format!(
                "{}: the probe object {probe} existed before it was created; run init again",
                self.shown
            ))
            .into());
        }
        let second = self.create(&probe, b"2".to_vec());
        let _ = self.delete(&probe);
        if second? {
            return Err(Error::StoreIo(format!(
                "{}: this backend ({}) accepted a second create of the same object (it overwrites instead of refusing), so two writers could take the same run id; benchkeep refuses it: use a backend with conditional writes (AWS S3, MinIO, Cloudflare R2, GCS, Azure, a recent moto) or a local directory",
                self.shown, self.store
            ))
            .into());
        }
        let mut bytes = serde_json::to_vec_pretty(manifest)?;
        bytes.push(b'\n');
        self.create(MANIFEST, bytes)
    }

    /// The manifest; a clear error when the URL holds no benchkeep store.
    pub fn manifest(&self) -> Result<Manifest> {
        let Some(bytes) = self.get(MANIFEST, MAX_MANIFEST_BYTES)? else {
            return Err(Error::StoreIo(format!(
                "{}: no benchkeep store here ({MANIFEST} is missing); create it once with `benchkeep init --store {}`",
                self.shown, self.shown
            ))
            .into());
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::StoreIo(format!(
                "{}: {MANIFEST} is not a benchkeep store manifest ({e})",
                self.shown
            ))
        })?;
        if m.layout_version > LAYOUT_VERSION {
            return Err(Error::StoreIo(format!(
                "{}: layout version {} is newer than this benchkeep understands ({LAYOUT_VERSION}); upgrade benchkeep",
                self.shown, m.layout_version
            ))
            .into());
        }
        Ok(m)
    }

    /// Claim a run id: create `metadata/<id>.json` with its first metadata if absent.
    pub fn reserve(&self, id: &str, bytes: &[u8]) -> Result<bool> {
        self.create(&format!("metadata/{id}.json"), bytes.to_vec())
    }
}

/// The [`ids::Reserver`] of a URL store: reserves remotely and remembers what it got,
/// so that the command uploads exactly its own runs.
#[derive(Debug)]
pub struct RemoteReserver {
    remote: Arc<Remote>,
    taken: Mutex<Vec<String>>,
}

impl RemoteReserver {
    pub fn new(remote: Arc<Remote>) -> Self {
        RemoteReserver {
            remote,
            taken: Mutex::new(Vec::new()),
        }
    }

    /// The ids this process reserved, in order.
    pub fn taken(&self) -> Vec<String> {
        self.taken.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl ids::Reserver for RemoteReserver {
    fn reserve(&self, id: &str, bytes: &[u8]) -> Result<bool> {
        let ok = self.remote.reserve(id, bytes)?;
        if ok && let Ok(mut t) = self.taken.lock() {
            t.push(id.to_string());
        }
        Ok(ok)
    }
}

/// The object store and the prefix for a URL.
fn build(
    url: &url::Url,
    cfg: &RemoteConfig,
) -> std::result::Result<(Arc<dyn ObjectStore>, ObjPath), String> {
    use object_store::{ClientOptions, RetryConfig};
    let retry = RetryConfig {
        max_retries: cfg.retries,
        retry_timeout: cfg.timeout * (cfg.retries as u32 + 1),
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
    };
    let client = ClientOptions::new()
        .with_timeout(cfg.timeout)
        .with_connect_timeout(cfg.timeout.min(Duration::from_secs(10)));
    match url.scheme().to_ascii_lowercase().as_str() {
        "s3" | "s3a" => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let mut b = AmazonS3Builder::new()
                .with_url(url.as_str())
                .with_client_options(client)
                .with_retry(retry);
            for (k, v) in &cfg.options {
                if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let store = b.build().map_err(|e| e.to_string())?;
            let prefix = ObjPath::parse(url.path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(store), prefix))
        }
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|()| "a file:// URL needs an absolute path".to_string())?;
            let prefix = ObjPath::from_absolute_path(&dir).map_err(|e| e.to_string())?;
            Ok((
                Arc::new(object_store::local::LocalFileSystem::new()),
                prefix,
            ))
        }
        #[cfg(feature = "gcp")]
        "gs" => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
            // As object_store's own GCS default: an http:// GOOGLE_BASE_URL (an emulator)
            // works as given (GOOGLE_ALLOW_HTTP=false refuses it).
            let mut b = GoogleCloudStorageBuilder::new()
                .with_url(url.as_str())
                .with_client_options(client.with_allow_http(true))
                .with_retry(retry);
            for (k, v) in &cfg.options {
                if let Ok(key) = k.parse::<GoogleConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let store = b.build().map_err(|e| {
                format!("{e}; credentials: {}", errors::credential_vars("gs"))
            })?;
            let prefix = ObjPath::parse(url.path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(store), prefix))
        }
        #[cfg(feature = "azure")]
        "az" | "abfs" | "abfss" => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut b = MicrosoftAzureBuilder::new()
                .with_url(url.as_str())
                .with_client_options(client)
                .with_retry(retry);
            for (k, v) in &cfg.options {
                if let Ok(key) = k.parse::<AzureConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let store = b.build().map_err(|e| {
                format!("{e}; the account and its credentials: {}", errors::credential_vars("az"))
            })?;
            let prefix = ObjPath::parse(url.path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(store), prefix))
        }
        scheme => Err(match scheme {
            "gs" => "gs:// needs a benchkeep built with the `gcp` cargo feature (cargo install benchkeep --features gcp)".to_string(),
            "az" | "abfs" | "abfss" => "az:// needs a benchkeep built with the `azure` cargo feature (cargo install benchkeep --features azure)".to_string(),
            _ => format!("{scheme}:// is not a store this build handles (s3://, file://; gs:// and az:// with the `gcp` / `azure` cargo features)"),
        }),
    }
}

#[cfg(test)]
mod etag_tests {
    #[test]
    fn etags_compare_without_quotes_or_weakness() {
        assert!(super::same_etag("\"0x8DC\"", "0x8DC"));
        assert!(super::same_etag("W/\"abc\"", "\"abc\""));
        assert!(super::same_etag("abc", "abc"));
        assert!(!super::same_etag("\"abc\"", "\"abd\""));
        assert!(!super::same_etag("\"abc", "abc\""));
    }
}
