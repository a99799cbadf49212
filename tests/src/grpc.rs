//! Clients of the gRPC and gRPC-web API: tonic's client generated from the
//! project's `.proto` files (HTTP/2 without TLS), and the Connect-based
//! gRPC-web client in `tools/grpc-web-client.mjs`, run with Node.js. Both
//! are real clients; no test writes frames by hand.
//!
//! `Outcome` puts the answers of JSON, gRPC and gRPC-web in shared terms,
//! so that tests can demand that the three agree.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use passlink_proto::{
    CreateWebAuthNRegistrationLinkRequest, CreateWebAuthNRegistrationLinkResponse, Medium,
    ReturnWebAuthNRegistrationCode, SendWebAuthNRegistrationLink, UserServiceClient,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;

use crate::Stack;

pub type GrpcClient = UserServiceClient<Channel>;

/// A request in protobuf JSON (`{"userId": ..., "sendLink": {...}}`), the
/// form all three protocols can be given.
pub fn proto_request(request: &Value) -> CreateWebAuthNRegistrationLinkRequest {
    let medium = match (request.get("sendLink"), request.get("returnCode")) {
        (Some(send), None) => Some(Medium::SendLink(SendWebAuthNRegistrationLink {
            url_template: send
                .get("urlTemplate")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })),
        (None, Some(_)) => Some(Medium::ReturnCode(ReturnWebAuthNRegistrationCode {})),
        (None, None) => None,
        (Some(_), Some(_)) => panic!("a oneof cannot hold both media: {request}"),
    };
    CreateWebAuthNRegistrationLinkRequest {
        user_id: request["userId"].as_str().unwrap_or_default().to_owned(),
        medium,
    }
}

impl Stack {
    /// A tonic client on a new HTTP/2 connection to the API.
    pub async fn grpc_client(&self) -> GrpcClient {
        let channel = Channel::from_shared(self.api_url.clone())
            .expect("the API URL is a URI")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect()
            .await
            .expect("the API accepts an HTTP/2 connection");
        UserServiceClient::new(channel)
    }

    /// `CreateWebAuthNRegistrationLink` over gRPC with an optional token.
    pub async fn grpc_create_link(
        &self,
        token: Option<&str>,
        request: CreateWebAuthNRegistrationLinkRequest,
    ) -> Result<CreateWebAuthNRegistrationLinkResponse, tonic::Status> {
        let mut request = tonic::Request::new(request);
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("a token is ASCII");
            request.metadata_mut().insert("authorization", value);
        }
        self.grpc_client()
            .await
            .create_web_auth_n_registration_link(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs the gRPC-web client with `calls` (see the script for their
    /// form) over HTTP/1.1 or HTTP/2; one result per call.
    pub async fn grpc_web(&self, calls: &[Value], http2: bool) -> Vec<Value> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let script = root.join("tools/grpc-web-client.mjs");
        let protoset = self.dir().join("passlink.protoset");
        if !protoset.exists() {
            std::fs::write(&protoset, passlink_proto::FILE_DESCRIPTOR_SET).expect("write protoset");
        }
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .args(["--url", &self.api_url])
            .arg("--protoset")
            .arg(&protoset)
            .args(["--http", if http2 { "2" } else { "1.1" }])
            .env_remove("PASSLINK_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (the gRPC-web client needs Node.js)");
        let input = serde_json::to_vec(calls).expect("calls are JSON");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(&input).await.expect("write calls");
        drop(stdin);

        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the gRPC-web client finishes within a minute")
            .expect("the gRPC-web client ran");
        assert!(
            output.status.success(),
            "the gRPC-web client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let results: Vec<Value> =
            serde_json::from_slice(&output.stdout).expect("the client writes a JSON array");
        assert_eq!(results.len(), calls.len(), "one result per call");
        results
    }

    /// One gRPC-web call over HTTP/1.1.
    pub async fn grpc_web_create_link(&self, token: Option<&str>, request: Value) -> Value {
        let mut call = serde_json::json!({ "request": request });
        if let Some(token) = token {
            call["token"] = token.into();
        }
        self.grpc_web(&[call], false).await.remove(0)
    }
}

/// What a request came to, in the terms JSON, gRPC and gRPC-web share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created {
        resource_owner: String,
        sequence: u64,
        /// Code id and code, for `returnCode`.
        code: Option<(String, String)>,
    },
    Refused {
        /// The gRPC code (the JSON body's `code`).
        code: i32,
        /// The stable error id.
        id: String,
    },
}

impl Outcome {
    /// From the JSON API's status and body.
    pub fn from_json(status: u16, body: &Value) -> Self {
        if status == 200 {
            Self::created(body)
        } else {
            Self::Refused {
                code: body["code"].as_i64().expect("an error has a code") as i32,
                id: body["details"][0]["id"]
                    .as_str()
                    .expect("an error has an id")
                    .to_owned(),
            }
        }
    }

    /// From tonic's answer.
    pub fn from_grpc(
        result: &Result<CreateWebAuthNRegistrationLinkResponse, tonic::Status>,
    ) -> Self {
        match result {
            Ok(response) => {
                let details = response.details.as_ref().expect("details are set");
                Self::Created {
                    resource_owner: details.resource_owner.clone(),
                    sequence: details.sequence,
                    code: response
                        .code
                        .as_ref()
                        .map(|c| (c.id.clone(), c.code.clone())),
                }
            }
            Err(status) => Self::Refused {
                code: status.code() as i32,
                id: passlink_proto::error_detail(status)
                    .unwrap_or_else(|| panic!("the status has an error detail: {status:?}"))
                    .id,
            },
        }
    }

    /// From one result of the gRPC-web client.
    pub fn from_grpc_web(result: &Value) -> Self {
        if result["ok"] == true {
            Self::created(&result["response"])
        } else {
            Self::Refused {
                code: result["code"].as_i64().expect("a failed call has a code") as i32,
                id: result["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("the error has a detail: {result}"))
                    .to_owned(),
            }
        }
    }

    /// From a response in protobuf JSON (the JSON API's body, or the
    /// gRPC-web client's rendering of the message).
    fn created(body: &Value) -> Self {
        let details = &body["details"];
        Self::Created {
            resource_owner: details["resourceOwner"]
                .as_str()
                .expect("resourceOwner")
                .to_owned(),
            sequence: details["sequence"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("sequence is a uint64 string"),
            code: body.get("code").map(|c| {
                (
                    c["id"].as_str().expect("code id").to_owned(),
                    c["code"].as_str().expect("code").to_owned(),
                )
            }),
        }
    }

    /// The outcome without what differs on every call (sequence, code), for
    /// comparing protocols.
    pub fn shape(&self) -> String {
        match self {
            Self::Created {
                resource_owner,
                code,
                ..
            } => format!(
                "created for {resource_owner}, code returned: {}",
                code.is_some()
            ),
            Self::Refused { code, id } => format!("refused with {code} {id}"),
        }
    }
}
