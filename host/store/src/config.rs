//! Configuration of the store's HTTP API: URL bases, page size, limits and timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the HTTP API that serves the store (FHIR, REST documents and the Atom feed).
///
/// Durations are written in configuration files as whole seconds (`long_poll_max_secs`,
/// `request_timeout_secs`) or milliseconds (`long_poll_coalesce_ms`,
/// `long_poll_least_interval_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Path prefix of the FHIR R4 API, without a trailing slash.
    pub fhir_base: String,
    /// Path prefix of the OpenMRS-style REST document API, without a trailing slash.
    pub rest_base: String,
    /// Path prefix of the Atom feeds, without a trailing slash.
    pub feed_base: String,
    /// Entries per feed page and the default `_count` of FHIR searches and histories.
    pub page_size: usize,
    /// Most entries one feed answer carries when a catching-up reader asks for a span of
    /// archive pages (`?count=`). Larger pages cost a catch-up fewer requests and commits.
    pub catch_up_page_max: usize,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Longest time a `recent` feed request with `?wait=` may be held open.
    #[serde(rename = "long_poll_max_secs", with = "whole_seconds")]
    pub long_poll_max: Duration,
    /// Most `recent?wait=` long-polls held open at once; one more is answered at once, as if
    /// it had not asked to wait. Each holds a connection (a file descriptor) meanwhile.
    pub long_poll_max_waiters: usize,
    /// Most long-polls one client holds open at once.
    pub long_poll_max_per_client: usize,
    /// How long the store must stay quiet after a change before woken long-polls are
    /// answered, so a burst of writes reaches each waiter in one answer (0 answers at once).
    /// A burst extends the wait by at most ten of these.
    #[serde(rename = "long_poll_coalesce_ms", with = "whole_millis")]
    pub long_poll_coalesce: Duration,
    /// Least time between two long-poll answers to the same client: a child answered a
    /// moment ago gets the writes that follow together, after this, instead of one answer per
    /// write. It bounds what a steady stream of writes costs a node with many children.
    #[serde(rename = "long_poll_least_interval_ms", with = "whole_millis")]
    pub long_poll_least_interval: Duration,
    /// Long-polls the node must hold for `long_poll_coalesce_ms` and
    /// `long_poll_least_interval_ms` to apply: with fewer children waiting there is little to
    /// save, and each change reaches them at once.
    pub long_poll_pace_from: usize,
    /// Longest time any request may take before the server answers 503. Must exceed
    /// `long_poll_max`, otherwise long-polls would be cut off.
    #[serde(rename = "request_timeout_secs", with = "whole_seconds")]
    pub request_timeout: Duration,
}

/// Largest `_count` a client may ask for; larger values are clamped.
pub const MAX_COUNT: usize = 1000;

/// Largest `long_poll_coalesce_ms` accepted: a woken child waits at most ten of these.
pub const MAX_COALESCE_MS: usize = 1000;

/// Largest `long_poll_least_interval_ms` accepted.
pub const MAX_LEAST_INTERVAL_MS: usize = 10_000;

/// Largest `catch_up_page_max` accepted: a span of feed entries stays a few MiB.
pub const MAX_CATCH_UP_PAGE: usize = 10_000;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            fhir_base: "/ws/fhir2/R4".to_owned(),
            rest_base: "/ws/rest/v1".to_owned(),
            feed_base: "/ws/atomfeed".to_owned(),
            page_size: 100,
            catch_up_page_max: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            long_poll_max: Duration::from_secs(30),
            long_poll_max_waiters: 4096,
            long_poll_max_per_client: 8,
            long_poll_coalesce: Duration::from_millis(5),
            long_poll_least_interval: Duration::from_millis(250),
            long_poll_pace_from: 100,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A configuration value that cannot work, naming the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiConfigError {
    /// A base path is empty, lacks the leading `/`, or ends with `/`.
    #[error("api setting `{key}` must start with '/' and not end with '/', got {value:?}")]
    BadBase {
        /// The setting's name.
        key: &'static str,
        /// The rejected value.
        value: String,
    },
    /// Two bases are equal, so their routes would collide.
    #[error("api settings `{first}` and `{second}` must differ, both are {value:?}")]
    SameBase {
        /// First setting's name.
        first: &'static str,
        /// Second setting's name.
        second: &'static str,
        /// The shared value.
        value: String,
    },
    /// A number that must be positive is zero.
    #[error("api setting `{key}` must be greater than zero")]
    Zero {
        /// The setting's name.
        key: &'static str,
    },
    /// A number is above what the server allows.
    #[error("api setting `{key}` must be at most {max}, got {value}")]
    TooLarge {
        /// The setting's name.
        key: &'static str,
        /// The largest value allowed.
        max: usize,
        /// The rejected value.
        value: usize,
    },
    /// The request timeout would cut long-polls short.
    #[error(
        "api setting `request_timeout_secs` ({timeout:?}) must exceed `long_poll_max_secs` ({long_poll:?})"
    )]
    TimeoutTooShort {
        /// The configured request timeout.
        timeout: Duration,
        /// The configured long-poll maximum.
        long_poll: Duration,
    },
}

