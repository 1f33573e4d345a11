//! The edges of authentication, folder access, idempotency keys and discovery that the
//! conformance suite's clients cannot set up: several tokens of one subject, a disk moved
//! between folders, a client that names no port, JWTs out of their times, tokens made for
//! a service account and revoked. (The conformance suite covers each case
//! over gRPC and REST with the official clients.)

mod common;

use common::TestServer;
use imageplane::domain::identity::TokenFile;
use imageplane::pb::compute::{
    create_image_request, CreateDiskRequest, CreateImageRequest, Image, ListDiskOperationsRequest,
    MoveDiskRequest, UpdateImageRequest,
};
use imageplane::pb::operation::{operation, GetOperationRequest, Operation};
use imageplane::pb::yandex::cloud::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use imageplane::pb::yandex::cloud::endpoint::ListApiEndpointsRequest;
use imageplane::pb::yandex::cloud::iam::v1::iam_token_service_client::IamTokenServiceClient;
use imageplane::pb::yandex::cloud::iam::v1::{
    create_iam_token_request, CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest,
    RevokeIamTokenRequest,
};
use imageplane::server::Settings;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// `robot` has two tokens, one for each folder; `admin` may use every folder.
const TOKENS: &str = "tok-prod robot prod\ntok-dev robot dev\ntok-admin admin\n";

async fn server() -> TestServer {
    TestServer::start_with(Settings {
        auth_tokens: Some(TokenFile::parse(TOKENS, "tokens").unwrap()),
        ..Settings::default()
    })
    .await
}

/// `message` with a bearer token and, if given, an idempotency key.
fn as_token<T>(message: T, token: &str, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(key) = key {
        metadata.insert("idempotency-key", key.parse().unwrap());
    }
    request
}

