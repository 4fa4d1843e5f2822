//! Fuzz target: see netalias::fuzz::stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netalias::fuzz::stack(data));
