//! The control API (HTTP): health, readiness, metrics, phones and calls.
//!
//! | method and path | does |
//! | --- | --- |
//! | `GET /healthz` | 200 while the process runs (no token) |
//! | `GET /readyz` | 200 when taking calls, 503 before start-up and while draining (no token) |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /phones` | every phone with its registration state |
//! | `GET /calls` | calls in progress, then recently ended ones |
//! | `GET /calls/{id}` | one call |
//! | `POST /calls` | `{"to": "...", "phone": "..."}`: place a call (201 with the call) |
//! | `DELETE /calls/{id}` | hang a call up (204) |
//!
//! Everything but health and readiness needs `Authorization: Bearer TOKEN`.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

use crate::api::{ApiError, ControlCommand, DialRequest, Shared};

#[derive(Clone)]
struct AppState {
    shared: Shared,
    token: std::sync::Arc<str>,
}

/// Serves the control API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, shared: Shared, token: String) {
    let state = AppState { shared, token: token.into() };
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/phones", get(phones))
        .route("/calls", get(calls).post(dial))
        .route("/calls/{id}", get(call).delete(hangup))
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let app = Router::new().route("/healthz", get(|| async { "ok\n" })).route("/readyz", get(readyz)).merge(protected).with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "control API stopped");
    }
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(state): State<AppState>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    if same(given.trim().as_bytes(), state.token.as_bytes()) {
        return next.run(request).await;
    }
    let mut r = error(401, "missing or wrong bearer token");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.shared.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.shared.metrics.render()).into_response()
}

/// Sends a command to the SIP task and waits for its answer.
async fn ask<T>(state: &AppState, make: impl FnOnce(oneshot::Sender<T>) -> ControlCommand) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    state.shared.commands.send(make(tx)).await.map_err(|_| error(503, "the gateway is stopping"))?;
    rx.await.map_err(|_| error(503, "the gateway is stopping"))
}

async fn phones(State(state): State<AppState>) -> Response {
    match ask(&state, ControlCommand::Phones).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

async fn calls(State(state): State<AppState>) -> Response {
    match ask(&state, ControlCommand::Calls).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

async fn call(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match ask(&state, |tx| ControlCommand::Call(id.clone(), tx)).await {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => error(404, &format!("no call {id:?}")),
        Err(r) => r,
    }
}

async fn dial(State(state): State<AppState>, body: Result<axum::Json<DialRequest>, axum::extract::rejection::JsonRejection>) -> Response {
    let request = match body {
        Ok(axum::Json(r)) => r,
        Err(e) => return error(400, &format!("bad request body: {}", e.body_text())),
    };
    match ask(&state, |tx| ControlCommand::Dial(request, tx)).await {
        Ok(Ok(view)) => (StatusCode::CREATED, axum::Json(view)).into_response(),
        Ok(Err(ApiError { status, message })) => error(status, &message),
        Err(r) => r,
    }
}

async fn hangup(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match ask(&state, |tx| ControlCommand::Hangup(id, tx)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(ApiError { status, message })) => error(status, &message),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
    }
}
