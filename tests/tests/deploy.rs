//! The operator files under `deploy/` and `compose.yaml`: they parse, and
//! they name only metrics the services expose and variables the binaries
//! read.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use passlink_tests::{Stack, StackOptions};
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).expect("file exists");
    serde_norway::from_str(&text).unwrap_or_else(|err| panic!("{path} is not YAML: {err}"))
}

/// Every `passlink_…` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("passlink_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names a Prometheus text page exposes.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "expr" {
                    if let Some(expr) = value.as_str() {
                        out.push(expr.to_owned());
                    }
                } else {
                    collect_exprs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn dashboards_and_alerts_name_only_exposed_metrics() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .put_user("d1", &stack.org_a, &stack.email_of("d1"), "D")
        .await;
    let (status, _) = stack
        .create_link(&stack.tokens.org_a, "d1", json!({}))
        .await;
    assert_eq!(status, 200);
    stack.maildev.wait_for(1, Duration::from_secs(30)).await;
    // Queue gauges appear after the monitor's first round.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut names = BTreeSet::new();
    for url in [stack.api_url.clone(), stack.worker_admin[0].clone()] {
        let text = stack
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        names.extend(exposed(&text));
    }
    assert!(names.contains("passlink_queue_messages"), "{names:?}");

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboards/passlink.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let alerts = yaml("deploy/prometheus/alerts.yml");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    let dashboard_exprs = exprs.len();
    collect_exprs(&alerts, &mut exprs);
    assert!(dashboard_exprs >= 10, "the dashboard has its panels");
    assert!(exprs.len() > dashboard_exprs, "the alerts have expressions");

    let mut unknown = BTreeSet::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            if !names.contains(&name) {
                unknown.insert(name);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not exposed by any service: {unknown:?}"
    );

    let scrape = yaml("deploy/prometheus/prometheus.yml");
    let jobs: Vec<&str> = scrape["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["passlink-api", "passlink-worker"]);
    for provisioning in [
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/grafana/provisioning/dashboards/passlink.yml",
    ] {
        assert_eq!(yaml(provisioning)["apiVersion"], 1, "{provisioning}");
    }
}

#[test]
fn compose_uses_only_variables_the_binaries_read() {
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_object().expect("services");
    for name in [
        "redis",
        "rabbitmq",
        "mail",
        "api",
        "worker",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "compose has {name}");
        assert!(
            services[name]["healthcheck"].is_object(),
            "{name} has a health check"
        );
    }
    assert_eq!(services["worker"]["deploy"]["replicas"], 2);

    let sources: String = ["shared/src", "api/src", "worker/src"]
        .iter()
        .flat_map(|dir| walk(&root().join(dir)))
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect();
    let text = std::fs::read_to_string(root().join("compose.yaml")).unwrap();
    let mut used = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("PASSLINK_") {
            used.insert(word.to_owned());
        }
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for var in &used {
        assert!(
            sources.contains(&format!("\"{var}\"")),
            "no binary reads {var}"
        );
        assert!(
            readme.contains(var.as_str()),
            "the README does not document {var}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
