//! Fault injection through the admin API: a method's calls fail (gRPC and REST alike) or
//! wait, a given number of times or with a probability; a kind of operation ends failed;
//! rules are checked when added, listed, removed one by one and cleared.

mod common;

use common::{error_of, folder, TestServer, GIB};
use imageplane::pb::compute::{
    disk, CreateDiskMetadata, CreateDiskRequest, Disk, GetDiskRequest, GetImageRequest,
    ListImagesRequest,
};
use imageplane::pb::imageplane::v1::{
    fault, ClearFaultsRequest, DeleteFaultRequest, Fault, ListFaultsRequest,
};
use imageplane::server::Settings;
use std::time::{Duration, Instant};
use tonic::Code;

async fn server() -> TestServer {
    TestServer::start_with(Settings {
        enable_admin: true,
        ..Settings::default()
    })
    .await
}

fn on_method(method: &str, code: &str, times: i64) -> Fault {
    Fault {
        target: Some(fault::Target::Method(method.into())),
        code: code.into(),
        times,
        ..Default::default()
    }
}

/// The id of an image of the public catalogue.
async fn public_image(server: &TestServer) -> String {
    server
        .images()
        .list(ListImagesRequest {
            folder_id: "standard-images".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .images[0]
        .id
        .clone()
}

const IMAGE_GET: &str = "yandex.cloud.compute.v1.ImageService/Get";

#[tokio::test]
async fn a_method_fault_fails_its_calls_the_given_times_over_grpc_and_rest() {
    let server = server().await;
    let image_id = public_image(&server).await;
    let get = || {
        let mut images = server.images();
        let image_id = image_id.clone();
        async move { images.get(GetImageRequest { image_id }).await }
    };
    let added = server
        .admin()
        .add_fault(Fault {
            message: "try again later".into(),
            ..on_method(IMAGE_GET, "UNAVAILABLE", 2)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!added.id.is_empty());
    for _ in 0..2 {
        let failed = get().await.unwrap_err();
        assert_eq!(failed.code(), Code::Unavailable);
        assert_eq!(failed.message(), "try again later");
    }
    get().await.unwrap();
    let left = server
        .admin()
        .list_faults(ListFaultsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(left.faults.is_empty(), "{left:?}");

    // REST gets the code's HTTP status and a Status body.
    server
        .admin()
        .add_fault(on_method(IMAGE_GET, "RESOURCE_EXHAUSTED", 1))
        .await
        .unwrap();
    let url = format!("http://{}/compute/v1/images/{image_id}", server.address);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 429);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], 8, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("injected fault flt"),
        "{body}"
    );
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_delay_fault_holds_calls_and_a_probability_fault_fires_on_some() {
    let server = server().await;
    let image_id = public_image(&server).await;
    server
        .admin()
        .add_fault(Fault {
            delay: "300ms".into(),
            ..on_method(IMAGE_GET, "", 1)
        })
        .await
        .unwrap();
    let started = Instant::now();
    server
        .images()
        .get(GetImageRequest {
            image_id: image_id.clone(),
        })
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    server
        .admin()
        .add_fault(Fault {
            probability: 0.5,
            ..on_method(IMAGE_GET, "ABORTED", 0)
        })
        .await
        .unwrap();
    let mut outcomes = (0, 0);
    for _ in 0..200 {
        match server
            .images()
            .get(GetImageRequest {
                image_id: image_id.clone(),
            })
            .await
        {
            Ok(_) => outcomes.0 += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted);
                outcomes.1 += 1
            }
        }
    }
    // Each side has odds of 2^-200 of staying empty by chance.
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}

