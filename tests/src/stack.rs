//! A whole Passlink for one test: API, workers, SMTP catcher, and the names
//! and secrets that keep it apart from every other test.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use passlink_shared::amqp::AmqpSettings;
use passlink_shared::code::CodeHasher;
use passlink_shared::store::Keys;
use rand::RngExt;
use serde_json::{Value, json};

use crate::maildev::Maildev;
use crate::process::{Service, binary};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const AMQP_ADDR: &str = "127.0.0.1:5672";

/// How a test wants its stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    pub api: bool,
    pub workers: usize,
    /// The API's broker URL, when it must differ (a cut-able proxy).
    pub api_amqp_url: Option<String>,
    /// The workers' broker URL, when it must differ.
    pub worker_amqp_url: Option<String>,
    /// Settings added to (or overriding) the defaults for every process.
    pub env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            api: true,
            workers: 1,
            api_amqp_url: None,
            worker_amqp_url: None,
            env: Vec::new(),
        }
    }
}

impl StackOptions {
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// Bearer tokens of the stack's callers.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// Every organization, both permissions.
    pub admin: String,
    /// `user.passkey.write` in `org_a` only.
    pub org_a: String,
    /// `user.passkey.write` in `org_b` only.
    pub org_b: String,
    /// `user.write` in `org_a` only.
    pub directory_a: String,
    /// Valid, but without any permission.
    pub no_permission: String,
    /// A self-service token whose subject is the user `self_user`.
    pub self_service: String,
}

