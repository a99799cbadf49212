//! The gRPC messages and the `UserService` of the contract, generated from
//! the `.proto` files beside this crate (package names and field numbers are
//! the contract's). The API implements the server side; the tests use the
//! client.

pub mod codec;
pub mod json;
mod status;

pub use status::{ERROR_DETAIL_TYPE, error_detail, error_status};

/// Generated code, nested as the protobuf packages are, since the generated
/// modules refer to each other by relative paths.
pub mod zitadel {
    pub mod object {
        pub mod v2beta {
            tonic::include_proto!("zitadel.object.v2beta");
        }
    }
    pub mod user {
        pub mod v3alpha {
            tonic::include_proto!("zitadel.user.v3alpha");
        }
    }
    pub mod v1 {
        tonic::include_proto!("zitadel.v1");
    }
}

/// The rich error model that `grpc-status-details-bin` carries.
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub use zitadel::object::v2beta::Details;
pub use zitadel::user::v3alpha::{
    AuthenticatorRegistrationCode, CreateWebAuthNRegistrationLinkRequest,
    CreateWebAuthNRegistrationLinkResponse, ReturnWebAuthNRegistrationCode,
    SendWebAuthNRegistrationLink, StartWebAuthNRegistrationRequest,
    StartWebAuthNRegistrationResponse, VerifyWebAuthNRegistrationRequest,
    VerifyWebAuthNRegistrationResponse, WebAuthNAuthenticatorType,
    create_web_auth_n_registration_link_request::Medium,
    user_service_client::UserServiceClient,
    user_service_server::{SERVICE_NAME, UserService, UserServiceServer},
};

/// The encoded `FileDescriptorSet` of every file (imports included), for
/// `grpcurl -protoset`, server reflection and the gRPC-web test client.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("passlink_descriptor");
