//! `/users`: accounts for admins (list, add, change role, scope or status, reset a
//! password). Each change is an audited event (gateway/src/users.rs) and ends the account's
//! open sessions, here at once and on other replicas within a second (sessions.rs).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ValidJson};
use crate::users::{self, NewUser, PasswordReset, Saved, UserPatch, UserView};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(add))
        .route("/users/{username}", patch(change))
        .route("/users/{username}/password", post(reset_password))
}

/// `GET /users`.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

fn username_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name)
        .map_err(|rejection| ApiError::invalid("username", rejection.body_text()))
}

/// Records what the account's tokens must now carry, so this replica ends its old
/// sessions at once.
fn noted(state: &AppState, saved: Saved) -> UserView {
    state.auth.note(&saved.user.username, saved.standing);
    saved.user
}

#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, description = "Every account, by name", body = UserList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList {
        users: users::list(&state.pool).await?,
    }))
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "The account, created", body = UserView),
        (status = 400, description = "A field is wrong", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(new): ValidJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let saved = users::add(&state.events, new, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(noted(&state, saved))))
}

#[utoipa::path(patch, path = "/users/{username}", tag = "users", request_body = UserPatch,
    params(("username" = String, Path, description = "Account name", pattern = r"^[A-Za-z0-9_.@-]{1,64}$")),
    responses(
        (status = 200, description = "The account after the change (its sessions ended if anything changed)", body = UserView),
        (status = 400, description = "A field is wrong, or an admin tried to demote or disable themselves", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody)))]
pub(crate) async fn change(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidJson(patch): ValidJson<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    let username = username_of(path)?;
    let saved = users::change(&state.events, &username, patch, &caller.actor()).await?;
    Ok(Json(noted(&state, saved)))
}

#[utoipa::path(post, path = "/users/{username}/password", tag = "users", request_body = PasswordReset,
    params(("username" = String, Path, description = "Account name", pattern = r"^[A-Za-z0-9_.@-]{1,64}$")),
    responses(
        (status = 200, description = "The account; its sessions ended", body = UserView),
        (status = 404, description = "No such account", body = ErrorBody)))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    ValidJson(reset): ValidJson<PasswordReset>,
) -> Result<Json<UserView>, ApiError> {
    let username = username_of(path)?;
    let saved =
        users::reset_password(&state.events, &username, &reset.password, &caller.actor()).await?;
    Ok(Json(noted(&state, saved)))
}
