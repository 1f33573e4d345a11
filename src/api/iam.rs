//! iam.v1 IamTokenService: Create exchanges an OAuth token or a service account's JWT for
//! an IAM token, CreateForServiceAccount issues one for a service account to a caller who
//! may, Revoke ends one (`domain::identity::Identities` has the rules).

use crate::domain::identity::Identities;
use crate::domain::Catalog;
use crate::error::Error;
use crate::pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenService;
use crate::pb::yandex::cloud::iam::v1::{
    CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, CreateIamTokenResponse,
    RevokeIamTokenRequest, RevokeIamTokenResponse,
};
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};

pub struct IamApi {
    /// For request validation.
    pub catalog: Arc<Catalog>,
    pub identities: Arc<Identities>,
}

fn token_response((iam_token, expires_at): (String, SystemTime)) -> CreateIamTokenResponse {
    CreateIamTokenResponse {
        iam_token,
        expires_at: Some(prost_types::Timestamp::from(expires_at)),
    }
}

#[tonic::async_trait]
impl IamTokenService for IamApi {
    async fn create(
        &self,
        request: Request<CreateIamTokenRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        super::answer(&self.catalog, request, |_call, request| async move {
            let identity = request.identity.ok_or_else(|| {
                Error::invalid_field("identity", "an OAuth token or a JWT is required")
            })?;
            self.identities.issue(&identity).await.map(token_response)
        })
        .await
    }

    async fn create_for_service_account(
        &self,
        request: Request<CreateIamTokenForServiceAccountRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        super::answer(&self.catalog, request, |call, request| async move {
            self.identities
                .issue_for_service_account(&call.caller, &request.service_account_id)
                .await
                .map(token_response)
        })
        .await
    }

    async fn revoke(
        &self,
        request: Request<RevokeIamTokenRequest>,
    ) -> Result<Response<RevokeIamTokenResponse>, Status> {
        super::answer(&self.catalog, request, |_call, request| async move {
            let subject_id = self.identities.revoke(&request.iam_token).await?;
            Ok(RevokeIamTokenResponse { subject_id })
        })
        .await
    }
}
