//! The methods every resource kind's service shares, written once: Get, List, Update,
//! Delete, ListOperations and the access-binding methods. Each service's adapter says, by
//! implementing the small traits below for its generated request and response types,
//! where a request keeps its id, its list arguments or its update, and how a page is
//! answered; its methods then call these functions.

use super::{answer, start, start_checked};
use crate::domain::access::AccessChange;
use crate::domain::lifecycle::Update;
use crate::domain::listing::ListArgs;
use crate::domain::Catalog;
use crate::model::resource::{Kind, ResourceKind};
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use tonic::{Request, Response, Status};

/// A request about one resource (Get, Delete, ListOperations): its id.
pub trait Target {
    fn target(&self) -> &str;
}

/// A List request: its arguments.
pub trait ListRequest {
    fn list_args(self) -> ListArgs;
}

/// An Update request: the paths of its mask, and the update it asks for.
pub trait UpdateRequest {
    fn mask(&self) -> &[String];
    fn into_update(self) -> Update;
}

/// A ListOperations request: its page.
pub trait OperationsRequest: Target {
    fn page_size(&self) -> i64;
    fn page_token(&self) -> &str;
}

/// A page of a list answer: its items and the token of the next page.
pub trait Page<T> {
    fn page(items: Vec<T>, next_page_token: String) -> Self;
}

/// Get: the resource, as its kind's message.
pub async fn get<K, R>(catalog: &Catalog, request: Request<R>) -> Result<Response<K>, Status>
where
    K: Kind,
    R: Target + prost::Message + prost::Name,
{
    answer(catalog, request, |call, request| async move {
        catalog.get_typed::<K>(&call, request.target()).await
    })
    .await
}

/// List: one page of the kind's resources in a folder.
pub async fn list<K, R, P>(catalog: &Catalog, request: Request<R>) -> Result<Response<P>, Status>
where
    K: Kind,
    R: ListRequest + prost::Message + prost::Name,
    P: Page<K>,
{
    answer(catalog, request, |call, request| async move {
        let (items, next_page_token) = catalog.list_typed::<K>(&call, request.list_args()).await?;
        Ok(P::page(items, next_page_token))
    })
    .await
}

/// Update: the fields its mask names, validated and changed; done when stored.
pub async fn update<R>(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<R>,
) -> Result<Response<Operation>, Status>
where
    R: UpdateRequest + prost::Message + prost::Name,
{
    start_checked(
        catalog,
        request,
        |request| catalog.validate_update(kind, request, request.mask()),
        |call, request| async move { catalog.update(&call, kind, request.into_update()).await },
    )
    .await
}

/// Delete: the resource is DELETING until its operation ends.
pub async fn delete<R>(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<R>,
) -> Result<Response<Operation>, Status>
where
    R: Target + prost::Message + prost::Name,
{
    start(catalog, request, |call, request| async move {
        catalog.delete(&call, kind, request.target()).await
    })
    .await
}

/// ListOperations: the resource's operations, newest first.
pub async fn list_operations<R, P>(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<R>,
) -> Result<Response<P>, Status>
where
    R: OperationsRequest + prost::Message + prost::Name,
    P: Page<Operation>,
{
    answer(catalog, request, |call, request| async move {
        let (operations, next_page_token) = catalog
            .list_operations(
                &call,
                kind,
                request.target(),
                request.page_size(),
                request.page_token(),
            )
            .await?;
        Ok(P::page(operations, next_page_token))
    })
    .await
}

/// ListAccessBindings of a resource of `kind`.
pub async fn list_access_bindings(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<ListAccessBindingsRequest>,
) -> Result<Response<ListAccessBindingsResponse>, Status> {
    answer(catalog, request, |call, request| async move {
        let (access_bindings, next_page_token) = catalog
            .list_access_bindings(
                &call,
                kind,
                &request.resource_id,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(ListAccessBindingsResponse {
            access_bindings,
            next_page_token,
        })
    })
    .await
}

/// SetAccessBindings of a resource of `kind`.
pub async fn set_access_bindings(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<SetAccessBindingsRequest>,
) -> Result<Response<Operation>, Status> {
    start(catalog, request, |call, request| async move {
        let change = AccessChange::Set(request.access_bindings);
        catalog
            .change_access_bindings(&call, kind, &request.resource_id, change)
            .await
    })
    .await
}

/// UpdateAccessBindings of a resource of `kind`.
pub async fn update_access_bindings(
    catalog: &Catalog,
    kind: ResourceKind,
    request: Request<UpdateAccessBindingsRequest>,
) -> Result<Response<Operation>, Status> {
    start(catalog, request, |call, request| async move {
        let change = AccessChange::Update(request.access_binding_deltas);
        catalog
            .change_access_bindings(&call, kind, &request.resource_id, change)
            .await
    })
    .await
}

/// The paths of an update mask.
pub fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

/// The paths of an update mask, borrowed.
pub fn mask_of(mask: &Option<prost_types::FieldMask>) -> &[String] {
    mask.as_ref().map_or(&[], |mask| mask.paths.as_slice())
}
