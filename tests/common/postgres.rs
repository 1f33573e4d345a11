//! The PostgreSQL the tests may use, named by `IMAGEPLANE_TEST_DATABASE_URL`, and fresh
//! schemas in it so that tests never see each other's rows. The benchmarks include this
//! file too (`#[path]`), for their schemas.

/// The variable that names the PostgreSQL database for the tests.
pub const VARIABLE: &str = "IMAGEPLANE_TEST_DATABASE_URL";

/// The base URL, or `None` after a warning on stderr that `what` did not run.
pub fn base_url(what: &str) -> Option<String> {
    match std::env::var(VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "WARNING: {VARIABLE} is not set: {what} did NOT run against PostgreSQL \
                 (set it to e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            None
        }
    }
}

/// A connected client (its connection runs on the current runtime).
pub async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to PostgreSQL at {url}: {error}"));
    tokio::spawn(connection);
    client
}

/// Creates a fresh schema; returns its name and a URL whose connections use it.
pub async fn fresh_schema(base_url: &str, label: &str) -> (String, String) {
    let schema = format!("imageplane_{label}_{:016x}", rand::random::<u64>());
    client(base_url)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
    (schema, url)
}

/// Drops a schema made by [`fresh_schema`].
pub async fn drop_schema(base_url: &str, schema: &str) {
    client(base_url)
        .await
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
