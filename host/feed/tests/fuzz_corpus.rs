//! Replays the committed fuzz corpus of the `feed_page` target (`fuzz/corpus/feed_page/`)
//! through the same check, so that a regression on any input a fuzzer once found fails a
//! stable build.

use std::path::PathBuf;

#[test]
fn feed_page_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/feed_page");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("corpus file");
        // A small stack, so that an input that recurses without bound overflows here (and
        // aborts the test) as it would on a tokio worker.
        let outcome = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || sync_host_feed::fuzz_checks::feed_page(&data))
            .expect("thread")
            .join();
        assert!(outcome.is_ok(), "{} fails feed_page", path.display());
    }
}
