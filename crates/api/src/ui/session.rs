//! Who is looking at the dashboard: the login form, the session cookie, and
//! the CSRF token every action form carries.
//!
//! With auth enabled the token typed into the login form is kept in the
//! cookie `tasker_ui_token` (HttpOnly, SameSite=Strict, and Secure when the
//! request came over HTTPS, directly or through a proxy that says so in
//! `X-Forwarded-Proto`/`Forwarded`). Pages check it like the API checks a
//! bearer token: admin and operator tokens may act, viewer tokens only
//! read, worker tokens are refused. With auth disabled everyone may act and
//! a random `tasker_ui_session` cookie only anchors the CSRF token.
//!
//! CSRF: actions are POSTs, which a SameSite=Strict cookie already keeps
//! from cross-site forms; each form also carries a token derived from the
//! session secret (the token or the random session id), which another site
//! cannot know. The token is derived, not stored, so any node of a cluster
//! accepts it. This module must never log a token or a session secret.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::form;
use super::html::{self, Nav, esc};
use crate::auth::{Authenticator, Role};
use crate::state::AppState;

const TOKEN_COOKIE: &str = "tasker_ui_token";
const SESSION_COOKIE: &str = "tasker_ui_session";
/// How long a login lasts in the browser.
const MAX_AGE_SECS: u64 = 12 * 3600;

/// The visitor of a dashboard page, put in the request's extensions by
/// [`require_viewer`].
#[derive(Debug, Clone)]
pub struct Viewer {
    pub auth_enabled: bool,
    /// `None` with auth disabled.
    pub role: Option<Role>,
    csrf: String,
}

impl Viewer {
    /// May use the action buttons (cancel, retry, resolve, pause, trigger).
    pub fn may_act(&self) -> bool {
        self.role.is_none_or(Role::may_act)
    }

    pub fn role_label(&self) -> &'static str {
        match self.role {
            Some(Role::Viewer) => "viewer (read-only)",
            Some(role) => role.as_str(),
            None => "auth disabled",
        }
    }

    /// The hidden input every action form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(&self.csrf)
        )
    }

    /// Whether a submitted form may act: an acting role and the session's
    /// CSRF token. The refusal is a page saying why (403).
    pub fn check_action(&self, pairs: &[(String, String)]) -> Result<(), Refused> {
        if !self.may_act() {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                "This token is read-only: actions need an operator or admin token.",
            ));
        }
        let sent = form::first(pairs, "csrf").unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                "The form's security token did not match this session: reload the page and try again.",
            ));
        }
        Ok(())
    }
}

/// Why a form was refused, answered as a [`refusal`] page.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refusal(self.0, self.1)
    }
}

fn csrf_for(secret: &str) -> String {
    let digest = Sha256::digest(format!("tasker-ui-csrf\0{secret}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name`, decoded.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| form::decode(v.as_bytes()))
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over HTTPS, directly or through a proxy
/// that says so.
fn over_https(request_headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    let header = |name: &str| {
        request_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    uri.scheme_str() == Some("https")
        || header("x-forwarded-proto")
            .is_some_and(|p| p.split(',').next().map(str::trim) == Some("https"))
        || header("forwarded").is_some_and(|f| f.contains("proto=https"))
}

fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        form::encode_cookie(value)
    ))
    .expect("an encoded cookie is a valid header")
}

/// A small page saying why something was refused.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui\">Back to the overview</a></p>",
        status.canonical_reason().unwrap_or("Error"),
        esc(message)
    );
    (
        status,
        [(CACHE_CONTROL, "no-store")],
        Html(html::page("Error", Nav::None, None, &body)),
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// A redirect target only within the dashboard (no open redirect).
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with("/ui") && !next.starts_with("/ui//") => next.to_owned(),
        _ => "/ui".to_owned(),
    }
}

