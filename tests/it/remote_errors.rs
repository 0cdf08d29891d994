//! A store URL that cannot work is a clear error with its exit code, and nothing is
//! written anywhere: a missing bucket or refused credentials (exit 4), an endpoint out of
//! reach (exit 5), a URL without `init` (exit 4), a backend that overwrites where it
//! should refuse (`init` refuses it, exit 4), credentials in the URL (exit 2).

use crate::support::moto::{Fake, SECRET, fake_s3, s3_env, url_analyze, url_cmd};
use crate::support::{free_port, out};

fn no_secret(so: &str, se: &str) {
    assert!(!so.contains(SECRET) && !se.contains(SECRET), "{so}{se}");
}

#[test]
fn refused_credentials_are_exit_4_naming_the_variables() {
    let endpoint = fake_s3(Fake::Deny);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = url_analyze("s3://bucket/p", &s3_env(&endpoint), &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("access denied"), "{se}");
    assert!(se.contains("AWS_ACCESS_KEY_ID"), "{se}");
    no_secret(&so, &se);
    assert!(!spool.exists(), "nothing written");
}

#[test]
fn an_endpoint_out_of_reach_is_exit_5_naming_it() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = url_analyze("s3://bucket/p", &s3_env(&endpoint), &spool);
    assert_eq!(code, 5, "{so}{se}");
    assert!(se.contains("cannot reach the object store"), "{se}");
    assert!(se.contains(&endpoint), "{se}");
    no_secret(&so, &se);
    assert!(!spool.exists(), "nothing written");
}

#[test]
fn a_backend_that_overwrites_is_refused_by_init() {
    let endpoint = fake_s3(Fake::Overwrite);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = out(&mut url_cmd(
        "s3://bucket/p",
        &s3_env(&endpoint),
        &spool,
        &["init"],
    ));
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("accepted a second create"), "{se}");
    no_secret(&so, &se);
}

#[test]
fn a_url_without_init_says_to_run_init_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/nostore", dir.path().display());
    let spool = dir.path().join("spool");
    let (code, so, se) = url_analyze(&url, &[], &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("benchkeep init --store"), "{se}");
    assert!(!spool.exists() && !dir.path().join("nostore").exists());
    // init makes it; then the same command works.
    let (code, so, se) = out(&mut url_cmd(&url, &[], &spool, &["init"]));
    assert_eq!(code, 0, "{so}{se}");
    assert!(so.contains("Created the store"), "{so}");
    let (code, so, se) = url_analyze(&url, &[], &spool);
    assert_eq!(code, 0, "{so}{se}");
}

#[test]
fn credentials_in_the_url_are_refused_unprinted() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let url = format!("s3://AKIAX:{SECRET}@bucket/p");
    let (code, so, se) = url_analyze(&url, &[], &spool);
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("AWS_SECRET_ACCESS_KEY"), "{se}");
    no_secret(&so, &se);
}

#[test]
fn init_needs_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let (code, so, se) = out(&mut url_cmd(
        &dir.path().join("s").display().to_string(),
        &[],
        dir.path(),
        &["init"],
    ));
    assert_eq!(code, 2, "{so}{se}");
    assert!(se.contains("needs no init"), "{se}");
}

/// A bucket that does not exist on a real S3-compatible server: exit 4, the bucket named.
#[cfg(feature = "external-it")]
#[test]
fn a_missing_bucket_is_exit_4_naming_it() {
    let endpoint = crate::support::moto::moto_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (code, so, se) = url_analyze("s3://no-such-bucket-bk/p", &s3_env(endpoint), &spool);
    assert_eq!(code, 4, "{so}{se}");
    assert!(se.contains("no-such-bucket-bk"), "{se}");
    assert!(se.contains("does not exist"), "{se}");
    no_secret(&so, &se);
    assert!(!spool.exists(), "nothing written");
}
