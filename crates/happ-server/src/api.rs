//! The HTTP surface: the REST endpoints of the API reference, the admin endpoints, and the
//! middleware for authentication, fault injection and statistics.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use happ_client::ACCESS_TOKEN_HEADER;
use happ_client::model::{
    AssistantId, AssistantUpdate, ChatId, ChatUpdate, DataEnvelope, KnowledgeId, NewAssistant, NewChat, NewKnowledge, NewMessage, NewPhone, NewTool,
    PageEnvelope, PhoneId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::realtime::Delivery;

/// The whole router: `/api/...` behind authentication, faults and statistics; `/_admin/...`
/// open; everything else a 404 in the error envelope.
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/assistants", get(list_assistants).post(create_assistant))
        .route("/api/assistants/{assistantId}", get(get_assistant).patch(update_assistant))
        .route("/api/chats", get(list_chats).post(create_chat))
        .route("/api/chats/{chatId}", patch(update_chat))
        .route("/api/chats/{chatId}/messages", get(list_messages).post(create_message))
        .route("/api/assistant-knowledge", get(list_knowledge).post(create_knowledge))
        .route("/api/assistant-knowledge/{knowledgeId}", axum::routing::delete(delete_knowledge))
        .route("/api/phones", get(list_phones).post(create_phone))
        .route("/api/phones/{phoneId}", patch(update_phone))
        .route("/api/assistant-tools", get(list_tools).post(create_tool))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route_layer(middleware::from_fn_with_state(state.clone(), observe));
    let admin = Router::new()
        .route("/_admin/faults", get(get_faults).post(set_faults).delete(clear_faults))
        .route("/_admin/stats", get(get_stats).delete(reset_stats))
        .route("/_admin/chats/{chatId}/handoff", post(hand_off))
        .route("/_admin/ws", get(ws_status))
        .route("/_admin/ws/disconnect", post(ws_disconnect))
        .route("/_admin/ws/refuse", post(ws_refuse).delete(ws_accept))
        .route("/_admin/ws/pause", post(ws_pause))
        .route("/_admin/ws/resume", post(ws_resume));
    api.merge(admin).fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}

// ---- extractors that answer in the error envelope ------------------------------------------

/// A JSON body; a malformed or mistyped one is a 400 `VALIDATION_ERROR` (415 without JSON
/// content type).
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(rejected(rejection.status(), rejection.body_text(), matches!(rejection, JsonRejection::MissingJsonContentType(_)))),
        }
    }
}

/// Query parameters; bad ones are a 400 `VALIDATION_ERROR`.
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| Self(v)).map_err(|r: QueryRejection| rejected(r.status(), r.body_text(), false))
    }
}

/// The one path parameter of a route.
struct Id(String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state).await.map(|Path(v)| Self(v)).map_err(|r: PathRejection| rejected(r.status(), r.body_text(), false))
    }
}

fn rejected(status: StatusCode, text: String, media_type: bool) -> ApiError {
    let status = if media_type {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else if status.is_server_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError { status, code: ApiError::code_for(status), message: text }
}

// ---- pagination ----------------------------------------------------------------------------

/// Query of every listing: `page` (1-based), `take`, and `assistantId` where it applies.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    page: Option<u32>,
    take: Option<u32>,
    assistant_id: Option<String>,
}

impl ListQuery {
    fn assistant(&self) -> Result<AssistantId, ApiError> {
        match self.assistant_id.as_deref() {
            Some(id) if !id.trim().is_empty() => Ok(AssistantId::new(id)),
            _ => Err(ApiError::validation("the assistantId query parameter is required")),
        }
    }

    fn wants_pages(&self) -> bool {
        self.page.is_some() || self.take.is_some()
    }
}

/// One page of `items` as the paginated envelope.
fn paginate<'a, T: Clone + 'a>(state: &AppState, q: &ListQuery, items: impl ExactSizeIterator<Item = &'a T>) -> Result<PageEnvelope<T>, ApiError> {
    let limits = state.paging();
    let page = q.page.unwrap_or(1);
    let take = q.take.unwrap_or(limits.default_take);
    if page == 0 {
        return Err(ApiError::validation("page must be 1 or more"));
    }
    if take == 0 || take > limits.max_take {
        return Err(ApiError::validation(format!("take must be between 1 and {}", limits.max_take)));
    }
    let total = items.len();
    let skip = usize::try_from(u64::from(page - 1) * u64::from(take)).unwrap_or(usize::MAX);
    let data = items.skip(skip).take(usize::try_from(take).unwrap_or(usize::MAX)).cloned().collect();
    Ok(PageEnvelope { success: true, data, total_count: u64::try_from(total).unwrap_or(u64::MAX), page })
}

