//! imageplane.v1.IntrospectionService: what the server holds and does (its facts, the
//! folders in use, running and ended operations with import progress), adapted to
//! [`Introspection`], which holds its rules. The console reads it; so may anyone.

use crate::domain::introspection::Introspection;
use crate::domain::Catalog;
use crate::pb::imageplane::v1::introspection_service_server::IntrospectionService;
use crate::pb::imageplane::v1::{
    GetServerRequest, ListFoldersRequest, ListFoldersResponse, ListOperationsRequest,
    ListOperationsResponse, ServerInfo,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct IntrospectionApi {
    pub catalog: Arc<Catalog>,
    pub introspection: Arc<Introspection>,
}

#[tonic::async_trait]
impl IntrospectionService for IntrospectionApi {
    async fn get_server(
        &self,
        request: Request<GetServerRequest>,
    ) -> Result<Response<ServerInfo>, Status> {
        super::answer(&self.catalog, request, |call, _| async move {
            Ok(self.introspection.server(&call))
        })
        .await
    }

    async fn list_folders(
        &self,
        request: Request<ListFoldersRequest>,
    ) -> Result<Response<ListFoldersResponse>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            let (folders, next_page_token) = self
                .introspection
                .folders(&call, request.page_size, &request.page_token)
                .await?;
            Ok(ListFoldersResponse {
                folders,
                next_page_token,
            })
        })
        .await
    }

    async fn list_operations(
        &self,
        request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.introspection
                .operations(
                    &call,
                    &request.folder_id,
                    &request.resource_id,
                    request.page_size,
                )
                .await
        })
        .await
    }
}
