//! `/v1/prelogin`, `/v1/login` and `/v1/captcha`: Databunker's passwordless login.
//! The rules (single-use codes with few tries, single-use captchas, the same answer
//! for people who are not in the vault) live in `strongbox_core::login`; this layer
//! adds the per-identity and per-address prelogin limits and hands codes on.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::Value;
use strongbox_core::login::Delivery;
use strongbox_core::{ErrorKind, Mode, Principal};

use super::{Reply, ok_fields, ok_json};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Client, Params, failed_attempt};
use crate::guard::Refused;

/// `GET /v1/prelogin/{mode}/{identity}/{code}/{captcha}`: sends a login code to the
/// email or phone, if it belongs to a person in the vault; the answer is the same
/// either way. `code` is what the person typed from the captcha image of token
/// `captcha` (both ignored with `--login-captcha false`).
pub async fn prelogin(
    State(state): State<AppState>,
    Client(client): Client,
    Params((mode, identity, code, captcha)): Params<(String, String, String, String)>,
) -> Reply {
    let mode = Mode::parse(&mode)?;
    let vault = &state.vault;
    let guard = &state.http.guard;
    // Refuses a mode other than email or phone before anything is counted.
    let key = vault.login_identity_key(mode, &identity)?;
    // The address first: it also bounds how fast captchas can be tried. The identity
    // only once the captcha is solved, so strangers cannot use up someone's codes.
    if let Some(Err(refused)) = client.map(|ip| guard.prelogin_address(ip)) {
        return Err(limited(&state, refused).await);
    }
    if state.http.login_captcha
        && let Err(e) = vault.redeem_captcha(mode, &captcha, &code).await
    {
        return Err(if e.kind == ErrorKind::BadRequest {
            // A wrong or spent captcha is a guess like a wrong token.
            failed_attempt(&state, client, e).await
        } else {
            e.into()
        });
    }
    if let Err(refused) = guard.prelogin_identity(&key) {
        return Err(limited(&state, refused).await);
    }
    if let Some(d) = vault.prelogin(mode, &identity).await? {
        undelivered(&state, d);
    }
    Ok(ok_json("result", "done"))
}

/// 429 for a prelogin over a limit; the first refusal of an episode is audited.
async fn limited(state: &AppState, refused: Refused) -> ApiError {
    if refused.first
        && let Err(e) = state.vault.record_rate_limit(&Principal::Anonymous).await
    {
        tracing::warn!(error = %e, "the rate-limit refusal could not be audited");
    }
    ApiError::PreloginLimited(refused.retry_after)
}

/// A login code the vault could not queue for delivery (no SMTP or SMS gateway for
/// its mode): only `strongbox demo` shows it, on its own output.
fn undelivered(state: &AppState, d: Delivery) {
    if state.http.print_login_codes {
        eprintln!(
            "DEMO LOGIN CODE (demo mode only; never printed by `serve`): {} {} -> {}",
            d.mode.name(),
            d.address,
            d.code
        );
    } else {
        tracing::info!(
            mode = d.mode.name(),
            "a login code was not sent: no delivery for this mode is configured (smtp_url, sms_url)"
        );
    }
}

/// `GET /v1/login/{mode}/{identity}/{tmp}[?consent=brief,…]`: trades the code for a
/// user access token, and records the consents given on the login page.
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    uri: Uri,
    Params((mode, identity, code)): Params<(String, String, String)>,
) -> Reply {
    let mode = Mode::parse(&mode)?;
    let consents: Vec<String> = super::query_param(&uri, "consent")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .collect();
    match state.vault.login(mode, &identity, &code, &consents).await {
        Ok(t) => Ok(ok_fields(&[
            ("xtoken", Value::from(t.xtoken)),
            ("token", Value::from(t.token)),
        ])),
        Err(e) if e.kind == ErrorKind::Forbidden => Err(failed_attempt(&state, client, e).await),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/captcha`: a fresh captcha token (a Strongbox addition: Databunker puts one
/// in its login page), with the path of its image.
pub async fn new_captcha(State(state): State<AppState>) -> Reply {
    let token = state.vault.new_captcha()?;
    let image = format!("/v1/captcha/{token}");
    Ok(ok_fields(&[
        ("captcha", Value::from(token)),
        ("image", Value::from(image)),
    ]))
}

/// `GET /v1/captcha/{code}`: the image of a captcha token, as a PNG.
pub async fn image(State(state): State<AppState>, Params(token): Params<String>) -> Reply {
    let digits = state.vault.captcha_answer(&token)?;
    let mut resp = (StatusCode::OK, crate::captcha::png(&digits)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /v1/sys/loginsettings` (a Strongbox addition): what the login page needs,
/// without a token: whether prelogin checks a captcha, which modes have codes sent,
/// and the active legal bases of module `login` to ask consent for.
pub async fn settings(State(state): State<AppState>) -> Reply {
    let delivery = state.vault.config().login_delivery;
    let consents = state.vault.active_legal_bases("login").await?;
    Ok(ok_fields(&[
        ("captcha", Value::from(state.http.login_captcha)),
        (
            "delivery",
            serde_json::json!({"email": delivery.email, "phone": delivery.phone}),
        ),
        ("consents", Value::from(consents)),
    ]))
}
