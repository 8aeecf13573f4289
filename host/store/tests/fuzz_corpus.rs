//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the checks the fuzz
//! targets run, so that a regression on any input a fuzzer once found fails a stable build.

use std::path::PathBuf;

use sync_host_store::fuzz_checks;

/// Every file of the corpus of `target`; at least one, or the corpus has gone missing.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = std::fs::read(&path).expect("corpus file");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

/// Runs `check` on every input, on a thread with a small stack, so that an input that
/// recurses without bound overflows here (and aborts the test) as it would on a tokio worker.
fn replay(target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(target) {
        let outcome = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || check(&data))
            .expect("thread")
            .join();
        assert!(outcome.is_ok(), "{} fails {target}", path.display());
    }
}

#[test]
fn canonical_json_corpus() {
    replay("canonical_json", fuzz_checks::canonical_json);
}

#[test]
fn server_meta_corpus() {
    replay("server_meta", fuzz_checks::server_meta);
}

#[test]
fn fhir_body_corpus() {
    replay("fhir_body", fuzz_checks::fhir_body);
}