impl ApiConfig {
    /// Checks the settings for values the server cannot work with.
    pub fn validate(&self) -> Result<(), ApiConfigError> {
        let bases = [
            ("fhir_base", &self.fhir_base),
            ("rest_base", &self.rest_base),
            ("feed_base", &self.feed_base),
        ];
        for (key, value) in bases {
            if !value.starts_with('/') || value.ends_with('/') || value.len() < 2 {
                return Err(ApiConfigError::BadBase {
                    key,
                    value: value.clone(),
                });
            }
        }
        for (index, (first, a)) in bases.iter().enumerate() {
            for (second, b) in &bases[index + 1..] {
                if a == b {
                    return Err(ApiConfigError::SameBase {
                        first,
                        second,
                        value: (*a).clone(),
                    });
                }
            }
        }
        if self.page_size == 0 {
            return Err(ApiConfigError::Zero { key: "page_size" });
        }
        if self.long_poll_max_waiters == 0 {
            return Err(ApiConfigError::Zero {
                key: "long_poll_max_waiters",
            });
        }
        if self.long_poll_max_per_client == 0 {
            return Err(ApiConfigError::Zero {
                key: "long_poll_max_per_client",
            });
        }
        let millis = [
            (
                "long_poll_coalesce_ms",
                self.long_poll_coalesce,
                MAX_COALESCE_MS,
            ),
            (
                "long_poll_least_interval_ms",
                self.long_poll_least_interval,
                MAX_LEAST_INTERVAL_MS,
            ),
        ];
        for (key, value, max) in millis {
            let value = usize::try_from(value.as_millis()).unwrap_or(usize::MAX);
            if value > max {
                return Err(ApiConfigError::TooLarge { key, max, value });
            }
        }
        if self.catch_up_page_max == 0 {
            return Err(ApiConfigError::Zero {
                key: "catch_up_page_max",
            });
        }
        if self.catch_up_page_max > MAX_CATCH_UP_PAGE {
            return Err(ApiConfigError::TooLarge {
                key: "catch_up_page_max",
                max: MAX_CATCH_UP_PAGE,
                value: self.catch_up_page_max,
            });
        }
        if self.max_body_bytes == 0 {
            return Err(ApiConfigError::Zero {
                key: "max_body_bytes",
            });
        }
        if self.request_timeout <= self.long_poll_max {
            return Err(ApiConfigError::TimeoutTooShort {
                timeout: self.request_timeout,
                long_poll: self.long_poll_max,
            });
        }
        Ok(())
    }
}

/// Serde adapter writing a `Duration` as a whole number of seconds.
mod whole_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

/// Serde adapter writing a `Duration` as a whole number of milliseconds.
mod whole_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ApiConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<ApiConfig>(r#"{"page_sise": 5}"#).unwrap_err();
        assert!(err.to_string().contains("page_sise"), "{err}");
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let config: ApiConfig =
            serde_json::from_str(r#"{"page_size": 7, "long_poll_max_secs": 5}"#).unwrap();
        assert_eq!(config.page_size, 7);
        assert_eq!(config.long_poll_max, Duration::from_secs(5));
        assert_eq!(config.fhir_base, "/ws/fhir2/R4");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let config = ApiConfig {
            rest_base: "ws/rest".into(),
            ..ApiConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("rest_base")
        );
        let config = ApiConfig {
            feed_base: "/ws/rest/v1".into(),
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ApiConfigError::SameBase { .. })
        ));
        let config = ApiConfig {
            request_timeout: Duration::from_secs(30),
            ..ApiConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ApiConfigError::TimeoutTooShort { .. })
        ));
        let config: ApiConfig = serde_json::from_str(r#"{"long_poll_coalesce_ms": 5000}"#).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("long_poll_coalesce_ms"), "{error}");
    }
}
