//! The OpenAPI 3.1 document (`GET /openapi.json`) and a browsable page (`GET /docs/`,
//! Swagger UI served from files vendored in the `utoipa-swagger-ui` crate: no CDN, and it
//! works under the gateway's CSP because its scripts are files, not inline).
//!
//! Nothing here is written by hand: operations come from the `#[utoipa::path]` next to
//! each handler, schemas from the request and answer types, and each operation's security
//! and error answers from the route table ([`crate::routes::ROUTES`]), so the document says
//! what the code enforces. The unit tests below compare the document, the table and every
//! `.route(...)` in this crate's source.

use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::read_after_write::READ_POSITION_ROUTES;
use crate::routes::{self, Access};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Golden Arch control plane",
        description = "Token budgets, circuit breakers, audit and operations of the LLM-agent platform. \
Send a token as `Authorization: Bearer <jwt>` (from `POST /auth/login`) or rely on the `cp_session` cookie \
(browsers; writes then need the `X-Requested-With` header). Every error answer is \
`{\"error\":{\"code\",\"message\",\"field\"?}}`."
    ),
    paths(
        crate::health_routes::healthz,
        crate::health_routes::readyz,
        crate::health_routes::system_health,
        crate::hardening::export_metrics,
        openapi_json,
        docs_redirect,
        docs_index,
        docs_file,
        crate::auth_routes::login,
        crate::auth_routes::logout,
        crate::auth_routes::me,
        crate::user_routes::list,
        crate::user_routes::add,
        crate::user_routes::change,
        crate::user_routes::reset_password,
        crate::budget_routes::set_limit,
        crate::budget_routes::reserve,
        crate::budget_routes::commit,
        crate::budget_routes::release,
        crate::budget_routes::state,
        crate::budget_routes::reservations,
        crate::budget_routes::usage,
        crate::breaker_routes::list,
        crate::breaker_routes::reset_all,
        crate::breaker_routes::show,
        crate::breaker_routes::configure,
        crate::breaker_routes::reset,
        crate::breaker_routes::force_open,
        crate::breaker_routes::disable,
        crate::breaker_routes::transitions,
        crate::audit_routes::events,
        crate::audit_routes::export,
        crate::audit_routes::verify,
        crate::audit_routes::verify_stream,
        crate::pipeline_routes::status,
        crate::dlq_routes::list,
        crate::dlq_routes::groups,
        crate::dlq_routes::capture,
        crate::dlq_routes::show,
        crate::dlq_routes::resolve,
        crate::dlq_routes::requeue_edited,
        crate::dlq_routes::start_redrive,
        crate::dlq_routes::show_redrive,
        crate::dlq_routes::cancel_redrive,
        crate::dlq_routes::pause_redrive,
        crate::dlq_routes::resume_redrive,
        crate::dlq_routes::redrive_results,
        crate::sandbox_routes::languages,
        crate::sandbox_routes::execute,
        crate::sandbox_routes::runs,
        crate::stats_routes::stats,
        crate::governance_routes::status,
        crate::governance_routes::roles,
        websocket,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "system", description = "Health, readiness, metrics, pipeline and the API description"),
        (name = "auth", description = "Log in and out; who am I"),
        (name = "users", description = "Accounts: roles, tenant scopes, disabling, password resets (admins)"),
        (name = "budget", description = "Token budgets per tenant and project"),
        (name = "breakers", description = "Circuit breakers per dependency"),
        (name = "audit", description = "The event log for auditors"),
        (name = "dlq", description = "Dead letters: capture, list, resolve and requeue (edited or not), redrive"),
        (name = "sandbox", description = "The sandbox service, reached through the control plane"),
        (name = "governance", description = "Budget use per tenant/project, roles and their limits"),
        (name = "live", description = "Live updates over WebSocket"),
    )
)]
struct ApiDoc;

/// Security scheme names used in the document.
const BEARER: &str = "bearer";
const COOKIE: &str = "session_cookie";

/// The finished document: the generated one, with security and error answers from the
/// route table.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
            crate::extract::SESSION_COOKIE,
        ))),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            let Some(spec) = routes::ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
            else {
                continue; // the tests below name it
            };
            describe_access(operation, spec.access);
            add_error_answers(operation, spec.access);
            if READ_POSITION_ROUTES
                .iter()
                .any(|(m, p)| *m == method && p == path)
            {
                add_read_position_header(operation);
            }
        }
        for (_, operation) in operations(item) {
            name_operation(operation);
        }
    }
    doc
}

