//! The access-binding methods every compute service has (ListAccessBindings,
//! SetAccessBindings, UpdateAccessBindings), for the kind of that service.

use crate::domain::access::AccessChange;
use crate::domain::call::CallContext;
use crate::domain::Catalog;
use crate::error::Error;
use crate::model::resource::ResourceKind;
use crate::pb::operation::Operation;
use crate::pb::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};

pub async fn list(
    catalog: &Catalog,
    call: &CallContext,
    kind: ResourceKind,
    request: ListAccessBindingsRequest,
) -> Result<ListAccessBindingsResponse, Error> {
    let (access_bindings, next_page_token) = catalog
        .list_access_bindings(
            call,
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
}

pub async fn set(
    catalog: &Catalog,
    call: &CallContext,
    kind: ResourceKind,
    request: SetAccessBindingsRequest,
) -> Result<Operation, Error> {
    catalog
        .change_access_bindings(
            call,
            kind,
            &request.resource_id,
            AccessChange::Set(request.access_bindings),
        )
        .await
}

pub async fn update(
    catalog: &Catalog,
    call: &CallContext,
    kind: ResourceKind,
    request: UpdateAccessBindingsRequest,
) -> Result<Operation, Error> {
    catalog
        .change_access_bindings(
            call,
            kind,
            &request.resource_id,
            AccessChange::Update(request.access_binding_deltas),
        )
        .await
}
