//! A JSON application event: the normalizer on `{` followed by the data (detected by shape),
//! and the fast (tape) and general (`serde_json::Value`) paths, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vedette_agent::core::fuzzing::json(data);
});
