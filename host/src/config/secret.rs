//! Secrets named by the configuration: read from an environment variable or a file, never
//! written in the config itself.

use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from. Exactly one of the two keys must be given.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file, without a trailing newline.
    File(PathBuf),
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (it should hold a secret named in the config)")]
    MissingEnv(String),
    #[error("cannot read secret file {path}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Where the secret comes from, for messages: `environment variable X` or `file /p`.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(name) => format!("environment variable {name}"),
            SecretSource::File(path) => format!("file {}", path.display()),
        }
    }

    /// Reads the secret now. Called once at start so a missing secret stops the node early.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?
            }
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
            }
        };
        let trimmed = value.trim_end_matches(['\n', '\r']).to_string();
        if trimmed.is_empty() {
            return Err(SecretError::Empty(self.describe()));
        }
        Ok(trimmed)
    }
}
