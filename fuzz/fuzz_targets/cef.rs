//! A CEF record: the normalizer on `CEF:0|` followed by the data (detected by shape).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut line = b"CEF:0|".to_vec();
    line.extend_from_slice(data);
    vedette_agent::core::fuzzing::normalize(&line);
});
