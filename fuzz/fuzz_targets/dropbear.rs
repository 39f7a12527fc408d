//! The data as the message of `dropbear[42]` (dropbear's own phrases).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::program("dropbear", data));
