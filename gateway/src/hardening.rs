//! What wraps every route: security headers, CORS allow-list, CSRF check for cookie
//! sessions, per-role and per-IP rate limits (governor), and request metrics (prometheus).
//! Applied around the finished router by [`harden`], so route modules stay unaware of it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use auth::{Permission, Role};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::extract::{bearer_token, session_token, VerifiedClaims};
use crate::sessions::Authenticator;

/// The header a browser must send with cookie-authenticated writes. Cross-site pages cannot
/// set it without a CORS preflight, which the allow-list refuses.
pub const CSRF_HEADER: &str = "x-requested-with";

/// Rate limits and origins, from configuration.
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    /// Requests per minute per user, by role.
    pub role_limits: HashMap<Role, u32>,
    /// Login attempts per minute per client IP.
    pub login_per_minute: u32,
    /// Origins allowed to call the API from a browser (empty: none).
    pub cors_origins: Vec<String>,
    /// A bearer secret that may read `/metrics` (Prometheus's `authorization` setting);
    /// without it only a token with `read:system` may. Redacted in `Debug`.
    pub metrics_token: Option<SecretString>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            role_limits: HashMap::from([
                (Role::Admin, 600),
                (Role::Operator, 600),
                (Role::Developer, 300),
                (Role::Auditor, 120),
                (Role::Viewer, 60),
                (Role::Service, 6000),
            ]),
            login_per_minute: 5,
            cors_origins: Vec::new(),
            metrics_token: None,
        }
    }
}

impl HttpPolicy {
    /// Parses `admin=600,viewer=60` (per minute); roles not named keep their default.
    pub fn with_role_limits(mut self, spec: &str) -> Result<Self, String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (role, n) = pair
                .split_once('=')
                .ok_or_else(|| format!("'{pair}' is not role=requests_per_minute"))?;
            let role = Role::parse(role.trim()).ok_or_else(|| format!("unknown role '{role}'"))?;
            let n: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{n}' is not a positive number"))?;
            self.role_limits.insert(role, n);
        }
        Ok(self)
    }
}

/// Request counters and latencies, exported at `/metrics`.
#[derive(Clone)]
pub struct HttpMetrics {
    pub registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Per-minute history for `GET /stats`.
    pub history: Arc<crate::request_history::RequestHistory>,
}

impl HttpMetrics {
    pub fn new(registry: Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "api_requests_total",
                "HTTP requests by method, route template and status",
            ),
            &["method", "endpoint", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("api_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "endpoint"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("register once");
        registry
            .register(Box::new(duration.clone()))
            .expect("register once");
        Self {
            registry,
            requests,
            duration,
            history: Arc::default(),
        }
    }
}

struct Limiters {
    /// Made once: building a clock per request ran CPUID, which a virtual machine traps
    /// (about an eighth of the CPU time of a `GET /healthz`).
    clock: DefaultClock,
    auth: Arc<Authenticator>,
    per_role: HashMap<Role, DefaultKeyedRateLimiter<String>>,
    login: DefaultKeyedRateLimiter<IpAddr>,
}

/// Past this many addresses in the login limiter, those idle long enough are dropped.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least 1"))
}

/// Wraps the application router with every cross-cutting layer.
pub fn harden(
    router: Router,
    policy: &HttpPolicy,
    auth: Arc<Authenticator>,
    metrics: HttpMetrics,
) -> Router {
    let limiters = Arc::new(Limiters {
        clock: DefaultClock::default(),
        auth,
        per_role: Role::ALL
            .into_iter()
            .map(|role| {
                let n = policy.role_limits.get(&role).copied().unwrap_or(60);
                (role, RateLimiter::keyed(quota(n)))
            })
            .collect(),
        login: RateLimiter::keyed(quota(policy.login_per_minute)),
    });
    let registry = metrics.registry.clone();
    let metrics_token = policy.metrics_token.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            policy
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(CSRF_HEADER),
        ])
        // A browser shows a cross-origin script only the CORS-safelisted response headers:
        // a dashboard served from a `CORS_ORIGINS` origin needs where a read stands (to follow
        // it on the socket) and how long to wait after a 429 or 503.
        .expose_headers([
            HeaderName::from_static(crate::read_after_write::READ_POSITION_HEADER),
            header::RETRY_AFTER,
        ])
        .allow_credentials(true);
    router
        .route(
            "/metrics",
            get(move |request: Request| scrape(registry.clone(), metrics_token.clone(), request)),
        )
        .layer(middleware::from_fn_with_state(limiters, limit_and_check_csrf))
        .layer(middleware::from_fn_with_state(metrics, record_metrics))
        .layer(cors)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// Prometheus text format: `api_requests_total`, `api_request_duration_seconds` and the