/// Declares `X-Read-Position` on the operation's 200 answer (read_after_write.rs).
fn add_read_position_header(operation: &mut Operation) {
    let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") else {
        return;
    };
    ok.headers.insert(
        "X-Read-Position".to_string(),
        utoipa::openapi::header::HeaderBuilder::new()
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(0)),
            ))
            .description(Some(
                "Where this read stands in commit order: every event up to this position is \
                 shown (the read models' contiguous watermark; for `/audit/events`, the newest \
                 event every earlier transaction of which had ended). Absent while not known. \
                 Subscribe to `GET /ws` with `since` (or `from`) = this value to receive every \
                 event after it.",
            ))
            .build()
            .into(),
    );
}

/// Makes the operation's id unique in the document: utoipa names an operation after its
/// handler, and several areas have a `list`, a `show` or a `status`, which clients
/// generated from the document (one function per id) cannot tell apart. The id becomes
/// `<tag>_<handler>` (`governance_status`, `dlq_list`), kept as it is when the handler's
/// name already starts with its tag (`system_health`). A test checks that no two are equal.
fn name_operation(operation: &mut Operation) {
    let tag = operation
        .tags
        .as_ref()
        .and_then(|tags| tags.first())
        .cloned();
    if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
        let tag = tag.replace('-', "_");
        if !id.starts_with(&format!("{tag}_")) {
            *id = format!("{tag}_{id}");
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

fn describe_access(operation: &mut Operation, access: Access) {
    let (line, roles): (String, Vec<String>) = match access {
        Access::Public => ("Access: public (no token).".into(), vec![]),
        Access::Authenticated => ("Access: any valid token.".into(), vec![]),
        Access::InHandler => (
            "Access: a valid token, checked by the handler (header, cookie, `?token=` or a first `auth` frame); \
             each topic needs its read permission."
                .into(),
            vec![],
        ),
        Access::Permission(p) => (
            format!("Access: a token with the `{}` permission.", p.as_str()),
            vec![p.as_str().to_string()],
        ),
    };
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
        _ => line,
    });
    if !matches!(access, Access::Public | Access::InHandler) {
        // OpenAPI 3.1 lets non-OAuth requirements list role names: the permission.
        operation.security = Some(vec![
            SecurityRequirement::new(BEARER, roles.clone()),
            SecurityRequirement::new(COOKIE, roles),
        ]);
    }
}

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The error answers any operation can give, in the one error shape.
fn add_error_answers(operation: &mut Operation, access: Access) {
    let has_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut answers: Vec<(&str, &str)> = Vec::new();
    if has_input {
        answers.push(("400", "Invalid input; `field` names it"));
    }
    if access != Access::Public {
        answers.push(("401", "No token, or an invalid or expired one"));
        answers.push(("403", "The token lacks the permission"));
    }
    if operation.request_body.is_some() {
        answers.push(("413", "Body over 64 KiB"));
    }
    answers.push((
        "429",
        "Over the role's or the login rate limit; see Retry-After",
    ));
    answers.push(("500", "Unexpected; logged with the id the message quotes"));
    answers.push((
        "503",
        "A dependency is busy or away; nothing was applied; see Retry-After",
    ));
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_answer(description));
    }
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises")
});

static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            .persist_authorization(true)
            .try_it_out_enabled(true),
    )
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs_redirect))
        .route("/docs/", get(docs_index))
        .route("/docs/{file}", get(docs_file))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

/// The browsable API page lives at `/docs/`.
#[utoipa::path(get, path = "/docs", tag = "system",
    responses((status = 303, description = "To `/docs/`")))]
pub(crate) async fn docs_redirect() -> Redirect {
    Redirect::to("/docs/")
}

/// The browsable API page (Swagger UI).
#[utoipa::path(get, path = "/docs/", tag = "system",
    responses((status = 200, description = "Swagger UI", content_type = "text/html", body = String)))]
pub(crate) async fn docs_index() -> Response {
    swagger_file("index.html")
}

