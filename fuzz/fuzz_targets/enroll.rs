//! `vedette_aggregator::fuzzing::enroll` on arbitrary bytes (the same body runs as proptests
//! in tests/tests/fuzz_props.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _issued = vedette_aggregator::fuzzing::enroll(data);
});
