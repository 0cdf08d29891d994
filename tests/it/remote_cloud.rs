//! `gs://` and `az://` stores beyond the shared suite (remote_store.rs runs that on Azurite):
//! a build without the feature names it (exit 2); an endpoint out of reach is exit 5
//! naming it; on Azurite (`scripts/with_azurite.sh`), a missing container and a wrong key
//! are exit 4 naming the fix, with nothing written anywhere. On fake-gcs-server
//! (`scripts/with_gcs.sh`), which takes no XML upload: a store copied there reads back
//! whole, and every write is exit 4 with the bucket left as it was. No credential is shown.

use crate::support::moto::url_analyze;
#[cfg(any(feature = "gcp", all(feature = "azure", feature = "external-it")))]
use crate::support::{moto::url_cmd, out};

/// `analyze` into `url` with no credentials: exit 2 before any request, saying `needle`,
/// with nothing written (not even the spool).
fn refused_at_once(url: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = url_analyze(url, &[], &spool);
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains(needle), "{se}");
    assert!(!spool.exists());
}

#[cfg(not(feature = "gcp"))]
#[test]
fn gs_without_the_gcp_feature_names_it() {
    refused_at_once("gs://bucket/p", "`gcp` cargo feature");
}

#[cfg(not(feature = "azure"))]
#[test]
fn az_without_the_azure_feature_names_it() {
    refused_at_once("az://container/p", "`azure` cargo feature");
}

