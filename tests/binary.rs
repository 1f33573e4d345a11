//! The `imageplane` binary itself: it announces its address, serves, and stops cleanly on
//! SIGTERM.

mod common;

use common::process::{temp_dir, ServerProcess};
use std::process::Command;
use std::time::Duration;

#[test]
fn serve_announces_its_address_and_stops_on_sigterm() {
    let data_dir = temp_dir("binary");
    let dir = data_dir.to_str().unwrap();
    let mut server = ServerProcess::start(
        &["--log-level", "warn", "--data-dir", dir],
        data_dir.join("server.log"),
    );
    std::net::TcpStream::connect(&server.address)
        .expect("the announced address accepts connections");
    let took = server.terminate();
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--operation-delay", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--operation-delay"), "{stderr}");
}

#[tokio::test]
async fn json_logs_carry_the_callers_request_id_and_the_response_echoes_it() {
    use imageplane::pb::compute::disk_service_client::DiskServiceClient;
    use imageplane::pb::compute::GetDiskRequest;

    let data_dir = temp_dir("json-logs");
    let mut server = ServerProcess::start(
        &[
            "--database-url",
            "memory:",
            "--log-format",
            "json",
            "--log-level",
            "info",
            // The client below keeps its connection open: the grace period ends the stop.
            "--shutdown-grace",
            "1s",
        ],
        data_dir.join("server.log"),
    );
    let address = server.address.clone();
    let mut disks = DiskServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    let mut request = tonic::Request::new(GetDiskRequest {
        disk_id: "fhmnosuchdisk0000000".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-42".parse().unwrap());
    let status = disks.get(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        "trace-me-42"
    );
    // Without one, the server makes one up and still echoes it.
    let response = disks
        .get(GetDiskRequest {
            disk_id: "fhmnosuchdisk0000000".into(),
        })
        .await
        .unwrap_err();
    assert!(response.metadata().get("x-request-id").is_some());
    // A REST call gets its line too, with its route.
    let reply = reqwest::Client::new()
        .get(format!("{}/operations/oprnosuchoperation00", server.url()))
        .header("x-request-id", "rest-trace-9")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    assert_eq!(reply.headers()["x-request-id"], "rest-trace-9");

    server.terminate();
    let logs = server.logged();
    let _ = std::fs::remove_dir_all(&data_dir);
    let line = logs
        .lines()
        .find(|line| line.contains("trace-me-42"))
        .unwrap_or_else(|| panic!("no log line carries the request id:\n{logs}"));
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"message\":\"call finished\""), "{line}");
    assert!(line.contains("\"target\":\"imageplane::access\""), "{line}");
    assert!(line.contains("\"protocol\":\"grpc\""), "{line}");
    assert!(
        line.contains("\"rpc\":\"/yandex.cloud.compute.v1.DiskService/Get\""),
        "{line}"
    );
    assert!(line.contains("\"grpc_status\":5"), "{line}");
    let line = logs
        .lines()
        .find(|line| line.contains("rest-trace-9"))
        .unwrap_or_else(|| panic!("no log line carries the REST request id:\n{logs}"));
    for expected in [
        "\"message\":\"call finished\"",
        "\"protocol\":\"rest\"",
        "\"route\":\"GET /operations/{operation_id}\"",
        "\"rpc\":\"/yandex.cloud.operation.OperationService/Get\"",
        "\"http_status\":404",
        "\"grpc_status\":5",
        "\"method\":\"GET\"",
    ] {
        assert!(line.contains(expected), "{expected} missing: {line}");
    }
    assert_eq!(
        logs.matches("rest-trace-9").count(),
        1,
        "one line per call:\n{logs}"
    );
}

