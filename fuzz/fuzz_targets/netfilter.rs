//! A kernel firewall (iptables / UFW / nftables LOG) line: the normalizer on the data, with
//! `IN=` put in front when the data has none, so the netfilter shape (`IN=` and ` OUT=`) is
//! at most one mutation away while the `[uptime] PREFIX` before `IN=` stays fuzzed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.windows(3).any(|w| w == b"IN=") {
        vedette_agent::core::fuzzing::normalize(data);
    } else {
        let mut line = b"IN=".to_vec();
        line.extend_from_slice(data);
        vedette_agent::core::fuzzing::normalize(&line);
    }
});