fn disk_in(folder_id: &str, name: &str) -> CreateDiskRequest {
    CreateDiskRequest {
        folder_id: folder_id.into(),
        name: name.into(),
        zone_id: "ru-central1-a".into(),
        size: GIB,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_operation_fault_fails_the_next_operation_of_its_kind() {
    let server = server().await;
    server
        .admin()
        .add_fault(Fault {
            target: Some(fault::Target::Operation("create-disk".into())),
            code: "RESOURCE_EXHAUSTED".into(),
            message: "Quota limit compute.disks.count exceeded".into(),
            times: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let folder_id = folder();
    let first = server
        .disks()
        .create(disk_in(&folder_id, "first"))
        .await
        .unwrap()
        .into_inner();
    let failed = server.wait(&first).await;
    assert_eq!(
        error_of(&failed),
        (8, "Quota limit compute.disks.count exceeded".to_string())
    );
    let gone = server
        .disks()
        .get(GetDiskRequest {
            disk_id: common::metadata::<CreateDiskMetadata>(&first).disk_id,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // Fired once: the next one is READY, under the same name.
    let second = server
        .disks()
        .create(disk_in(&folder_id, "first"))
        .await
        .unwrap()
        .into_inner();
    let disk: Disk = server.wait_for(&second).await;
    assert_eq!(disk.status, disk::Status::Ready as i32);
}

#[tokio::test]
async fn fault_rules_are_checked_listed_removed_and_cleared() {
    let server = server().await;
    for (fault, field) in [
        (
            on_method(
                "yandex.cloud.compute.v1.ImageService/Frobnicate",
                "UNAVAILABLE",
                1,
            ),
            "method",
        ),
        (
            on_method("imageplane.v1.AdminService/Reset", "UNAVAILABLE", 1),
            "method",
        ),
        (on_method(IMAGE_GET, "OK", 1), "code"),
        (on_method(IMAGE_GET, "SOMETIMES", 1), "code"),
        (
            Fault {
                probability: 0.5,
                ..on_method(IMAGE_GET, "ABORTED", 2)
            },
            "not both",
        ),
        (on_method(IMAGE_GET, "", 1), "code"),
        (
            Fault {
                delay: "soon".into(),
                ..on_method(IMAGE_GET, "", 1)
            },
            "delay",
        ),
        (
            Fault {
                probability: 1.5,
                ..on_method(IMAGE_GET, "ABORTED", 0)
            },
            "probability",
        ),
        (
            Fault {
                target: Some(fault::Target::Operation("create-vm".into())),
                code: "ABORTED".into(),
                ..Default::default()
            },
            "create-vm",
        ),
        (
            Fault {
                code: "ABORTED".into(),
                ..Default::default()
            },
            "exactly one of method, operation",
        ),
    ] {
        let refused = server.admin().add_fault(fault.clone()).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{fault:?}");
        assert!(
            refused.message().contains(field),
            "{fault:?}: {}",
            refused.message()
        );
    }

    let kept = server
        .admin()
        .add_fault(on_method(IMAGE_GET, "UNAVAILABLE", 5))
        .await
        .unwrap()
        .into_inner();
    let removed = server
        .admin()
        .add_fault(on_method(
            "yandex.cloud.compute.v1.DiskService/List",
            "INTERNAL",
            0,
        ))
        .await
        .unwrap()
        .into_inner();
    server
        .admin()
        .delete_fault(DeleteFaultRequest {
            fault_id: removed.id.clone(),
        })
        .await
        .unwrap();
    let again = server
        .admin()
        .delete_fault(DeleteFaultRequest {
            fault_id: removed.id,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let listed = server
        .admin()
        .list_faults(ListFaultsRequest {})
        .await
        .unwrap()
        .into_inner()
        .faults;
    assert_eq!(listed, vec![kept]);

    // Over REST: the issue's JSON, then a clear.
    let client = reqwest::Client::new();
    let url = format!("http://{}/imageplane/v1/faults", server.address);
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"operation": "create-image", "code": "RESOURCE_EXHAUSTED", "times": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cleared = client.delete(&url).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    let cleared: serde_json::Value = serde_json::from_str(&cleared.text().await.unwrap()).unwrap();
    assert_eq!(cleared["removed"], "2", "{cleared}");
    let none = server
        .admin()
        .clear_faults(ClearFaultsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.removed, 0);
}
