//! `GET /metrics`: the Prometheus page of a real binary (its own process, so that its
//! counts are this test's alone), needing no token: calls by protocol, service, method and
//! code (an unknown gRPC path counted as `unknown`, never as itself), operations by kind
//! and code, store calls, connections, injected faults, and no id in any label.

mod common;

use common::process::{temp_dir, ServerProcess};
use imageplane::pb::compute::image_service_client::ImageServiceClient;
use imageplane::pb::compute::GetImageRequest;
use tonic::transport::Channel;

/// The value of the sample named exactly `series` (name and labels), if the page has it.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

fn with_token(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("authorization", "Bearer tok-ops")
}

#[tokio::test]
async fn the_metrics_page_counts_calls_operations_and_faults_by_kind_never_by_id() {
    let directory = temp_dir("metrics");
    let tokens = directory.join("tokens");
    std::fs::write(&tokens, "tok-ops ops @admin\n").unwrap();
    let server = ServerProcess::start(
        &[
            "--database-url",
            "memory:",
            "--enable-admin",
            "--auth-tokens",
            tokens.to_str().unwrap(),
        ],
        directory.join("server.log"),
    );
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());

    // Over REST: a disk created, one that is not there, and a fault on ImageService.Get.
    let created = with_token(client.post(url("/compute/v1/disks")))
        .header("content-type", "application/json")
        .body(r#"{"folderId": "f1", "zoneId": "ru-central1-a", "size": "4194304"}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let operation_id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = with_token(client.get(url("/compute/v1/disks/fhmnosuchdisk0000001")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let fault = with_token(client.post(url("/imageplane/v1/faults")))
        .header("content-type", "application/json")
        .body(r#"{"method": "yandex.cloud.compute.v1.ImageService/Get", "code": "UNAVAILABLE", "times": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 200);

    // Over gRPC: the fault fires; an unknown method.
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(GetImageRequest {
        image_id: "fd8nosuchimage000001".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer tok-ops".parse().unwrap());
    let failed = ImageServiceClient::new(channel.clone())
        .get(request)
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let unknown = h2
        .post(url("/made.up.Service/Frobnicate"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer tok-ops")
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.headers()["grpc-status"], "12");

    // No token needed for the page.
    let response = client.get(url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    for (series, expected) in [
        (
            r#"imageplane_calls_total{protocol="rest",service="yandex.cloud.compute.v1.DiskService",method="Create",code="OK"}"#,
            1.0,
        ),
        (
            r#"imageplane_calls_total{protocol="rest",service="yandex.cloud.compute.v1.DiskService",method="Get",code="NOT_FOUND"}"#,
            1.0,
        ),
        (
            r#"imageplane_calls_total{protocol="grpc",service="yandex.cloud.compute.v1.ImageService",method="Get",code="UNAVAILABLE"}"#,
            1.0,
        ),
        (
            r#"imageplane_call_duration_seconds_count{protocol="rest",service="yandex.cloud.compute.v1.DiskService",method="Create"}"#,
            1.0,
        ),
        (
            r#"imageplane_operations_finished_total{kind="create-disk",code="OK"}"#,
            1.0,
        ),
        (
            r#"imageplane_faults_injected_total{target="/yandex.cloud.compute.v1.ImageService/Get"}"#,
            1.0,
        ),
        (
            r#"imageplane_store_call_duration_seconds_count{call="create"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&page, series), Some(expected), "{series}\n{page}");
    }
    assert!(sample(&page, "imageplane_open_connections").unwrap() >= 1.0);
    assert_eq!(
        sample(&page, "imageplane_executor_running_operations"),
        Some(0.0)
    );
    // Labels never carry ids or made-up names.
    for id in [
        &operation_id,
        "fhmnosuchdisk",
        "fd8nosuchimage",
        "made.up",
        "Frobnicate",
    ] {
        assert!(!page.contains(id), "{id} in the page");
    }
    let _ = std::fs::remove_dir_all(&directory);
}
