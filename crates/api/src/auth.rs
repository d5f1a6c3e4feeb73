//! Bearer-token auth: which role a token belongs to, and which roles may use
//! which plane of the API.
//!
//! A presented token is hashed (SHA-256) and compared with the hash of every
//! configured token in constant time, without stopping at the first match,
//! so neither the position nor the length of a matching token leaks through
//! timing. The role is put in the request's extensions for handlers that
//! want it.
//!
//! This module must never log a token or let a request through when auth is
//! enabled and no token matched.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::{Choice, ConstantTimeEq};

use crate::config::AuthConfig;
use crate::error::ApiError;

/// What a token may do (see `docs/api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Namespaces, templates, tasks, steps (get, retry, resolve), cluster.
    Operator,
    /// Only the worker plane: register, poll, heartbeat, complete, fail,
    /// release.
    Worker,
    /// Read-only: the management API's GET endpoints and the dashboard
    /// without its actions.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Worker => "worker",
            Role::Viewer => "viewer",
        }
    }

    /// May change things through the management API and the dashboard
    /// (cancel, retry, resolve, pause, trigger).
    pub fn may_act(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }

    /// May read the management API and the dashboard.
    pub fn may_view(self) -> bool {
        !matches!(self, Role::Worker)
    }
}

/// The parts of the API that roles are granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Management,
    Workers,
}

impl Plane {
    /// Whether `role` may send a `method` request to this plane: a viewer
    /// only reads the management plane.
    fn allows(self, role: Role, method: &Method) -> bool {
        match (self, role) {
            (_, Role::Admin) | (Plane::Management, Role::Operator) => true,
            (Plane::Workers, Role::Worker) => true,
            (Plane::Management, Role::Viewer) => method == Method::GET || method == Method::HEAD,
            _ => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Plane::Management => {
                "the management API (admin or operator token; a viewer token only reads)"
            }
            Plane::Workers => "the worker plane (admin or worker token)",
        }
    }
}

/// Resolves tokens to roles.
pub struct Authenticator {
    enabled: bool,
    digests: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field("tokens", &self.digests.len())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Self {
        let roles = [
            (&config.admin_tokens, Role::Admin),
            (&config.operator_tokens, Role::Operator),
            (&config.worker_tokens, Role::Worker),
            (&config.viewer_tokens, Role::Viewer),
        ];
        let digests = roles
            .into_iter()
            .flat_map(|(tokens, role)| tokens.iter().map(move |t| (digest(t), role)))
            .collect();
        Self {
            enabled: config.enabled,
            digests,
        }
    }

    /// Whether tokens are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The role of `token`, comparing it with every configured token. When a
    /// token is configured for several roles the strongest wins.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented = digest(token);
        let mut admin = Choice::from(0);
        let mut operator = Choice::from(0);
        let mut worker = Choice::from(0);
        let mut viewer = Choice::from(0);
        for (known, role) in &self.digests {
            let hit = presented.ct_eq(known);
            match role {
                Role::Admin => admin |= hit,
                Role::Operator => operator |= hit,
                Role::Worker => worker |= hit,
                Role::Viewer => viewer |= hit,
            }
        }
        if bool::from(admin) {
            Some(Role::Admin)
        } else if bool::from(operator) {
            Some(Role::Operator)
        } else if bool::from(worker) {
            Some(Role::Worker)
        } else if bool::from(viewer) {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// Middleware state: who checks, and which plane the routes belong to.
#[derive(Clone)]
pub struct Guard {
    authenticator: Arc<Authenticator>,
    plane: Plane,
}

impl Guard {
    pub fn new(authenticator: Arc<Authenticator>, plane: Plane) -> Self {
        Self {
            authenticator,
            plane,
        }
    }
}

/// Refuses requests without a known token (401) or whose role may not use
/// this plane (403).
pub async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    if !guard.authenticator.enabled {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let Some(token) = token else {
        return ApiError::unauthorized("send Authorization: Bearer <token>").into_response();
    };
    let Some(role) = guard.authenticator.role_of(token) else {
        return ApiError::unauthorized("unknown bearer token").into_response();
    };
    if !guard.plane.allows(role, request.method()) {
        return ApiError::forbidden(format!(
            "a {} token may not use {}",
            role.as_str(),
            guard.plane.describe()
        ))
        .into_response();
    }
    request.extensions_mut().insert(role);
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header value; the scheme
/// is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(&AuthConfig {
            enabled: true,
            admin_tokens: vec!["adm".into()],
            operator_tokens: vec!["op-1".into(), "op-2".into()],
            worker_tokens: vec!["wrk".into()],
            viewer_tokens: vec!["viw".into()],
        })
    }

    #[test]
    fn tokens_resolve_to_their_role() {
        let auth = authenticator();
        assert_eq!(auth.role_of("adm"), Some(Role::Admin));
        assert_eq!(auth.role_of("op-2"), Some(Role::Operator));
        assert_eq!(auth.role_of("wrk"), Some(Role::Worker));
        assert_eq!(auth.role_of("viw"), Some(Role::Viewer));
        assert_eq!(auth.role_of("op-3"), None);
        assert_eq!(auth.role_of(""), None);
        assert_eq!(auth.role_of("admx"), None);
    }

    #[test]
    fn planes_admit_the_documented_roles() {
        let (get, post) = (&Method::GET, &Method::POST);
        assert!(Plane::Management.allows(Role::Admin, post));
        assert!(Plane::Management.allows(Role::Operator, post));
        assert!(!Plane::Management.allows(Role::Worker, get));
        assert!(Plane::Management.allows(Role::Viewer, get));
        assert!(!Plane::Management.allows(Role::Viewer, post));
        assert!(Plane::Workers.allows(Role::Admin, post));
        assert!(Plane::Workers.allows(Role::Worker, post));
        assert!(!Plane::Workers.allows(Role::Operator, post));
        assert!(!Plane::Workers.allows(Role::Viewer, get));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
