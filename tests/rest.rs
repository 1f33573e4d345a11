//! The REST/JSON gateway over real HTTP (HTTP/1.1 and h2c) against a real server: every
//! route kind, the proto3 JSON shapes both ways, every error status, and the limits.

mod common;

use common::images::iso;
use common::{folder, TestServer, PATIENCE};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// An HTTP client on one server: HTTP/1.1 by default, h2c with prior knowledge on demand.
struct Rest {
    base: String,
    client: reqwest::Client,
}

/// What a call returned.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Rest {
    fn http1(server: &TestServer) -> Rest {
        Rest {
            base: format!("http://{}", server.address),
            client: reqwest::Client::builder().http1_only().build().unwrap(),
        }
    }

    fn h2c(server: &TestServer) -> Rest {
        Rest {
            base: format!("http://{}", server.address),
            client: reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        // A state snapshot is JSON lines, one document a line: kept as its text.
        let lines = headers
            .get("content-type")
            .is_some_and(|value| value == "application/x-ndjson");
        let body = match lines {
            true => Value::String(String::from_utf8(bytes.to_vec()).unwrap()),
            false => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!("not JSON ({error}): {}", String::from_utf8_lossy(&bytes))
            }),
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request.body(body)).await
    }

    /// Polls an operation until it is done (at most [`PATIENCE`]).
    async fn wait(&self, operation: &Value) -> Value {
        let id = operation["id"].as_str().unwrap();
        let started = std::time::Instant::now();
        loop {
            let reply = self.get(&format!("/operations/{id}")).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            if reply.body["done"] == json!(true) {
                return reply.body;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "operation {id} did not finish within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn disk_body(folder_id: &str) -> Value {
    json!({"folderId": folder_id, "zoneId": "ru-central1-a", "size": "10737418240", "name": "data"})
}

/// Asserts a google.rpc.Status body with this code, and returns its message.
fn assert_status(reply: &Reply, http_status: u16, code: i64) -> String {
    assert_eq!(reply.status, http_status, "{}", reply.body);
    assert_eq!(reply.body["code"], json!(code), "{}", reply.body);
    assert!(reply.body["details"].is_array(), "{}", reply.body);
    assert_eq!(
        reply.headers["content-type"], "application/json",
        "{}",
        reply.body
    );
    reply.body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_disk_an_image_and_a_snapshot_over_http1_and_h2c() {
    let server = TestServer::start(Duration::ZERO).await;
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$").unwrap();
    for rest in [Rest::http1(&server), Rest::h2c(&server)] {
        let folder_id = folder();
        let created = rest.post("/compute/v1/disks", disk_body(&folder_id)).await;
        assert_eq!(created.status, 200, "{}", created.body);
        let operation = &created.body;
        assert_eq!(operation["done"], json!(false));
        assert_eq!(operation["description"], "Create disk");
        assert_eq!(operation["createdBy"], "anonymous");
        assert_eq!(
            operation["metadata"]["@type"],
            "type.googleapis.com/yandex.cloud.compute.v1.CreateDiskMetadata"
        );
        // Timestamps in RFC 3339, UTC.
        let created_at = operation["createdAt"].as_str().unwrap();
        assert!(rfc3339.is_match(created_at), "{created_at}");
        let disk_id = operation["metadata"]["diskId"]
            .as_str()
            .unwrap()
            .to_string();

        let done = rest.wait(operation).await;
        let disk = &done["response"];
        assert_eq!(
            disk["@type"],
            "type.googleapis.com/yandex.cloud.compute.v1.Disk"
        );
        assert_eq!(disk["status"], "READY");
        assert_eq!(disk["size"], "10737418240");
        assert_eq!(disk["blockSize"], "4096");
        assert_eq!(disk["typeId"], "network-hdd");
        // Fields without presence are written with their defaults.
        assert_eq!(disk["labels"], json!({}));
        assert_eq!(disk["productIds"], json!([]));

        let fetched = rest.get(&format!("/compute/v1/disks/{disk_id}")).await;
        assert_eq!(fetched.status, 200);
        assert_eq!(fetched.body["id"], json!(disk_id));
        assert!(fetched.body.get("@type").is_none());

        // int64 as a number, snake_case names and an enum by number are accepted too.
        let image = rest
            .post(
                "/compute/v1/images",
                json!({"folder_id": folder_id, "name": "golden", "disk_id": disk_id,
                       "minDiskSize": 21474836480i64, "os": {"type": 2},
                       "labels": {"env": "test"}}),
            )
            .await;
        assert_eq!(image.status, 200, "{}", image.body);
        let image = rest.wait(&image.body).await["response"].clone();
        assert_eq!(image["minDiskSize"], "21474836480");
        assert_eq!(image["os"], json!({"type": "WINDOWS"}));
        assert_eq!(image["labels"], json!({"env": "test"}));
        let image_id = image["id"].as_str().unwrap();
        let fetched = rest.get(&format!("/compute/v1/images/{image_id}")).await;
        assert_eq!(fetched.body["name"], "golden");

        let snapshot = rest
            .post(
                "/compute/v1/snapshots",
                json!({"folderId": folder_id, "diskId": disk_id}),
            )
            .await;
        assert_eq!(snapshot.status, 200, "{}", snapshot.body);
        let snapshot = rest.wait(&snapshot.body).await["response"].clone();
        assert_eq!(snapshot["sourceDiskId"], json!(disk_id));
        let fetched = rest
            .get(&format!(
                "/compute/v1/snapshots/{}",
                snapshot["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(fetched.body["diskSize"], "10737418240");
    }
}

#[tokio::test]
async fn a_bare_metal_image_is_imported_over_rest() {
    let server = TestServer::start(Duration::ZERO).await;
    let fixture = common::http_fixture::HttpFixture::start().await;
    fixture.add("boot.iso", iso(64));
    let rest = Rest::http1(&server);
    let created = rest
        .post(
            "/baremetal/v1alpha/images",
            json!({"folderId": folder(), "name": "boot", "uri": fixture.url("/files/boot.iso")}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let image = rest.wait(&created.body).await["response"].clone();
    assert_eq!(
        image["@type"],
        "type.googleapis.com/yandex.cloud.baremetal.v1alpha.Image"
    );
    assert_eq!(image["status"], "READY");
    assert_eq!(image["checksum"].as_str().unwrap().len(), 32);
    let fetched = rest
        .get(&format!(
            "/baremetal/v1alpha/images/{}",
            image["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fetched.body["name"], "boot");
}

#[tokio::test]
async fn cancel_answers_get_and_post() {
    let server = TestServer::start(Duration::from_secs(60)).await;
    let rest = Rest::http1(&server);
    for method in ["GET", "POST"] {
        let created = rest.post("/compute/v1/disks", disk_body(&folder())).await;
        let id = created.body["id"].as_str().unwrap();
        let cancelled = rest
            .raw(
                method,
                &format!("/operations/{id}:cancel"),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(cancelled.status, 200, "{method}: {}", cancelled.body);
        assert_eq!(cancelled.body["done"], json!(true));
        assert_eq!(cancelled.body["error"]["code"], json!(1));
        let disk_id = created.body["metadata"]["diskId"].as_str().unwrap();
        let gone = rest.get(&format!("/compute/v1/disks/{disk_id}")).await;
        assert_status(&gone, 404, 5);
    }
}

#[tokio::test]
async fn the_auxiliary_services_answer_over_rest() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let endpoints = rest.get("/endpoints").await;
    assert_eq!(endpoints.status, 200);
    let list = endpoints.body["endpoints"].as_array().unwrap();
    assert!(list.iter().any(|endpoint| endpoint["id"] == "compute"));
    let compute = rest.get("/endpoints/compute").await;
    assert_eq!(compute.body["address"], json!(server.address.to_string()));
    let token = rest
        .post(
            "/iam/v1/tokens",
            json!({"yandexPassportOauthToken": "y0_x"}),
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert!(token.body["iamToken"].as_str().unwrap().starts_with("t1."));
    assert!(token.body["expiresAt"].is_string());
}

#[tokio::test]
async fn errors_are_google_rpc_status_with_the_http_status_of_their_code() {
    let server = TestServer::start(Duration::from_secs(60)).await;
    let rest = Rest::http1(&server);
    let folder_id = folder();

    // Validation: 400, INVALID_ARGUMENT, the field in a BadRequest detail.
    let bad = rest
        .post(
            "/compute/v1/disks",
            json!({"folderId": folder_id, "zoneId": "ru-central1-a", "size": "1", "name": "Bad_Name"}),
        )
        .await;
    let message = assert_status(&bad, 400, 3);
    assert!(message.starts_with("name: "), "{message}");
    let detail = &bad.body["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert_eq!(detail["fieldViolations"][0]["field"], "name");

    // NOT_FOUND: 404.
    assert_status(
        &rest.get("/compute/v1/images/fd8nosuchimage000000").await,
        404,
        5,
    );
    assert_status(&rest.get("/operations/oprnosuchoperation00").await, 404, 5);

    // ALREADY_EXISTS: 409.
    let first = rest.post("/compute/v1/disks", disk_body(&folder_id)).await;
    assert_eq!(first.status, 200);
    assert_status(
        &rest.post("/compute/v1/disks", disk_body(&folder_id)).await,
        409,
        6,
    );

    // FAILED_PRECONDITION (a source still CREATING): 400.
    let disk_id = first.body["metadata"]["diskId"].as_str().unwrap();
    let busy = rest
        .post(
            "/compute/v1/images",
            json!({"folderId": folder_id, "diskId": disk_id}),
        )
        .await;
    assert_status(&busy, 400, 9);
}

#[tokio::test]
async fn bad_http_input_is_refused_with_a_clear_status() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let json_type = Some("application/json");

    // Malformed JSON: 400 with the line and column.
    let reply = rest
        .raw(
            "POST",
            "/compute/v1/disks",
            json_type,
            b"{\n  \"folderId\": \"f\",\n".to_vec(),
        )
        .await;
    let message = assert_status(&reply, 400, 3);
    assert!(message.contains("line 3 column 0"), "{message}");

    // A value of the wrong type: 400 naming the field.
    let reply = rest
        .post(
            "/compute/v1/images",
            json!({"folderId": "f", "minDiskSize": "abc"}),
        )
        .await;
    let message = assert_status(&reply, 400, 3);
    assert!(message.starts_with("minDiskSize: "), "{message}");
    assert_eq!(
        reply.body["details"][0]["fieldViolations"][0]["field"],
        "minDiskSize"
    );

    // A field the request does not have: 400 naming it.
    let reply = rest
        .post("/compute/v1/disks", json!({"folderId": "f", "sise": "1"}))
        .await;
    let message = assert_status(&reply, 400, 3);
    assert!(message.contains("sise"), "{message}");

    // A query parameter that names no field: 400.
    let reply = rest.get("/compute/v1/images?folderId=f&colour=red").await;
    let message = assert_status(&reply, 400, 3);
    assert!(message.starts_with("colour: "), "{message}");
    // A query parameter on a method whose fields all go in the body: 400.
    let reply = rest
        .raw(
            "POST",
            "/compute/v1/disks?folderId=f",
            json_type,
            b"{}".to_vec(),
        )
        .await;
    assert_status(&reply, 400, 3);
    // A body on a method that takes none: 400.
    let reply = rest
        .raw("GET", "/operations/opr1", json_type, b"{\"x\":1}".to_vec())
        .await;
    assert_status(&reply, 400, 3);

    // An unknown path: 404; a wrong method: 405 with Allow; both as Status JSON.
    let reply = rest.get("/compute/v9/images").await;
    assert_status(&reply, 404, 5);
    let reply = rest
        .raw("PUT", "/compute/v1/images/fd8x", None, Vec::new())
        .await;
    assert_status(&reply, 405, 12);
    assert_eq!(reply.headers["allow"], "DELETE, GET, HEAD, PATCH");
    let reply = rest.raw("DELETE", "/openapi.json", None, Vec::new()).await;
    assert_status(&reply, 405, 12);
    assert_eq!(reply.headers["allow"], "GET, HEAD");

    // A body over the limit: 413, whether announced or streamed; one at the limit is
    // read (and refused for its description, which is too long).
    for (size, http_status, code) in [(REST_BODY_LIMIT, 400, 3), (REST_BODY_LIMIT + 1, 413, 11)] {
        let body = json_body_of_size(size);
        let reply = rest
            .raw("POST", "/compute/v1/disks", json_type, body.clone())
            .await;
        let message = assert_status(&reply, http_status, code);
        if http_status == 400 {
            assert!(message.starts_with("description: "), "{message}");
        }
        let reply = rest
            .send(
                rest.client
                    .post(format!("{}/compute/v1/disks", rest.base))
                    .header("content-type", "application/json")
                    .body(reqwest::Body::wrap_stream(futures_stream(body))),
            )
            .await;
        assert_status(&reply, http_status, code);
    }

    // Not JSON: 415.
    let reply = rest
        .raw(
            "POST",
            "/compute/v1/disks",
            Some("application/x-www-form-urlencoded"),
            b"a=b".to_vec(),
        )
        .await;
    assert_status(&reply, 415, 3);

    // A path segment that is not UTF-8: 400.
    let reply = rest.get("/compute/v1/images/%FF%FE").await;
    assert_status(&reply, 400, 3);

    // The server still serves.
    let reply = rest.post("/compute/v1/disks", disk_body(&folder())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// The largest REST request body: 4 MiB (docs/configuration.md, Limits: "a REST request
/// body"; docs/api.md: "a body over 4 MiB is 413").
const REST_BODY_LIMIT: usize = 4 << 20;

/// A JSON CreateDiskRequest of exactly `size` bytes, valid but for its long description.
fn json_body_of_size(size: usize) -> Vec<u8> {
    let with = |description: &str| {
        json!({"folderId": "f", "zoneId": "ru-central1-a", "size": "1073741824",
               "description": description})
        .to_string()
    };
    let body = with(&"x".repeat(size - with("").len()));
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// A body sent in chunks without a Content-Length.
fn futures_stream(
    bytes: Vec<u8>,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes
        .chunks(64 * 1024)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let reply = rest
        .send(
            rest.client
                .get(format!("{}/operations/oprnosuchoperation00", rest.base))
                .header("x-request-id", "rest-trace-7"),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "rest-trace-7");
    let reply = rest.get("/operations/oprnosuchoperation00").await;
    assert!(reply.headers["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let reply = rest.get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    let document = reply.body;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/compute/v1/images", "post"),
        ("/compute/v1/images", "get"),
        ("/compute/v1/images/{image_id}", "patch"),
        ("/compute/v1/images:latestByFamily", "get"),
        ("/compute/v1/images/{resource_id}:listAccessBindings", "get"),
        ("/compute/v1/disks/{disk_id}:move", "post"),
        ("/operations/{operation_id}:cancel", "get"),
        ("/operations/{operation_id}:cancel", "post"),
        ("/baremetal/v1alpha/images", "post"),
        ("/endpoints/{api_endpoint_id}", "get"),
        ("/iam/v1/tokens", "post"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let create = &paths["/compute/v1/images"]["post"];
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["folderId"]));
    assert_eq!(body["properties"]["folderId"]["maxLength"], json!(50));
    // An optional field may be null (left unset).
    assert_eq!(
        body["properties"]["name"]["anyOf"][1],
        json!({"type": "null"})
    );
    assert!(body["properties"]["name"]["anyOf"][0]["pattern"]
        .as_str()
        .unwrap()
        .starts_with("^(?:"));
    let list = &paths["/compute/v1/images"]["get"];
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["folderId", "pageSize", "pageToken", "filter", "orderBy"]
    );
    let update = &paths["/compute/v1/images/{image_id}"]["patch"];
    let body = &update["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        body["properties"].get("imageId").is_none(),
        "path fields stay out of the body"
    );
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let image = &schemas["yandex.cloud.compute.v1.Image"];
    // int64: a number or a decimal string; an enum: its name or its number.
    let size = &image["properties"]["size"]["anyOf"][0]["anyOf"];
    assert_eq!(size[0]["type"], "integer");
    assert_eq!(size[1]["type"], "string");
    assert_eq!(
        image["properties"]["createdAt"]["anyOf"][0]["format"],
        "date-time"
    );
    assert!(
        image["properties"]["status"]["anyOf"][0]["anyOf"][0]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("READY"))
    );
}

/// A REST route: the HTTP method and the path template.
type Route = (String, String);

fn route(method: &str, path: &str) -> Route {
    (method.to_string(), path.to_string())
}

/// The routes the `google.api.http` rules in proto/ give, read from the .proto files
/// themselves rather than from anything the server builds.
fn routes_of_the_protos() -> BTreeSet<Route> {
    let rule = regex::Regex::new(
        r#"option\s*\(google\.api\.http\)\s*=\s*\{\s*(get|put|post|delete|patch)\s*:\s*"([^"]+)""#,
    )
    .unwrap();
    let mut files = Vec::new();
    // The API's and imageplane's own (the admin API).
    for dir in ["proto/yandex", "proto/imageplane"] {
        proto_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            &mut files,
        );
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Every rule is read: none of another shape, and no additional bindings.
        let found: Vec<Route> = rule
            .captures_iter(&text)
            .map(|rule| route(&rule[1].to_ascii_uppercase(), &rule[2]))
            .collect();
        assert_eq!(
            found.len(),
            text.matches("(google.api.http)").count(),
            "{}: a rule this test does not read",
            file.display()
        );
        assert!(!text.contains("additional_bindings"), "{}", file.display());
        routes.extend(found);
    }
    routes
}

fn proto_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            proto_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "proto")
        {
            found.push(path);
        }
    }
}

/// Every route the server should have: one per http rule of the protos, and Cancel's
/// POST beside its GET (docs/api.md, REST/JSON: "GET /operations/{operation_id}:cancel
/// (POST answers too)").
fn expected_routes() -> BTreeSet<Route> {
    let mut routes = routes_of_the_protos();
    routes.insert(route("POST", "/operations/{operation_id}:cancel"));
    routes
}

#[tokio::test]
async fn every_route_of_the_protos_is_in_the_document_and_reaches_its_rpc() {
    let expected = expected_routes();
    // The routes docs/api.md names are among them, and the one it says has none is not.
    for (method, path) in [
        ("GET", "/compute/v1/images/{image_id}"),
        ("POST", "/compute/v1/images"),
        ("PATCH", "/compute/v1/images/{image_id}"),
        ("GET", "/compute/v1/images:latestByFamily"),
        ("GET", "/operations/{operation_id}"),
        ("GET", "/operations/{operation_id}:cancel"),
        ("POST", "/operations/{operation_id}:cancel"),
        ("GET", "/endpoints"),
        ("POST", "/iam/v1/tokens"),
    ] {
        assert!(
            expected.contains(&route(method, path)),
            "{method} {path} is not a route of the protos"
        );
    }
    assert!(
        !expected
            .iter()
            .any(|(_, path)| path.to_ascii_lowercase().contains("snapshotschedules")),
        "ListSnapshotSchedules has no REST route"
    );

    // With the admin API on, so that its routes reach their RPCs too.
    let server = TestServer::start_with(imageplane::server::Settings {
        enable_admin: true,
        ..Default::default()
    })
    .await;
    let document = Rest::http1(&server).get("/openapi.json").await.body;
    let listed: BTreeSet<Route> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(|method| route(&method.to_ascii_uppercase(), path))
        })
        .collect();
    assert_eq!(
        (
            listed.difference(&expected).collect::<Vec<_>>(),
            expected.difference(&listed).collect::<Vec<_>>()
        ),
        (Vec::new(), Vec::new()),
        "(routes only in the document, routes missing from it)"
    );
    let variable = regex::Regex::new(r"\{[a-z_.]+\}").unwrap();
    for rest in [Rest::http1(&server), Rest::h2c(&server)] {
        for (method, path) in &expected {
            call_route(
                &rest,
                method,
                &variable.replace_all(path, "fd8nosuchresource000"),
            )
            .await;
        }
    }
}

/// Calls one route; it must match and reach its RPC.
async fn call_route(rest: &Rest, method: &str, path: &str) {
    let body = if method == "POST" || method == "PATCH" {
        b"{}".to_vec()
    } else {
        Vec::new()
    };
    let reply = rest.raw(method, path, Some("application/json"), body).await;
    // The route matched and its RPC answered: a result, a validation error or a missing
    // resource; never "no route", a wrong method or UNIMPLEMENTED (every RPC is served).
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        !message.starts_with("no route") && reply.status != 405,
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
    assert!(
        [200, 400, 404].contains(&reply.status),
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
}

#[tokio::test]
async fn the_whole_life_of_an_image_over_rest() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let folder_id = folder();
    let disk = rest.post("/compute/v1/disks", disk_body(&folder_id)).await;
    let disk_id = rest.wait(&disk.body).await["response"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["alpha", "beta", "gamma"] {
        let created = rest
            .post(
                "/compute/v1/images",
                json!({"folderId": folder_id, "name": name, "diskId": disk_id, "family": "app"}),
            )
            .await;
        rest.wait(&created.body).await;
    }
    // List with a filter, an order and a page size, as query parameters.
    let page = rest
        .get(&format!(
            "/compute/v1/images?folderId={folder_id}&pageSize=2&order_by=name%20desc&filter=family%3D%22app%22"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let names: Vec<&str> = page.body["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gamma", "beta"]);
    let token = page.body["nextPageToken"].as_str().unwrap();
    let rest_page = rest
        .get(&format!(
            "/compute/v1/images?folderId={folder_id}&pageSize=2&order_by=name%20desc&filter=family%3D%22app%22&pageToken={token}"
        ))
        .await;
    assert_eq!(rest_page.body["images"][0]["name"], "alpha");
    assert_eq!(rest_page.body["nextPageToken"], "");
    let image_id = rest_page.body["images"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Update with a FieldMask in the body, Get, latest by family.
    let updated = rest
        .send(
            rest.client
                .patch(format!("{}/compute/v1/images/{image_id}", rest.base))
                .header("content-type", "application/json")
                .body(json!({"updateMask": "description,labels", "description": "first", "labels": {"a": "b"}}).to_string()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["done"], json!(true));
    assert_eq!(updated.body["response"]["description"], "first");
    let latest = rest
        .get(&format!(
            "/compute/v1/images:latestByFamily?folderId={folder_id}&family=app"
        ))
        .await;
    assert_eq!(latest.body["name"], "gamma");

    // Delete, then its operations, then NOT_FOUND.
    let deleting = rest
        .raw(
            "DELETE",
            &format!("/compute/v1/images/{image_id}"),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(deleting.status, 200, "{}", deleting.body);
    let done = rest.wait(&deleting.body).await;
    assert_eq!(
        done["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let operations = rest
        .get(&format!("/compute/v1/images/{image_id}/operations"))
        .await;
    let descriptions: Vec<&str> = operations.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op.get("description").and_then(Value::as_str).unwrap())
        .collect();
    assert_eq!(
        descriptions,
        ["Delete image", "Update image", "Create image"]
    );
    assert_status(
        &rest.get(&format!("/compute/v1/images/{image_id}")).await,
        404,
        5,
    );

    // Access bindings through their custom verbs.
    let set = rest
        .post(
            &format!("/compute/v1/disks/{disk_id}:setAccessBindings"),
            json!({"accessBindings": [{"roleId": "viewer", "subject": {"id": "aje1", "type": "userAccount"}}]}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let listed = rest
        .get(&format!("/compute/v1/disks/{disk_id}:listAccessBindings"))
        .await;
    assert_eq!(listed.body["accessBindings"][0]["roleId"], "viewer");
}

/// One READY resource of every kind in `folder_id`: (its REST collection, its id).
async fn one_of_each_kind(rest: &Rest, folder_id: &str) -> Vec<(&'static str, String)> {
    let fixture = common::http_fixture::HttpFixture::start().await;
    fixture.add("boot.iso", iso(64));
    let created = |path: &'static str, body: Value| async move {
        let reply = rest.post(path, body).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let done = rest.wait(&reply.body).await;
        done["response"]["id"].as_str().unwrap().to_string()
    };
    let disk = created("/compute/v1/disks", disk_body(folder_id)).await;
    let image = created(
        "/compute/v1/images",
        json!({"folderId": folder_id, "name": "image", "diskId": disk}),
    )
    .await;
    let snapshot = created(
        "/compute/v1/snapshots",
        json!({"folderId": folder_id, "name": "snapshot", "diskId": disk}),
    )
    .await;
    let bare_metal = created(
        "/baremetal/v1alpha/images",
        json!({"folderId": folder_id, "name": "boot", "uri": fixture.url("/files/boot.iso")}),
    )
    .await;
    vec![
        ("/compute/v1/disks", disk),
        ("/compute/v1/images", image),
        ("/compute/v1/snapshots", snapshot),
        ("/baremetal/v1alpha/images", bare_metal),
    ]
}

async fn patch(rest: &Rest, path: &str, body: Value) -> Reply {
    rest.raw(
        "PATCH",
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

#[tokio::test]
async fn update_masks_take_either_spelling_and_validate_and_change_only_what_they_name() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let folder_id = folder();
    for (collection, id) in one_of_each_kind(&rest, &folder_id).await {
        let path = format!("{collection}/{id}");
        let before = rest.get(&path).await.body;
        // Fields outside the mask are neither validated nor changed.
        let reply = patch(
            &rest,
            &path,
            json!({"updateMask": "description", "description": "new",
                   "name": "Not A Name", "labels": {"BAD KEY": "x"}}),
        )
        .await;
        assert_eq!(reply.status, 200, "{collection}: {}", reply.body);
        let after = rest.get(&path).await.body;
        assert_eq!(after["description"], "new", "{collection}");
        assert_eq!(after["name"], before["name"], "{collection}");
        assert_eq!(after["labels"], json!({}), "{collection}");
        // Masked fields are validated, in either spelling.
        for mask in ["labels", "Labels"] {
            let reply = patch(
                &rest,
                &path,
                json!({"updateMask": mask, "labels": {"BAD KEY": "x"}}),
            )
            .await;
            let message = assert_status(&reply, 400, 3);
            assert!(message.contains(mask), "{collection}: {message}");
        }
        // A path is named in errors as written.
        let reply = patch(&rest, &path, json!({"updateMask": "Name", "name": "x"})).await;
        let message = assert_status(&reply, 400, 3);
        assert!(
            message.starts_with("update_mask: \"Name\" cannot be changed"),
            "{collection}: {message}"
        );
        assert!(!message.contains("_name"), "{message}");
    }

    // snake_case and lowerCamelCase masks, over REST as over gRPC.
    let folder_id = folder();
    let disk = rest.post("/compute/v1/disks", disk_body(&folder_id)).await;
    let disk_id = disk.body["metadata"]["diskId"]
        .as_str()
        .unwrap()
        .to_string();
    let image = rest
        .post(
            "/compute/v1/images",
            json!({"folderId": folder_id, "name": "sized", "diskId": disk_id}),
        )
        .await;
    let image_path = format!(
        "/compute/v1/images/{}",
        image.body["metadata"]["imageId"].as_str().unwrap()
    );
    for (mask, size) in [("min_disk_size", 20u64 << 30), ("minDiskSize", 30 << 30)] {
        let reply = patch(
            &rest,
            &image_path,
            json!({"updateMask": mask, "minDiskSize": size.to_string()}),
        )
        .await;
        assert_eq!(reply.status, 200, "{mask}: {}", reply.body);
        let image = rest.get(&image_path).await.body;
        assert_eq!(image["minDiskSize"], size.to_string(), "{mask}");
    }

    // A nested path changes just that subfield, in either spelling.
    let disk_path = format!("/compute/v1/disks/{disk_id}");
    for (mask, expected) in [
        (
            "disk_placement_policy.placement_group_id",
            json!({"placementGroupId": "group-1", "placementGroupPartition": "0"}),
        ),
        (
            "diskPlacementPolicy.placementGroupPartition",
            json!({"placementGroupId": "group-1", "placementGroupPartition": "3"}),
        ),
    ] {
        let reply = patch(
            &rest,
            &disk_path,
            json!({"updateMask": mask,
                   "diskPlacementPolicy": {"placementGroupId": if mask.contains("Partition") { "ignored" } else { "group-1" },
                                           "placementGroupPartition": "3"}}),
        )
        .await;
        assert_eq!(reply.status, 200, "{mask}: {}", reply.body);
        let disk = rest.get(&disk_path).await.body;
        assert_eq!(disk["diskPlacementPolicy"], expected, "{mask}");
    }
    let reply = patch(
        &rest,
        &disk_path,
        json!({"updateMask": "disk_placement_policy.group", "diskPlacementPolicy": {}}),
    )
    .await;
    let message = assert_status(&reply, 400, 3);
    assert!(message.contains("has no field \"group\""), "{message}");
}

#[tokio::test]
async fn a_json_key_given_twice_is_refused_naming_it() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let (first, second) = (folder(), folder());
    let json_type = Some("application/json");
    let bodies = [
        (
            format!(
                r#"{{"folderId": "{first}", "folderId": "{second}", "zoneId": "ru-central1-a", "size": "4194304"}}"#
            ),
            "folderId: is given twice",
        ),
        (
            format!(
                r#"{{"folderId": "{first}", "folder_id": "{second}", "zoneId": "ru-central1-a", "size": "4194304"}}"#
            ),
            "names the same field",
        ),
        (
            format!(
                r#"{{"folderId": "{first}", "zoneId": "ru-central1-a", "size": "4194304", "labels": {{"env": "a", "env": "b"}}}}"#
            ),
            "labels.env: is given twice",
        ),
        (
            format!(
                r#"{{"folderId": "{first}", "zoneId": "ru-central1-a", "size": "4194304", "diskPlacementPolicy": {{"placementGroupId": "a", "placement_group_id": "b"}}}}"#
            ),
            "diskPlacementPolicy.",
        ),
        (
            format!(
                r#"{{"folderId": "{first}", "zoneId": "ru-central1-a", "size": "4194304", "imageId": "fd8a", "snapshotId": "fd8b"}}"#
            ),
            "oneof source",
        ),
    ];
    for (body, expected) in bodies {
        let reply = rest
            .raw("POST", "/compute/v1/disks", json_type, body.into_bytes())
            .await;
        let message = assert_status(&reply, 400, 3);
        assert!(message.contains(expected), "{expected}: {message}");
    }
    for folder_id in [first, second] {
        let listed = rest
            .get(&format!("/compute/v1/disks?folderId={folder_id}"))
            .await;
        assert_eq!(listed.body["disks"], json!([]), "nothing was created");
    }
}

#[tokio::test]
async fn bodyless_routes_head_utf8_and_custom_verbs() {
    let server = TestServer::start(Duration::from_secs(60)).await;
    let rest = Rest::http1(&server);
    let json_type = Some("application/json");

    // A route without a body takes an empty JSON object (what clients that always send
    // JSON send), over POST and GET alike.
    for method in ["POST", "GET"] {
        let created = rest.post("/compute/v1/disks", disk_body(&folder())).await;
        let id = created.body["id"].as_str().unwrap();
        let cancelled = rest
            .raw(
                method,
                &format!("/operations/{id}:cancel"),
                json_type,
                b" {} ".to_vec(),
            )
            .await;
        assert_eq!(cancelled.status, 200, "{method}: {}", cancelled.body);
        assert_eq!(cancelled.body["error"]["code"], json!(1));
    }

    // HEAD answers wherever GET does: the same status and headers, no body.
    let created = rest.post("/compute/v1/disks", disk_body(&folder())).await;
    let disk_path = format!(
        "/compute/v1/disks/{}",
        created.body["metadata"]["diskId"].as_str().unwrap()
    );
    for path in [
        disk_path.as_str(),
        "/compute/v1/disks/fhmnosuchdisk0000000",
        "/openapi.json",
    ] {
        let url = format!("{}{path}", rest.base);
        let got = rest.client.get(&url).send().await.unwrap();
        let (status, length) = (got.status(), got.bytes().await.unwrap().len());
        let head = rest.client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), status, "{path}");
        assert_eq!(head.headers()["content-type"], "application/json", "{path}");
        assert_eq!(
            head.headers()["content-length"],
            length.to_string().as_str(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    let reply = rest
        .raw("PUT", "/compute/v1/images", None, Vec::new())
        .await;
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST");

    // Text that is not UTF-8, in the query or the path: 400.
    for path in [
        "/compute/v1/images?folderId=f%FF1",
        "/compute/v1/images?folder%FFId=f1",
        "/compute/v1/imag%FFes",
    ] {
        let reply = rest.get(path).await;
        let message = assert_status(&reply, 400, 3);
        assert!(message.contains("UTF-8"), "{path}: {message}");
    }

    // An unknown custom verb is no route, not a Get of an id with a colon.
    let id = created.body["id"].as_str().unwrap();
    let reply = rest.get(&format!("/operations/{id}:frobnicate")).await;
    assert_status(&reply, 404, 5);
    let reply = rest.get(&format!("{disk_path}:frobnicate")).await;
    assert_status(&reply, 404, 5);
    assert_eq!(rest.get(&format!("/operations/{id}")).await.status, 200);
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_a_key_is_refused() {
    let server = TestServer::start(Duration::ZERO).await;
    let rest = Rest::http1(&server);
    let folder_id = folder();
    let bad_keys: [&[u8]; 4] = ["ключ-1".as_bytes(), b"caf\xe9", b"with space", b""];
    for key in bad_keys {
        for _ in 0..2 {
            let reply = rest
                .send(
                    rest.client
                        .post(format!("{}/compute/v1/disks", rest.base))
                        .header("content-type", "application/json")
                        .header(
                            "idempotency-key",
                            reqwest::header::HeaderValue::from_bytes(key).unwrap(),
                        )
                        .body(disk_body(&folder_id).to_string()),
                )
                .await;
            let message = assert_status(&reply, 400, 3);
            assert!(message.starts_with("idempotency-key: "), "{message}");
        }
    }
    let listed = rest
        .get(&format!("/compute/v1/disks?folderId={folder_id}"))
        .await;
    assert_eq!(listed.body["disks"], json!([]), "no call ran");
}
