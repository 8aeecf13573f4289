//! The PouchDB peer from the shared benchmark material: generates the documents both systems
//! replicate, and runs PouchDB's replication in its best configuration in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the PouchDB harness lives: `BENCH_POUCHDB`, else `../shared/peers/pouchdb` beside
/// the repository.
fn harness_source() -> PathBuf {
    match std::env::var_os("BENCH_POUCHDB") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/pouchdb"),
    }
}

/// A writable copy of the harness (it installs `node_modules` beside itself), or why there is
/// none.
pub fn harness() -> Result<PathBuf, String> {
    let source = harness_source();
    if !source.join("run.sh").exists() {
        return Err(format!("no PouchDB harness at {}", source.display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is not installed".into());
    }
    let copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pouchdb-peer");
    std::fs::create_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    for name in [
        "run.sh",
        "bench.js",
        "fhir.js",
        "package.json",
        "package-lock.json",
    ] {
        let (from, to) = (source.join(name), copy.join(name));
        let stale = std::fs::read(&to).ok() != std::fs::read(&from).ok();
        if stale {
            std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    Ok(copy)
}

/// Writes the harness's `n` FHIR resources as NDJSON to `out`; returns its size in bytes.
pub fn generate(harness: &Path, n: usize, out: &Path) -> Result<u64, String> {
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let status = Command::new("node")
        .arg(harness.join("fhir.js"))
        .arg(n.to_string())
        .stdout(file)
        .status()
        .map_err(|e| format!("node fhir.js: {e}"))?;
    if !status.success() {
        return Err(format!("node fhir.js exited with {status}"));
    }
    std::fs::metadata(out)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", out.display()))
}

/// PouchDB's figures for one replication of `n` documents.
pub struct PouchFigures {
    pub docs_per_second: f64,
    pub summary: Vec<String>,
}

/// Replicates `n` documents with PouchDB's best configuration (forked parent, gzip off,
/// batch 500) and returns its docs/s.
pub fn replicate(harness: &Path, n: usize) -> Result<PouchFigures, String> {
    let output = Command::new("bash")
        .arg(harness.join("run.sh"))
        .arg(n.to_string())
        .args(["--parent=fork", "--no-compression", "--batch-sizes=500"])
        .output()
        .map_err(|e| format!("run.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "run.sh exited with {}: {}",
            output.status,
            tail.join(" | ")
        ));
    }
    let docs_per_second = stdout
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once(" = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| format!("no docs/s figure in PouchDB's output: {stdout}"))?;
    Ok(PouchFigures {
        docs_per_second,
        summary: stdout.lines().map(str::to_string).collect(),
    })
}
