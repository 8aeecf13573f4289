//! Fuzz target `canonical_json`: arbitrary bytes through `sync_host_store::fuzz_checks::canonical_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_host_store::fuzz_checks::canonical_json(data));
