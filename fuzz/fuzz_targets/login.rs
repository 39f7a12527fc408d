//! The data as the message of `login[42]` (util-linux's and shadow's phrases).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::program("login", data));
