//! Raw auditd records, several per input (one per line), so the event joiner is exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vedette_agent::core::fuzzing::auditd(data));
