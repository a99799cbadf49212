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

use passlink_proto::json::json_to_struct;
use passlink_proto::{
    AuthenticatorRegistrationCode, CreateWebAuthNRegistrationLinkRequest,
    CreateWebAuthNRegistrationLinkResponse, Medium, ReturnWebAuthNRegistrationCode,
    SendWebAuthNRegistrationLink, StartWebAuthNRegistrationRequest,
    StartWebAuthNRegistrationResponse, UserServiceClient, VerifyWebAuthNRegistrationRequest,
    VerifyWebAuthNRegistrationResponse, WebAuthNAuthenticatorType,
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

/// A start request in protobuf JSON (`{"userId": ..., "domain": ...,
/// "code": {...}, "authenticatorType": ...}`), the form all three protocols
/// can be given. The type may be a name or a number, as protojson allows.
pub fn proto_start_request(request: &Value) -> StartWebAuthNRegistrationRequest {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let authenticator_type = match &request["authenticatorType"] {
        Value::Null => 0,
        Value::String(name) => WebAuthNAuthenticatorType::from_str_name(name)
            .unwrap_or_else(|| panic!("no authenticator type {name}"))
            as i32,
        number => number
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or_else(|| panic!("not an enum number: {number}")),
    };
    StartWebAuthNRegistrationRequest {
        user_id: text(&request["userId"]),
        domain: text(&request["domain"]),
        authenticator_type,
        code: request
            .get("code")
            .map(|code| AuthenticatorRegistrationCode {
                id: text(&code["id"]),
                code: text(&code["code"]),
            }),
    }
}

/// A verify request in protobuf JSON (`{"userId": ..., "webAuthNId": ...,
/// "publicKeyCredential": {...}, "webAuthNName": ...}`), the form all three
/// protocols can be given; the credential becomes a `Struct`.
pub fn proto_verify_request(request: &Value) -> VerifyWebAuthNRegistrationRequest {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    VerifyWebAuthNRegistrationRequest {
        user_id: text(&request["userId"]),
        web_auth_n_id: text(&request["webAuthNId"]),
        public_key_credential: request.get("publicKeyCredential").map(|credential| {
            let object = credential.as_object().expect("a credential is an object");
            json_to_struct(object).expect("the credential has a Struct form")
        }),
        web_auth_n_name: text(&request["webAuthNName"]),
    }
}

/// A request with the bearer token in its metadata, when there is one.
fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("a token is ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    request
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
        self.grpc_client()
            .await
            .create_web_auth_n_registration_link(with_token(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `StartWebAuthNRegistration` over gRPC with an optional token.
    pub async fn grpc_start_registration(
        &self,
        token: Option<&str>,
        request: StartWebAuthNRegistrationRequest,
    ) -> Result<StartWebAuthNRegistrationResponse, tonic::Status> {
        self.grpc_client()
            .await
            .start_web_auth_n_registration(with_token(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `VerifyWebAuthNRegistration` over gRPC with an optional token.
    pub async fn grpc_verify_registration(
        &self,
        token: Option<&str>,
        request: VerifyWebAuthNRegistrationRequest,
    ) -> Result<VerifyWebAuthNRegistrationResponse, tonic::Status> {
        self.grpc_client()
            .await
            .verify_web_auth_n_registration(with_token(request, token))
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
        self.grpc_web_call("CreateWebAuthNRegistrationLink", token, request, false)
            .await
    }

    /// One gRPC-web call of `method` (its name in the service).
    pub async fn grpc_web_call(
        &self,
        method: &str,
        token: Option<&str>,
        request: Value,
        http2: bool,
    ) -> Value {
        let mut call = serde_json::json!({ "method": method, "request": request });
        if let Some(token) = token {
            call["token"] = token.into();
        }
        self.grpc_web(&[call], http2).await.remove(0)
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
            let (code, id) = json_refusal(body);
            Self::Refused { code, id }
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
            Err(status) => {
                let (code, id) = grpc_refusal(status);
                Self::Refused { code, id }
            }
        }
    }

    /// From one result of the gRPC-web client.
    pub fn from_grpc_web(result: &Value) -> Self {
        if result["ok"] == true {
            Self::created(&result["response"])
        } else {
            let (code, id) = grpc_web_refusal(result);
            Self::Refused { code, id }
        }
    }

    /// From a response in protobuf JSON (the JSON API's body, or the
    /// gRPC-web client's rendering of the message).
    fn created(body: &Value) -> Self {
        let (resource_owner, sequence) = json_details(body);
        Self::Created {
            resource_owner,
            sequence,
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

/// The gRPC code and error id of a JSON error body.
fn json_refusal(body: &Value) -> (i32, String) {
    let code = body["code"].as_i64().expect("an error has a code") as i32;
    let id = body["details"][0]["id"]
        .as_str()
        .expect("an error has an id");
    (code, id.to_owned())
}

/// `details.resourceOwner` and `details.sequence` of a protobuf JSON body.
fn json_details(body: &Value) -> (String, u64) {
    let details = &body["details"];
    let owner = details["resourceOwner"].as_str().expect("resourceOwner");
    let sequence = details["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("sequence is a uint64 string");
    (owner.to_owned(), sequence)
}

/// The gRPC code and error id of a status.
fn grpc_refusal(status: &tonic::Status) -> (i32, String) {
    let detail = passlink_proto::error_detail(status)
        .unwrap_or_else(|| panic!("the status has an error detail: {status:?}"));
    (status.code() as i32, detail.id)
}

/// The gRPC code and error id of a failed gRPC-web call.
fn grpc_web_refusal(result: &Value) -> (i32, String) {
    let code = result["code"].as_i64().expect("a failed call has a code") as i32;
    let id = result["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the error has a detail: {result}"));
    (code, id.to_owned())
}

/// What a StartWebAuthNRegistration came to, in the terms JSON, gRPC and
/// gRPC-web share: the options as JSON whichever form they travelled in.
#[derive(Clone, Debug, PartialEq)]
pub enum StartOutcome {
    Started {
        resource_owner: String,
        sequence: u64,
        webauthn_id: String,
        /// `publicKeyCredentialCreationOptions`.
        options: Value,
    },
    Refused {
        code: i32,
        id: String,
    },
}

impl StartOutcome {
    /// From the JSON API's status and body.
    pub fn from_json(status: u16, body: &Value) -> Self {
        if status == 200 {
            Self::started(body)
        } else {
            let (code, id) = json_refusal(body);
            Self::Refused { code, id }
        }
    }

    /// From tonic's answer; the options `Struct` becomes JSON.
    pub fn from_grpc(result: &Result<StartWebAuthNRegistrationResponse, tonic::Status>) -> Self {
        match result {
            Ok(response) => {
                let details = response.details.as_ref().expect("details are set");
                let options = response
                    .public_key_credential_creation_options
                    .as_ref()
                    .expect("the options are set");
                let options =
                    passlink_proto::json::struct_to_json(options).expect("the options are JSON");
                Self::Started {
                    resource_owner: details.resource_owner.clone(),
                    sequence: details.sequence,
                    webauthn_id: response.web_auth_n_id.clone(),
                    options: Value::Object(options),
                }
            }
            Err(status) => {
                let (code, id) = grpc_refusal(status);
                Self::Refused { code, id }
            }
        }
    }

    /// From one result of the gRPC-web client, whose protobuf JSON writes
    /// the `Struct` as a JSON object.
    pub fn from_grpc_web(result: &Value) -> Self {
        if result["ok"] == true {
            Self::started(&result["response"])
        } else {
            let (code, id) = grpc_web_refusal(result);
            Self::Refused { code, id }
        }
    }

    fn started(body: &Value) -> Self {
        let (resource_owner, sequence) = json_details(body);
        Self::Started {
            resource_owner,
            sequence,
            webauthn_id: body["webAuthNId"].as_str().expect("webAuthNId").to_owned(),
            options: body["publicKeyCredentialCreationOptions"].clone(),
        }
    }

    /// The options of a started registration.
    pub fn options(&self) -> &Value {
        match self {
            Self::Started { options, .. } => options,
            Self::Refused { code, id } => panic!("refused with {code} {id}"),
        }
    }

    /// The outcome without what differs on every call (sequence, id,
    /// challenge), for comparing protocols: the options in full otherwise,
    /// compared as JSON values, so that key order does not matter.
    pub fn shape(&self) -> Value {
        match self {
            Self::Started {
                resource_owner,
                options,
                ..
            } => {
                let mut options = options.clone();
                if let Some(public_key) = options["publicKey"].as_object_mut() {
                    public_key.remove("challenge");
                }
                serde_json::json!({"startedFor": resource_owner, "options": options})
            }
            Self::Refused { code, id } => serde_json::json!({"refused": code, "id": id}),
        }
    }
}
