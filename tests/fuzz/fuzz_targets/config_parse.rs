//! Fuzz target: see netalias::fuzz::config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netalias::fuzz::config(data));
