//! Fuzz target: see netalias::fuzz::udp_answer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netalias::fuzz::udp_answer(data));
