//! The route table, built at start from the `google.api.http` rules of every method of
//! every service in the descriptor set: no route is written by hand.
//!
//! A route is an HTTP method, a path template, what the body carries (nothing, the whole
//! request `*`, or one field) and the RPC it calls. `additional_bindings` add routes. One
//! rule is imageplane's own: `OperationService.Cancel` also answers POST, since its GET
//! changes state and some clients refuse to send such a GET.

use super::template::{BadSegment, Bindings, Template};
use crate::pb::google::api::{http_rule::Pattern, HttpRule};
use http::Method;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MethodDescriptor};

/// RPCs that answer POST beside their rule's GET.
const ALSO_POST: &[&str] = &["yandex.cloud.operation.OperationService.Cancel"];

/// What the HTTP body of a route carries.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// No body: every field not in the path comes from query parameters.
    None,
    /// `body: "*"`: the whole request, except the fields in the path.
    Whole,
    /// `body: "field"`: that message field; the rest from query parameters.
    Field(FieldDescriptor),
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub template: Template,
    pub body: BodyRule,
    pub rpc: MethodDescriptor,
    /// The gRPC path, `/yandex.cloud.compute.v1.ImageService/Create`.
    pub grpc_path: String,
    /// How the access log and errors name it, `POST /compute/v1/images`.
    pub display: String,
}

/// What looking up a request found.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Route, Bindings),
    /// The path matches routes, none with this method; these are the methods it has.
    WrongMethod(Vec<Method>),
    /// A route matched but a path segment is unusable.
    BadPath(BadSegment),
    NotFound,
}

/// Every route of the API.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Builds the routes of every service in `pool`.
    pub fn build(pool: &DescriptorPool, services: &[&str]) -> Result<RouteTable, String> {
        let http = pool
            .get_extension_by_name("google.api.http")
            .ok_or("the descriptor set lacks google.api.http")?;
        let mut routes = Vec::new();
        for name in services {
            let service = pool
                .get_service_by_name(name)
                .ok_or_else(|| format!("the descriptor set has no service {name}"))?;
            for rpc in service.methods() {
                let options = rpc.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let rule: HttpRule = options
                    .get_extension(&http)
                    .as_message()
                    .ok_or("google.api.http is not a message")?
                    .transcode_to()
                    .map_err(|error| format!("{}: {error}", rpc.full_name()))?;
                let mut rules = vec![rule.clone()];
                rules.extend(rule.additional_bindings.iter().cloned());
                for rule in rules {
                    routes.extend(routes_of(&rpc, &rule)?);
                }
            }
        }
        Ok(RouteTable { routes })
    }

    /// Every route, in the order of the descriptors.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request: among the templates that match the path, the most
    /// specific ones, then the one with the request's method. HEAD finds GET's route;
    /// wherever GET is allowed, HEAD is too.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let mut best: Option<(bool, usize)> = None;
        let mut candidates: Vec<(&Route, Result<Bindings, BadSegment>)> = Vec::new();
        for route in &self.routes {
            let Some(matched) = route.template.matches(path) else {
                continue;
            };
            let specificity = route.template.specificity();
            if best.is_some_and(|best| specificity < best) {
                continue;
            }
            if best.is_some_and(|best| specificity > best) {
                candidates.clear();
            }
            best = Some(specificity);
            candidates.push((route, matched));
        }
        if candidates.is_empty() {
            return Lookup::NotFound;
        }
        let Some(position) = candidates
            .iter()
            .position(|(route, _)| route.method == method)
        else {
            let mut allowed: Vec<Method> = candidates
                .iter()
                .map(|(route, _)| route.method.clone())
                .collect();
            if allowed.contains(&Method::GET) {
                allowed.push(Method::HEAD);
            }
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            allowed.dedup();
            return Lookup::WrongMethod(allowed);
        };
        let (route, matched) = candidates.swap_remove(position);
        match matched {
            Ok(bindings) => Lookup::Found(route, bindings),
            Err(bad) => Lookup::BadPath(bad),
        }
    }
}

/// The routes of one rule of one RPC.
fn routes_of(rpc: &MethodDescriptor, rule: &HttpRule) -> Result<Vec<Route>, String> {
    let name = rpc.full_name();
    let (method, path) = match &rule.pattern {
        Some(Pattern::Get(path)) => (Method::GET, path),
        Some(Pattern::Post(path)) => (Method::POST, path),
        Some(Pattern::Patch(path)) => (Method::PATCH, path),
        Some(Pattern::Delete(path)) => (Method::DELETE, path),
        Some(Pattern::Put(path)) => (Method::PUT, path),
        Some(Pattern::Custom(custom)) => (
            Method::from_bytes(custom.kind.as_bytes())
                .map_err(|_| format!("{name}: bad HTTP method {:?}", custom.kind))?,
            &custom.path,
        ),
        None => return Err(format!("{name}: an http rule without a pattern")),
    };
    if !rule.response_body.is_empty() {
        return Err(format!("{name}: response_body is not served"));
    }
    let template = Template::parse(path).map_err(|error| format!("{name}: {error}"))?;
    let input = rpc.input();
    for variable in template.variables() {
        field_at(&input, variable).map_err(|error| format!("{name}: {error}"))?;
    }
    let body = match rule.body.as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        field => {
            let descriptor = input
                .get_field_by_name(field)
                .filter(|field| matches!(field.kind(), Kind::Message(_)) && !field.is_list())
                .ok_or_else(|| format!("{name}: body {field:?} is not a message field"))?;
            BodyRule::Field(descriptor)
        }
    };
    let grpc_path = format!("/{}/{}", rpc.parent_service().full_name(), rpc.name());
    let mut methods = vec![method];
    if ALSO_POST.contains(&name) && methods[0] == Method::GET {
        methods.push(Method::POST);
    }
    Ok(methods
        .into_iter()
        .map(|method| Route {
            display: format!("{method} {path}"),
            method,
            template: template.clone(),
            body: body.clone(),
            rpc: rpc.clone(),
            grpc_path: grpc_path.clone(),
        })
        .collect())
}

