//! Start-up benchmark: how long imageplane takes to start on a database that already
//! holds many operations (default 1,000,000 finished ones, plus 1,000 left running by a
//! "crashed" run, which recovery must claim).
//!
//! For each durable backend it fills a fresh database through the real schema, then
//! measures, best of `--rounds`:
//! - `open`: opening the store (connection, migrations check) and the recovery claim of
//!   every unfinished operation, in this process;
//! - `binary` (SQLite): the `imageplane serve` process from exec until it announces that
//!   it listens (it opens the store before announcing).
//!
//! Run: `cargo bench --bench startup` (options after `--`, see `--help`); PostgreSQL is
//! measured too with `--postgres-url postgres://postgres@127.0.0.1:5432/test`.

use clap::Parser;
use imageplane::model::resource::{pack, OperationRecord, Resource, Work};
use imageplane::pb::compute::{disk, Disk};
use imageplane::pb::operation::Operation;
use imageplane::store::{self, DatabaseUrl, Replica};

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "imageplane start-up time on a database with many stored operations")]
struct Options {
    /// Finished operations in the database.
    #[arg(long, default_value_t = 1_000_000)]
    operations: usize,
    /// Operations left running (recovery claims them all).
    #[arg(long, default_value_t = 1_000)]
    running: usize,
    /// Measurements per backend; the best is reported beside the median.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// PostgreSQL to measure too (a fresh schema is made in it and dropped after).
    #[arg(long, env = "IMAGEPLANE_BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A realistic stored operation: a finished (or running) disk create with its response.
fn sample(done: bool) -> (Resource, OperationRecord) {
    let disk = Disk {
        id: imageplane::ids::new_id(imageplane::ids::prefix::DISK),
        folder_id: "b1gstartupbenchfolder".into(),
        zone_id: "ru-central1-a".into(),
        size: 10 << 30,
        status: disk::Status::Ready as i32,
        created_at: Some(imageplane::model::operations::now()),
        ..Default::default()
    };
    let mut operation: Operation =
        imageplane::model::operations::start("Create disk", "anonymous", pack(&disk));
    if done {
        imageplane::model::operations::succeed(&mut operation, pack(&disk));
    }
    let resource = Resource::Disk { disk, os: None };
    let record = OperationRecord {
        operation,
        target: resource.reference(),
        work: Work::Copy { source: None },
    };
    (resource, record)
}

fn fill_sqlite(path: &Path, finished: usize, running: usize) {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute_batch("BEGIN").unwrap();
    {
        let mut operation = connection
            .prepare(
                "INSERT INTO operations (id, done, modified_at_ms, target_kind, target_id,
                     import_uri, owner, lease_until_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 'crashed-replica', 0, ?6)",
            )
            .unwrap();
        let mut resource = connection
            .prepare(
                "INSERT INTO resources (id, kind, folder_id, name, os, body)
                 VALUES (?1, ?2, ?3, '', NULL, ?4)",
            )
            .unwrap();
        for n in 0..finished + running {
            let (disk, record) = sample(n < finished);
            let row = imageplane::store::codec::OperationRow::from_record(&record);
            operation
                .execute(rusqlite::params![
                    row.id,
                    row.done,
                    row.modified_at_ms,
                    row.target_kind,
                    row.target_id,
                    row.body
                ])
                .unwrap();
            let row = imageplane::store::codec::ResourceRow::from_resource(&disk);
            resource
                .execute(rusqlite::params![row.id, row.kind, row.folder_id, row.body])
                .unwrap();
        }
    }
    connection.execute_batch("COMMIT").unwrap();
}

