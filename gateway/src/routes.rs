//! Every route of the HTTP API and who may call it, declared once: [`ROUTES`]. The
//! [`enforce`] layer looks each request's route up in this table before any handler runs,
//! so a handler cannot forget its check and the table cannot drift from what runs. The
//! OpenAPI document takes each operation's security from here, the route-matrix test walks
//! it with every role, and a unit test compares it with every `.route(...)` in the source.
//!
//! A mounted route that is missing here is refused (403, logged): declare it below.

use std::sync::Arc;

use auth::{Claims, Permission};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::{bearer_token, session_token, VerifiedClaims};
use crate::sessions::Authenticator;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any valid token, whatever its permissions.
    Authenticated,
    /// A valid token carrying this permission.
    Permission(Permission),
    /// Authenticated by the handler itself, which accepts credentials the layer cannot
    /// see (the WebSocket's `?token=` or first `auth` frame) and checks a permission per
    /// topic. The layer lets the request through.
    InHandler,
}

impl Access {
    /// Whether a caller with `claims` (`None`: no valid token) may call the route.
    pub fn allows(self, claims: Option<&Claims>) -> bool {
        match self {
            Access::Public | Access::InHandler => true,
            Access::Authenticated => claims.is_some(),
            Access::Permission(p) => claims.is_some_and(|c| c.has(p)),
        }
    }

    /// The permission's wire name, if the route needs one.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Access::Permission(p) => Some(p),
            _ => None,
        }
    }
}

/// One route: method, axum path template, access.
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

use Access::{Authenticated, Public};
const fn needs(p: Permission) -> Access {
    Access::Permission(p)
}

/// The route table. Keep `docs/permissions.md` in step with it.
pub const ROUTES: &[RouteSpec] = &[
    // Probes, metrics and the API description: for load balancers, Prometheus and people.
    route("GET", "/healthz", Public),
    route("GET", "/readyz", Public),
    // Also the METRICS_TOKEN bearer secret, for Prometheus (hardening::scrape checks both).
    route("GET", "/metrics", needs(Permission::ReadSystem)),
    route("GET", "/openapi.json", Public),
    route("GET", "/docs", Public),
    route("GET", "/docs/", Public),
    route("GET", "/docs/{file}", Public),
    // Auth.
    route("POST", "/auth/login", Public),
    route("POST", "/auth/logout", Public),
    route("GET", "/auth/me", Authenticated),
    // Budgets.
    route("PUT", "/budget/limit", needs(Permission::AdminBudget)),
    route("POST", "/budget/request", needs(Permission::WriteBudget)),
    route("POST", "/budget/commit", needs(Permission::WriteBudget)),
    route("POST", "/budget/release", needs(Permission::WriteBudget)),
    route("GET", "/budget/state", needs(Permission::ReadBudget)),
    route("GET", "/budget/reservations", needs(Permission::ReadBudget)),
    route("GET", "/budget/usage", needs(Permission::ReadBudget)),
    // Circuit breakers.
    route("GET", "/circuit-breakers", needs(Permission::ReadBreakers)),
    route(
        "POST",
        "/circuit-breakers/reset_all",
        needs(Permission::AdminResetBreakers),
    ),
    route(
        "GET",
        "/circuit-breakers/{name}",
        needs(Permission::ReadBreakers),
    ),
    route(
        "GET",
        "/circuit-breakers/{name}/transitions",
        needs(Permission::ReadBreakers),
    ),
    route(
        "PUT",
        "/circuit-breakers/{name}",
        needs(Permission::WriteBreakers),
    ),
    route(
        "POST",
        "/circuit-breakers/{name}/reset",
        needs(Permission::AdminResetBreakers),
    ),
    route(
        "POST",
        "/circuit-breakers/{name}/force_open",
        needs(Permission::AdminResetBreakers),
    ),
    route(
        "POST",
        "/circuit-breakers/{name}/disable",
        needs(Permission::AdminResetBreakers),
    ),
    // Accounts (admins).
    route("GET", "/users", needs(Permission::AdminUsers)),
    route("POST", "/users", needs(Permission::AdminUsers)),
    route("PATCH", "/users/{username}", needs(Permission::AdminUsers)),
    route(
        "POST",
        "/users/{username}/password",
        needs(Permission::AdminUsers),
    ),
    // Dead-letter queue (docs/dlq.md).
    route("GET", "/dlq", needs(Permission::ReadDlq)),
    route("POST", "/dlq", needs(Permission::WriteDlq)),
    route("GET", "/dlq/groups", needs(Permission::ReadDlq)),
    route("GET", "/dlq/{id}", needs(Permission::ReadDlq)),
    route("POST", "/dlq/{id}/resolve", needs(Permission::WriteDlq)),
    route(
        "POST",
        "/dlq/{id}/requeue_edited",
        needs(Permission::WriteDlq),
    ),
    route("POST", "/dlq/redrive", needs(Permission::WriteDlq)),
    route("GET", "/dlq/redrive/{job}", needs(Permission::ReadDlq)),
    route(
        "POST",
        "/dlq/redrive/{job}/cancel",
        needs(Permission::WriteDlq),
    ),
    route(
        "POST",
        "/dlq/redrive/{job}/pause",
        needs(Permission::WriteDlq),
    ),
    route(
        "POST",
        "/dlq/redrive/{job}/resume",
        needs(Permission::WriteDlq),
    ),
    route(
        "GET",
        "/dlq/redrive/{job}/results",
        needs(Permission::ReadDlq),
    ),
    // The sandbox service through the gateway (docs/sandbox.md).
    route("GET", "/sandbox/languages", needs(Permission::ExecuteCode)),
    route("POST", "/sandbox/execute", needs(Permission::ExecuteCode)),
    // The caller's own runs, from the audit log (not the whole log: no read:audit needed).
    route("GET", "/sandbox/runs", needs(Permission::ExecuteCode)),
    // Audit.
    route("GET", "/audit/events", needs(Permission::ReadAudit)),
    route("GET", "/audit/export", needs(Permission::ReadAudit)),
    route("GET", "/audit/verify", needs(Permission::ReadAudit)),
    route("GET", "/audit/verify/stream", needs(Permission::ReadAudit)),
    // System.
    route("GET", "/system/pipeline", needs(Permission::ReadSystem)),
    route("GET", "/system/health", needs(Permission::ReadSystem)),
    route("GET", "/stats", needs(Permission::ReadSystem)),
    // Governance (the dashboard's overview and role filters).
    route(
        "GET",
        "/governance/status",
        needs(Permission::ReadGovernance),
    ),
    route(
        "GET",
        "/governance/roles",
        needs(Permission::ReadGovernance),
    ),
    // Live updates (WebSocket): each topic needs its read permission (docs/websocket.md).
    route("GET", "/ws", Access::InHandler),
];