/// The field a dotted path (`a.b`) names, by proto names, through singular messages.
pub fn field_at(
    message: &prost_reflect::MessageDescriptor,
    path: &str,
) -> Result<FieldDescriptor, String> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current
            .get_field_by_name(part)
            .ok_or_else(|| format!("{} has no field {part:?}", current.full_name()))?;
        if parts.peek().is_none() {
            return Ok(field);
        }
        match field.kind() {
            Kind::Message(next) if !field.is_list() && !field.is_map() => current = next,
            _ => return Err(format!("{path}: {part} is not a message field")),
        }
    }
    Err(format!("an empty field path in {}", message.full_name()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The routes of every service in the descriptor set.
    pub(crate) fn table() -> RouteTable {
        let pool = crate::pb::descriptor_pool().clone();
        let services: Vec<String> = pool
            .services()
            .map(|service| service.full_name().to_string())
            .collect();
        let services: Vec<&str> = services.iter().map(String::as_str).collect();
        RouteTable::build(&pool, &services).unwrap()
    }

    fn found(table: &RouteTable, method: Method, path: &str) -> (String, Bindings) {
        match table.lookup(&method, path) {
            Lookup::Found(route, bindings) => (route.rpc.full_name().to_string(), bindings),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn every_method_with_a_rule_has_a_route() {
        let table = table();
        let pool = crate::pb::descriptor_pool().clone();
        let http = pool.get_extension_by_name("google.api.http").unwrap();
        for service in pool.services() {
            for rpc in service.methods() {
                if !rpc.options().has_extension(&http) {
                    continue;
                }
                assert!(
                    table
                        .routes()
                        .iter()
                        .any(|route| route.rpc.full_name() == rpc.full_name()),
                    "{} has no route",
                    rpc.full_name()
                );
            }
        }
    }

    #[test]
    fn lookups_pick_the_most_specific_template_and_the_method() {
        let table = table();
        let (rpc, bindings) = found(&table, Method::GET, "/compute/v1/images/fd8x");
        assert_eq!(rpc, "yandex.cloud.compute.v1.ImageService.Get");
        assert_eq!(bindings, [("image_id".to_string(), "fd8x".to_string())]);
        let (rpc, _) = found(&table, Method::GET, "/compute/v1/images:latestByFamily");
        assert_eq!(
            rpc,
            "yandex.cloud.compute.v1.ImageService.GetLatestByFamily"
        );
        let (rpc, bindings) = found(
            &table,
            Method::GET,
            "/compute/v1/images/fd8x:listAccessBindings",
        );
        assert_eq!(
            rpc,
            "yandex.cloud.compute.v1.ImageService.ListAccessBindings"
        );
        assert_eq!(bindings[0].0, "resource_id");
        let (rpc, _) = found(&table, Method::PATCH, "/compute/v1/disks/fhm1");
        assert_eq!(rpc, "yandex.cloud.compute.v1.DiskService.Update");
        let (rpc, _) = found(&table, Method::POST, "/compute/v1/disks/fhm1:move");
        assert_eq!(rpc, "yandex.cloud.compute.v1.DiskService.Move");
        let (rpc, _) = found(&table, Method::HEAD, "/compute/v1/images/fd8x");
        assert_eq!(rpc, "yandex.cloud.compute.v1.ImageService.Get");
        assert!(matches!(
            table.lookup(&Method::GET, "/operations/opr1:frobnicate"),
            Lookup::NotFound
        ));
        for method in [Method::GET, Method::POST] {
            let (rpc, _) = found(&table, method, "/operations/opr1:cancel");
            assert_eq!(rpc, "yandex.cloud.operation.OperationService.Cancel");
        }
        match table.lookup(&Method::PUT, "/compute/v1/images/fd8x") {
            Lookup::WrongMethod(allowed) => {
                assert_eq!(
                    allowed,
                    [Method::DELETE, Method::GET, Method::HEAD, Method::PATCH]
                )
            }
            other => panic!("{other:?}"),
        }
        // A verb route's path does not fall back to the plain one.
        match table.lookup(&Method::PATCH, "/compute/v1/disks/fhm1:move") {
            Lookup::WrongMethod(allowed) => assert_eq!(allowed, [Method::POST]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            table.lookup(&Method::GET, "/compute/v2/images"),
            Lookup::NotFound
        ));
    }
}
