//! Users from the NDJSON file make-users.py writes.

use std::path::Path;

pub struct User {
    pub id: String,
    pub email: String,
}

pub fn load(path: &Path, limit: usize) -> anyhow::Result<Vec<User>> {
    let text = std::fs::read_to_string(path)?;
    let mut users = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(limit) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        users.push(User {
            id: value["userId"].as_str().unwrap_or_default().to_owned(),
            email: value["email"].as_str().unwrap_or_default().to_owned(),
        });
    }
    anyhow::ensure!(
        users.len() == limit,
        "{} has only {} users",
        path.display(),
        users.len()
    );
    Ok(users)
}