#[cfg(feature = "gcp")]
#[test]
fn gs_at_an_endpoint_out_of_reach_is_exit_5_naming_it() {
    let endpoint = format!("http://127.0.0.1:{}", crate::support::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let env = gs_env(&endpoint);
    for args in [&["init"][..], &["export", "--format", "jsonl"][..]] {
        let (code, so, se) = out(&mut url_cmd("gs://bucket/p", &env, &spool, args));
        assert_eq!(code, 5, "{args:?}: {so}{se}");
        assert!(se.contains("cannot reach the object store"), "{se}");
        assert!(
            se.contains(&endpoint) && se.contains("GOOGLE_BASE_URL"),
            "{se}"
        );
        assert!(!format!("{so}{se}").contains(crate::support::moto::SECRET));
    }
    let (code, so, se) = url_analyze("gs://bucket/p", &env, &spool);
    assert_eq!(code, 5, "{so}{se}");
    assert!(!spool.exists(), "nothing written");
}

#[cfg(feature = "azure")]
#[test]
fn az_at_an_endpoint_out_of_reach_is_exit_5_naming_it() {
    use crate::support::moto::{AZURITE_KEY, az_env};
    let endpoint = format!(
        "http://127.0.0.1:{}/devstoreaccount1",
        crate::support::free_port()
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut env = az_env(&endpoint);
    env.push(("BENCHKEEP_REMOTE_RETRIES".into(), "0".into()));
    // az:// and the Hadoop driver's abfss://filesystem@account... (not a credential).
    for url in [
        "az://container/p",
        "abfss://container@devstoreaccount1.dfs.core.windows.net/p",
    ] {
        let (code, so, se) = url_analyze(url, &env, &spool);
        assert_eq!(code, 5, "{url}: {so}{se}");
        assert!(se.contains("cannot reach the object store"), "{se}");
        assert!(
            se.contains(&endpoint) && se.contains("AZURE_STORAGE_ENDPOINT"),
            "{se}"
        );
        assert!(!format!("{so}{se}").contains(AZURITE_KEY));
        assert!(!spool.exists(), "nothing written");
    }
    // A password in the URL is a credential: refused, unprinted.
    let (code, so, se) = url_analyze(
        "abfss://c:hunter2@acct.dfs.core.windows.net/p",
        &env,
        &spool,
    );
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{se}");
    assert!(!format!("{so}{se}").contains("hunter2"));
}

/// az:// with no account anywhere: exit 2 before any request, naming the variables.
#[cfg(feature = "azure")]
#[test]
fn az_without_an_account_names_the_variables() {
    refused_at_once("az://container/p", "AZURE_STORAGE_ACCOUNT_NAME");
}

/// A container that does not exist on Azurite: exit 4, the container named, nothing written.
#[cfg(all(feature = "azure", feature = "external-it"))]
#[test]
fn az_a_missing_container_is_exit_4_naming_it() {
    use crate::support::moto::{AZURITE_KEY, az_env, azurite};
    let (endpoint, _) = azurite();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    for args in [&["init"][..], &["export", "--format", "jsonl"][..]] {
        let (code, so, se) = out(&mut url_cmd(
            "az://no-such-container-bk/p",
            &az_env(&endpoint),
            &spool,
            args,
        ));
        assert_eq!(code, 4, "{args:?}: {so}{se}");
        assert!(
            se.contains("the container no-such-container-bk does not exist"),
            "{se}"
        );
        assert!(!format!("{so}{se}").contains(AZURITE_KEY));
    }
    let (code, so, se) = url_analyze("az://no-such-container-bk/p", &az_env(&endpoint), &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(!spool.exists(), "nothing written");
}

/// A wrong account key on Azurite: exit 4 naming the variables, the key never shown.
#[cfg(all(feature = "azure", feature = "external-it"))]
#[test]
fn az_a_wrong_key_is_exit_4_naming_the_variables() {
    use crate::support::moto::{az_env, azurite};
    let (endpoint, container) = azurite();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // Valid base64, not the account's key.
    let wrong = "YmtTRUNSRVR0ZXN0VkFMVUUwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OQ==";
    let env: Vec<(String, String)> = az_env(&endpoint)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AZURE_STORAGE_ACCOUNT_KEY" => (k, wrong.to_string()),
            _ => (k, v),
        })
        .collect();
    let url = format!("az://{container}/wrong-key");
    let (code, so, se) = out(&mut url_cmd(&url, &env, &spool, &["init"]));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("access denied"), "{se}");
    assert!(se.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{se}");
    assert!(!format!("{so}{se}").contains(wrong));
    let (code, so, se) = url_analyze(&url, &env, &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(!spool.exists(), "nothing written");
}

/// The environment of a GCS-compatible endpoint: its base URL, and a service account key
/// that turns OAuth off (as object_store takes an emulator's), whose private key is the
/// test secret.
#[cfg(feature = "gcp")]
fn gs_env(endpoint: &str) -> Vec<(String, String)> {
    let key = format!(
        r#"{{"disable_oauth":true,"client_email":"","private_key_id":"","private_key":"{}"}}"#,
        crate::support::moto::SECRET
    );
    [
        ("GOOGLE_BASE_URL", endpoint),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str()),
        ("BENCHKEEP_REMOTE_RETRIES", "0"),
        ("BENCHKEEP_REMOTE_TIMEOUT_S", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// fake-gcs-server from `scripts/with_gcs.sh`: its URL and bucket; fails loudly without.
#[cfg(all(feature = "gcp", feature = "external-it"))]
fn fake_gcs() -> (String, String) {
    let endpoint = std::env::var("BENCHKEEP_TEST_GCS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "the gs:// tests (--features external-it,gcp) need fake-gcs-server: run them under scripts/with_gcs.sh, which sets BENCHKEEP_TEST_GCS_ENDPOINT"
        )
    });
    let bucket = std::env::var("BENCHKEEP_TEST_GCS_BUCKET").unwrap_or_else(|_| "benchkeep".into());
    (endpoint, bucket)
}

/// Upload `bytes` as `name` through the emulator's JSON API (the one upload it takes).
#[cfg(all(feature = "gcp", feature = "external-it"))]
fn gcs_upload(endpoint: &str, bucket: &str, name: &str, bytes: &[u8]) {
    use std::io::{Read, Write};
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name={name} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    s.write_all(bytes).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "uploading {name}: {text}");
}

/// The object names under `prefix` in the emulator's bucket (its JSON API).
#[cfg(all(feature = "gcp", feature = "external-it"))]
fn gcs_names(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let (status, body) = crate::support::moto::http(
        endpoint,
        "GET",
        &format!("/storage/v1/b/{bucket}/o?prefix={prefix}"),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A store written elsewhere (here: by benchkeep on file://, copied object by object, as
/// `gcloud storage cp -r` would) reads back through gs:// on fake-gcs-server: `export` shows
/// the same run, `verify` on a fresh spool hashes its raw log clean, no secret shown.
#[cfg(all(feature = "gcp", feature = "external-it"))]
#[test]
fn gs_a_store_copied_to_fake_gcs_server_reads_back_whole() {
    use crate::support::fixture;
    use crate::support::moto::{Kind, SECRET, Target};
    use crate::support::store::all_files;
    let (endpoint, bucket) = fake_gcs();
    let t = Target::new(Kind::File);
    let (code, so, se) = out(t
        .cmd("analyze")
        .args(["--platform", "p", "--model", "m", "--total-time", "10"])
        .arg("--input")
        .arg(fixture("foundation/chat_ok_and_error.jsonl")));
    assert_eq!(code, 0, "{so}{se}");
    let (code, local, se) = out(t.cmd("export").args(["--format", "jsonl"]));
    assert_eq!(code, 0, "{se}");
    let root = std::path::PathBuf::from(t.url.trim_start_matches("file://"));
    let prefix = format!("copied-{}", std::process::id());
    for f in all_files(&root) {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        gcs_upload(
            &endpoint,
            &bucket,
            &format!("{prefix}/{rel}"),
            &std::fs::read(&f).unwrap(),
        );
    }
    let url = format!("gs://{bucket}/{prefix}");
    let env = gs_env(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = out(&mut url_cmd(
        &url,
        &env,
        &spool,
        &["export", "--format", "jsonl"],
    ));
    assert_eq!(code, 0, "{so}{se}");
    let id = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["test_id"].to_string())
            .collect()
    };
    assert_eq!(id(&so), id(&local), "{so}");
    assert_eq!(id(&so).len(), 1);
    assert!(!format!("{so}{se}").contains(SECRET));
    let fresh = dir.path().join("fresh");
    let (code, so, se) = out(&mut url_cmd(&url, &env, &fresh, &["verify"]));
    assert_eq!(code, 0, "{so}{se}");
    assert!(
        so.contains("1 raw file(s)") && so.contains("no problems"),
        "{so}"
    );
    assert!(!format!("{so}{se}").contains(SECRET));
    for f in all_files(dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!text.contains(SECRET), "the secret is in {}", f.display());
    }
}

/// fake-gcs-server takes no XML upload (so no create-if-absent either): `init` and a new
/// run into a copied store are exit 4 naming the object, and the bucket is left exactly as
/// it was; a missing bucket is exit 4 too. On GCS itself the same calls create (and a
/// second create is refused: `x-goog-if-generation-match: 0`).
#[cfg(all(feature = "gcp", feature = "external-it"))]
#[test]
fn gs_writes_fake_gcs_server_cannot_take_are_refused_and_nothing_is_half_written() {
    use crate::support::moto::SECRET;
    let (endpoint, bucket) = fake_gcs();
    let env = gs_env(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("refused-{}", std::process::id());
    let url = format!("gs://{bucket}/{prefix}");
    let (code, so, se) = out(&mut url_cmd(&url, &env, &dir.path().join("s1"), &["init"]));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("cannot create .probe-"), "{se}");
    assert!(!format!("{so}{se}").contains(SECRET));
    assert!(gcs_names(&endpoint, &bucket, &prefix).is_empty());
    // A store copied there (its manifest only): a new run cannot reserve its id.
    let manifest = br#"{"layout_version":1,"created_by":"benchkeep test","created_at":"2026-01-01T00:00:00Z"}"#;
    gcs_upload(
        &endpoint,
        &bucket,
        &format!("{prefix}/benchkeep.json"),
        manifest,
    );
    let before = gcs_names(&endpoint, &bucket, &prefix);
    let (code, so, se) = url_analyze(&url, &env, &dir.path().join("s2"));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("cannot create metadata/"), "{se}");
    assert!(!format!("{so}{se}").contains(SECRET));
    assert_eq!(gcs_names(&endpoint, &bucket, &prefix), before);
    let (code, so, se) = out(&mut url_cmd(
        "gs://no-such-bucket-bk/p",
        &env,
        &dir.path().join("s3"),
        &["init"],
    ));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("gs://no-such-bucket-bk/p"), "{se}");
}

