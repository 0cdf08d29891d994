//! A real MLflow tracking server for the `push mlflow` tests (feature `external-it`):
//! `mlflow server` from PyPI on 127.0.0.1 with a SQLite backend in a temp dir, found at
//! `$BENCHKEEP_MLFLOW` or as `mlflow` on PATH (`.ci/run` installs it), stopped with its
//! process group on drop; and a small client for its search API.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Mlflow {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The mlflow executable, or a panic that says how to get one (these tests never pass
/// without a real server).
fn executable() -> String {
    if let Ok(p) = std::env::var("BENCHKEEP_MLFLOW") {
        return p;
    }
    let found = Command::new("mlflow").arg("--version").output();
    match found {
        Ok(o) if o.status.success() => "mlflow".into(),
        _ => panic!(
            "the external-it tests need a real MLflow: `python3 -m venv /tmp/mlflow && /tmp/mlflow/bin/pip install mlflow`, then BENCHKEEP_MLFLOW=/tmp/mlflow/bin/mlflow (.ci/run does this)"
        ),
    }
}

impl Mlflow {
    pub fn start() -> Mlflow {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let log = std::fs::File::create(dir.path().join("mlflow.log")).unwrap();
        let child = Command::new(executable())
            .args([
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            .arg("--default-artifact-root")
            .arg(dir.path().join("artifacts"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("start mlflow server");
        let m = Mlflow {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(v) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                drop(v);
                if m.post("experiments/search", json!({"max_results": 1}))
                    .is_some()
                {
                    return m;
                }
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server did not answer within 300 s: {}",
                std::fs::read_to_string(m._dir.path().join("mlflow.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// POST to `/api/2.0/mlflow/{path}`; `None` when the server did not answer 200.
    pub fn post(&self, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            serde_json::from_slice(&r.bytes().await.ok()?).ok()
        })
    }

    /// Every run of the experiment named `name`, as MLflow's search API returns them.
    pub fn runs(&self, experiment: &str) -> Vec<Value> {
        let exps = self
            .post("experiments/search", json!({"max_results": 100}))
            .unwrap();
        let Some(id) = exps["experiments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == experiment)
            .map(|e| e["experiment_id"].clone())
        else {
            return Vec::new();
        };
        let v = self
            .post(
                "runs/search",
                json!({"experiment_ids": [id], "max_results": 1000}),
            )
            .unwrap();
        v["runs"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this harness created.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A run's `data.{params,metrics,tags}` list as a map.
pub fn kv(run: &Value, section: &str) -> std::collections::BTreeMap<String, Value> {
    run["data"][section]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect()
}
