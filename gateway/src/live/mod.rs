//! Live updates over WebSocket (`GET /ws`): the protocol, the per-process fan-out from
//! JetStream, and the connections. See docs/websocket.md.

mod connection;
pub mod hub;
pub mod protocol;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub use hub::{run_live_feed, LiveConfig, LiveHub};

use crate::error::ApiError;
use crate::extract::{bearer_token, session_token};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Deserialize)]
struct WsParams {
    /// For clients that can set neither a header nor a cookie; the first-frame `auth`
    /// keeps the token out of URLs and logs.
    token: Option<String>,
}

/// Upgrades to a WebSocket. Credentials, when present, are checked before the upgrade
/// (a bad token gets 401 and no socket); without any, the client has `auth_timeout` to
/// send an `auth` frame.
async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let hub = state.live.clone();
    let from_cookie = bearer_token(&headers).is_none()
        && params.token.is_none()
        && session_token(&headers).is_some();
    let token = bearer_token(&headers)
        .or(params.token.as_deref())
        .or_else(|| session_token(&headers));
    let claims = match token {
        Some(token) => Some(state.auth.authenticate(token)?),
        None => None,
    };
    // A cookie rides along on cross-site requests too: only pages of this origin (or an
    // allowed one) may open a cookie-authenticated socket.
    if from_cookie && !origin_allowed(&headers, &hub.config.allowed_origins) {
        return Err(ApiError::Forbidden("same-origin WebSocket"));
    }
    let ws = ws.map_err(|rejection| ApiError::invalid("upgrade", rejection.body_text()))?;
    if !hub.is_ready() {
        return Err(ApiError::Unavailable(
            "live updates are starting; retry in a moment".into(),
        ));
    }
    if hub.connections.get() as usize >= hub.config.max_connections {
        return Err(ApiError::Unavailable(
            "too many WebSocket connections on this replica".into(),
        ));
    }
    let (pool, auth) = (state.pool.clone(), state.auth.clone());
    Ok(ws
        // Small: tungstenite zeroes the free part of its read buffer each time the
        // connection is polled for input, which is every time events arrive for it.
        // Longer client frames still arrive whole (the buffer grows for them).
        .read_buffer_size(1024)
        // What one pass of a connection queues (up to 64 KiB and a burst, connection.rs)
        // goes out in one write: one system call and one wakeup of the client per pass.
        // The buffer grows only on connections that receive that much at once.
        .write_buffer_size(128 * 1024)
        // Bounded: a client that stops reading is cut off, never buffered without end.
        // It holds what one pass queues plus one frame of the largest event
        // (docs/adr/013-bounded-events.md): a frame larger than this bound would close
        // the connection (this bound was 256 KiB, and a 1 MiB dead letter cut off every
        // dead-letter subscriber). Memory only grows on a connection while it is sent one.
        .max_write_buffer_size(128 * 1024 + streams::MAX_MESSAGE_BYTES + 64 * 1024)
        .max_message_size(protocol::MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(protocol::MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            hub.spawn_connection(connection::serve(socket, hub.clone(), pool, auth, claims));
        })
        .into_response())
}

/// The `Origin` is this host, or listed in `allowed`; a request without one (not from a
/// browser) passes.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    host.is_some() && origin_host == host
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_may_use_the_cookie() {
        assert!(origin_allowed(
            &headers(Some("http://localhost:8000"), "localhost:8000"),
            &[]
        ));
        assert!(origin_allowed(&headers(None, "localhost:8000"), &[]));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "localhost:8000"),
            &[]
        ));
        assert!(origin_allowed(
            &headers(Some("https://ui.example"), "localhost:8000"),
            &["https://ui.example".into()]
        ));
    }
}