/// RELIABILITY P9 at the builders: credentials object_store cannot use (a service-account
/// key that is not JSON, an account key that is not base64) are refused without ever
/// printing them or writing them anywhere.
#[cfg(any(feature = "gcp", feature = "azure"))]
#[test]
fn unusable_credentials_are_refused_unprinted() {
    const CANARY: &str = "bkCANARYcredential0123456789";
    let mut cases: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    if cfg!(feature = "gcp") {
        let key = format!("{{\"private_key\": \"{CANARY}\", not json");
        cases.push((
            "gs://bucket/p",
            vec![("GOOGLE_SERVICE_ACCOUNT_KEY".into(), key)],
        ));
    }
    if cfg!(feature = "azure") {
        for var in ["AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"] {
            cases.push((
                "az://container/p",
                vec![
                    ("AZURE_STORAGE_ACCOUNT_NAME".into(), "acct".into()),
                    (var.into(), format!("{CANARY}!!not-base64")),
                ],
            ));
        }
    }
    for (url, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let (code, so, se) = url_analyze(url, &env, &spool);
        assert_eq!(code, 2, "{url}: {so}{se}");
        assert!(!spool.exists(), "nothing written");
        assert!(!format!("{so}{se}").contains(CANARY), "{url}: {so}{se}");
        for f in crate::support::store::all_files(dir.path()) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "{f:?} holds the credential"
            );
        }
    }
}
