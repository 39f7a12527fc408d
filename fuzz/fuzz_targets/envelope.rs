//! The syslog envelope splitter alone (RFC 5424, RFC 3164 and its file variants, plain
//! lines): never panics, and the message it returns lies inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::envelope(data));
