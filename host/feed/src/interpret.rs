//! Turning one parsed Atom entry into a [`FeedEntryView`], or saying exactly what is wrong with it.

use atom_syndication::extension::ExtensionMap;
use atom_syndication::{Category, Entry};

use crate::content::{ContentProblem, parse_content};
use crate::dates::from_atom;
use crate::error::EntryError;
use crate::model::{Action, ContentLink, Extensions, FeedEntry, FeedEntryView};
use crate::names::{
    EXT_HASH, EXT_ORIGIN, EXT_RESOURCE_ID, EXT_RESOURCE_TYPE, EXT_SCOPE, EXT_SEQUENCE, EXT_VERSION,
    SCHEME_ACTION, SCHEME_CATEGORY, SCHEME_TAG, SCOPE_LEFT,
};
use crate::resource::derive_resource;

/// What the page tells the reader of each entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageContext {
    /// The XML prefixes bound to our namespace.
    pub our_prefixes: Vec<String>,
    /// The feed category named in the page URL (`/ws/atomfeed/{category}/…`).
    pub feed_category: Option<String>,
}

/// Reads `entry` in the context of its page.
pub(crate) fn interpret_entry(
    entry: &Entry,
    context: &PageContext,
) -> Result<FeedEntryView, EntryError> {
    let id = trim_xml_space(&entry.id);
    if id.is_empty() {
        return Err(EntryError::NoId);
    }
    if id.len() > crate::parse::MAX_ID_BYTES {
        return Err(EntryError::IdTooLong {
            limit: crate::parse::MAX_ID_BYTES,
        });
    }
    let links = entry_links(id, entry)?;
    let terms = sort_terms(&entry.categories, context.feed_category.as_deref());
    let category = terms
        .category
        .ok_or_else(|| EntryError::NoCategory { id: id.into() })?;
    let ext = read_extensions(id, &entry.extensions, &context.our_prefixes)?;
    let (resource_type, resource_id) =
        derive_resource(&ext, &links).ok_or_else(|| EntryError::NoResourceId {
            id: id.into(),
            links: links.iter().map(|link| link.href.clone()).collect(),
        })?;
    let out_of_range = |date: &dyn std::fmt::Display| EntryError::DateOutOfRange {
        id: id.into(),
        date: date.to_string(),
    };
    let updated = from_atom(&entry.updated).ok_or_else(|| out_of_range(&entry.updated))?;
    let published = match &entry.published {
        Some(published) => from_atom(published).ok_or_else(|| out_of_range(published))?,
        None => updated,
    };
    Ok(FeedEntryView {
        action: terms.action.unwrap_or(Action::Updated),
        resource_type,
        resource_id,
        entry: FeedEntry {
            id: id.to_owned(),
            title: entry.title.value.clone(),
            updated,
            published,
            category,
            action: terms.action,
            tags: terms.tags,
            links,
            ext,
        },
    })
}

