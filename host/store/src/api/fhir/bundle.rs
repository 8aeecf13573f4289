//! Writing FHIR `Bundle` responses (searchset, history, batch and transaction responses) with
//! each resource embedded as its exact stored bytes.

use serde::Serialize;
use serde_json::value::RawValue;

use super::version_path;
use crate::api::headers::{fhir_instant, version_etag};
use crate::store::{Action, VersionRecord};

/// A Bundle being written.
#[derive(Debug, Serialize)]
pub struct BundleOut {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    link: Vec<LinkOut>,
    entry: Vec<EntryOut>,
}

#[derive(Debug, Serialize)]
struct LinkOut {
    relation: &'static str,
    url: String,
}

/// One Bundle entry.
#[derive(Debug, Serialize, Default)]
pub struct EntryOut {
    #[serde(rename = "fullUrl", skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<SearchOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseOut>,
}

#[derive(Debug, Serialize)]
struct SearchOut {
    mode: &'static str,
}

#[derive(Debug, Serialize)]
struct RequestOut {
    method: &'static str,
    url: String,
}

/// The `response` element of a batch, transaction or history entry.
#[derive(Debug, Serialize, Default)]
pub struct ResponseOut {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(rename = "lastModified", skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Box<RawValue>>,
}

impl BundleOut {
    /// An empty bundle of `bundle_type` (`searchset`, `history`, `batch-response`, ...).
    pub fn new(bundle_type: &'static str) -> BundleOut {
        BundleOut {
            resource_type: "Bundle",
            bundle_type,
            total: None,
            link: Vec::new(),
            entry: Vec::new(),
        }
    }

    /// Sets `total`.
    pub fn with_total(mut self, total: usize) -> BundleOut {
        self.total = Some(total);
        self
    }

    /// Adds a link (`self`, `next`).
    pub fn add_link(&mut self, relation: &'static str, url: String) {
        self.link.push(LinkOut { relation, url });
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: EntryOut) {
        self.entry.push(entry);
    }

    /// The bundle as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, strings and already-valid RawValues cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The stored body of `record` as an embeddable JSON value.
fn raw_body(record: &VersionRecord) -> Option<Box<RawValue>> {
    let body = record.body.as_ref()?;
    RawValue::from_string(body.trim().to_owned()).ok()
}

fn full_url(resource_base: &str, record: &VersionRecord) -> String {
    format!(
        "{resource_base}/{}/{}",
        record.key.resource_type, record.key.id
    )
}

/// A searchset entry for a matching resource.
pub fn search_entry(resource_base: &str, record: &VersionRecord) -> EntryOut {
    EntryOut {
        full_url: Some(full_url(resource_base, record)),
        resource: raw_body(record),
        search: Some(SearchOut { mode: "match" }),
        ..EntryOut::default()
    }
}

/// A history entry: the version (absent for deletes), how it came about, and its tag.
pub fn history_entry(resource_base: &str, record: &VersionRecord) -> EntryOut {
    let (method, status) = match record.action {
        Action::Deleted => ("DELETE", "200 OK"),
        Action::Created => ("POST", "201 Created"),
        _ => ("PUT", "200 OK"),
    };
    let url = if method == "POST" {
        record.key.resource_type.clone()
    } else {
        format!("{}/{}", record.key.resource_type, record.key.id)
    };
    EntryOut {
        full_url: Some(full_url(resource_base, record)),
        resource: if record.deleted {
            None
        } else {
            raw_body(record)
        },
        request: Some(RequestOut { method, url }),
        response: Some(version_response(status, record)),
        ..EntryOut::default()
    }
}

/// A batch or transaction response entry for a version that was written or read.
pub fn written_entry(status: &str, record: &VersionRecord, with_resource: bool) -> EntryOut {
    let mut response = version_response(status, record);
    response.location = Some(version_path(&record.key, record.version_id));
    EntryOut {
        resource: if with_resource {
            raw_body(record)
        } else {
            None
        },
        response: Some(response),
        ..EntryOut::default()
    }
}

/// A batch response entry for an entry that failed, with its OperationOutcome.
pub fn failed_entry(status: &str, outcome: String) -> EntryOut {
    EntryOut {
        response: Some(ResponseOut {
            status: status.to_owned(),
            outcome: RawValue::from_string(outcome).ok(),
            ..ResponseOut::default()
        }),
        ..EntryOut::default()
    }
}

fn version_response(status: &str, record: &VersionRecord) -> ResponseOut {
    ResponseOut {
        status: status.to_owned(),
        etag: Some(version_etag(record.version_id)),
        last_modified: Some(fhir_instant(record.last_updated)),
        ..ResponseOut::default()
    }
}
