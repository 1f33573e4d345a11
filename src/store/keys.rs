//! [`Keys`] of the [`SqlStore`]: idempotency keys (stored with their operation by
//! `resources`), issued IAM tokens by digest, and the key that signs page tokens.

use super::sql::limit as limit_value;
use super::sql::Tx;
use super::{IssuedToken, Keys, SqlStore, StoreError, StoredKey};
use async_trait::async_trait;

/// The name under which the page-token key is kept in `settings`.
const PAGE_KEY: &str = "page-token-key";

#[async_trait]
impl Keys for SqlStore {
    async fn idempotency_key(
        &self,
        subject: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        let parameters = vec![subject.into(), key.into()];
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move {
                    let mut rows = tx
                        .query(
                            "SELECT fingerprint, operation_id FROM idempotency_keys
                             WHERE subject = $1 AND key = $2",
                            parameters,
                        )
                        .await?;
                    let Some(row) = rows.first_mut() else {
                        return Ok(None);
                    };
                    Ok(Some(StoredKey {
                        fingerprint: row.text(0)?,
                        operation_id: row.text(1)?,
                    }))
                })
            }))
            .await
    }

    async fn put_token(&self, token: &IssuedToken) -> Result<(), StoreError> {
        let parameters = vec![
            token.sha256.clone().into(),
            token.subject.clone().into(),
            token.folders_column().into(),
            token.expires_at_ms.into(),
        ];
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO iam_tokens (token_sha256, subject, folders, expires_at_ms)
                         VALUES ($1, $2, $3, $4)",
                        parameters,
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn token(&self, sha256: &str) -> Result<Option<IssuedToken>, StoreError> {
        let sha256 = sha256.to_string();
        self.database
            .read(Box::new(move |tx| {
                Box::pin(async move { select_token(tx, sha256).await })
            }))
            .await
    }

    async fn expire_token(
        &self,
        sha256: &str,
        at_ms: i64,
    ) -> Result<Option<IssuedToken>, StoreError> {
        let sha256 = sha256.to_string();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "UPDATE iam_tokens SET expires_at_ms = $2
                         WHERE token_sha256 = $1 AND expires_at_ms > $2",
                        vec![sha256.clone().into(), at_ms.into()],
                    )
                    .await?;
                    select_token(tx, sha256).await
                })
            }))
            .await
    }

    async fn purge_keys_and_tokens(
        &self,
        keys_before_ms: i64,
        tokens_before_ms: i64,
        limit_to: usize,
    ) -> Result<usize, StoreError> {
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    let (keys, tokens) = futures_util::try_join!(
                        tx.execute(
                            "DELETE FROM idempotency_keys WHERE (subject, key) IN (
                                 SELECT subject, key FROM idempotency_keys
                                 WHERE created_at_ms < $1 LIMIT $2)",
                            vec![keys_before_ms.into(), limit_value(limit_to)],
                        ),
                        tx.execute(
                            "DELETE FROM iam_tokens WHERE token_sha256 IN (
                                 SELECT token_sha256 FROM iam_tokens
                                 WHERE expires_at_ms < $1 LIMIT $2)",
                            vec![tokens_before_ms.into(), limit_value(limit_to)],
                        ),
                    )?;
                    Ok(usize::try_from(keys + tokens).unwrap_or(usize::MAX))
                })
            }))
            .await
    }

    async fn page_key(&self) -> Result<Vec<u8>, StoreError> {
        let fresh: [u8; 32] = rand::random();
        self.database
            .write(Box::new(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO settings (name, value) VALUES ($1, $2)
                         ON CONFLICT (name) DO NOTHING",
                        vec![PAGE_KEY.into(), fresh.to_vec().into()],
                    )
                    .await?;
                    let mut rows = tx
                        .query(
                            "SELECT value FROM settings WHERE name = $1",
                            vec![PAGE_KEY.into()],
                        )
                        .await?;
                    match rows.first_mut() {
                        Some(row) => row.bytes(0),
                        None => Err(StoreError::Corrupt("the page-token key is missing".into())),
                    }
                })
            }))
            .await
    }
}

/// The issued token of this digest, as stored.
async fn select_token(tx: &dyn Tx, sha256: String) -> Result<Option<IssuedToken>, StoreError> {
    let mut rows = tx
        .query(
            "SELECT subject, folders, expires_at_ms FROM iam_tokens WHERE token_sha256 = $1",
            vec![sha256.clone().into()],
        )
        .await?;
    let Some(row) = rows.first_mut() else {
        return Ok(None);
    };
    Ok(Some(IssuedToken {
        sha256,
        subject: row.text(0)?,
        folders: IssuedToken::folders_from_column(&row.text(1)?),
        expires_at_ms: row.i64(2)?,
    }))
}
