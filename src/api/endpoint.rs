//! endpoint.ApiEndpointService: tells the official SDKs that every service they look up
//! lives here: at `--advertise-address` when set, else at the host and port the client
//! used to reach this server (its `:authority`), so discovery works through any name,
//! port mapping or tunnel that reaches it.

use crate::domain::call::CallContext;
use crate::domain::Catalog;
use crate::error::{excerpt, Error};
use crate::pb::yandex::cloud::endpoint::api_endpoint_service_server::ApiEndpointService;
use crate::pb::yandex::cloud::endpoint::{
    ApiEndpoint, GetApiEndpointRequest, ListApiEndpointsRequest, ListApiEndpointsResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The endpoint ids the SDKs and tools look up for the services here (and for those
/// they reach on the way: IAM for tokens, resource-manager for folders), all answered
/// with this server's address.
pub const ENDPOINT_IDS: &[&str] = &[
    "baremetal",
    "compute",
    "endpoint",
    "iam",
    "operation",
    "resource-manager",
];

pub struct EndpointApi {
    /// `--advertise-address`, if set.
    pub advertise_address: Option<String>,
    /// The bound address: the answer when neither the flag nor the client names one, and
    /// the port of an authority that has none.
    pub local_address: std::net::SocketAddr,
    /// For request validation.
    pub catalog: Arc<Catalog>,
}

impl EndpointApi {
    /// Where the caller should reach this server.
    fn address(&self, call: &CallContext) -> String {
        if let Some(address) = &self.advertise_address {
            return address.clone();
        }
        let authority = call
            .authority
            .as_deref()
            .and_then(|authority| authority.parse::<http::uri::Authority>().ok());
        match authority {
            // A client that names a host without a port (e.g. one overriding the TLS name)
            // reached this port: an address without one would send it to 443.
            Some(authority) if authority.port_u16().is_none() => {
                format!("{}:{}", authority.host(), self.local_address.port())
            }
            Some(authority) => authority.as_str().to_string(),
            None => self.local_address.to_string(),
        }
    }
}

fn endpoint(id: &str, address: &str) -> ApiEndpoint {
    ApiEndpoint {
        id: id.to_string(),
        address: address.to_string(),
    }
}

#[tonic::async_trait]
impl ApiEndpointService for EndpointApi {
    async fn get(
        &self,
        request: Request<GetApiEndpointRequest>,
    ) -> Result<Response<ApiEndpoint>, Status> {
        let (call, request) = super::accept(&self.catalog, request)?;
        let address = self.address(&call);
        let id = request.api_endpoint_id;
        if !ENDPOINT_IDS.contains(&id.as_str()) {
            return Err(Error::NotFound(format!("ApiEndpoint {} not found", excerpt(&id))).into());
        }
        Ok(Response::new(endpoint(&id, &address)))
    }

    async fn list(
        &self,
        request: Request<ListApiEndpointsRequest>,
    ) -> Result<Response<ListApiEndpointsResponse>, Status> {
        let (call, _request) = super::accept(&self.catalog, request)?;
        let address = self.address(&call);
        Ok(Response::new(ListApiEndpointsResponse {
            endpoints: ENDPOINT_IDS
                .iter()
                .map(|id| endpoint(id, &address))
                .collect(),
            next_page_token: String::new(),
        }))
    }
}
