//! One record received as syslog off the wire (a missing PRI breaks the RFC): envelope,
//! structured data, then the message parsers. Seeds are RFC 5424 and RFC 3164 records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::syslog(data));
