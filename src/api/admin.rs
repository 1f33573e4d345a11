//! imageplane.v1.AdminService: imageplane's own service for test suites (reset, operation
//! delays, finishing operations), adapted to [`Admin`], which holds its rules.

use crate::domain::admin::Admin;
use crate::domain::Catalog;
use crate::pb::imageplane::v1::admin_service_server::AdminService;
use crate::pb::imageplane::v1::{
    FinishOperationRequest, GetOperationTimingRequest, OperationTiming, ResetRequest, ResetResponse,
};
use crate::pb::operation::Operation;
use crate::work::timing::Timing;
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

/// The delays as the API spells them.
fn timing_message(timing: &Timing) -> OperationTiming {
    OperationTiming {
        default_delay: timing.default_delay().to_string(),
        kinds: timing
            .kinds()
            .map(|(kind, delay)| (kind.to_string(), delay.to_string()))
            .collect(),
    }
}

/// The delays' text form (`Timing::parse`) of the API's message: the default first.
fn timing_text(message: &OperationTiming) -> String {
    let default = match message.default_delay.trim() {
        "" => "0s",
        delay => delay,
    };
    std::iter::once(default.to_string())
        .chain(
            message
                .kinds
                .iter()
                .map(|(kind, delay)| format!("{kind}={delay}")),
        )
        .collect::<Vec<_>>()
        .join(",")
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

    async fn get_operation_timing(
        &self,
        request: Request<GetOperationTimingRequest>,
    ) -> Result<Response<OperationTiming>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            Ok(timing_message(&self.admin.timing(&call)?))
        })
        .await
    }

    async fn set_operation_timing(
        &self,
        request: Request<OperationTiming>,
    ) -> Result<Response<OperationTiming>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            let timing = self.admin.set_timing(&call, &timing_text(&request))?;
            Ok(timing_message(&timing))
        })
        .await
    }

    async fn finish_operation(
        &self,
        request: Request<FinishOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            let error = request.error.map(|error| crate::pb::google::rpc::Status {
                code: error.code,
                message: error.message,
                details: Vec::new(),
            });
            self.admin.finish(&call, &request.operation_id, error).await
        })
        .await
    }
}
