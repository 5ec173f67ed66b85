//! libFuzzer target: arbitrary bytes as a property CSV file (see `stormops_fuzz::csv_import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stormops_fuzz::csv_import(data));
