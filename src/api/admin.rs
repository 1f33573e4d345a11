//! imageplane.v1.AdminService: imageplane's own service for test suites (reset, state
//! snapshots, operation delays, finishing operations, faults), adapted to [`Admin`],
//! which holds its rules. Snapshot files travel as streams of `google.api.HttpBody`.

use crate::domain::admin::{Admin, FaultRequest};
use crate::domain::Catalog;
use crate::error::Error;
use crate::faults::{Firing, Rule, Target};
use crate::pb::google::api::HttpBody;
use crate::pb::imageplane::v1::admin_service_server::AdminService;
use crate::pb::imageplane::v1::{
    fault, ClearFaultsRequest, ClearFaultsResponse, DeleteFaultRequest, DeleteFaultResponse,
    ExportStateRequest, Fault, FinishOperationRequest, GetOperationTimingRequest,
    ImportStateResponse, ListFaultsRequest, ListFaultsResponse, OperationTiming, ResetRequest,
    ResetResponse,
};
use crate::pb::int64;
use crate::pb::operation::Operation;
use crate::store::snapshot;
use crate::work::timing::Timing;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AdminApi {
    pub catalog: Arc<Catalog>,
    pub admin: Arc<Admin>,
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

/// A fault rule as the API spells it.
fn fault_message(rule: &Rule) -> Fault {
    let (times, probability) = match rule.firing {
        Firing::Times(left) => (int64(left), 0.0),
        Firing::Always => (0, 0.0),
        Firing::Probability(probability) => (0, probability),
    };
    Fault {
        id: rule.id.clone(),
        target: Some(match &rule.target {
            Target::Method(path) => fault::Target::Method(path.trim_start_matches('/').into()),
            Target::Operation(kind) => fault::Target::Operation(kind.clone()),
        }),
        code: rule
            .code
            .map(|code| code.name().to_string())
            .unwrap_or_default(),
        message: rule.message.clone(),
        times,
        probability,
        delay: match rule.delay.is_zero() {
            true => String::new(),
            false => humantime::format_duration(rule.delay).to_string(),
        },
    }
}

/// The domain's request for a fault rule.
fn fault_request(fault: Fault) -> FaultRequest {
    let (method, operation) = match fault.target {
        Some(fault::Target::Method(method)) => (Some(method), None),
        Some(fault::Target::Operation(kind)) => (None, Some(kind)),
        None => (None, None),
    };
    FaultRequest {
        method,
        operation,
        code: fault.code,
        message: fault.message,
        times: fault.times,
        probability: fault.probability,
        delay: fault.delay,
    }
}

/// The stream of a snapshot file's parts.
type StateParts =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HttpBody, Status>> + Send>>;

/// The parts a snapshot file is sent in.
const STATE_PART_BYTES: usize = 1 << 20;

/// A snapshot file as the parts of a stream of `google.api.HttpBody`, the media type in
/// the first.
fn state_parts(file: &[u8]) -> Vec<Result<HttpBody, Status>> {
    crate::pb::http_body_parts(snapshot::CONTENT_TYPE, file, STATE_PART_BYTES)
        .into_iter()
        .map(Ok)
        .collect()
}

/// The parts of an uploaded snapshot file, joined; at most
/// [`snapshot::MAX_SNAPSHOT_BYTES`].
async fn joined(mut parts: tonic::Streaming<HttpBody>) -> Result<Vec<u8>, Error> {
    let mut file = Vec::new();
    while let Some(part) = parts.message().await.map_err(|status| {
        let message = format!("the snapshot upload failed: {}", status.message());
        match status.code() {
            tonic::Code::ResourceExhausted => Error::ResourceExhausted(message),
            tonic::Code::DeadlineExceeded => Error::DeadlineExceeded(message),
            tonic::Code::Cancelled => Error::Cancelled(message),
            _ => Error::InvalidArgument(message),
        }
    })? {
        if file.len() + part.data.len() > snapshot::MAX_SNAPSHOT_BYTES {
            return Err(Error::InvalidArgument(format!(
                "the state snapshot is larger than {} MiB, the most an import takes",
                snapshot::MAX_SNAPSHOT_BYTES >> 20
            )));
        }
        file.extend_from_slice(&part.data);
    }
    Ok(file)
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn export_state(
        &self,
        request: Request<ExportStateRequest>,
    ) -> Result<Response<StateParts>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            let file = self.admin.export_state(&call).await?;
            Ok(Box::pin(tokio_stream::iter(state_parts(&file))) as StateParts)
        })
        .await
    }

    async fn import_state(
        &self,
        request: Request<tonic::Streaming<HttpBody>>,
    ) -> Result<Response<ImportStateResponse>, Status> {
        let outcome = async {
            let (call, parts) = super::accept_checked(request, |_| Ok(()))?;
            self.admin.check(&call.caller)?;
            let file = joined(parts).await?;
            let counts = self.admin.import_state(&call, file).await?;
            Ok(ImportStateResponse {
                resources_removed: int64(counts.resources_removed),
                operations_removed: int64(counts.operations_removed),
                resources_imported: int64(counts.resources),
                operations_imported: int64(counts.operations),
                idempotency_keys_imported: int64(counts.idempotency_keys),
                iam_tokens_imported: int64(counts.iam_tokens),
                snapshot_schema: counts.schema,
            })
        };
        super::respond(outcome.await)
    }

    async fn reset(
        &self,
        request: Request<ResetRequest>,
    ) -> Result<Response<ResetResponse>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            let counts = self.admin.reset(&call).await?;
            Ok(ResetResponse {
                resources_removed: int64(counts.resources_removed),
                operations_removed: int64(counts.operations_removed),
                resources_seeded: int64(counts.resources_seeded),
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
            let default = Some(request.default_delay.trim()).filter(|delay| !delay.is_empty());
            let kinds: Vec<(&str, &str)> = request
                .kinds
                .iter()
                .map(|(kind, delay)| (kind.as_str(), delay.as_str()))
                .collect();
            let timing = self.admin.set_timing(&call, default, &kinds)?;
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

    async fn add_fault(&self, request: Request<Fault>) -> Result<Response<Fault>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            Ok(fault_message(
                &self.admin.add_fault(&call, fault_request(request))?,
            ))
        })
        .await
    }

    async fn list_faults(
        &self,
        request: Request<ListFaultsRequest>,
    ) -> Result<Response<ListFaultsResponse>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            Ok(ListFaultsResponse {
                faults: self
                    .admin
                    .faults(&call)?
                    .iter()
                    .map(fault_message)
                    .collect(),
            })
        })
        .await
    }

    async fn delete_fault(
        &self,
        request: Request<DeleteFaultRequest>,
    ) -> Result<Response<DeleteFaultResponse>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.admin.delete_fault(&call, &request.fault_id)?;
            Ok(DeleteFaultResponse {})
        })
        .await
    }

    async fn clear_faults(
        &self,
        request: Request<ClearFaultsRequest>,
    ) -> Result<Response<ClearFaultsResponse>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            Ok(ClearFaultsResponse {
                removed: int64(self.admin.clear_faults(&call)? as u64),
            })
        })
        .await
    }
}
