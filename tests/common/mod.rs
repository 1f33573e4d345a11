//! A real imageplane server on an ephemeral loopback port, and clients for it.

#![allow(dead_code)]

pub mod http_fixture;
pub mod images;
pub mod postgres;
pub mod process;

use imageplane::pb::baremetal::image_service_client::ImageServiceClient as BaremetalImages;
use imageplane::pb::compute::disk_service_client::DiskServiceClient;
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::snapshot_service_client::SnapshotServiceClient;
use imageplane::pb::imageplane::v1::admin_service_client::AdminServiceClient;
use imageplane::pb::operation::operation_service_client::OperationServiceClient;
use imageplane::pb::operation::{operation, GetOperationRequest, Operation};
use imageplane::server::{serve, Settings};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A server running in this test process; stopped when dropped.
pub struct TestServer {
    pub address: std::net::SocketAddr,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server whose background work (copies, deletes) takes `operation_delay`.
    pub async fn start(operation_delay: Duration) -> TestServer {
        TestServer::start_with(Settings {
            operation_timing: imageplane::work::timing::Timing::uniform(operation_delay),
            ..Settings::default()
        })
        .await
    }

    /// Starts a server with these settings (on the memory store unless they say else).
    pub async fn start_with(settings: Settings) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (announce, ready) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let announce = move || {
                let _ = announce.send(());
            };
            let stopped = async {
                let _ = stopped.await;
            };
            serve(listener, settings, stopped, announce)
                .await
                .expect("server runs");
        });
        // Started: its store open, its seeds loaded.
        ready.await.expect("the server started");
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestServer {
            address,
            channel,
            stop: Some(stop),
        }
    }

    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }
    pub fn disks(&self) -> DiskServiceClient<Channel> {
        DiskServiceClient::new(self.channel.clone())
    }
    pub fn snapshots(&self) -> SnapshotServiceClient<Channel> {
        SnapshotServiceClient::new(self.channel.clone())
    }
    pub fn baremetal(&self) -> BaremetalImages<Channel> {
        BaremetalImages::new(self.channel.clone())
    }
    pub fn operations(&self) -> OperationServiceClient<Channel> {
        OperationServiceClient::new(self.channel.clone())
    }
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Polls an operation until it is done (at most [`PATIENCE`]).
    pub async fn wait(&self, operation: &Operation) -> Operation {
        let mut client = self.operations();
        let started = Instant::now();
        loop {
            let current = client
                .get(GetOperationRequest {
                    operation_id: operation.id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            if current.done {
                return current;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "operation {} did not finish within {PATIENCE:?}",
                operation.id
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for an operation and decodes its response, failing on an error result.
    pub async fn wait_for<M: prost::Message + prost::Name + Default>(
        &self,
        operation: &Operation,
    ) -> M {
        match self.wait(operation).await.result {
            Some(operation::Result::Response(any)) => {
                assert_eq!(any.type_url, M::type_url());
                M::decode(any.value.as_slice()).unwrap()
            }
            other => panic!("operation {} failed: {other:?}", operation.id),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The metadata of an operation, checked to be of type `M`.
pub fn metadata<M: prost::Message + prost::Name + Default>(operation: &Operation) -> M {
    let any = operation.metadata.as_ref().expect("metadata is set");
    assert_eq!(any.type_url, M::type_url());
    M::decode(any.value.as_slice()).unwrap()
}

/// The code and message of a failed operation (panics if it did not fail).
pub fn error_of(operation: &Operation) -> (i32, String) {
    match &operation.result {
        Some(operation::Result::Error(status)) => (status.code, status.message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// How long a test waits for something that should happen soon before it fails saying
/// what did not happen: far longer than anything takes on a slow, shared machine, so that
/// a wait never fails by chance and never hangs.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds; after [`PATIENCE`], panics with `failure` (which
/// says what did not happen).
pub async fn until<F, Fut>(failure: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < PATIENCE,
            "{failure} (waited {PATIENCE:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A folder id no other test uses.
/// A gRPC request that carries `authorization: Bearer TOKEN`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn folder() -> String {
    imageplane::ids::new_id("fld")
}

pub const GIB: i64 = 1 << 30;
