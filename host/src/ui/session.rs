//! Dashboard sessions: an operator logs in with an admin token once and gets a random session
//! id in an HttpOnly, SameSite=Strict cookie, and a CSRF token that every form sends back.
//! Sessions live in memory (a restart logs everyone out), expire after a fixed lifetime or an
//! idle spell, and are bounded in number.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sync_host_session";

/// The cookie carrying the login form's CSRF value until a session exists.
pub const LOGIN_COOKIE: &str = "sync_host_login";

/// Longest life of a session, however active.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(3600);

/// Sessions kept at most; the one closest to expiry makes room for a new login.
const MAX_SESSIONS: usize = 1024;

/// One logged-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// The admin client whose token opened the session; named in audit records.
    pub operator: String,
    /// The value every form of this session must send back.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.created) > LIFETIME || now.duration_since(self.last_seen) > IDLE
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// The open sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `operator`; returns its id.
    pub fn open(&self, operator: &str) -> String {
        let now = Instant::now();
        let id = crate::config::token::generate();
        let session = Session {
            operator: operator.to_string(),
            csrf: crate::config::token::generate(),
            created: now,
            last_seen: now,
        };
        let mut open = self.lock();
        open.retain(|_, s| !s.expired(now));
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), session);
        id
    }

    /// The live session `id`, marked as seen now; an expired one is closed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.lock();
        let session = open.get_mut(id)?;
        if session.expired(now) {
            open.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Closes session `id`.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Each change is one insert or remove; a panic elsewhere cannot leave it half done.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for `name`, limited to the dashboard's paths; `Secure` when the
/// dashboard is reached over TLS; `max_age` 0 removes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// Whether the request came over TLS: directly, or through a proxy that says so.
pub fn over_tls(request: &http::request::Parts) -> bool {
    request.uri.scheme_str() == Some("https")
        || request
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_and_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("operator");
        let session = sessions.get(&id).expect("open");
        assert_eq!(session.operator, "operator");
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("guess"));
        assert!(sessions.get("other").is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_are_read_and_set_strictly() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; sync_host_session=xyz".parse().expect("valid"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        let set = set_cookie(SESSION_COOKIE, "xyz", LIFETIME, true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/ui"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "", Duration::ZERO, false).contains("Secure"));
    }
}
