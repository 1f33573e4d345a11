//! iam.v1 IamTokenService.Create: exchanges an OAuth token or a service account's JWT for
//! an IAM token that lives 12 hours (`domain::identity::Identities::issue` has the rules).

use crate::domain::identity::Identities;
use crate::domain::Catalog;
use crate::error::Error;
use crate::pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenService;
use crate::pb::yandex::cloud::iam::v1::{CreateIamTokenRequest, CreateIamTokenResponse};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct IamApi {
    /// For request validation.
    pub catalog: Arc<Catalog>,
    pub identities: Arc<Identities>,
}

#[tonic::async_trait]
impl IamTokenService for IamApi {
    async fn create(
        &self,
        request: Request<CreateIamTokenRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        let (_call, request) = super::accept(&self.catalog, request)?;
        let identity = request.identity.ok_or_else(|| {
            Error::invalid_field("identity", "an OAuth token or a JWT is required")
        })?;
        let (iam_token, expires_at) = self.identities.issue(&identity).await?;
        Ok(Response::new(CreateIamTokenResponse {
            iam_token,
            expires_at: Some(prost_types::Timestamp::from(expires_at)),
        }))
    }
}
