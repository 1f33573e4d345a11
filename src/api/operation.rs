//! operation.OperationService: Get and Cancel, over every kind of operation.

use crate::domain::Catalog;
use crate::pb::operation::operation_service_server::OperationService;
use crate::pb::operation::{CancelOperationRequest, GetOperationRequest, Operation};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct OperationApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl OperationService for OperationApi {
    async fn get(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.catalog.operation(&call, &request.operation_id).await
        })
        .await
    }

    async fn cancel(
        &self,
        request: Request<CancelOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.catalog.cancel(&call, &request.operation_id).await
        })
        .await
    }
}
