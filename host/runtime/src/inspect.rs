//! Inspecting a component without instantiating it: which world it implements,
//! which contract version it was built for, and whether its imports are allowed.
//!
//! The decisions are pure functions of the import and export names so they can
//! be tested without any WebAssembly.

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::PluginRuntime;
use crate::error::InspectError;

/// The version of the `sync:plugin` package this host implements.
pub const HOST_WIT_VERSION: &str = "0.1.1";

const PACKAGE_PREFIX: &str = "sync:plugin/";
const CLIENT_INTERFACE: &str = "sync:plugin/client";
const FILTER_INTERFACE: &str = "sync:plugin/filter";
const CLASSIFIER_INTERFACE: &str = "sync:plugin/classifier";
const DESCRIBE_EXPORT: &str = "describe";

/// Import namespaces refused outright: plugins reach the world only through the host.
const FORBIDDEN_IMPORTS: &[&str] = &["wasi:filesystem/", "wasi:sockets/", "wasi:http/"];

/// Imports the host links (the WASI parts Rust guests always pull in, plus ours).
const PROVIDED_IMPORTS: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "sync:plugin/types",
    "sync:plugin/http",
    "sync:plugin/log",
];

/// The kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Exports `sync:plugin/client`: fetches and stores resources.
    ResourceClient,
    /// Exports `sync:plugin/filter`: decides which events are synced.
    EventFilter,
    /// Exports `sync:plugin/classifier`: says where resources belong, for data scopes.
    Classifier,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::ResourceClient => "resource-client",
            World::EventFilter => "event-filter",
            World::Classifier => "resource-classifier",
        })
    }
}

/// What inspection found out about a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// The world it implements.
    pub world: World,
    /// The `sync:plugin` version its interface names carry.
    pub wit_version: String,
    /// Every import name.
    pub imports: Vec<String>,
    /// Every export name.
    pub exports: Vec<String>,
}

/// Inspects a file's bytes without instantiating: is it a component, which world,
/// which WIT version, forbidden imports. Compiles the component, so it is as slow
/// as a load without cache.
pub fn inspect(runtime: &PluginRuntime, bytes: &[u8]) -> Result<ComponentInfo, InspectError> {
    check_header(bytes)?;
    let component = Component::new(runtime.engine(), bytes)
        .map_err(|error| InspectError::Invalid(format!("{error:#}")))?;
    inspect_component(runtime.engine(), &component)
}

/// Tells garbage and core modules apart from components by their header.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), InspectError> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(InspectError::CoreModule)
    } else {
        Err(InspectError::NotWasm)
    }
}

/// Classifies a compiled component by its import and export names.
pub(crate) fn inspect_component(
    engine: &Engine,
    component: &Component,
) -> Result<ComponentInfo, InspectError> {
    let ty = component.component_type();
    let imports = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    classify(imports, exports)
}

/// The pure decision: world, version and import audit from the names alone.
pub fn classify(imports: Vec<String>, exports: Vec<String>) -> Result<ComponentInfo, InspectError> {
    audit_imports(&imports)?;
    let wit_version = contract_version(imports.iter().chain(&exports))?;
    let world = world_of(&exports)?;
    Ok(ComponentInfo {
        world,
        wit_version,
        imports,
        exports,
    })
}

/// Checks that a component implements `expected`.
pub fn require_world(info: &ComponentInfo, expected: World) -> Result<(), InspectError> {
    if info.world == expected {
        Ok(())
    } else {
        Err(InspectError::WrongWorld {
            expected,
            found: info.world,
        })
    }
}

fn audit_imports(imports: &[String]) -> Result<(), InspectError> {
    for import in imports {
        if FORBIDDEN_IMPORTS.iter().any(|p| import.starts_with(p)) {
            return Err(InspectError::ForbiddenImport {
                import: import.clone(),
            });
        }
        if !PROVIDED_IMPORTS.iter().any(|p| import.starts_with(p)) {
            return Err(InspectError::UnknownImport {
                import: import.clone(),
            });
        }
    }
    Ok(())
}

/// Splits `sync:plugin/client@0.1.0` into (`sync:plugin/client`, `Some("0.1.0")`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    }
}

/// The contract version the component was built for; every `sync:plugin`
/// name must carry a version compatible with the host's.
fn contract_version<'a>(names: impl Iterator<Item = &'a String>) -> Result<String, InspectError> {
    let mut found = None;
    for name in names.filter(|n| n.starts_with(PACKAGE_PREFIX)) {
        let version = split_version(name).1.unwrap_or("unversioned");
        if !is_compatible(version, HOST_WIT_VERSION) {
            return Err(InspectError::IncompatibleVersion {
                found: version.to_owned(),
                host: HOST_WIT_VERSION.to_owned(),
            });
        }
        found.get_or_insert_with(|| version.to_owned());
    }
    // A component with no sync:plugin names at all fails the world check next;
    // report the host's version rather than inventing one.
    Ok(found.unwrap_or_else(|| HOST_WIT_VERSION.to_owned()))
}

fn world_of(exports: &[String]) -> Result<World, InspectError> {
    let exports_interface = |wanted: &str| exports.iter().any(|e| split_version(e).0 == wanted);
    let worlds: Vec<World> = [
        (CLIENT_INTERFACE, World::ResourceClient),
        (FILTER_INTERFACE, World::EventFilter),
        (CLASSIFIER_INTERFACE, World::Classifier),
    ]
    .into_iter()
    .filter(|(interface, _)| exports_interface(interface))
    .map(|(_, world)| world)
    .collect();
    let world = match worlds.as_slice() {
        [world] => *world,
        [] => {
            return Err(InspectError::NoWorld {
                exports: exports.to_vec(),
            });
        }
        _ => return Err(InspectError::BothWorlds),
    };
    if !exports.iter().any(|e| e == DESCRIBE_EXPORT) {
        return Err(InspectError::MissingExport {
            world,
            name: DESCRIBE_EXPORT.to_owned(),
        });
    }
    Ok(world)
}

/// Semver compatibility for a contract version: within `0.x` the minor version
/// must match; from `1.0` on, the major version.
pub fn is_compatible(found: &str, host: &str) -> bool {
    match (parse_version(found), parse_version(host)) {
        (Some((f_major, f_minor)), Some((h_major, h_minor))) => {
            if h_major == 0 {
                f_major == 0 && f_minor == h_minor
            } else {
                f_major == h_major
            }
        }
        _ => false,
    }
}

/// Major and minor of `X.Y.Z` (a pre-release or build suffix is allowed on Z).
fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?;
    let patch_digits = patch.split(['-', '+']).next()?;
    patch_digits.parse::<u64>().ok()?;
    Some((major, minor))
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
