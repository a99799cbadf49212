//! A private RabbitMQ node on spare ports, for tests that stop the broker
//! without disturbing the shared one every other test uses.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct PrivateBroker {
    pub port: u16,
    node: String,
    dir: PathBuf,
}

impl PrivateBroker {
    /// Starts a node; takes a few seconds.
    pub async fn start(tag: &str) -> Self {
        let port = crate::free_port();
        let dist_port = crate::free_port();
        let node = format!("passlink-{tag}@localhost");
        let dir = std::env::temp_dir().join(format!("passlink-rmq-{tag}"));
        std::fs::create_dir_all(&dir).expect("broker dir");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("broker config");
        // The server drops to the rabbitmq user, which must own its files.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status();

        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .status()
            .expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server did not start");
        let broker = Self { port, node, dir };
        broker.wait_open(true).await;
        broker
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the RabbitMQ application (the node stays, as in a restart).
    pub async fn stop_app(&self) {
        self.ctl("stop_app");
        self.wait_open(false).await;
    }

    pub async fn start_app(&self) {
        self.ctl("start_app");
        self.wait_open(true).await;
    }

    fn ctl(&self, command: &str) {
        let status = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node, command])
            .status()
            .expect("rabbitmqctl runs");
        assert!(status.success(), "rabbitmqctl {command} failed");
    }

    async fn wait_open(&self, open: bool) {
        let port = self.port;
        let done = crate::eventually(Duration::from_secs(60), || async move {
            let is_open = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok();
            (is_open == open).then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the private broker did not {}",
            if open { "open" } else { "close" }
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node, "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
