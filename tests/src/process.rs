//! Passlink's binaries as child processes, with their output captured.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running binary and every line it printed.
pub struct Service {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Service {
    pub async fn spawn(name: &str, binary: &Path, args: &[&str], env: &[(String, String)]) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let child = start(binary, args, env, &lines);
        Self {
            name: name.to_owned(),
            child,
            lines,
            binary: binary.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: env.to_vec(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every line printed so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }

    /// Waits for a line containing `needle`.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        crate::eventually(timeout, || async {
            self.logs().into_iter().find(|l| l.contains(needle))
        })
        .await
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGKILL without awaiting, for `Drop`; waits briefly for the exit.
    pub fn kill_now(&mut self) {
        let _ = self.child.start_kill();
        for _ in 0..50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGTERM: asks for a graceful stop.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// Starts the same binary again with the same settings; the old lines
    /// are kept.
    pub async fn restart(&mut self) {
        let _ = self.child.kill().await;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.child = start(&self.binary, &args, &self.env, &self.lines);
    }
}

fn start(
    binary: &Path,
    args: &[&str],
    env: &[(String, String)],
    lines: &Arc<Mutex<Vec<String>>>,
) -> Child {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
    if let Some(out) = child.stdout.take() {
        collect(BufReader::new(out), lines.clone());
    }
    if let Some(err) = child.stderr.take() {
        collect(BufReader::new(err), lines.clone());
    }
    child
}

fn collect<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: BufReader<R>,
    lines: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut reader = reader.lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if std::env::var_os("PASSLINK_TEST_ECHO").is_some() {
                eprintln!("{line}");
            }
            lines.lock().expect("log lock").push(line);
        }
    });
}

/// Path of a workspace binary, built once per test process so that a test
/// never runs a stale binary.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    BUILT.get_or_init(|| {
        if std::env::var_os("PASSLINK_TEST_SKIP_BUILD").is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .current_dir(root)
            .args([
                "build",
                "--quiet",
                "-p",
                "passlink-api",
                "-p",
                "passlink-worker",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing; run cargo build first",
        path.display()
    );
    path
}
