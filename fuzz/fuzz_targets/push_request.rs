//! libFuzzer target: arbitrary bytes as a push request body (see `stormops_fuzz::push_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stormops_fuzz::push_request(data));
