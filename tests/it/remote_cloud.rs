//! `gs://` and `az://` stores beyond the shared suite (remote_store.rs runs that on Azurite):
//! a build without the feature names it (exit 2); an endpoint out of reach is exit 5
//! naming it; on Azurite (`scripts/with_azurite.sh`), a missing container and a wrong key
//! are exit 4 naming the fix, and nothing is written anywhere; no credential is shown.

use std::path::Path;
use std::process::Command;

use crate::support::{benchkeep, fixture, out};

fn cmd(url: &str, env: &[(String, String)], spool: &Path, args: &[&str]) -> Command {
    let mut c = benchkeep();
    for (k, _) in std::env::vars() {
        if ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            c.env_remove(k);
        }
    }
    c.args(["--store", url, "--spool"]).arg(spool).args(args);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c
}

fn analyze(url: &str, env: &[(String, String)], spool: &Path) -> (i32, String, String) {
    let input = fixture("foundation/chat_ok_and_error.jsonl");
    let mut c = cmd(
        url,
        env,
        spool,
        &["analyze", "--platform", "p", "--model", "m"],
    );
    c.args(["--total-time", "10", "--input"]).arg(input);
    out(&mut c)
}

#[cfg(not(feature = "gcp"))]
#[test]
fn gs_without_the_gcp_feature_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = analyze("gs://bucket/p", &[], &spool);
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("`gcp` cargo feature"), "{se}");
    assert!(!spool.exists());
}

#[cfg(not(feature = "azure"))]
#[test]
fn az_without_the_azure_feature_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = analyze("az://container/p", &[], &spool);
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("`azure` cargo feature"), "{se}");
    assert!(!spool.exists());
}

#[cfg(feature = "gcp")]
#[test]
fn gs_at_an_endpoint_out_of_reach_is_exit_5_naming_it() {
    let endpoint = format!("http://127.0.0.1:{}", crate::support::free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let key = format!(
        r#"{{"disable_oauth":true,"client_email":"","private_key_id":"","private_key":"{}"}}"#,
        crate::support::moto::SECRET
    );
    let env: Vec<(String, String)> = [
        ("GOOGLE_BASE_URL", endpoint.as_str()),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str()),
        ("BENCHKEEP_REMOTE_RETRIES", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for args in [&["init"][..], &["export", "--format", "jsonl"][..]] {
        let (code, so, se) = out(&mut cmd("gs://bucket/p", &env, &spool, args));
        assert_eq!(code, 5, "{args:?}: {so}{se}");
        assert!(se.contains("cannot reach the object store"), "{se}");
        assert!(
            se.contains(&endpoint) && se.contains("GOOGLE_BASE_URL"),
            "{se}"
        );
        assert!(!format!("{so}{se}").contains(crate::support::moto::SECRET));
    }
    let (code, so, se) = analyze("gs://bucket/p", &env, &spool);
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
        let (code, so, se) = analyze(url, &env, &spool);
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
    let (code, so, se) = analyze(
        "abfss://c:hunter2@acct.dfs.core.windows.net/p",
        &env,
        &spool,
    );
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{se}");
    assert!(!format!("{so}{se}").contains("hunter2"));
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
        let (code, so, se) = out(&mut cmd(
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
    let (code, so, se) = analyze("az://no-such-container-bk/p", &az_env(&endpoint), &spool);
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
    let (code, so, se) = out(&mut cmd(&url, &env, &spool, &["init"]));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("access denied"), "{se}");
    assert!(se.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{se}");
    assert!(!format!("{so}{se}").contains(wrong));
    let (code, so, se) = analyze(&url, &env, &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(!spool.exists(), "nothing written");
}