/// Guards every dashboard page and action: resolves the visitor, sends one
/// without a valid token to the login form, refuses worker tokens.
pub async fn require_viewer(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let secure = over_https(request.headers(), request.uri());
    if !authenticator.enabled() {
        let (session, fresh) = match cookie(request.headers(), SESSION_COOKIE) {
            Some(session) => (session, false),
            None => (uuid::Uuid::new_v4().to_string(), true),
        };
        request.extensions_mut().insert(Viewer {
            auth_enabled: false,
            role: None,
            csrf: csrf_for(&session),
        });
        let mut response = next.run(request).await;
        if fresh {
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(SESSION_COOKIE, &session, MAX_AGE_SECS, secure),
            );
        }
        return response;
    }
    let role = cookie(request.headers(), TOKEN_COOKIE)
        .and_then(|token| authenticator.role_of(&token).map(|role| (token, role)));
    let Some((token, role)) = role else {
        if request.method() == Method::GET {
            let here = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/ui".into());
            return redirect(&format!("/ui/login?next={}", html::url_part(&here)));
        }
        return refusal(StatusCode::UNAUTHORIZED, "Log in first.");
    };
    if !role.may_view() {
        return refusal(
            StatusCode::FORBIDDEN,
            "A worker token may not use the dashboard: log in with a viewer, operator or admin token.",
        );
    }
    request.extensions_mut().insert(Viewer {
        auth_enabled: true,
        role: Some(role),
        csrf: csrf_for(&token),
    });
    next.run(request).await
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<section class=\"login\"><h1>Log in</h1>{error}\
         <form method=\"post\" action=\"/ui/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <p class=\"hint\">An admin or operator token may act; a viewer token only reads.</p>\
         <button type=\"submit\">Log in</button></form></section>",
        esc(next)
    );
    (
        status,
        [(CACHE_CONTROL, "no-store")],
        Html(html::page("Log in", Nav::None, None, &body)),
    )
        .into_response()
}

/// `GET /ui/login`: the form (straight to the overview with auth off).
pub async fn login_form(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    if !state.authenticator().enabled() {
        return redirect("/ui");
    }
    login_page(StatusCode::OK, &local_target(query.next.as_deref()), None)
}

/// `POST /ui/login`: checks the token and keeps it in the cookie.
pub async fn login(State(state): State<AppState>, request: Request<Body>) -> Response {
    let secure = over_https(request.headers(), request.uri());
    let Ok(body) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return login_page(
            StatusCode::BAD_REQUEST,
            "/ui",
            Some("The form was too large."),
        );
    };
    let pairs = form::parse(&body);
    let next = local_target(form::first(&pairs, "next"));
    let token = form::first(&pairs, "token").unwrap_or_default().trim();
    let authenticator = state.authenticator();
    match authenticator.role_of(token) {
        Some(role) if role.may_view() => {
            let mut response = redirect(&next);
            response.headers_mut().append(
                SET_COOKIE,
                set_cookie(TOKEN_COOKIE, token, MAX_AGE_SECS, secure),
            );
            response
        }
        Some(_) => login_page(
            StatusCode::FORBIDDEN,
            &next,
            Some("A worker token may not use the dashboard."),
        ),
        None => login_page(StatusCode::UNAUTHORIZED, &next, Some("Unknown token.")),
    }
}

/// `POST /ui/logout`: forgets the token.
pub async fn logout(request: Request<Body>) -> Response {
    let secure = over_https(request.headers(), request.uri());
    let mut response = redirect("/ui/login");
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(TOKEN_COOKIE, "", 0, secure));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; tasker_ui_token=x%3By; b=2"),
        );
        assert_eq!(cookie(&headers, TOKEN_COOKIE).as_deref(), Some("x;y"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }

    #[test]
    fn secure_only_over_https() {
        let uri: axum::http::Uri = "/ui".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers, &uri));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_https(&headers, &uri));
        let cookie = set_cookie(TOKEN_COOKIE, "t", 60, true);
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(
            !set_cookie(TOKEN_COOKIE, "t", 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn redirects_stay_in_the_dashboard() {
        assert_eq!(
            local_target(Some("/ui/tasks?state=failed")),
            "/ui/tasks?state=failed"
        );
        assert_eq!(local_target(Some("https://evil.example/")), "/ui");
        assert_eq!(local_target(Some("//evil.example/ui")), "/ui");
        assert_eq!(local_target(Some("/ui//evil.example")), "/ui");
        assert_eq!(local_target(None), "/ui");
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert_eq!(csrf_for("a"), csrf_for("a"));
        assert_eq!(csrf_for("a").len(), 32);
    }
}