/// A listing documented without pagination: the whole list, unless `page`/`take` are given.
fn list<'a, T: Clone + Serialize + 'a>(state: &AppState, q: &ListQuery, items: impl ExactSizeIterator<Item = &'a T>) -> Result<Response, ApiError> {
    if q.wants_pages() {
        Ok(Json(paginate(state, q, items)?).into_response())
    } else {
        Ok(Json(DataEnvelope::ok(items.cloned().collect::<Vec<T>>())).into_response())
    }
}

fn ok<T: Serialize>(data: T) -> Response {
    Json(DataEnvelope::ok(data)).into_response()
}

fn created<T: Serialize>(data: T) -> Response {
    (StatusCode::CREATED, Json(DataEnvelope::ok(data))).into_response()
}

// ---- assistants ----------------------------------------------------------------------------

async fn list_assistants(State(s): State<AppState>, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    s.read(|store| list(&s, &q, store.assistants().iter()))
}

async fn get_assistant(State(s): State<AppState>, Id(id): Id) -> Result<Response, ApiError> {
    s.read(|store| store.assistant(&AssistantId::new(id)).map(ok))
}

async fn create_assistant(State(s): State<AppState>, Body(body): Body<NewAssistant>) -> Result<Response, ApiError> {
    s.write(|store| store.create_assistant(body)).map(created)
}

async fn update_assistant(State(s): State<AppState>, Id(id): Id, Body(body): Body<AssistantUpdate>) -> Result<Response, ApiError> {
    s.write(|store| store.update_assistant(&AssistantId::new(id), body)).map(ok)
}

// ---- chats and messages --------------------------------------------------------------------

async fn list_chats(State(s): State<AppState>, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    s.read(|store| paginate(&s, &q, store.chats()).map(|p| Json(p).into_response()))
}

async fn create_chat(State(s): State<AppState>, Body(body): Body<NewChat>) -> Result<Response, ApiError> {
    s.write(|store| store.create_chat(body)).map(created)
}

async fn update_chat(State(s): State<AppState>, Id(id): Id, Body(body): Body<ChatUpdate>) -> Result<Response, ApiError> {
    s.write(|store| store.update_chat(&ChatId::new(id), body)).map(ok)
}

async fn list_messages(State(s): State<AppState>, Id(id): Id, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    s.read(|store| paginate(&s, &q, store.messages(&ChatId::new(id))?.iter()).map(|p| Json(p).into_response()))
}

async fn create_message(State(s): State<AppState>, Id(id): Id, Body(body): Body<NewMessage>) -> Result<Response, ApiError> {
    s.write(|store| store.create_message(&ChatId::new(id), body)).map(created)
}

// ---- knowledge -----------------------------------------------------------------------------

async fn list_knowledge(State(s): State<AppState>, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    let assistant = q.assistant()?;
    s.read(|store| list(&s, &q, store.knowledge(&assistant)?.into_iter()))
}

async fn create_knowledge(State(s): State<AppState>, Body(body): Body<NewKnowledge>) -> Result<Response, ApiError> {
    s.write(|store| store.create_knowledge(body)).map(created)
}

async fn delete_knowledge(State(s): State<AppState>, Id(id): Id) -> Result<Response, ApiError> {
    s.write(|store| store.delete_knowledge(&KnowledgeId::new(id))).map(ok)
}

// ---- phones --------------------------------------------------------------------------------

async fn list_phones(State(s): State<AppState>, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    s.read(|store| list(&s, &q, store.phones().iter()))
}

async fn create_phone(State(s): State<AppState>, Body(body): Body<NewPhone>) -> Result<Response, ApiError> {
    s.write(|store| store.create_phone(body)).map(created)
}

/// `{"assistantId": "…"}` links, `{"assistantId": null}` unlinks; the key is required.
async fn update_phone(State(s): State<AppState>, Id(id): Id, Body(body): Body<Value>) -> Result<Response, ApiError> {
    let assistant = match body.get("assistantId") {
        Some(Value::String(a)) if !a.trim().is_empty() => Some(AssistantId::new(a.as_str())),
        Some(Value::Null) => None,
        Some(other) => return Err(ApiError::validation(format!("assistantId must be a string or null, not {other}"))),
        None => return Err(ApiError::validation("assistantId is required (null to unlink)")),
    };
    s.write(|store| store.link_phone(&PhoneId::new(id), assistant)).map(ok)
}

// ---- tools ---------------------------------------------------------------------------------

