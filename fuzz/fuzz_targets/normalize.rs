//! The whole normalizer on one record read from a file (any envelope, any message).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::normalize(data));
