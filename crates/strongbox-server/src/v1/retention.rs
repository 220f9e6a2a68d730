//! `/v1/exp`: retention of user records.
//!
//! The exptoken links (`/v1/exp/retain|delete/{exptoken}`) are mailed to the person.
//! Mail security scanners and link previews fetch every link in a message with
//! `GET`, so a `GET` must not act: it answers a page with a button that `POST`s to
//! the same path, and the `POST` acts (Databunker acts on the `GET` itself).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Reply, ok_fields, ok_json};
use crate::AppState;
use crate::extract::{Caller, Client, OptionalObject, Params, UserPath};

pub async fn start(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let exptoken = state
        .vault
        .start_expiration(&who, mode, &identity, body)
        .await?;
    Ok(ok_json("exptoken", &exptoken))
}

pub async fn status(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    let s = state.vault.expiration_status(&who, mode, &identity).await?;
    Ok(ok_fields(&[
        ("exptime", Value::from(s.exptime)),
        ("expstatus", Value::from(s.expstatus)),
        ("exptoken", Value::from(s.exptoken)),
    ]))
}

pub async fn cancel(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    state.vault.cancel_expiration(&who, mode, &identity).await?;
    Ok(ok_fields(&[]))
}

/// The page a `GET` of an exptoken link answers: what the button does, and a form
/// that posts to the link itself (no `action`, so the token is not echoed into the
/// page). It is the same page for every token, valid or not, and the `GET` reads
/// nothing: it tells no one whether a token is live.
fn confirm_page(title: &str, text: &str, button: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"robots\" content=\"noindex\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body><h1>{title}</h1><p>{text}</p>\
         <form method=\"post\"><button type=\"submit\">{button}</button></form>\
         </body></html>\n"
    );
    let mut resp = (StatusCode::OK, page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Stricter than the default for every answer (which it replaces): nothing may
    // load, and the form may post only to this origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    resp
}

/// `GET /v1/exp/retain/{exptoken}`: the page that confirms keeping the data.
pub async fn retain_page() -> Reply {
    Ok(confirm_page(
        "Keep your data",
        "Confirm that you want your personal data kept. It will then not be erased \
         when its retention period ends.",
        "Keep my data",
    ))
}

/// `GET /v1/exp/delete/{exptoken}`: the page that confirms the erasure.
pub async fn delete_page() -> Reply {
    Ok(confirm_page(
        "Erase your data",
        "Confirm that you want your personal data erased now. This cannot be undone.",
        "Erase my data",
    ))
}

/// `POST /v1/exp/retain/{exptoken}`. No token: the exptoken in the link is the
/// capability. Answers plain `OK`, as Databunker's `GET` does.
pub async fn retain(
    State(state): State<AppState>,
    Client(client): Client,
    Params(exptoken): Params<String>,
) -> Reply {
    guessed(
        &state,
        client,
        state.vault.retain_by_exptoken(&exptoken).await,
    )
    .await?;
    Ok((StatusCode::OK, "OK").into_response())
}

/// `POST /v1/exp/delete/{exptoken}`: erases the person now; plain `OK`.
pub async fn delete(
    State(state): State<AppState>,
    Client(client): Client,
    Params(exptoken): Params<String>,
) -> Reply {
    guessed(
        &state,
        client,
        state.vault.delete_by_exptoken(&exptoken).await,
    )
    .await?;
    Ok((StatusCode::OK, "OK").into_response())
}

/// An exptoken is a capability: one that names nothing is a failed attempt.
async fn guessed(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    r: strongbox_core::Result<()>,
) -> Result<(), crate::error::ApiError> {
    match r {
        Err(e) if e.kind == strongbox_core::ErrorKind::NotFound => {
            Err(crate::extract::failed_attempt(state, client, e).await)
        }
        other => Ok(other?),
    }
}
