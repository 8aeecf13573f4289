//! The names the scope vocabulary shares with the store: which resource, of which family,
//! placed where.

use std::collections::BTreeSet;
use std::fmt;

use crate::classify::Classification;

/// Where a version belongs, as classified when it was written (see [`Classifier`](crate::Classifier)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Whether a rule covers the type; a shared version (`false`) is visible to every client.
    pub scoped: bool,
    /// The version's keys, its own and those of the Patient whose compartment it is in;
    /// sorted, without duplicates.
    pub keys: Vec<String>,
    /// That Patient, when the version is in a compartment.
    pub owner: Option<ResourceKey>,
    /// Keys the source supplied with the version rather than its body (the location path of
    /// an OpenMRS feed-filter tag); part of `keys`, and kept when the version is placed again.
    pub supplied: Vec<String>,
}

/// Most keys one placement holds: more are dropped from the end, since classification comes
/// from untrusted bodies and a placement is stored with every version.
pub const MAX_PLACEMENT_KEYS: usize = 64;

impl Placement {
    /// The placement of a body classified as `classification`, with the keys its source
    /// `supplied` and those of the Patient whose compartment it is in (`owner_keys`).
    pub fn of(
        classification: &Classification,
        supplied: &[String],
        owner_keys: Vec<String>,
    ) -> Placement {
        let keys: BTreeSet<String> = classification
            .keys
            .iter()
            .chain(supplied)
            .cloned()
            .chain(owner_keys)
            .collect();
        Placement {
            // A key from the source places a type no rule names, too.
            scoped: classification.scoped || !supplied.is_empty(),
            keys: keys.into_iter().take(MAX_PLACEMENT_KEYS).collect(),
            owner: classification.owner.clone(),
            supplied: supplied.iter().take(MAX_PLACEMENT_KEYS).cloned().collect(),
        }
    }
}

/// The location path an OpenMRS feed-filter tag carries: the `<filter>` of a `<feedFilter>`
/// XML tag, or a bare `%`-separated path (`Kenya%Nairobi%null%Kibera%null`). `None` for any
/// other tag, such as a scope key (`Organization/x`).
pub fn location_path(tag: &str) -> Option<&str> {
    let inner = tag
        .split_once("<filter>")
        .and_then(|(_, rest)| rest.split_once("</filter>"))
        .map(|(filter, _)| filter);
    let path = match inner {
        Some(filter) => filter.trim(),
        None => Some(tag.trim()).filter(|bare| bare.contains('%'))?,
    };
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::location_path;

    #[test]
    fn feed_filter_tags_carry_their_location_path() {
        let xml = "<?xml version=\"1.0\"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy\
                   </beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>";
        assert_eq!(location_path(xml), Some("Kenya%Nairobi%null%Kibera%null"));
        assert_eq!(location_path(" Kenya%Mombasa "), Some("Kenya%Mombasa"));
        assert_eq!(
            location_path("<feedFilter><filter>Kenya</filter></feedFilter>"),
            Some("Kenya")
        );
        assert_eq!(location_path("Organization/a"), None);
        assert_eq!(
            location_path("<feedFilter><filter> </filter></feedFilter>"),
            None
        );
    }
}

/// Which family of document a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A FHIR R4 resource (`Patient/abc`), stored with server meta spliced in.
    Fhir,
    /// An OpenMRS REST document (`patient/<uuid>`), stored exactly as given.
    Rest,
}

impl Kind {
    /// `"fhir"` or `"rest"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fhir => "fhir",
            Kind::Rest => "rest",
        }
    }
}

/// Identity of one resource in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// FHIR resource or REST document.
    pub kind: Kind,
    /// `"Patient"` for FHIR, `"patient"` for REST.
    pub resource_type: String,
    /// The FHIR id or REST uuid.
    pub id: String,
}

impl ResourceKey {
    /// A FHIR resource key.
    pub fn fhir(resource_type: impl Into<String>, id: impl Into<String>) -> Self {
        ResourceKey {
            kind: Kind::Fhir,
            resource_type: resource_type.into(),
            id: id.into(),
        }
    }

    /// A REST document key.
    pub fn rest(resource_type: impl Into<String>, id: impl Into<String>) -> Self {
        ResourceKey {
            kind: Kind::Rest,
            resource_type: resource_type.into(),
            id: id.into(),
        }
    }

    /// The feed category of this resource: its type in lower case.
    pub fn category(&self) -> String {
        self.resource_type.to_lowercase()
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.kind.as_str(),
            self.resource_type,
            self.id
        )
    }
}