/// The access log's lines have a target of their own, which a log filter can leave out
/// while every other line stays.
#[tokio::test]
async fn a_log_filter_leaves_out_the_access_log_and_keeps_the_rest() {
    let data_dir = temp_dir("access-off");
    let mut server = ServerProcess::start(
        &[
            "--database-url",
            "memory:",
            "--log-level",
            "info,imageplane::access=off",
        ],
        data_dir.join("server.log"),
    );
    let reply = reqwest::Client::new()
        .get(format!("{}/operations/oprnosuchoperation00", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    server.terminate();
    let logs = server.logged();
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(!logs.contains("call finished"), "{logs}");
    assert!(logs.contains("stopped"), "the other lines stay:\n{logs}");
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_instead_of_spinning_and_recovers() {
    let data_dir = temp_dir("emfile");
    let server = ServerProcess::start_with_fd_limit(
        64,
        &["--database-url", "memory:", "--log-level", "warn"],
        data_dir.join("server.log"),
    );
    // More connections than the server has descriptors: the rest wait in the backlog,
    // the listener stays readable, and every accept fails with EMFILE.
    let connections: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(&server.address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = server.cpu_time();
    std::thread::sleep(Duration::from_secs(2));
    let used = server.cpu_time() - before;
    // A loop that retries at once keeps a core busy (2 s of CPU here); backing off, the
    // server sleeps. Noise from other processes cannot add CPU time to this one.
    assert!(
        used < Duration::from_millis(500),
        "the server used {used:?} of CPU in 2 s while out of descriptors"
    );
    assert!(
        server.logged().contains("accepting a connection failed"),
        "{}",
        server.logged()
    );
    drop(connections);
    // With descriptors free again, it serves.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use imageplane::pb::operation::operation_service_client::OperationServiceClient;
        use imageplane::pb::operation::GetOperationRequest;
        let mut operations = OperationServiceClient::connect(server.url()).await.unwrap();
        let status = operations
            .get(GetOperationRequest {
                operation_id: "oprnosuchoperation00".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    });
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn seed_files_load_at_every_start_once_and_a_bad_line_stops_the_start() {
    let data_dir = temp_dir("seed");
    let seed = data_dir.join("mine.jsonl");
    std::fs::write(
        &seed,
        "# my folder\n{\"disk\": {\"id\": \"fhmseededdisk0000001\", \"folderId\": \"team\", \"name\": \"base\", \"zoneId\": \"ru-central1-a\", \"size\": \"1073741824\"}}\n",
    )
    .unwrap();
    let dir = data_dir.join("db");
    let flags = [
        "--data-dir",
        dir.to_str().unwrap(),
        "--seed",
        seed.to_str().unwrap(),
        "--log-level",
        "info",
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for start in 0..2 {
        let mut server = ServerProcess::start(&flags, data_dir.join("server.log"));
        runtime.block_on(async {
            use imageplane::pb::compute::disk_service_client::DiskServiceClient;
            use imageplane::pb::compute::GetDiskRequest;
            let mut disks = DiskServiceClient::connect(server.url()).await.unwrap();
            let disk = disks
                .get(GetDiskRequest {
                    disk_id: "fhmseededdisk0000001".into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                (disk.name.as_str(), disk.status),
                ("base", 2),
                "start {start}"
            );
        });
        server.terminate();
    }
    let logged = std::fs::read_to_string(data_dir.join("server.log")).unwrap();
    // The public images and mine, stored at the first start only.
    assert_eq!(logged.matches("seeded resources").count(), 1, "{logged}");

    std::fs::write(
        &seed,
        "{\"disk\": {\"id\": \"fhmbad\", \"folderId\": \"team\", \"colour\": \"red\"}}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mine.jsonl line 1") && stderr.contains("colour"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn a_start_that_fails_after_the_store_opened_closes_it_and_leaves_no_wal() {
    let data_dir = temp_dir("failed-start");
    let seed = data_dir.join("broken.jsonl");
    // Read only once the store is open and migrated: the migrations wrote the WAL.
    std::fs::write(&seed, "not a resource\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .arg("--seed")
        .arg(&seed)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "announced ready: {stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.jsonl line 1"), "{stderr}");
    assert!(
        stderr.contains("applied schema migration") && !stderr.contains('\x1b'),
        "logs to a pipe are plain text: {stderr}"
    );
    assert!(
        data_dir.join("imageplane.sqlite3").exists(),
        "the store was never opened: {stderr}"
    );
    let wal = data_dir.join("imageplane.sqlite3-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    assert_eq!(wal_bytes, 0, "the WAL holds {wal_bytes} bytes: {stderr}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Runs `imageplane serve` with `flags` expecting it to refuse to start; its stderr.
fn refused_start(flags: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "memory:",
        ])
        .args(flags)
        .output()
        .unwrap();
    assert!(!output.status.success(), "started with {flags:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_missing_or_unusable_tls_file_stops_the_start_naming_it() {
    let data_dir = temp_dir("tls-files");
    let missing = data_dir.join("missing.pem");
    let garbage = data_dir.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = data_dir.join("cert.pem");
    let key = data_dir.join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other_key = data_dir.join("other-key.pem");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    let path = |path: &std::path::Path| path.to_str().unwrap().to_string();
    for (cert, key, expected) in [
        (
            path(&missing),
            path(&key),
            format!("TLS certificate {}: cannot read it", path(&missing)),
        ),
        (
            path(&cert),
            path(&missing),
            format!("TLS key {}: cannot read it", path(&missing)),
        ),
        (
            path(&garbage),
            path(&key),
            format!("TLS certificate {}", path(&garbage)),
        ),
        (
            path(&cert),
            path(&garbage),
            format!("TLS key {}", path(&garbage)),
        ),
        (
            path(&cert),
            path(&other_key),
            format!("TLS certificate {}", path(&cert)),
        ),
    ] {
        let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &key]);
        assert!(stderr.contains(&expected), "{cert} {key}: {stderr}");
    }
    // A certificate without its key is refused by the flags themselves.
    let stderr = refused_start(&["--tls-cert", &path(&cert)]);
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn a_bad_token_file_stops_the_start_naming_the_line_but_not_the_token() {
    let data_dir = temp_dir("auth-file");
    let tokens = data_dir.join("tokens.txt");
    std::fs::write(&tokens, "good-secret alice\nsecret-x bob f1 extra\n").unwrap();
    let stderr = refused_start(&["--auth-tokens", tokens.to_str().unwrap()]);
    assert!(
        stderr.contains("tokens.txt:2: expected TOKEN SUBJECT_ID"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "a token leaked: {stderr}");
    let stderr = refused_start(&["--auth-tokens", data_dir.join("none.txt").to_str().unwrap()]);
    assert!(
        stderr.contains("--auth-tokens") && stderr.contains("none.txt"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The TOML example in docs/configuration.md: it names every flag of `serve` (set, or
/// commented out), and the binary starts with it as it is.
#[test]
fn the_documented_config_file_names_every_flag_and_starts_the_server() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML example");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .map(|rest| rest.split([' ', '<']).next().unwrap())
        .filter(|flag| !["config", "help"].contains(flag))
        .collect();
    assert!(flags.len() > 30, "{flags:?}");
    for flag in &flags {
        let set = format!("\n{flag} = ");
        let unset = format!("\n# {flag} = ");
        assert!(
            example.contains(&set) || example.contains(&unset),
            "the example does not name {flag}"
        );
    }
    let directory = common::process::temp_dir("config-example");
    let file = directory.join("imageplane.toml");
    // The example as it is, on a port of its own and a directory of its own.
    let text = example
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "data-dir = \"./imageplane-data\"",
            &format!(
                "data-dir = {:?}",
                directory.join("data").display().to_string()
            ),
        );
    std::fs::write(&file, text).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        line.starts_with("imageplane listening on 127.0.0.1:"),
        "{line:?}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

/// The bodies of a fixed sequence of REST calls to a new `memory:` server started with
/// `flags`: creates, reads, a page of a list, deletes ending in the background, reads.
async fn recorded_session(flags: &[&str]) -> Vec<String> {
    let directory = temp_dir("deterministic");
    let mut all_flags = vec!["--database-url", "memory:", "--operation-delay", "0s"];
    all_flags.extend_from_slice(flags);
    let server = ServerProcess::start(&all_flags, directory.join("server.log"));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let mut bodies = Vec::new();
    let mut disk_ids = Vec::new();
    for name in ["a", "b", "c"] {
        let created = client
            .post(url("/compute/v1/disks"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"folderId": "f1", "name": "{name}", "zoneId": "ru-central1-a", "size": "4194304"}}"#
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let operation: serde_json::Value = serde_json::from_str(&created).unwrap();
        disk_ids.push(
            operation["metadata"]["diskId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let done = client
            .get(url(&format!(
                "/operations/{}",
                operation["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        bodies.extend([created, done]);
    }
    for path in [
        format!("/compute/v1/disks/{}", disk_ids[1]),
        "/compute/v1/disks?folderId=f1&pageSize=2".to_string(),
    ] {
        bodies.push(
            client
                .get(url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    // Two deletes that end in the background, whenever the scheduler gets to them, then
    // more calls: the endings take nothing from the sequence.
    for disk_id in &disk_ids[..2] {
        let deleting = client
            .delete(url(&format!("/compute/v1/disks/{disk_id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Waited for (not recorded: how many polls it takes varies), so that the reads
        // below find it ended on every run.
        let id = serde_json::from_str::<serde_json::Value>(&deleting).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        until_done(&client, &server, &id, "the delete ended").await;
        bodies.push(deleting);
    }
    for path in [
        "/compute/v1/disks?folderId=f1".to_string(),
        format!("/compute/v1/disks/{}", disk_ids[2]),
    ] {
        bodies.push(
            client
                .get(url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);
    bodies
}

#[tokio::test]
async fn deterministic_ids_repeat_ids_times_and_page_tokens_from_run_to_run() {
    let first = recorded_session(&["--deterministic-ids", "42"]).await;
    let second = recorded_session(&["--deterministic-ids", "42"]).await;
    assert_eq!(first, second);
    assert!(
        first[0].contains("\"createdAt\":\"2026-01-01T00:00:00"),
        "{}",
        first[0]
    );
    assert!(
        first[7].contains("nextPageToken\":\"") && !first[7].contains("nextPageToken\":\"\""),
        "{}",
        first[7]
    );
    // Another seed, other ids; without the flag, other ids on each run.
    let other = recorded_session(&["--deterministic-ids", "43"]).await;
    assert_ne!(first[0], other[0]);
    let free = recorded_session(&[]).await;
    assert_ne!(free, recorded_session(&[]).await);
}

/// Polls the operation `id` over REST until it is done; after `common::PATIENCE`, panics
/// saying `failure`.
async fn until_done(client: &reqwest::Client, server: &ServerProcess, id: &str, failure: &str) {
    common::until(failure, || {
        let client = client.clone();
        let url = format!("{}/operations/{id}", server.url());
        async move {
            let body = client.get(url).send().await.unwrap().text().await.unwrap();
            body.contains("\"done\":true")
        }
    })
    .await;
}

/// `imageplane state FLAGS...`: its exit status and standard error.
fn state_command(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .arg("state")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The names of the images in `folder_id`, through REST.
fn image_names(server: &ServerProcess, folder_id: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let body: serde_json::Value = serde_json::from_slice(
            &reqwest::get(format!(
                "{}/compute/v1/images?folderId={folder_id}",
                server.url()
            ))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        )
        .unwrap();
        let mut names: Vec<String> = body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    })
}

/// Creates an image copied from the public catalogue and waits until it is READY.
fn create_image(server: &ServerProcess, folder_id: &str, name: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let operation: serde_json::Value = serde_json::from_slice(
            &client
                .post(format!("{}/compute/v1/images", server.url()))
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({"folderId": folder_id, "name": name,
                        "imageId": "fd8ubuntu2204v202611"})
                    .to_string(),
                )
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let id = operation["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{operation}"));
        until_done(&client, server, id, "the image's create ended").await;
    });
}

#[test]
fn state_export_and_import_work_on_a_stopped_store_and_restore_replaces_the_state_at_start() {
    let directory = temp_dir("state-cli");
    let dir = |name: &str| directory.join(name).display().to_string();
    let (a, b, c) = (dir("a"), dir("b"), dir("c"));
    let snapshot = dir("state.ndjson");
    let log = directory.join("server.log");

    let mut server = ServerProcess::start(&["--data-dir", &a], log.clone());
    create_image(&server, "team", "kept");
    // An export reads a running server's SQLite store in one read transaction; an import
    // must wait for the server to stop.
    let (exported, stderr) = state_command(&["export", &snapshot, "--data-dir", &a]);
    assert!(exported, "{stderr}");
    let (imported, stderr) = state_command(&["import", &snapshot, "--data-dir", &a]);
    assert!(!imported, "{stderr}");
    assert!(stderr.contains("cannot open"), "{stderr}");
    server.terminate();
    // A directory with no database is no empty state.
    let (exported, stderr) = state_command(&["export", &snapshot, "--data-dir", &dir("none")]);
    assert!(!exported && stderr.contains("does not exist"), "{stderr}");

    let (exported, stderr) = state_command(&["export", &snapshot, "--data-dir", &a]);
    assert!(exported, "{stderr}");
    let text = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        text.starts_with('{') && text.contains("\"schema\":4"),
        "{text}"
    );
    assert!(text.contains("\"name\":\"kept\""), "{text}");

    // Into another SQLite store, and into PostgreSQL when the tests have one.
    let mut targets = vec![vec!["--data-dir".to_string(), b.clone()]];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pg = common::postgres::base_url("the state command on PostgreSQL").map(|base_url| {
        let (schema, url) = runtime.block_on(common::postgres::fresh_schema(&base_url, "cli"));
        targets.push(vec!["--database-url".to_string(), url]);
        (base_url, schema)
    });
    for target in &targets {
        let flags: Vec<&str> = target.iter().map(String::as_str).collect();
        let (imported, stderr) =
            state_command(&[&["import", &snapshot], flags.as_slice()].concat());
        assert!(imported, "{stderr}");
        assert!(stderr.contains("the state replaced"), "{stderr}");
        let mut server = ServerProcess::start(&flags, log.clone());
        assert_eq!(image_names(&server, "team"), ["kept"], "{flags:?}");
        server.terminate();
    }
    if let Some((base_url, schema)) = pg {
        runtime.block_on(common::postgres::drop_schema(&base_url, &schema));
    }

    // --restore: every start begins from the snapshot.
    for start in 0..2 {
        let mut server =
            ServerProcess::start(&["--data-dir", &c, "--restore", &snapshot], log.clone());
        assert_eq!(image_names(&server, "team"), ["kept"], "start {start}");
        create_image(&server, "team", "gone-at-the-next-start");
        server.terminate();
    }

    // A snapshot of a newer schema is refused by both, naming both versions.
    std::fs::write(&snapshot, text.replacen("\"schema\":4", "\"schema\":7", 1)).unwrap();
    let (imported, stderr) = state_command(&["import", &snapshot, "--data-dir", &b]);
    assert!(!imported);
    assert!(
        stderr.contains("schema version 7") && stderr.contains("(4"),
        "{stderr}"
    );
    let refused = refused_start(&["--data-dir", &c, "--restore", &snapshot]);
    assert!(
        refused.contains("--restore") && refused.contains("schema version 7"),
        "{refused}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

/// The server's state snapshot, through REST.
fn state_of(server: &ServerProcess) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = reqwest::get(format!("{}/imageplane/v1/state", server.url()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    })
}

#[test]
fn a_fixture_recorded_with_deterministic_ids_is_restored_without_repeating_its_ids() {
    let directory = temp_dir("state-deterministic");
    let snapshot = directory.join("fixture.ndjson");
    let log = directory.join("server.log");
    let flags = [
        "--database-url",
        "memory:",
        "--enable-admin",
        "--deterministic-ids",
        "7",
    ];
    let mut server = ServerProcess::start(&flags, log.clone());
    create_image(&server, "team", "recorded");
    std::fs::write(&snapshot, state_of(&server)).unwrap();
    server.terminate();

    // The same seed from the fixture, twice: the new image's ids come after the
    // fixture's (the same ids would collide), and both runs answer the same.
    let restored: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--restore", snapshot.to_str().unwrap()])
        .collect();
    let mut states = Vec::new();
    for _ in 0..2 {
        let mut server = ServerProcess::start(&restored, log.clone());
        create_image(&server, "team", "made-after");
        assert_eq!(image_names(&server, "team"), ["made-after", "recorded"]);
        states.push(state_of(&server));
        server.terminate();
    }
    assert_eq!(states[0], states[1]);
    assert!(
        states[0].contains("\"exportedAt\":\"2026-"),
        "{}",
        states[0]
    );
    let _ = std::fs::remove_dir_all(&directory);
}