fn disk_in(folder: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder.into(),
        name: name.into(),
        zone_id: "ru-central1-a".into(),
        size: 1 << 30,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_replay_is_answered_only_to_a_token_that_may_use_the_operations_folder() {
    let server = server().await;
    let first = server
        .disks()
        .create(as_token(disk_in("prod", "db"), "tok-prod", Some("k-1")))
        .await
        .unwrap()
        .into_inner();
    // The same subject, key and request through its other token: the key is the
    // subject's, but the operation is in a folder this token may not use.
    let status = server
        .disks()
        .create(as_token(disk_in("prod", "db"), "tok-dev", Some("k-1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("\"prod\""), "{status:?}");
    // The token that may answers with the same operation.
    let replayed = server
        .disks()
        .create(as_token(disk_in("prod", "db"), "tok-prod", Some("k-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.id, first.id);
}

#[tokio::test]
async fn a_key_replayed_with_another_request_names_the_operation_only_to_who_may_see_it() {
    let server = server().await;
    let first = server
        .disks()
        .create(as_token(disk_in("prod", "db"), "tok-prod", Some("k-2")))
        .await
        .unwrap()
        .into_inner();
    for (token, folder, names_it) in [("tok-dev", "dev", false), ("tok-prod", "prod", true)] {
        let status = server
            .disks()
            .create(as_token(disk_in(folder, "other"), token, Some("k-2")))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("was used for another request"),
            "{status:?}"
        );
        assert_eq!(
            status.message().contains(&first.id),
            names_it,
            "{token}: {status:?}"
        );
    }
}

#[tokio::test]
async fn another_folders_resource_is_answered_as_one_that_does_not_exist() {
    let server = server().await;
    let created = server
        .disks()
        .create(as_token(disk_in("prod", "hidden"), "tok-prod", None))
        .await
        .unwrap()
        .into_inner();
    let disk_id = prost::Message::decode(created.metadata.clone().unwrap().value.as_slice())
        .map(|meta: imageplane::pb::compute::CreateDiskMetadata| meta.disk_id)
        .unwrap();
    let made_up = "fhmmadeupdisk0000000";
    let answers = |id: &str| {
        let id = id.to_string();
        let mut disks = server.disks();
        let mut operations = server.operations();
        let operation_id = created.id.clone();
        let operation_marker = created.id.clone();
        async move {
            let get = disks
                .get(as_token(
                    imageplane::pb::compute::GetDiskRequest {
                        disk_id: id.clone(),
                    },
                    "tok-dev",
                    None,
                ))
                .await
                .unwrap_err();
            let delete = disks
                .delete(as_token(
                    imageplane::pb::compute::DeleteDiskRequest {
                        disk_id: id.clone(),
                    },
                    "tok-dev",
                    None,
                ))
                .await
                .unwrap_err();
            let operation = operations
                .get(as_token(
                    GetOperationRequest { operation_id },
                    "tok-dev",
                    None,
                ))
                .await
                .unwrap_err();
            [get, delete, operation].map(|status| {
                (
                    status.code(),
                    status
                        .message()
                        .replace(&id, "ID")
                        .replace(&operation_marker, "OP"),
                )
            })
        }
    };
    let hidden = answers(&disk_id).await;
    let missing = answers(made_up).await;
    assert_eq!(hidden[..2], missing[..2]);
    assert_eq!(hidden[0].0, Code::NotFound, "{hidden:?}");
    assert_eq!(hidden[2].0, Code::NotFound, "{hidden:?}");
    // The owner's token still reaches it.
    server
        .disks()
        .get(as_token(
            imageplane::pb::compute::GetDiskRequest { disk_id },
            "tok-prod",
            None,
        ))
        .await
        .unwrap();
}

/// The operations ListDiskOperations shows to `token`, by description.
async fn listed(server: &TestServer, token: &str, disk_id: &str) -> Result<Vec<String>, Code> {
    server
        .disks()
        .list_operations(as_token(
            ListDiskOperationsRequest {
                disk_id: disk_id.into(),
                ..Default::default()
            },
            token,
            None,
        ))
        .await
        .map(|response| {
            let operations: Vec<Operation> = response.into_inner().operations;
            operations.into_iter().map(|op| op.description).collect()
        })
        .map_err(|status| status.code())
}

#[tokio::test]
async fn a_moved_disks_operations_are_shown_by_the_folder_each_recorded() {
    let server = server().await;
    let created = server
        .disks()
        .create(as_token(disk_in("prod", "moving"), "tok-admin", None))
        .await
        .unwrap()
        .into_inner();
    let disk_id = prost::Message::decode(created.metadata.clone().unwrap().value.as_slice())
        .map(|meta: imageplane::pb::compute::CreateDiskMetadata| meta.disk_id)
        .unwrap();
    server
        .disks()
        .r#move(as_token(
            MoveDiskRequest {
                disk_id: disk_id.clone(),
                destination_folder_id: "dev".into(),
            },
            "tok-admin",
            None,
        ))
        .await
        .unwrap();
    // The disk is in dev now: its create (recorded in prod) is not dev's to see, and prod
    // sees only its create, as for a disk that is gone.
    assert_eq!(
        listed(&server, "tok-dev", &disk_id).await,
        Ok(vec!["Move disk".to_string()])
    );
    assert_eq!(
        listed(&server, "tok-prod", &disk_id).await,
        Ok(vec!["Create disk".to_string()])
    );
    assert_eq!(
        listed(&server, "tok-admin", &disk_id).await,
        Ok(vec!["Move disk".to_string(), "Create disk".to_string()])
    );
    // Get agrees: the create is prod's, the move dev's.
    let get = |token: &'static str, id: String| {
        let mut operations = server.operations();
        async move {
            operations
                .get(as_token(
                    GetOperationRequest { operation_id: id },
                    token,
                    None,
                ))
                .await
                .map(|_| ())
                .map_err(|status| status.code())
        }
    };
    assert_eq!(get("tok-prod", created.id.clone()).await, Ok(()));
    assert_eq!(
        get("tok-dev", created.id.clone()).await,
        Err(Code::NotFound)
    );
}

#[tokio::test]
async fn a_mask_without_a_json_form_is_answered_as_without_a_key() {
    let server = server().await;
    let created = server
        .images()
        .create(as_token(
            CreateImageRequest {
                folder_id: "prod".into(),
                name: "masked".into(),
                source: Some(create_image_request::Source::ImageId(
                    "fd8ubuntu2204v202611".into(),
                )),
                ..Default::default()
            },
            "tok-admin",
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    // A copy without --operation-delay is stored finished: the first Get finds it done.
    let done = server
        .operations()
        .get(as_token(
            GetOperationRequest {
                operation_id: created.id,
            },
            "tok-admin",
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(operation::Result::Response(response)) = done.result else {
        panic!("{done:?}")
    };
    let image: Image = prost::Message::decode(response.value.as_slice()).unwrap();
    // Neither path has a proto3 JSON form (the idempotency fingerprint takes the bytes).
    let update = |path: &str| UpdateImageRequest {
        image_id: image.id.clone(),
        update_mask: Some(prost_types::FieldMask {
            paths: vec![path.into()],
        }),
        ..Default::default()
    };
    for key in [None, Some("mask-1")] {
        let status = server
            .images()
            .update(as_token(update("MinDiskSize"), "tok-admin", key))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{key:?}: {status:?}");
        assert!(
            status.message().starts_with("update_mask: \"MinDiskSize\""),
            "{status:?}"
        );
    }
    let mut started = Vec::new();
    for key in [None, Some("mask-2"), Some("mask-2")] {
        let operation = server
            .images()
            .update(as_token(update("minDiskSize"), "tok-admin", key))
            .await
            .unwrap()
            .into_inner();
        started.push(operation.id);
    }
    assert_ne!(started[0], started[1]);
    assert_eq!(
        started[1], started[2],
        "a replay answers the first operation"
    );
}

#[tokio::test]
async fn an_idempotency_key_in_metadata_that_is_not_a_key_is_refused() {
    let server = server().await;
    for key in ["ключ-1".as_bytes(), b"caf\xe9", b"two words", b""] {
        for _ in 0..2 {
            let mut request = as_token(disk_in("prod", "keyed"), "tok-prod", None);
            request.metadata_mut().insert(
                "idempotency-key",
                tonic::metadata::AsciiMetadataValue::try_from(key).unwrap(),
            );
            let status = server.disks().create(request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{key:?}: {status:?}");
            assert!(
                status.message().starts_with("idempotency-key: "),
                "{status:?}"
            );
        }
    }
    let listed = server
        .disks()
        .list(as_token(
            imageplane::pb::compute::ListDisksRequest {
                folder_id: "prod".into(),
                ..Default::default()
            },
            "tok-prod",
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.disks.is_empty(), "no call ran: {listed:?}");
}

#[tokio::test]
async fn discovery_answers_the_authority_the_client_used_with_this_port_when_it_names_none() {
    let server = TestServer::start_with(Settings::default()).await;
    let port = server.address.port();
    for (origin, expected) in [
        (
            format!("http://localhost:{port}"),
            format!("localhost:{port}"),
        ),
        (
            "http://imageplane.test".to_string(),
            format!("imageplane.test:{port}"),
        ),
    ] {
        let channel = Channel::from_shared(format!("http://{}", server.address))
            .unwrap()
            .origin(origin.parse().unwrap())
            .connect()
            .await
            .unwrap();
        let listed = ApiEndpointServiceClient::new(channel)
            .list(ListApiEndpointsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let compute = listed
            .endpoints
            .iter()
            .find(|endpoint| endpoint.id == "compute")
            .unwrap();
        assert_eq!(compute.address, expected, "{origin}");
    }
}

fn iam(server: &TestServer) -> IamTokenServiceClient<Channel> {
    IamTokenServiceClient::new(server.channel.clone())
}

/// A service account's JWT, unsigned (the server does not check signatures), with the
/// given times in seconds from now.
fn jwt(key_id: &str, issuer: &str, issued: i64, expires: i64) -> String {
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let part = |json: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        part(serde_json::json!({"typ": "JWT", "alg": "PS256", "kid": key_id})),
        part(serde_json::json!({"iss": issuer, "iat": now + issued, "exp": now + expires})),
    )
}

#[tokio::test]
async fn a_jwt_long_expired_or_from_the_future_gets_no_token() {
    let server = server().await;
    let exchange = |jwt: String| {
        let mut iam = iam(&server);
        async move {
            iam.create(CreateIamTokenRequest {
                identity: Some(create_iam_token_request::Identity::Jwt(jwt)),
            })
            .await
        }
    };
    exchange(jwt("tok-prod", "robot", -10, 300)).await.unwrap();
    for (jwt, why) in [
        (jwt("tok-prod", "robot", -86_400, -86_000), "expired at"),
        (
            jwt("tok-prod", "robot", 3_600, 3_900),
            "issued in the future",
        ),
    ] {
        let status = exchange(jwt).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains(why), "{status:?}");
    }
}

#[tokio::test]
async fn a_token_for_a_service_account_reaches_no_further_than_its_maker() {
    let server = server().await;
    let for_account = |token: &str, account: &str| {
        let mut iam = iam(&server);
        let request = as_token(
            CreateIamTokenForServiceAccountRequest {
                service_account_id: account.into(),
            },
            token,
            None,
        );
        async move { iam.create_for_service_account(request).await }
    };
    // admin may use every folder: it gets robot's token, which reaches prod and dev.
    let issued = for_account("tok-admin", "robot")
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    for folder in ["prod", "dev"] {
        server
            .disks()
            .create(as_token(disk_in(folder, "by-robot"), &issued, None))
            .await
            .unwrap();
    }
    // robot's prod token does not reach dev, so it gets no token of robot's; nor of an
    // account that does not exist, with the same answer.
    let refused = for_account("tok-prod", "robot").await.unwrap_err();
    let unknown = for_account("tok-prod", "nobody").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(
        refused.message().replace("account \"robot\"", "account X"),
        unknown.message().replace("account \"nobody\"", "account X")
    );
    // and the method needs a token.
    let status = iam(&server)
        .create_for_service_account(CreateIamTokenForServiceAccountRequest {
            service_account_id: "robot".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let server = server().await;
    let issued = iam(&server)
        .create(CreateIamTokenRequest {
            identity: Some(
                create_iam_token_request::Identity::YandexPassportOauthToken("tok-dev".into()),
            ),
        })
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    server
        .disks()
        .create(as_token(disk_in("dev", "before"), &issued, None))
        .await
        .unwrap();
    let revoked = iam(&server)
        .revoke(RevokeIamTokenRequest {
            iam_token: issued.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.subject_id, "robot");
    let status = server
        .disks()
        .create(as_token(disk_in("dev", "after"), &issued, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    // Revoking again answers the same; an unknown token is not valid.
    let again = iam(&server)
        .revoke(RevokeIamTokenRequest { iam_token: issued })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.subject_id, "robot");
    let status = iam(&server)
        .revoke(RevokeIamTokenRequest {
            iam_token: format!("t1.{}", "A".repeat(43)),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}
