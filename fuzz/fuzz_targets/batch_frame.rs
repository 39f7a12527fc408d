//! `vedette_aggregator::fuzzing::batch_frame` on arbitrary bytes (the same body runs as proptests
//! in tests/tests/fuzz_props.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vedette_aggregator::fuzzing::batch_frame(data);
});
