//! Fuzz target `feed_page`: arbitrary bytes through `sync_host_feed::fuzz_checks::feed_page`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_host_feed::fuzz_checks::feed_page(data));
