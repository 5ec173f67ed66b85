//! libFuzzer target: byte patches applied to a generated legacy database (see `stormops_fuzz::legacy_import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stormops_fuzz::legacy_import(data));