/// The declaration of `method path` (HEAD is served by GET routes).
pub fn lookup(method: &Method, path: &str) -> Option<&'static RouteSpec> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Checks the caller against the route's declared access: 401 without a valid token,
/// 403 without the permission. Applied with `route_layer`, so it runs only for a mounted
/// method and path (unknown paths stay 404, wrong methods 405). The verified claims go
/// into the request's extensions for the `Caller` extractor.
pub async fn enforce(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    let Some(spec) = lookup(request.method(), path.as_str()) else {
        tracing::error!(
            method = %request.method(),
            path = path.as_str(),
            "route is mounted but not declared in gateway/src/routes.rs; refusing it"
        );
        return ApiError::Forbidden("(undeclared route)").into_response();
    };
    if matches!(spec.access, Access::Public | Access::InHandler) {
        return next.run(request).await;
    }
    // The rate limiter outside (`hardening`) verified the same token already and left its
    // claims here: verifying an HS256 token twice per request was a measurable share of
    // the per-request CPU.
    let claims = match request.extensions_mut().remove::<VerifiedClaims>() {
        Some(VerifiedClaims(claims)) => claims,
        None => {
            let headers = request.headers();
            let Some(token) = bearer_token(headers).or_else(|| session_token(headers)) else {
                return ApiError::Unauthenticated.into_response();
            };
            match auth.authenticate(token) {
                Ok(claims) => claims,
                Err(error) => return error.into_response(),
            }
        }
    };
    if let Access::Permission(permission) = spec.access {
        if !claims.has(permission) {
            return ApiError::Forbidden(permission.as_str()).into_response();
        }
    }
    request.extensions_mut().insert(claims);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn no_route_is_declared_twice() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn access_follows_the_permission() {
        let keys = auth::TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let now = chrono::Utc::now().timestamp();
        let viewer = keys
            .verify(
                &keys
                    .issue(&auth::Grant::unscoped("v", auth::Role::Viewer), now)
                    .unwrap(),
            )
            .unwrap();
        assert!(Public.allows(None));
        assert!(!Authenticated.allows(None));
        assert!(Authenticated.allows(Some(&viewer)));
        assert!(needs(Permission::ReadBudget).allows(Some(&viewer)));
        assert!(!needs(Permission::WriteBudget).allows(Some(&viewer)));
        assert!(!needs(Permission::ReadBudget).allows(None));
    }

    #[test]
    fn head_is_looked_up_as_get() {
        assert!(lookup(&Method::HEAD, "/healthz").is_some());
        assert!(lookup(&Method::DELETE, "/healthz").is_none());
    }
}
