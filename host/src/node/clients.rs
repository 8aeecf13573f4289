//! Who may call a node's API: the configured clients with their secrets resolved, plus one
//! internal client, with a fresh random token per process, that the node's own plugins and
//! feed reader use for in-process calls.

use std::collections::BTreeSet;

use rand::Rng;
use sync_host_runtime::Credentials;
use sync_host_store::auth::{Client, Clients, Scope, Secret};

use crate::config::{ClientConfig, CredentialsConfig, SecretError};

/// Why the client list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("client `{name}`: {source}")]
    Secret { name: String, source: SecretError },
    #[error("invalid client list: {0}")]
    Invalid(#[from] sync_host_store::auth::AuthError),
}

/// The internal client's name in logs.
pub const INTERNAL_CLIENT: &str = "node-internal";

/// A random token that never leaves the process.
pub fn internal_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex_string(&bytes)
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves every client's token and adds the internal client.
pub fn build_clients(
    configured: &[ClientConfig],
    internal: &str,
) -> Result<Clients, ClientSetupError> {
    let mut clients = Vec::with_capacity(configured.len() + 1);
    for client in configured {
        let token = client
            .token
            .resolve()
            .map_err(|source| ClientSetupError::Secret {
                name: client.name.clone(),
                source,
            })?;
        clients.push(Client {
            name: client.name.clone(),
            token: Secret::new(token),
            scopes: client.scopes.iter().copied().collect(),
            is_child_node: client.child_node,
        });
    }
    // Internal writes carry the origin of the change they apply (a pulled change keeps the
    // node it came from), so the internal client is trusted like a child node.
    clients.push(Client {
        name: INTERNAL_CLIENT.to_string(),
        token: Secret::new(internal.to_string()),
        scopes: BTreeSet::from([Scope::Admin]),
        is_child_node: true,
    });
    Ok(Clients::new(clients)?)
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