async fn fill_postgres(url: &str, finished: usize, running: usize) {
    let client = postgres::client(url).await;
    let (_, done_sample) = sample(true);
    let (_, running_sample) = sample(false);
    let done_body = prost::Message::encode_to_vec(&done_sample.operation);
    let running_body = prost::Message::encode_to_vec(&running_sample.operation);
    // Server-side generation: ids in the same time-ordered shape as the real ones.
    client
        .execute(
            "INSERT INTO operations (id, done, modified_at_ms, target_kind, target_id,
                 import_uri, owner, lease_until_ms, body)
             SELECT 'opr' || lpad(n::text, 17, '0'), n <= $1::bigint, 0, 3,
                    'fhm' || lpad(n::text, 17, '0'), NULL, 'crashed-replica', 0,
                    CASE WHEN n <= $1::bigint THEN $3::bytea ELSE $4::bytea END
             FROM generate_series(1, $1::bigint + $2::bigint) AS n",
            &[
                &(finished as i64),
                &(running as i64),
                &done_body,
                &running_body,
            ],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE").await.unwrap();
}

/// Opens the store and claims every orphan; returns how long that took and how many.
async fn open_and_recover(url: &DatabaseUrl) -> (Duration, usize) {
    let started = Instant::now();
    let store = store::open(url, Replica::new(Duration::from_secs(10)))
        .await
        .unwrap();
    let mut claimed = 0;
    loop {
        let batch = store.claim_orphans(256).await.unwrap().len();
        claimed += batch;
        if batch < 256 {
            break;
        }
    }
    let took = started.elapsed();
    // Hand them back so that the next round finds them again.
    drop(store);
    (took, claimed)
}

/// Time from exec to the announcement of `imageplane serve` on the data directory.
fn binary_start(data_dir: &Path) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_imageplane"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let took = started.elapsed();
    assert!(line.starts_with("imageplane listening on"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    took
}

fn summary(label: &str, mut times: Vec<Duration>, note: &str) {
    times.sort();
    println!(
        "{label:<22} best {:>7.1} ms   median {:>7.1} ms   {note}",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3
    );
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "start-up with {} finished and {} running operations stored",
            options.operations, options.running
        );
        let data_dir =
            std::env::temp_dir().join(format!("imageplane-startup-{}", std::process::id()));
        let sqlite = DatabaseUrl::default_in(&data_dir);
        drop(store::open(&sqlite, Replica::new(Duration::from_secs(10))).await.unwrap());
        let filling = Instant::now();
        fill_sqlite(&data_dir.join("imageplane.sqlite3"), options.operations, options.running);
        println!("(sqlite filled in {:.1} s)", filling.elapsed().as_secs_f64());
        let mut opens = Vec::new();
        let mut claimed = 0;
        for _ in 0..options.rounds {
            let (took, count) = open_and_recover(&sqlite).await;
            opens.push(took);
            claimed = claimed.max(count);
        }
        summary("sqlite open+recover", opens, &format!("(claimed {claimed} on the first round)"));
        let binary: Vec<Duration> = (0..options.rounds).map(|_| binary_start(&data_dir)).collect();
        summary("sqlite binary start", binary, "(exec to 'listening')");
        let _ = std::fs::remove_dir_all(&data_dir);

        if let Some(base_url) = &options.postgres_url {
            let client = postgres::client(base_url).await;
            let (schema, url) = postgres::fresh_schema(base_url, "startup").await;
            let postgres = DatabaseUrl::Postgres(url.clone());
            drop(store::open(&postgres, Replica::new(Duration::from_secs(10))).await.unwrap());
            let filling = Instant::now();
            fill_postgres(&url, options.operations, options.running).await;
            println!("(postgres filled in {:.1} s)", filling.elapsed().as_secs_f64());
            let mut opens = Vec::new();
            let mut claimed = 0;
            for _ in 0..options.rounds {
                // Each round's claims hold the leases; expire them for the next round.
                client
                    .batch_execute(&format!(
                        "UPDATE {schema}.operations SET lease_until_ms = 0 WHERE NOT done"
                    ))
                    .await
                    .unwrap();
                let (took, count) = open_and_recover(&postgres).await;
                opens.push(took);
                claimed = claimed.max(count);
            }
            summary("postgres open+recover", opens, &format!("(claimed {claimed})"));
            postgres::drop_schema(base_url, &schema).await;
        } else {
            println!("(PostgreSQL not measured: pass --postgres-url or set IMAGEPLANE_BENCH_DATABASE_URL)");
        }
    });
}
