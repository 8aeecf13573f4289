//! Who may call the store's HTTP API: clients with their own bearer tokens and scopes, token
//! checks in constant time, and which origin a write is attributed to.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use http::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::scope::DataScope;
use crate::store::Placement;

/// A secret value (a bearer token). Its `Debug` output never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret resolved by the caller (from an environment variable or a file).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the few places that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `GET` and `HEAD` requests.
    Read,
    /// Requests that change the store (`POST`, `PUT`, `DELETE`, ...).
    Write,
    /// Everything, including operator endpoints; implies `read`, `write` and `metrics`.
    Admin,
    /// Only `/metrics`, for a Prometheus scraper that should read nothing else.
    Metrics,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        })
    }
}

/// One client allowed to call the API, with its own token.
#[derive(Debug, Clone)]
pub struct Client {
    /// Name used in logs and audit records.
    pub name: String,
    /// The client's bearer token.
    pub token: Secret,
    /// What the client may do.
    pub scopes: BTreeSet<Scope>,
    /// Whether the client is a child node, whose writes may carry the origin of the change
    /// (`X-Sync-Origin` or FHIR `meta.source`); other clients' writes originate here.
    pub is_child_node: bool,
    /// The data the client may see and write; `None` for all of it.
    pub data_scope: Option<Arc<DataScope>>,
}

/// The client a request was authenticated as; added to the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    /// The client's name.
    pub name: String,
    /// The client's scopes.
    pub scopes: BTreeSet<Scope>,
    /// Whether the client is a child node.
    pub is_child_node: bool,
    /// The data the client may see and write; `None` for all of it.
    pub data_scope: Option<Arc<DataScope>>,
}

impl AuthenticatedClient {
    /// Whether the client may see a version placed at `placement`.
    pub fn sees(&self, placement: &Placement) -> bool {
        self.data_scope
            .as_ref()
            .is_none_or(|scope| scope.admits(placement))
    }

    /// Whether the client holds `scope`; `admin` holds every scope.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A client list that cannot work, naming the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A client has an empty token.
    #[error("client `{0}` has an empty token")]
    EmptyToken(String),
    /// A client has no scope at all.
    #[error("client `{0}` has no scopes")]
    NoScopes(String),
    /// Two clients share a name.
    #[error("client name `{0}` is used twice")]
    DuplicateName(String),
    /// Two clients share a token, so requests could not be told apart.
    #[error("clients `{0}` and `{1}` have the same token")]
    DuplicateToken(String, String),
}

/// The clients allowed to call the API. There are no default clients.
///
/// Looked up by the digest of the presented token, so a request costs the same with one client
/// or ten thousand: a parent serving a whole country's clinics checks every request.
#[derive(Debug, Default)]
pub struct Clients {
    /// Clients by the first bytes of their token's digest; the full digest is compared in
    /// constant time within a bucket (almost always a bucket of one).
    buckets: HashMap<u64, Vec<(TokenDigest, Arc<AuthenticatedClient>)>>,
    count: usize,
}

/// Sha256 of a token: comparing fixed-length digests keeps the comparison constant-time
/// regardless of the presented token's length.
type TokenDigest = [u8; 32];

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The bucket of a digest. A digest's bytes are uniform, and an attacker who cannot find
/// preimages cannot aim a token at a bucket, so the lookup's timing says nothing of any token.
fn bucket_of(digest: &TokenDigest) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(prefix)
}

impl Clients {
    /// Builds the client list, rejecting empty tokens, clients without scopes and duplicates.
    pub fn new(clients: Vec<Client>) -> Result<Clients, AuthError> {
        let mut names = HashSet::with_capacity(clients.len());
        let mut buckets: HashMap<u64, Vec<(TokenDigest, Arc<AuthenticatedClient>)>> =
            HashMap::with_capacity(clients.len());
        let count = clients.len();
        for client in clients {
            if client.token.expose().is_empty() {
                return Err(AuthError::EmptyToken(client.name));
            }
            if client.scopes.is_empty() {
                return Err(AuthError::NoScopes(client.name));
            }
            if !names.insert(client.name.clone()) {
                return Err(AuthError::DuplicateName(client.name));
            }
            let token = digest(client.token.expose());
            let bucket = buckets.entry(bucket_of(&token)).or_default();
            if let Some((_, other)) = bucket.iter().find(|(other, _)| *other == token) {
                return Err(AuthError::DuplicateToken(other.name.clone(), client.name));
            }
            let identity = AuthenticatedClient {
                name: client.name,
                scopes: client.scopes,
                is_child_node: client.is_child_node,
                data_scope: client.data_scope,
            };
            bucket.push((token, Arc::new(identity)));
        }
        Ok(Clients { buckets, count })
    }

