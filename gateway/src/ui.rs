//! The built dashboard (`frontend/dist`, made by `vite build`) served at `/`: hashed files
//! under `/assets/` cached for a year, `index.html` never cached, and `index.html` for a
//! browser navigation to one of the app's routes (the app routes itself in the browser).
//!
//! API paths keep their JSON answers. Two app routes share their path with an API route
//! (`/dlq`, and `/` with nothing): a navigation there (a `GET` that accepts `text/html`,
//! which `fetch` and API clients do not send) gets the app; everything else the API.
//! Unknown paths outside the app's routes stay a JSON 404.
//!
//! The build writes `.br` and `.gz` beside each file (`frontend/scripts/precompress.mjs`),
//! which are sent as they are to a browser that accepts them; files without them (a build
//! made otherwise) are gzipped per answer.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;
use crate::AppState;

/// The app's routes (`frontend/src/config/paths.ts`): a navigation to one of these, or to
/// a path under one that no API route takes, gets `index.html`.
pub const APP_ROUTES: &[&str] = &[
    "/",
    "/login",
    "/forbidden",
    "/governance",
    "/budget",
    "/dlq",
    "/breakers",
    "/sandbox",
    "/audit",
    "/users",
];

/// Hashed build output: the name changes with the content, so it may be cached forever.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` names the current hashed files: always revalidated.
const NO_CACHE: &str = "no-cache";

/// Where the built app lives.
#[derive(Clone, Debug)]
pub struct UiFiles {
    dir: PathBuf,
}

impl UiFiles {
    /// The app built into `dir`, or `None` when `dir` holds no `index.html` (not built).
    pub fn open(dir: impl Into<PathBuf>) -> Option<Self> {
        let dir = dir.into();
        dir.join("index.html").is_file().then_some(Self { dir })
    }

    fn index(&self) -> PathBuf {
        self.dir.join("index.html")
    }
}

fn accepts_html(request: &Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

fn is_app_route(path: &str) -> bool {
    APP_ROUTES.contains(&path)
}

fn under_app_route(path: &str) -> bool {
    APP_ROUTES.iter().any(|route| {
        *route != "/"
            && path
                .strip_prefix(route)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Runs before routing: a navigation to an app route gets `index.html`, also where an API
/// route has the same path.
pub async fn navigations(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.ui {
        Some(ui) if accepts_html(&request) && is_app_route(request.uri().path()) => {
            serve_index(ui, request).await
        }
        _ => next.run(request).await,
    }
}

/// For paths no API route takes: the app's files, `index.html` for a navigation under an
/// app route, and a JSON 404 for the rest.
pub async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let Some(ui) = &state.ui else {
        return ApiError::NotFound(if path == "/" {
            "no such route (the dashboard is not built: `make run` builds it, or set UI_DIR)".into()
        } else {
            "no such route".into()
        })
        .into_response();
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::NotFound("no such route".into()).into_response();
    }
    // No API route has these paths: the app, whoever asks (`curl /` included).
    if is_app_route(&path) || (accepts_html(&request) && under_app_route(&path)) {
        return serve_index(ui, request).await;
    }
    if path.starts_with("/assets/") || is_root_file(&ui.dir, &path) {
        let cache = if path.starts_with("/assets/") {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        let files = ServeDir::new(&ui.dir)
            .append_index_html_on_directories(false)
            .precompressed_br()
            .precompressed_gzip();
        let response = CompressionLayer::new()
            .gzip(true)
            .layer(files)
            .oneshot(request)
            .await;
        let Ok(response) = response;
        if response.status().is_success() {
            let mut response = response.map(Body::new);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            return response;
        }
    }
    ApiError::NotFound("no such route".into()).into_response()
}

/// A file at the top of the build (`/favicon.svg`, `/robots.txt`), never a directory.
fn is_root_file(dir: &Path, path: &str) -> bool {
    let name = &path[1..];
    !name.is_empty()
        && !name.contains('/')
        && !name.starts_with('.')
        && name != "index.html"
        && dir.join(name).is_file()
}

async fn serve_index(ui: &UiFiles, request: Request) -> Response {
    let result: Result<_, Infallible> = CompressionLayer::new()
        .gzip(true)
        .layer(
            ServeFile::new(ui.index())
                .precompressed_br()
                .precompressed_gzip(),
        )
        .oneshot(request)
        .await;
    let Ok(response) = result;
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    // The same path answers JSON to API clients.
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_routes_and_paths_under_them() {
        assert!(is_app_route("/"));
        assert!(is_app_route("/dlq"));
        assert!(!is_app_route("/dlq/abc"));
        assert!(under_app_route("/budget/org1/p1"));
        assert!(!under_app_route("/budgets"));
        assert!(!under_app_route("/metrics"));
        assert!(
            !under_app_route("/"),
            "everything is under /; only real routes count"
        );
    }
}
