//! The data as the message of `sudo` or `su`: the first byte picks the program (odd: `su`),
//! the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, msg)) = data.split_first() else {
        return;
    };
    let app = if pick & 1 == 0 { "sudo" } else { "su" };
    vedette_agent::core::fuzzing::program(app, msg);
});