/// `text` without surrounding XML white space (space, tab, line feed,
/// carriage return). Atom ids are IRIs, which never contain it, but
/// pretty-printed feeds put it around them.
pub(crate) fn trim_xml_space(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

fn entry_links(id: &str, entry: &Entry) -> Result<Vec<ContentLink>, EntryError> {
    let content = entry
        .content
        .as_ref()
        .ok_or_else(|| EntryError::NoContent { id: id.into() })?;
    let text = content.value.as_deref().unwrap_or_default();
    let links = parse_content(text).map_err(|problem| match problem {
        ContentProblem::Empty => EntryError::NoLink { id: id.into() },
        ContentProblem::BadJson(reason) => EntryError::UnparseableContent {
            id: id.into(),
            reason,
            content: text.into(),
        },
        ContentProblem::NotAUrl => EntryError::UnparseableContent {
            id: id.into(),
            reason: "neither a JSON object of links nor a URL".into(),
            content: text.into(),
        },
    })?;
    if links.is_empty() {
        return Err(EntryError::NoLink { id: id.into() });
    }
    Ok(links)
}

/// An entry's category terms sorted into category, action and tags.
#[derive(Debug, Default, PartialEq, Eq)]
struct Terms {
    category: Option<String>,
    action: Option<Action>,
    tags: Vec<String>,
}

/// Sorts category terms. Terms carrying our schemes say what they are.
/// Unmarked terms (other publishers; order is not meaningful) are guessed:
/// the first that reads as an action is the action; the category is the term
/// equal to the page's feed category when there is one, else the first that
/// looks like a category name (letters, digits, `_`, `-`, `.`); everything
/// else (feed-filter XML, say) is a tag.
fn sort_terms(categories: &[Category], feed_category: Option<&str>) -> Terms {
    let mut terms = Terms::default();
    let mut unmarked = Vec::new();
    for category in categories {
        let term = category.term.clone();
        match category.scheme.as_deref() {
            Some(SCHEME_CATEGORY) if terms.category.is_none() => terms.category = Some(term),
            Some(SCHEME_ACTION) if terms.action.is_none() => match Action::from_term(&term) {
                Some(action) => terms.action = Some(action),
                None => terms.tags.push(term),
            },
            Some(SCHEME_CATEGORY | SCHEME_ACTION | SCHEME_TAG) => terms.tags.push(term),
            _ => unmarked.push(term),
        }
    }
    if terms.category.is_none()
        && let Some(feed_category) = feed_category
        && let Some(at) = unmarked
            .iter()
            .position(|term| term.eq_ignore_ascii_case(feed_category))
    {
        terms.category = Some(unmarked.remove(at));
    }
    for term in unmarked {
        if terms.action.is_none()
            && let Some(action) = Action::from_term(&term)
        {
            terms.action = Some(action);
        } else if terms.category.is_none() && looks_like_category(&term) {
            terms.category = Some(term);
        } else {
            terms.tags.push(term);
        }
    }
    terms
}

fn looks_like_category(term: &str) -> bool {
    !term.is_empty()
        && term
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reads our extension elements under any of `prefixes`.
fn read_extensions(
    id: &str,
    extensions: &ExtensionMap,
    prefixes: &[String],
) -> Result<Extensions, EntryError> {
    let value = |name: &str| {
        prefixes
            .iter()
            .filter_map(|prefix| extensions.get(prefix)?.get(name)?.first())
            .find_map(|element| element.value.clone())
    };
    let sequence = match value(EXT_SEQUENCE) {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<u64>()
                .map_err(|_| EntryError::BadExtension {
                    id: id.into(),
                    element: EXT_SEQUENCE.into(),
                    value: text.clone(),
                })?,
        ),
    };
    Ok(Extensions {
        sequence,
        origin: value(EXT_ORIGIN),
        version: value(EXT_VERSION),
        content_hash: value(EXT_HASH),
        resource_type: value(EXT_RESOURCE_TYPE),
        resource_id: value(EXT_RESOURCE_ID),
        left_scope: value(EXT_SCOPE).as_deref() == Some(SCOPE_LEFT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmarked(terms: &[&str]) -> Vec<Category> {
        terms
            .iter()
            .map(|term| Category {
                term: (*term).into(),
                ..Category::default()
            })
            .collect()
    }

    #[test]
    fn unmarked_terms_in_any_order() {
        let expected = Terms {
            category: Some("patient".into()),
            action: Some(Action::Voided),
            tags: vec!["<feedFilter/>".into()],
        };
        for order in [
            ["patient", "VOIDED", "<feedFilter/>"],
            ["<feedFilter/>", "voided", "patient"],
            ["Voided", "<feedFilter/>", "patient"],
        ] {
            let mut want = expected.tags.clone();
            want.sort();
            let terms = sort_terms(&unmarked(&order), None);
            assert_eq!(terms.category, expected.category, "{order:?}");
            assert_eq!(terms.action, expected.action, "{order:?}");
            assert_eq!(terms.tags, want, "{order:?}");
        }
    }

    #[test]
    fn marked_terms_are_taken_at_their_word() {
        let marked = |term: &str, scheme: &str| Category {
            term: term.into(),
            scheme: Some(scheme.into()),
            label: None,
        };
        let terms = sort_terms(
            &[
                marked("CREATED", SCHEME_TAG),
                marked("Kenya%Nairobi", SCHEME_CATEGORY),
                marked("DELETED", SCHEME_ACTION),
            ],
            Some("patient"),
        );
        assert_eq!(terms.category.as_deref(), Some("Kenya%Nairobi"));
        assert_eq!(terms.action, Some(Action::Deleted));
        assert_eq!(terms.tags, vec!["CREATED".to_owned()]);
    }

    #[test]
    fn no_action_term_is_none() {
        let terms = sort_terms(&unmarked(&["patient"]), None);
        assert_eq!(terms.action, None);
        assert_eq!(terms.category.as_deref(), Some("patient"));
    }

    #[test]
    fn the_page_url_names_the_category_among_plain_tags() {
        let terms = sort_terms(
            &unmarked(&["Kibera", "CREATED", "Patient"]),
            Some("patient"),
        );
        assert_eq!(terms.category.as_deref(), Some("Patient"));
        assert_eq!(terms.tags, vec!["Kibera".to_owned()]);
        // Without the hint the first name-like term wins.
        let terms = sort_terms(&unmarked(&["Kibera", "CREATED", "patient"]), None);
        assert_eq!(terms.category.as_deref(), Some("Kibera"));
        // A combined feed's category matches no entry term: the guess applies.
        let terms = sort_terms(&unmarked(&["<x/>", "encounter"]), Some("all"));
        assert_eq!(terms.category.as_deref(), Some("encounter"));
    }
}
