//! Who may call a node's API: the configured clients with their secrets resolved, plus one
//! internal client, with a fresh random token per process, that the node's own plugins and
//! feed reader use for in-process calls.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sync_host_runtime::Credentials;
use sync_host_store::auth::{Client, Clients, Scope, Secret};
use sync_host_store::scope::DataScope;

use crate::config::token::{self, WeakToken};
use crate::config::{ClientConfig, CredentialsConfig, SecretError};

/// Why the client list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("`{key}` (client `{name}`) in {}", file.display())]
    Secret {
        key: String,
        name: String,
        file: PathBuf,
        source: SecretError,
    },
    #[error(
        "`{key}` (client `{name}`) in {}: the token from {origin} {problem}; {}",
        file.display(),
        token::HOW_TO_GENERATE
    )]
    Weak {
        key: String,
        name: String,
        file: PathBuf,
        origin: String,
        problem: WeakToken,
    },
    #[error("`{key}` (client `{name}`) in {}", file.display())]
    Scope {
        key: String,
        name: String,
        file: PathBuf,
        source: sync_host_store::scope::ScopeError,
    },
    #[error("invalid client list in {}", file.display())]
    Invalid {
        file: PathBuf,
        source: sync_host_store::auth::AuthError,
    },
}

/// The internal client's name in logs.
pub const INTERNAL_CLIENT: &str = "node-internal";

/// A random token that never leaves the process.
pub fn internal_token() -> String {
    token::generate()
}

/// Resolves every client's token, refusing weak ones, and adds the internal client. `file`
/// is the configuration the clients come from, for errors.
pub fn build_clients(
    configured: &[ClientConfig],
    internal: &str,
    file: &Path,
) -> Result<Clients, ClientSetupError> {
    let mut clients = Vec::with_capacity(configured.len() + 1);
    for (i, client) in configured.iter().enumerate() {
        let key = format!("server.clients[{i}].token");
        let token = client
            .token
            .resolve()
            .map_err(|source| ClientSetupError::Secret {
                key: key.clone(),
                name: client.name.clone(),
                file: file.to_path_buf(),
                source,
            })?;
        if let Some(problem) = token::weakness(&token) {
            return Err(ClientSetupError::Weak {
                key,
                name: client.name.clone(),
                file: file.to_path_buf(),
                origin: client.token.describe(),
                problem,
            });
        }
        let data_scope = match &client.data_scope {
            None => None,
            Some(patterns) => Some(Arc::new(DataScope::new(patterns).map_err(|source| {
                ClientSetupError::Scope {
                    key: format!("server.clients[{i}].data_scope"),
                    name: client.name.clone(),
                    file: file.to_path_buf(),
                    source,
                }
            })?)),
        };
        clients.push(Client {
            name: client.name.clone(),
            token: Secret::new(token),
            scopes: client.scopes.iter().copied().collect(),
            is_child_node: client.child_node,
            data_scope,
        });
    }
    // Internal writes carry the origin of the change they apply (a pulled change keeps the
    // node it came from), so the internal client is trusted like a child node.
    clients.push(Client {
        name: INTERNAL_CLIENT.to_string(),
        token: Secret::new(internal.to_string()),
        scopes: BTreeSet::from([Scope::Admin]),
        is_child_node: true,
        data_scope: None,
    });
    Clients::new(clients).map_err(|source| ClientSetupError::Invalid {
        file: file.to_path_buf(),
        source,
    })
}

/// Resolves outbound credentials named in the config.
pub fn outbound_credentials(
    config: Option<&CredentialsConfig>,
) -> Result<Option<Credentials>, SecretError> {
    Ok(match config {
        None => None,
        Some(CredentialsConfig::Bearer { token }) => Some(Credentials::Bearer(token.resolve()?)),
        Some(CredentialsConfig::Basic { username, password }) => Some(Credentials::Basic {
            username: username.clone(),
            password: password.resolve()?,
        }),
    })
}
