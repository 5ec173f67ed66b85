//! libFuzzer target: bytes decoded into replicas and writes of one record (see `stormops_fuzz::merge`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stormops_fuzz::merge(data));
