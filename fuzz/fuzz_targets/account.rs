//! The data as the message of a shadow-utils (or util-linux chsh/chfn) account tool: the first byte picks the tool,
//! the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;

const TOOLS: [&str; 13] = [
    "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd", "chpasswd",
    "chage", "gpasswd", "newusers", "chsh", "chfn",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, msg)) = data.split_first() else {
        return;
    };
    vedette_agent::core::fuzzing::program(TOOLS[usize::from(pick) % TOOLS.len()], msg);
});
