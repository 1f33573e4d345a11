//! imageplane.v1.AdminService: imageplane's own service for test suites (reset), adapted
//! to [`Admin`], which holds its rules.

use crate::domain::admin::Admin;
use crate::domain::Catalog;
use crate::pb::imageplane::v1::admin_service_server::AdminService;
use crate::pb::imageplane::v1::{ResetRequest, ResetResponse};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AdminApi {
    pub catalog: Arc<Catalog>,
    pub admin: Arc<Admin>,
}

/// A count as the API's int64.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn reset(
        &self,
        request: Request<ResetRequest>,
    ) -> Result<Response<ResetResponse>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            let counts = self.admin.reset(&call).await?;
            Ok(ResetResponse {
                resources_removed: count(counts.resources_removed),
                operations_removed: count(counts.operations_removed),
                resources_seeded: count(counts.resources_seeded),
            })
        })
        .await
    }
}
