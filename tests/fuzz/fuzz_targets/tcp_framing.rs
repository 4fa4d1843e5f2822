//! Fuzz target: see netalias::fuzz::tcp_stream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netalias::fuzz::tcp_stream(data));
