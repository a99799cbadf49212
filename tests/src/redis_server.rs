//! A private redis-server with append-only persistence on a spare port, for
//! tests that restart Redis.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    pub async fn start(tag: &str) -> Self {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("passlink-redis-{tag}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let redis = Self { port, dir };
        redis.resume().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and data directory.
    pub async fn resume(&self) {
        let status = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--daemonize",
                "yes",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .status()
            .expect("redis-server runs");
        assert!(status.success());
        self.wait(true).await;
    }

    /// Kills the server at once (SIGKILL): what was fsynced survives.
    pub async fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("redis.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        self.wait(false).await;
        let _ = std::fs::remove_file(self.dir.join("redis.pid"));
    }

    async fn wait(&self, up: bool) {
        let port = self.port;
        let done = crate::eventually(Duration::from_secs(20), || async move {
            let is_up = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok();
            (is_up == up).then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the private redis did not {}",
            if up { "start" } else { "stop" }
        );
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private three-primary Redis Cluster on spare ports.
pub struct PrivateCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl PrivateCluster {
    pub async fn start(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("passlink-cluster-{tag}"));
        let ports: Vec<u16> = (0..3).map(|_| crate::free_port()).collect();
        for port in &ports {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("cluster dir");
            let status = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--daemonize", "yes", "--save", "", "--appendonly", "no"])
                .arg("--cluster-config-file")
                .arg(node_dir.join("nodes.conf"))
                .arg("--dir")
                .arg(&node_dir)
                .status()
                .expect("redis-server runs");
            assert!(status.success());
        }
        let cluster = Self { ports, dir };
        for port in &cluster.ports {
            let port = *port;
            let up = crate::eventually(Duration::from_secs(10), || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await;
            assert!(up.is_some(), "cluster node {port} did not start");
        }

        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "the cluster was not created");

        // Wait until every node reports the cluster as ok.
        for port in &cluster.ports {
            let port = port.to_string();
            let ok = crate::eventually(Duration::from_secs(20), || {
                let port = port.clone();
                async move {
                    let out = Command::new("redis-cli")
                        .args(["-p", &port, "cluster", "info"])
                        .output()
                        .ok()?;
                    String::from_utf8_lossy(&out.stdout)
                        .contains("cluster_state:ok")
                        .then_some(())
                }
            })
            .await;
            assert!(ok.is_some(), "the cluster did not become ready");
        }
        cluster
    }

    /// Seed nodes as `PASSLINK_REDIS_CLUSTER_NODES` takes them.
    pub fn nodes(&self) -> String {
        self.urls().join(",")
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for port in &self.ports {
            let _ = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "shutdown", "nosave"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