/// business gauges.
#[utoipa::path(get, path = "/metrics", tag = "system",
    description = "Also readable with `Authorization: Bearer <METRICS_TOKEN>` (Prometheus's scrape secret).",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub(crate) async fn export_metrics(registry: Registry) -> Response {
    let mut buffer = Vec::new();
    if TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buffer,
    )
        .into_response()
}

/// `/metrics` for Prometheus (the scrape secret) or a person with `read:system`: the
/// gauges name every tenant and breaker, which is not for anonymous callers.
async fn scrape(registry: Registry, secret: Option<SecretString>, request: Request) -> Response {
    let bearer = bearer_token(request.headers());
    let by_secret = secret.zip(bearer).is_some_and(|(secret, given)| {
        bool::from(secret.expose_secret().as_bytes().ct_eq(given.as_bytes()))
    });
    let by_token = request
        .extensions()
        .get::<VerifiedClaims>()
        .is_some_and(|VerifiedClaims(claims)| claims.has(Permission::ReadSystem));
    if by_secret || by_token {
        return export_metrics(registry).await;
    }
    if request.extensions().get::<VerifiedClaims>().is_some() {
        ApiError::Forbidden(Permission::ReadSystem.as_str()).into_response()
    } else if bearer.is_some() || session_token(request.headers()).is_some() {
        ApiError::BadCredentials("invalid or expired token".into()).into_response()
    } else {
        ApiError::Unauthenticated.into_response()
    }
}

async fn record_metrics(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    // The route template, never the raw path: ids in paths would explode the label set.
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    metrics
        .duration
        .with_label_values(&[method.as_str(), endpoint.as_str()])
        .observe(elapsed.as_secs_f64());
    metrics.history.record(response.status().as_u16(), elapsed);
    metrics
        .requests
        .with_label_values(&[
            method.as_str(),
            endpoint.as_str(),
            response.status().as_str(),
        ])
        .inc();
    response
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"error": {"code": "rate_limited", "message": format!("too many requests, retry after {retry_after_secs} s")}})),
    )
        .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&retry_after_secs.to_string()).expect("digits"),
    );
    response
}

async fn limit_and_check_csrf(
    State(limiters): State<Arc<Limiters>>,
    mut request: Request,
    next: Next,
) -> Response {
    let clock = &limiters.clock;
    if request.uri().path() == "/auth/login" {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        // Bounded: addresses that have not tried for a minute are forgotten.
        if limiters.login.len() > MAX_TRACKED_ADDRESSES {
            limiters.login.retain_recent();
        }
        if let Err(not_until) = limiters.login.check_key(&ip) {
            return too_many(not_until.wait_time_from(clock.now()).as_secs() + 1);
        }
        return next.run(request).await;
    }
    let from_cookie =
        bearer_token(request.headers()).is_none() && session_token(request.headers()).is_some();
    let token = bearer_token(request.headers())
        .or_else(|| session_token(request.headers()))
        .map(str::to_string);
    // Unauthenticated requests are refused by the routes themselves; only callers with a
    // valid token count against their role's quota.
    if let Some(claims) = token.and_then(|t| limiters.auth.authenticate(&t).ok()) {
        if let Some(limiter) = limiters.per_role.get(&claims.role) {
            if let Err(not_until) = limiter.check_key(&claims.sub) {
                return too_many(not_until.wait_time_from(clock.now()).as_secs() + 1);
            }
        }
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        if from_cookie && !safe && !request.headers().contains_key(CSRF_HEADER) {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"error": {"code": "csrf", "message": format!("cookie-authenticated writes need the {CSRF_HEADER} header")}})),
            )
                .into_response();
        }
        request.extensions_mut().insert(VerifiedClaims(claims));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_limits_parse_and_keep_defaults() {
        let policy = HttpPolicy::default()
            .with_role_limits("viewer=10, service=20")
            .unwrap();
        assert_eq!(policy.role_limits[&Role::Viewer], 10);
        assert_eq!(policy.role_limits[&Role::Service], 20);
        assert_eq!(policy.role_limits[&Role::Admin], 600);
    }

    #[test]
    fn bad_role_limits_say_what_is_wrong() {
        assert!(HttpPolicy::default()
            .with_role_limits("root=5")
            .unwrap_err()
            .contains("root"));
        assert!(HttpPolicy::default().with_role_limits("viewer=0").is_err());
        assert!(HttpPolicy::default().with_role_limits("viewer").is_err());
    }
}