async fn list_tools(State(s): State<AppState>, Params(q): Params<ListQuery>) -> Result<Response, ApiError> {
    let assistant = q.assistant()?;
    s.read(|store| list(&s, &q, store.tools(&assistant)?.into_iter()))
}

async fn create_tool(State(s): State<AppState>, Body(body): Body<NewTool>) -> Result<Response, ApiError> {
    s.write(|store| store.create_tool(body)).map(created)
}

// ---- admin ---------------------------------------------------------------------------------

async fn get_faults(State(s): State<AppState>) -> Response {
    ok(s.fault_status())
}

async fn set_faults(State(s): State<AppState>, Body(config): Body<FaultConfig>) -> Response {
    s.set_faults(config);
    ok(s.fault_status())
}

async fn clear_faults(State(s): State<AppState>) -> Response {
    s.set_faults(FaultConfig::default());
    ok(s.fault_status())
}

async fn get_stats(State(s): State<AppState>) -> Response {
    ok(s.stats())
}

async fn reset_stats(State(s): State<AppState>) -> Response {
    s.reset_stats();
    ok(s.stats())
}

async fn hand_off(State(s): State<AppState>, Id(id): Id) -> Result<Response, ApiError> {
    s.write(|store| store.hand_off(&ChatId::new(id))).map(ok)
}

async fn ws_status(State(s): State<AppState>) -> Response {
    ok(s.hub().status().await)
}

/// `{"disconnected": N}` and the state after.
async fn ws_disconnect(State(s): State<AppState>) -> Response {
    let disconnected = s.hub().disconnect_all().await;
    ok(serde_json::json!({"disconnected": disconnected, "status": s.hub().status().await}))
}

async fn ws_refuse(State(s): State<AppState>) -> Response {
    s.hub().set_refusing(true);
    ok(s.hub().status().await)
}

async fn ws_accept(State(s): State<AppState>) -> Response {
    s.hub().set_refusing(false);
    ok(s.hub().status().await)
}

/// `?mode=drop` (default) or `?mode=hold`.
#[derive(Debug, Deserialize)]
struct PauseQuery {
    mode: Option<Delivery>,
}

async fn ws_pause(State(s): State<AppState>, Params(q): Params<PauseQuery>) -> Result<Response, ApiError> {
    let mode = q.mode.unwrap_or(Delivery::Drop);
    if mode == Delivery::Live {
        return Err(ApiError::validation("mode must be drop or hold (POST /_admin/ws/resume delivers again)"));
    }
    s.hub().set_delivery(mode).await;
    Ok(ok(s.hub().status().await))
}

async fn ws_resume(State(s): State<AppState>) -> Response {
    s.hub().set_delivery(Delivery::Live).await;
    ok(s.hub().status().await)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, code: "NOT_FOUND", message: format!("no route for {method} {}", uri.path()) }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError { status: StatusCode::METHOD_NOT_ALLOWED, code: "METHOD_NOT_ALLOWED", message: format!("{method} is not allowed on {}", uri.path()) }
}

// ---- middleware ----------------------------------------------------------------------------

/// 401 unless `X-Access-Token` is one of the configured tokens.
async fn authenticate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match req.headers().get(ACCESS_TOKEN_HEADER).map(HeaderValue::as_bytes) {
        None => ApiError::unauthorized(format!("missing {ACCESS_TOKEN_HEADER} header")).into_response(),
        Some(token) if s.token_ok(token) => next.run(req).await,
        Some(_) => ApiError::unauthorized("invalid access token").into_response(),
    }
}

/// Counts the request, applies the fault plan, counts the answer.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| path.clone(), |m| m.as_str().to_owned());
    let key = format!("{method} {route}");
    let plan = s.plan(&key, method.as_str(), &route, &path);
    if plan.is_fault() {
        tracing::debug!(%key, ?plan, "injecting fault");
    }
    if !plan.before.is_zero() {
        tokio::time::sleep(plan.before).await;
    }
    let response = match plan.error {
        Some((status, retry_after, body)) => fault_response(status, retry_after, body),
        None => next.run(req).await,
    };
    if !plan.after.is_zero() {
        tokio::time::sleep(plan.after).await;
    }
    let status = response.status().as_u16();
    tracing::debug!(%key, %path, status, "request");
    s.count_status(&key, status);
    response
}

fn fault_response(status: u16, retry_after: Option<String>, body: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(text) => (status, [(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], text).into_response(),
        None => ApiError { status, code: ApiError::code_for(status), message: format!("injected fault: HTTP {}", status.as_u16()) }.into_response(),
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}