pub struct Stack {
    /// Unique per stack; part of every name.
    pub id: String,
    pub org_a: String,
    pub org_b: String,
    pub self_user: String,
    pub tokens: Tokens,
    pub env: Vec<(String, String)>,
    pub amqp: AmqpSettings,
    pub keys: Keys,
    pub hasher: CodeHasher,
    /// The Redis the processes use (the shared one unless overridden).
    pub redis_url: String,
    /// Every Redis node holding the stack's data: the one server, or each
    /// primary of a cluster.
    pub redis_nodes: Vec<String>,
    pub api: Option<Service>,
    pub api_url: String,
    pub workers: Vec<Service>,
    /// Further API processes (replicas).
    pub extra_apis: Vec<Service>,
    /// `http://addr` of each worker's metrics listener, by index.
    pub worker_admin: Vec<String>,
    pub maildev: Maildev,
    pub http: reqwest::Client,
    options: StackOptions,
    dir: PathBuf,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Self {
        let id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let dir = std::env::temp_dir().join(format!("passlink-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");

        let org_a = format!("org-a-{id}");
        let org_b = format!("org-b-{id}");
        let self_user = format!("self-{id}");
        let (tokens, file) = tokens_file(&org_a, &org_b, &self_user);
        let tokens_path = dir.join("tokens.json");
        std::fs::write(&tokens_path, file.to_string()).expect("write tokens");

        let hmac_key: [u8; 32] = rand::rng().random();
        let seal_key: [u8; 32] = rand::rng().random();
        let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
        let maildev = Maildev::start().await;

        let mut env: Vec<(String, String)> = [
            ("PASSLINK_LOG_FORMAT", "json".to_owned()),
            ("PASSLINK_LOG", "info".to_owned()),
            ("PASSLINK_LISTEN", "127.0.0.1:0".to_owned()),
            ("PASSLINK_REDIS_URL", REDIS_URL.to_owned()),
            ("PASSLINK_REDIS_PREFIX", id.clone()),
            ("PASSLINK_AMQP_URL", AMQP_URL.to_owned()),
            ("PASSLINK_AMQP_EXCHANGE", format!("{id}.x")),
            ("PASSLINK_AMQP_QUEUE", format!("{id}.send_link")),
            ("PASSLINK_TOKENS_FILE", tokens_path.display().to_string()),
            ("PASSLINK_CODE_HMAC_KEY", b64(&hmac_key)),
            ("PASSLINK_SEAL_KEYS", format!("k1:{}", b64(&seal_key))),
            (
                "PASSLINK_PUBLIC_BASE_URL",
                "https://passlink.example.test".to_owned(),
            ),
            ("PASSLINK_SMTP_HOST", "127.0.0.1".to_owned()),
            ("PASSLINK_SMTP_PORT", maildev.smtp_port.to_string()),
            ("PASSLINK_SMTP_TIMEOUT", "5s".to_owned()),
            ("PASSLINK_RELAY_POLL_INTERVAL", "100ms".to_owned()),
            ("PASSLINK_RETRY_BASE_DELAY", "500ms".to_owned()),
            ("PASSLINK_RETRY_MULTIPLIER", "2".to_owned()),
            ("PASSLINK_SHUTDOWN_GRACE", "10s".to_owned()),
            ("PASSLINK_WORKER_METRICS_LISTEN", "127.0.0.1:0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (key, value) in &options.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }

        let setting = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let amqp = AmqpSettings {
            url: setting("PASSLINK_AMQP_URL").unwrap_or_else(|| AMQP_URL.to_owned()),
            exchange: setting("PASSLINK_AMQP_EXCHANGE").unwrap_or_default(),
            queue: setting("PASSLINK_AMQP_QUEUE").unwrap_or_default(),
            quorum: setting("PASSLINK_AMQP_QUORUM").is_some_and(|v| v == "true"),
            max_attempts: setting("PASSLINK_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(5),
        };
        let keys = Keys::new(&id, passlink_shared::store::DEFAULT_SHARDS);
        let redis_url = setting("PASSLINK_REDIS_URL").unwrap_or_else(|| REDIS_URL.to_owned());
        let redis_nodes = match setting("PASSLINK_REDIS_CLUSTER_NODES") {
            Some(nodes) => nodes.split(',').map(str::to_owned).collect(),
            None => vec![redis_url.clone()],
        };
        let hasher = CodeHasher::new(&hmac_key.to_vec().into());

        let mut stack = Self {
            id,
            org_a,
            org_b,
            self_user,
            tokens,
            env,
            amqp,
            keys,
            hasher,
            redis_url,
            redis_nodes,
            api: None,
            api_url: String::new(),
            workers: Vec::new(),
            extra_apis: Vec::new(),
            worker_admin: Vec::new(),
            maildev,
            http: reqwest::Client::new(),
            options: options.clone(),
            dir,
        };
        if options.api {
            stack.start_api().await;
        }
        for _ in 0..options.workers {
            stack.start_worker().await;
        }
        stack
    }

    /// Settings of one process kind, with a broker URL override.
    fn env_with_amqp(&self, url: &Option<String>) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        if let Some(url) = url {
            env.retain(|(k, _)| k != "PASSLINK_AMQP_URL");
            env.push(("PASSLINK_AMQP_URL".into(), url.clone()));
        }
        env
    }

    pub async fn start_api(&mut self) {
        let env = self.env_with_amqp(&self.options.api_amqp_url);
        let api = Service::spawn("api", &binary("passlink-api"), &[], &env).await;
        self.api_url = listening_url(&api).await;
        self.api = Some(api);
    }

    /// Starts another API process with the same settings (as a second
    /// replica); returns its base URL.
    pub async fn start_extra_api(&mut self) -> String {
        let env = self.env_with_amqp(&self.options.api_amqp_url);
        let api = Service::spawn("api", &binary("passlink-api"), &[], &env).await;
        let url = listening_url(&api).await;
        self.extra_apis.push(api);
        url
    }

    /// Replaces the API process with a new one using the current `env`
    /// (new port); the old one is killed first.
    pub async fn restart_api(&mut self) {
        if let Some(mut old) = self.api.take() {
            old.kill().await;
        }
        self.start_api().await;
    }

    pub async fn start_worker(&mut self) -> usize {
        let env = self.env_with_amqp(&self.options.worker_amqp_url);
        let worker = Service::spawn("worker", &binary("passlink-worker"), &[], &env).await;
        worker
            .wait_for_line("\"consuming\"", Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("the worker did not start: {:#?}", worker.logs()));
        let starting = worker
            .wait_for_line("\"worker starting\"", Duration::from_secs(1))
            .await
            .expect("the worker logged its start");
        let value: Value = serde_json::from_str(&starting).expect("JSON log line");
        let addr = value["metrics.addr"].as_str().expect("metrics address");
        self.worker_admin.push(format!("http://{addr}"));
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// Runs `passlink-api` or `passlink-worker` with `args` and the stack's
    /// settings; returns exit code and output.
    pub async fn run_command(&self, binary_name: &str, args: &[&str]) -> (i32, String, String) {
        let output = tokio::process::Command::new(binary(binary_name))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .expect("the command runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// A metric's value from a Prometheus text page, summed over the
    /// series whose labels contain every `label="value"` in `labels`.
    pub async fn metric(&self, base_url: &str, name: &str, labels: &[&str]) -> f64 {
        let text = self
            .http
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .unwrap_or_default();
        metric_value(&text, name, labels)
    }

    /// Every log line of the API and the workers.
    pub fn all_logs(&self) -> Vec<String> {
        let mut lines = self.api.as_ref().map(Service::logs).unwrap_or_default();
        for worker in &self.workers {
            lines.extend(worker.logs());
        }
        lines
    }

    /// The stack's own temporary directory, removed when it is dropped.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }

    /// Creates or replaces a directory user through the admin API.
    pub async fn put_user(&self, id: &str, org: &str, email: &str, name: &str) {
        self.put_user_speaking(id, org, email, name, "en").await;
    }

    /// Creates or replaces a directory user with a preferred language.
    pub async fn put_user_speaking(
        &self,
        id: &str,
        org: &str,
        email: &str,
        name: &str,
        language: &str,
    ) {
        let (status, body) = self
            .request(
                reqwest::Method::PUT,
                &format!("/admin/v1/users/{}", encode(id)),
                Some(&self.tokens.admin),
                Some(json!({
                    "organizationId": org,
                    "email": email,
                    "displayName": name,
                    "preferredLanguage": language,
                })),
            )
            .await;
        assert!(
            status == 200 || status == 201,
            "put_user {id}: {status} {body}"
        );
    }

    /// An address in the stack's own domain.
    pub fn email_of(&self, local: &str) -> String {
        format!("{local}@{}.example.test", self.id)
    }

    /// `POST .../registration_link` with a JSON body.
    pub async fn create_link(&self, token: &str, user: &str, body: Value) -> (u16, Value) {
        let path = format!("/v3alpha/users/{}/webauthn/registration_link", encode(user));
        self.request(reqwest::Method::POST, &path, Some(token), Some(body))
            .await
    }

    /// Any JSON request; the body comes back parsed (or as a string).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }

    /// The ids of a user's live codes, from the user's code index.
    pub async fn code_ids(&self, user: &str) -> Vec<String> {
        redis::cmd("ZRANGE")
            .arg(self.keys.user_codes(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis().await)
            .await
            .expect("the code index reads")
    }

    /// One connection per Redis node of the stack.
    pub async fn redis_node_conns(&self) -> Vec<redis::aio::MultiplexedConnection> {
        let mut conns = Vec::new();
        for url in &self.redis_nodes {
            let client = redis::Client::open(url.as_str()).expect("redis url");
            if let Ok(conn) = client.get_multiplexed_async_connection().await {
                conns.push(conn);
            }
        }
        conns
    }

    /// Runs a single-key command on whichever node owns the key.
    pub async fn redis_query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        for mut conn in self.redis_node_conns().await {
            if let Ok(value) = cmd.query_async(&mut conn).await {
                return Some(value);
            }
        }
        None
    }

    /// The stored keyed hash of a code.
    pub async fn stored_code_hash(&self, user: &str, code_id: &str) -> Option<String> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.code(user, code_id)).arg("hash");
        self.redis_query::<Option<String>>(&cmd).await.flatten()
    }

    /// Messages ready in a queue (not counting those being worked on);
    /// `u32::MAX` while the broker cannot be asked.
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let Ok(connection) = lapin::Connection::connect(&self.amqp.url, Default::default()).await
        else {
            return u32::MAX;
        };
        let Ok(channel) = connection.create_channel().await else {
            return u32::MAX;
        };
        let depth = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(u32::MAX);
        let _ = connection.close(200, "done".into()).await;
        depth
    }

    /// Jobs still waiting in the outboxes.
    pub async fn outbox_backlog(&self) -> u64 {
        let mut total = 0;
        for key in self.keys.outboxes() {
            let mut cmd = redis::cmd("XLEN");
            cmd.arg(&key);
            total += self.redis_query::<u64>(&cmd).await.unwrap_or(0);
        }
        total
    }

    /// Waits until the outbox and the send queue are empty and no job is
    /// in flight (every delivery status has left queued and sending).
    pub async fn drained(&self, timeout: Duration) {
        let done = crate::eventually(timeout, || async {
            let quiet = self.outbox_backlog().await == 0
                && self.queue_depth(&self.amqp.queue).await == 0
                && self.deliveries_in_state(&["queued", "sending"]).await == 0;
            quiet.then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the pipeline did not drain within {timeout:?}"
        );
    }

    /// How many delivery statuses are in one of `states`. A sendLink code
    /// no worker has claimed yet has no status of its own and counts as
    /// "queued".
    pub async fn deliveries_in_state(&self, states: &[&str]) -> usize {
        let mut count = 0;
        for mut conn in self.redis_node_conns().await {
            for key in scan(&mut conn, &format!("{}:*:delivery:*", self.id)).await {
                let state: Option<String> = redis::cmd("HGET")
                    .arg(&key)
                    .arg("state")
                    .query_async(&mut conn)
                    .await
                    .ok()
                    .flatten();
                if state.is_some_and(|s| states.contains(&s.as_str())) {
                    count += 1;
                }
            }
            if !states.contains(&"queued") {
                continue;
            }
            for key in scan(&mut conn, &format!("{}:*:code:*", self.id)).await {
                let job: Option<String> = redis::cmd("HGET")
                    .arg(&key)
                    .arg("job")
                    .query_async(&mut conn)
                    .await
                    .ok()
                    .flatten();
                let delivery = key.replacen(":code:", ":delivery:", 1);
                let claimed: bool = redis::cmd("EXISTS")
                    .arg(&delivery)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(true);
                if job.is_some() && !claimed {
                    count += 1;
                }
            }
        }
        count
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Stop the processes first, so that none recreates what is removed.
        // Redis keys and broker objects are removed on a thread of its own,
        // since Drop cannot await.
        if let Some(api) = self.api.as_mut() {
            api.kill_now();
        }
        for service in self.workers.iter_mut().chain(self.extra_apis.iter_mut()) {
            service.kill_now();
        }
        let id = self.id.clone();
        let amqp = self.amqp.clone();
        let dir = self.dir.clone();
        let redis_url = self.redis_url.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(remove_traces(&id, &amqp, &redis_url));
            let _ = std::fs::remove_dir_all(dir);
        });
        let _ = cleanup.join();
    }
}

async fn remove_traces(id: &str, amqp: &AmqpSettings, redis_url: &str) {
    if let Ok(client) = redis::Client::open(redis_url)
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        for key in scan(&mut conn, &format!("{id}:*")).await {
            let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
        }
    }
    if let Ok(connection) = lapin::Connection::connect(&amqp.url, Default::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        for queue in amqp.all_queues() {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = channel
            .exchange_delete(
                amqp.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = connection.close(200, "cleaned".into()).await;
    }
}

async fn scan(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap_or((0, Vec::new()));
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

async fn listening_url(api: &Service) -> String {
    let line = api
        .wait_for_line("\"listening\"", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("the API did not start: {:#?}", api.logs()));
    url_of(&line)
}

fn url_of(line: &str) -> String {
    let value: Value = serde_json::from_str(line).expect("JSON log line");
    let addr = value["addr"].as_str().expect("listening line has addr");
    format!("http://{addr}")
}

/// Sums the samples of `name` whose label set holds all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|l| label_text.contains(l)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Percent-encodes a path segment.
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn tokens_file(org_a: &str, org_b: &str, self_user: &str) -> (Tokens, Value) {
    use sha2::Digest;
    let digest_hex = |token: &str| hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let make = |subject: &str, orgs: &[&str], perms: &[&str]| {
        let token = format!("pl_test_{}", uuid::Uuid::new_v4().simple());
        let entry = json!({
            "sha256": digest_hex(&token),
            "subject": subject,
            "organizations": orgs,
            "permissions": perms,
        });
        (token, entry)
    };
    let both = ["user.passkey.write", "user.write"];
    let (admin, e1) = make("test-admin", &["*"], &both);
    let (a, e2) = make("backend-a", &[org_a], &["user.passkey.write"]);
    let (b, e3) = make("backend-b", &[org_b], &["user.passkey.write"]);
    let (dir_a, e4) = make("directory-a", &[org_a], &["user.write"]);
    let (none, e5) = make("reader", &["*"], &[]);
    let (own, e6) = make(self_user, &[], &[]);
    (
        Tokens {
            admin,
            org_a: a,
            org_b: b,
            directory_a: dir_a,
            no_permission: none,
            self_service: own,
        },
        json!({ "tokens": [e1, e2, e3, e4, e5, e6] }),
    )
}
