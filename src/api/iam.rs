//! iam.v1 IamTokenService.Create: issues a local token for any OAuth token or JWT, so SDKs
//! configured with credentials can start. imageplane does not check credentials (yet):
//! every caller is the same anonymous subject.

use crate::domain::Catalog;
use crate::pb::yandex::cloud::iam::v1::iam_token_service_server::IamTokenService;
use crate::pb::yandex::cloud::iam::v1::{CreateIamTokenRequest, CreateIamTokenResponse};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tonic::{Request, Response, Status};

/// How long an issued token is said to live (as in Yandex Cloud: 12 hours).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

pub struct IamApi {
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl IamTokenService for IamApi {
    async fn create(
        &self,
        request: Request<CreateIamTokenRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        let request = request.into_inner();
        self.catalog.validate(&request).map_err(Status::from)?;
        let suffix = crate::ids::new_id("tok");
        Ok(Response::new(CreateIamTokenResponse {
            iam_token: format!("t1.imageplane.{suffix}"),
            expires_at: Some(prost_types::Timestamp::from(
                SystemTime::now() + TOKEN_LIFETIME,
            )),
        }))
    }
}
