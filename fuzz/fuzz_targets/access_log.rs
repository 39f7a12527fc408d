//! A web server access line (common / combined log format): the normalizer on
//! `203.0.113.7 - - [` followed by the data (detected by shape).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut line = b"203.0.113.7 - - [".to_vec();
    line.extend_from_slice(data);
    vedette_agent::core::fuzzing::normalize(&line);
});
