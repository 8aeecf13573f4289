//! Fuzz target `server_meta`: arbitrary bytes through `sync_host_store::fuzz_checks::server_meta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_host_store::fuzz_checks::server_meta(data));
