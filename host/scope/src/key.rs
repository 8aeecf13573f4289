//! The names the scope vocabulary shares with the store: which resource, of which family,
//! placed where.

use std::fmt;

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
