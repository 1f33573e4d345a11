//! endpoint.ApiEndpointService: tells the official SDKs that every service they look up
//! lives at this server's advertised address.

use crate::domain::Catalog;
use crate::error::{excerpt, Error};
use crate::pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointService;
use crate::pb::yandex::cloud::endpoint::{
    ApiEndpoint, GetApiEndpointRequest, ListApiEndpointsRequest, ListApiEndpointsResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The endpoint ids the SDKs ask for, all served here.
pub const ENDPOINT_IDS: &[&str] = &["baremetal", "compute", "endpoint", "iam", "operation"];

pub struct EndpointApi {
    /// The `host:port` clients should use to reach this server.
    pub advertised_address: String,
    /// For request validation.
    pub catalog: Arc<Catalog>,
}

impl EndpointApi {
    fn endpoint(&self, id: &str) -> ApiEndpoint {
        ApiEndpoint {
            id: id.to_string(),
            address: self.advertised_address.clone(),
        }
    }
}

#[tonic::async_trait]
impl ApiEndpointService for EndpointApi {
    async fn get(
        &self,
        request: Request<GetApiEndpointRequest>,
    ) -> Result<Response<ApiEndpoint>, Status> {
        let request = request.into_inner();
        self.catalog.validate(&request)?;
        let id = request.api_endpoint_id;
        if !ENDPOINT_IDS.contains(&id.as_str()) {
            return Err(Error::NotFound(format!("ApiEndpoint {} not found", excerpt(&id))).into());
        }
        Ok(Response::new(self.endpoint(&id)))
    }

    async fn list(
        &self,
        _request: Request<ListApiEndpointsRequest>,
    ) -> Result<Response<ListApiEndpointsResponse>, Status> {
        Ok(Response::new(ListApiEndpointsResponse {
            endpoints: ENDPOINT_IDS.iter().map(|id| self.endpoint(id)).collect(),
            next_page_token: String::new(),
        }))
    }
}
