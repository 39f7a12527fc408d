//! The data as the message of `sshd[42]` (sshd parser, and pam through sshd).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::program("sshd", data));