    /// The client owning `token`. The digest is compared in constant time with every client
    /// of its bucket, so the answer's timing does not reveal which client (if any) matched.
    pub fn authenticate(&self, token: &str) -> Option<Arc<AuthenticatedClient>> {
        let presented = digest(token);
        let mut found = None;
        for (candidate, client) in self.buckets.get(&bucket_of(&presented))? {
            if bool::from(candidate.ct_eq(&presented)) {
                found = Some(Arc::clone(client));
            }
        }
        found
    }

    /// Number of configured clients.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no client is configured (then every request is refused).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The scope a request with `method` needs: reads need `read`, everything else `write`.
pub fn required_scope(method: &Method) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The origin a write is recorded with: `None` means this node. Only child nodes may name
/// another origin (the `X-Sync-Origin` header first, else FHIR `meta.source`); any other
/// client's write originates at this node whatever it claims.
pub fn effective_origin(
    client: &AuthenticatedClient,
    origin_header: Option<&str>,
    meta_source: Option<&str>,
) -> Option<String> {
    if !client.is_child_node {
        return None;
    }
    origin_header
        .or(meta_source)
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, token: &str, scopes: &[Scope], child: bool) -> Client {
        Client {
            name: name.into(),
            token: Secret::new(token),
            scopes: scopes.iter().copied().collect(),
            is_child_node: child,
            data_scope: None,
        }
    }

    #[test]
    fn tokens_resolve_to_their_client() {
        let clients = Clients::new(vec![
            client("reader", "r-token", &[Scope::Read], false),
            client("clinic", "c-token", &[Scope::Read, Scope::Write], true),
        ])
        .unwrap();
        assert_eq!(clients.authenticate("c-token").unwrap().name, "clinic");
        assert_eq!(clients.authenticate("r-token").unwrap().name, "reader");
        assert!(clients.authenticate("r-toke").is_none());
        assert!(clients.authenticate("").is_none());
    }

    #[test]
    fn ten_thousand_clients_each_resolve_to_their_own() {
        let clients: Vec<Client> = (0..10_000)
            .map(|i| {
                client(
                    &format!("clinic-{i}"),
                    &format!("token-{i}"),
                    &[Scope::Read],
                    true,
                )
            })
            .collect();
        let clients = Clients::new(clients).unwrap();
        assert_eq!(clients.len(), 10_000);
        for i in (0..10_000).step_by(97) {
            let found = clients.authenticate(&format!("token-{i}")).unwrap();
            assert_eq!(found.name, format!("clinic-{i}"));
        }
        assert!(clients.authenticate("token-10000").is_none());
        let twice = vec![
            client("a", "same", &[Scope::Read], false),
            client("b", "same", &[Scope::Read], false),
        ];
        assert_eq!(
            Clients::new(twice).unwrap_err(),
            AuthError::DuplicateToken("a".into(), "b".into())
        );
    }

    #[test]
    fn bad_client_lists_are_rejected() {
        let empty = Clients::new(vec![client("a", "", &[Scope::Read], false)]);
        assert_eq!(empty.unwrap_err(), AuthError::EmptyToken("a".into()));
        let same = Clients::new(vec![
            client("a", "t", &[Scope::Read], false),
            client("b", "t", &[Scope::Read], false),
        ]);
        assert_eq!(
            same.unwrap_err(),
            AuthError::DuplicateToken("a".into(), "b".into())
        );
        let none = Clients::new(vec![client("a", "t", &[], false)]);
        assert_eq!(none.unwrap_err(), AuthError::NoScopes("a".into()));
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let shown = format!("{:?}", client("a", "hunter2", &[Scope::Read], false));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn scopes_follow_the_method() {
        assert_eq!(required_scope(&Method::GET), Scope::Read);
        assert_eq!(required_scope(&Method::HEAD), Scope::Read);
        assert_eq!(required_scope(&Method::PUT), Scope::Write);
        assert_eq!(required_scope(&Method::DELETE), Scope::Write);
        let admin = AuthenticatedClient {
            name: "ops".into(),
            scopes: [Scope::Admin].into(),
            is_child_node: false,
            data_scope: None,
        };
        assert!(admin.has_scope(Scope::Write));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn only_child_nodes_choose_the_origin() {
        let mut caller = AuthenticatedClient {
            name: "app".into(),
            scopes: [Scope::Write].into(),
            is_child_node: false,
            data_scope: None,
        };
        assert_eq!(effective_origin(&caller, Some("clinic-1"), Some("x")), None);
        caller.is_child_node = true;
        assert_eq!(
            effective_origin(&caller, Some("clinic-1"), Some("x")).as_deref(),
            Some("clinic-1")
        );
        assert_eq!(
            effective_origin(&caller, None, Some("clinic-2")).as_deref(),
            Some("clinic-2")
        );
        assert_eq!(effective_origin(&caller, None, None), None);
    }
}
