//! Fuzz target `fhir_body`: arbitrary bytes through `sync_host_store::fuzz_checks::fhir_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_host_store::fuzz_checks::fhir_body(data));