/// A file of the browsable API page.
#[utoipa::path(get, path = "/docs/{file}", tag = "system",
    params(("file" = String, Path, description = "A Swagger UI file, e.g. `swagger-ui.css`")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such file", body = ErrorBody)))]
pub(crate) async fn docs_file(Path(file): Path<String>) -> Response {
    swagger_file(&file)
}

/// The WebSocket of live updates. Its handler lives with the protocol in `crate::live`;
/// this item only describes the HTTP side of the upgrade for the document.
#[utoipa::path(get, path = "/ws", tag = "live",
    params(("token" = Option<String>, Query, description = "A token, for clients that can set neither a header nor a cookie")),
    responses(
        (status = 101, description = "Switching protocols: the socket speaks the protocol of docs/websocket.md"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "A token was sent and is invalid or expired", body = ErrorBody),
        (status = 403, description = "A cookie session from a foreign origin", body = ErrorBody)))]
#[allow(dead_code)]
async fn websocket() {}

fn swagger_file(file: &str) -> Response {
    match utoipa_swagger_ui::serve(file, SWAGGER_CONFIG.clone()) {
        Ok(Some(found)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, found.content_type)],
            found.bytes.into_owned(),
        )
            .into_response(),
        Ok(None) => ApiError::NotFound(format!("no such file {file}")).into_response(),
        Err(error) => ApiError::Internal(error.to_string().into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, path)` of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let mut doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, _) in operations(item) {
                out.insert((method.to_string(), path.clone()));
            }
        }
        out
    }

    fn declared() -> BTreeSet<(String, String)> {
        routes::ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect()
    }

    /// Every `.route("<path>", <method>(…).<method>(…))` in this crate's source, whoever
    /// wrote the module: a route mounted anywhere in the gateway shows up here.
    fn mounted_in_source() -> BTreeSet<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![dir];
        let mut out = BTreeSet::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                // Test modules (like this one) hold example routes, not mounted ones.
                let code = source.split("#[cfg(test)]").next().unwrap_or_default();
                out.extend(routes_in(code));
            }
        }
        out
    }

    /// The routes of one file: after each `.route(`, the string literal, then the method
    /// functions called at the top level of the second argument.
    fn routes_in(source: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let trimmed = rest.trim_start();
            let Some(literal) = trimmed.strip_prefix('"') else {
                continue;
            };
            let Some(end) = literal.find('"') else { break };
            let path = literal[..end].to_string();
            // The second argument runs to the `)` closing `.route(`.
            let argument = &literal[end + 1..];
            let (mut depth, mut token, mut methods) = (0i32, String::new(), Vec::new());
            for c in argument.chars() {
                match c {
                    '(' => {
                        if depth == 0 {
                            let name = token.trim_start_matches(['.', ',', ' ', '\n']);
                            if let Some(m) = ["get", "post", "put", "delete", "patch"]
                                .iter()
                                .find(|m| **m == name)
                            {
                                methods.push(m.to_ascii_uppercase());
                            }
                        }
                        depth += 1;
                        token.clear();
                    }
                    ')' if depth == 0 => break,
                    ')' => {
                        depth -= 1;
                        token.clear();
                    }
                    c if c.is_alphanumeric() || c == '_' => token.push(c),
                    _ => token.clear(),
                }
            }
            out.extend(methods.into_iter().map(|m| (m, path.clone())));
        }
        out
    }

    #[test]
    fn the_source_scanner_reads_chained_and_wrapped_routes() {
        let source = r#"Router::new()
            .route("/a/{id}", get(show).put(configure))
            .route(
                "/b",
                post(move || handler(x.get(1))),
            )
            .route("/metrics", get(move || export_metrics(registry.clone())))"#;
        assert_eq!(
            routes_in(source),
            vec![
                ("GET".to_string(), "/a/{id}".to_string()),
                ("PUT".to_string(), "/a/{id}".to_string()),
                ("POST".to_string(), "/b".to_string()),
                ("GET".to_string(), "/metrics".to_string()),
            ]
        );
    }

    #[test]
    fn every_mounted_route_is_declared_in_the_route_table() {
        let mounted = mounted_in_source();
        let declared = declared();
        let undeclared: Vec<_> = mounted.difference(&declared).collect();
        assert!(
            undeclared.is_empty(),
            "mounted but not in routes::ROUTES: {undeclared:?} — declare who may call it in \
             gateway/src/routes.rs"
        );
        let unmounted: Vec<_> = declared.difference(&mounted).collect();
        assert!(
            unmounted.is_empty(),
            "in routes::ROUTES but mounted nowhere: {unmounted:?}"
        );
    }

    #[test]
    fn the_document_lists_every_declared_route_and_nothing_else() {
        let documented = documented();
        let declared = declared();
        let missing: Vec<_> = declared.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes missing from /openapi.json: {missing:?} — put #[utoipa::path(...)] on the \
             handler (its request and answer types derive utoipa::ToSchema) and list it in \
             ApiDoc's paths(...) in gateway/src/openapi.rs"
        );
        let extra: Vec<_> = documented.difference(&declared).collect();
        assert!(extra.is_empty(), "documented but not declared: {extra:?}");
    }

    #[test]
    fn protected_operations_carry_their_permission_and_the_error_shape() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT_JSON).unwrap();
        let op = &doc["paths"]["/budget/state"]["get"];
        assert_eq!(op["security"][0]["bearer"][0], "read:budget");
        assert!(op["description"]
            .as_str()
            .unwrap()
            .contains("`read:budget`"));
        for status in ["400", "401", "403", "404", "429", "500", "503"] {
            assert!(
                op["responses"][status].is_object(),
                "GET /budget/state documents {status}"
            );
        }
        let public = &doc["paths"]["/healthz"]["get"];
        assert!(public["security"].is_null());
        assert!(public["responses"]["401"].is_null());
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(error["required"][0], "error");
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    }

    #[test]
    fn answers_with_the_same_type_name_keep_their_own_schema() {
        // Two `ListResponse` types once shared one schema name, so `/circuit-breakers` was
        // documented as the dead-letter list (schemathesis found it).
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT_JSON).unwrap();
        let schema_of = |path: &str| {
            doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        };
        let breakers = schema_of("/circuit-breakers");
        let dlq = schema_of("/dlq");
        assert_ne!(breakers, dlq);
        let schemas = &doc["components"]["schemas"];
        assert!(schemas[&breakers]["properties"]["breakers"].is_object());
        assert!(schemas[&dlq]["properties"]["items"].is_object());
    }

    #[test]
    fn every_operation_has_its_own_id() {
        // Handlers named `list`, `show`, `status` in several areas once gave operations
        // the same id, and a client generated from the document one function for them.
        let mut doc = document();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                let id = operation
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                    panic!("{method} {path} and {other} share the operationId {id}");
                }
            }
        }
        let json: serde_json::Value = serde_json::from_str(&DOCUMENT_JSON).unwrap();
        assert_eq!(
            json["paths"]["/governance/status"]["get"]["operationId"],
            "governance_status"
        );
        assert_eq!(
            json["paths"]["/system/health"]["get"]["operationId"],
            "system_health"
        );
    }

    #[test]
    fn every_schema_reference_resolves() {
        // A type used only in a query's parameters is not collected into the components
        // (utoipa): its `$ref` dangled and the front end's type generator refused the
        // document. Such a parameter takes `#[param(inline)]`.
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT_JSON).unwrap();
        fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                        out.push(target);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        let dangling: Vec<_> = found
            .into_iter()
            .filter(|target| {
                let pointer = target.trim_start_matches('#');
                doc.pointer(pointer).is_none()
            })
            .collect();
        assert!(dangling.is_empty(), "unresolved $refs: {dangling:?}");
    }

    #[test]
    fn the_swagger_page_is_embedded() {
        let index = utoipa_swagger_ui::serve("index.html", SWAGGER_CONFIG.clone())
            .unwrap()
            .expect("index.html is vendored");
        let html = String::from_utf8(index.bytes.to_vec()).unwrap();
        assert!(!html.contains("https://"), "no CDN in the page");
        assert!(
            !html.contains("<script>"),
            "no inline script (the CSP forbids it)"
        );
        let init = utoipa_swagger_ui::serve("swagger-initializer.js", SWAGGER_CONFIG.clone())
            .unwrap()
            .unwrap();
        assert!(String::from_utf8(init.bytes.to_vec())
            .unwrap()
            .contains("/openapi.json"));
    }
}
