//! Turning change-log entries into Atom feed entries and pages: ids, titles, the JSON links to
//! the resource (`fhir` or `rest`, relative to the node's base URL) and our extensions.

use sync_host_feed::{ContentLink, Extensions, FeedEntry, FeedPage, PageLinks};
use time::OffsetDateTime;

use crate::config::ApiConfig;
use crate::store::{Change, Kind};

/// The link a client follows to fetch the changed resource, relative to the node's base URL.
pub fn content_link(change: &Change, config: &ApiConfig) -> ContentLink {
    let key = &change.key;
    match key.kind {
        Kind::Fhir => ContentLink::new(
            "fhir",
            format!("{}/{}/{}", config.fhir_base, key.resource_type, key.id),
        ),
        Kind::Rest => ContentLink::new(
            "rest",
            format!(
                "{}/{}/{}?v=full",
                config.rest_base, key.resource_type, key.id
            ),
        ),
    }
}

/// The Atom entry id of a change: unique across nodes, stable for the change.
pub fn entry_id(node_id: &str, sequence: u64) -> String {
    format!("urn:sync-host:{node_id}:change:{sequence}")
}

/// The feed entry for one change.
pub fn feed_entry(change: &Change, node_id: &str, config: &ApiConfig) -> FeedEntry {
    FeedEntry {
        id: entry_id(node_id, change.sequence),
        title: change.key.resource_type.clone(),
        updated: change.at,
        published: change.at,
        category: change.category.clone(),
        action: Some(change.action),
        // The keys travel as tags, so a reader's own filters (or an OpenMRS-style catchment
        // filter) can see where each change belongs.
        tags: change.placement.keys.clone(),
        links: vec![content_link(change, config)],
        ext: Extensions {
            sequence: Some(change.sequence),
            origin: Some(change.origin.clone()),
            version: Some(change.version_id.to_string()),
            content_hash: Some(change.content_hash.clone()),
            resource_type: Some(change.key.resource_type.clone()),
            resource_id: Some(change.key.id.clone()),
            left_scope: false,
        },
    }
}

/// The entry telling a scoped reader that the resource of `change` left its scope: the
/// resource's type and id, and nothing of where it went, who changed it or what it holds now.
pub fn left_scope_entry(change: &Change, node_id: &str, config: &ApiConfig) -> FeedEntry {
    let mut entry = feed_entry(change, node_id, config);
    entry.action = Some(sync_host_feed::Action::Updated);
    entry.tags = Vec::new();
    entry.ext.origin = None;
    entry.ext.version = None;
    entry.ext.content_hash = None;
    entry.ext.left_scope = true;
    entry
}

/// A whole page: its id names the node, category and page number.
pub fn feed_page(
    node_id: &str,
    category: &str,
    number: u64,
    links: PageLinks,
    entries: Vec<FeedEntry>,
) -> FeedPage {
    let updated = entries
        .last()
        .map(|entry| entry.updated)
        .unwrap_or_else(OffsetDateTime::now_utc);
    FeedPage {
        id: format!("urn:sync-host:{node_id}:feed:{category}:{number}"),
        title: format!("{category} changes on {node_id}"),
        updated,
        links,
        entries,
    }
}
