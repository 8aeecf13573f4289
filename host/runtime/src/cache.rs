//! On-disk cache of compiled plugins, keyed by the wasm bytes and the engine's
//! compatibility hash, so a restart does not recompile every plugin.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const ARTIFACT_EXTENSION: &str = "cwasm";

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash is
/// stable across processes (unlike `DefaultHasher`, which is seeded).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only the full digest is used; see `cache_key`.
        0
    }
}

/// `sha256(wasm)`, hex encoded.
pub(crate) fn digest(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// `sha256(sha256(wasm) || engine compatibility hash)`, hex encoded.
pub fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(&Sha256::digest(wasm));
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// A compiled component and whether it came from the disk cache.
pub(crate) struct Compiled {
    pub(crate) component: Component,
    pub(crate) from_cache: bool,
}

/// Loads the compiled artifact for `wasm` from `cache_dir`, or compiles it and
/// stores the artifact. Cache problems are logged and never fail the load.
pub(crate) fn load_or_compile(
    engine: &Engine,
    cache_dir: Option<&Path>,
    wasm: &[u8],
) -> wasmtime::Result<Compiled> {
    let Some(dir) = cache_dir else {
        return Ok(Compiled {
            component: Component::new(engine, wasm)?,
            from_cache: false,
        });
    };
    let path = artifact_path(dir, &cache_key(engine, wasm));
    if let Some(component) = read_artifact(engine, &path) {
        return Ok(Compiled {
            component,
            from_cache: true,
        });
    }
    let component = Component::new(engine, wasm)?;
    if let Err(error) = write_artifact(&component, &path) {
        tracing::warn!(path = %path.display(), %error, "cannot write compiled plugin to the cache");
    }
    Ok(Compiled {
        component,
        from_cache: false,
    })
}

fn artifact_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.{ARTIFACT_EXTENSION}"))
}

#[allow(
    unsafe_code,
    reason = "the one place the host loads native code: see SAFETY below"
)]
fn read_artifact(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: deserialising runs native code from the file. The file is read
    // only from the cache directory the operator configured, under a name
    // derived from the sha256 of the wasm and this engine's compatibility hash,
    // and only this host writes there (via temp file + rename, so never a torn
    // file). Wasmtime additionally checks the artifact's engine compatibility.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "discarding unusable cached plugin");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// Writes atomically: a reader sees either no file or a complete one.
fn write_artifact(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|error| std::io::Error::other(format!("{error:#}")))?;
    let temp = path.with_extension(format!(
        "{ARTIFACT_EXTENSION}.tmp-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Distinguishes concurrent writers inside one process.
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: just the header.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine(epoch: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(epoch);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn the_key_depends_on_the_bytes_and_the_engine() {
        let plain = engine(false);
        let key = cache_key(&plain, b"one");
        assert_eq!(key.len(), 64);
        assert_eq!(key, cache_key(&plain, b"one"));
        assert_ne!(key, cache_key(&plain, b"two"));
        assert_ne!(key, cache_key(&engine(true), b"one"));
        // Stable across engines built with the same settings.
        assert_eq!(key, cache_key(&engine(false), b"one"));
    }

    #[test]
    fn a_second_load_comes_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(true);
        let first = load_or_compile(&engine, Some(dir.path()), EMPTY_COMPONENT).unwrap();
        assert!(!first.from_cache);
        let second = load_or_compile(&engine, Some(dir.path()), EMPTY_COMPONENT).unwrap();
        assert!(second.from_cache);
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temp files left behind");
    }

    #[test]
    fn a_corrupt_artifact_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(true);
        let path = artifact_path(dir.path(), &cache_key(&engine, EMPTY_COMPONENT));
        std::fs::write(&path, b"not an artifact").unwrap();
        let loaded = load_or_compile(&engine, Some(dir.path()), EMPTY_COMPONENT).unwrap();
        assert!(!loaded.from_cache);
        let again = load_or_compile(&engine, Some(dir.path()), EMPTY_COMPONENT).unwrap();
        assert!(again.from_cache);
    }
}
