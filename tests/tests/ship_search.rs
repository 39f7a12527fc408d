//! Searching what was shipped: `vedette-aggregator events` over a store filled by the real
//! agent from the repo's sample logs, against a brute-force scan of every stored event.

use std::time::Duration;

use serde_json::Value;

use super::support::Scratch;
use super::support::agent::RunningAgent;
use super::support::aggregator::{
    RunningAggregator, Stored, aggregator_cli, enroll_ok, ship_config,
};

const DEADLINE: Duration = Duration::from_secs(60);

fn text<'a>(e: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(e, |v, k| v.get(k))?.as_str()
}

/// The uids the CLI prints, in order.
fn cli_uids(args: &[&str]) -> Vec<String> {
    aggregator_cli(args)
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("one JSON object per line");
            e["metadata"]["uid"].as_str().expect("uid").to_owned()
        })
        .collect()
}

#[test]
fn events_by_time_class_host_user_and_address_are_what_a_scan_finds_newest_first() {
    let scratch = Scratch::new("ship-search");
    let agg = RunningAggregator::start(&scratch, "agg");
    let dir = scratch.path("agent");
    enroll_ok(&dir, &agg.server(), &agg.token("default", "1h"));
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/*.log");
    let cfg = scratch.write("agent.toml", ship_config(&dir, samples, "").as_bytes());
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    // The samples normalize to a few dozen events; wait until the count stops growing.
    let mut have = stored.wait_count(10, DEADLINE);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = stored.count();
        if now == have {
            break;
        }
        have = now;
    }
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let all = stored.events();
    assert_eq!(all.len() as u64, stored.count());
    // Newest first, the later stored first among equal times: (time, position) descending.
    let expect = |hit: &dyn Fn(&Value) -> bool, limit: usize| -> Vec<String> {
        let mut v: Vec<(i64, usize)> = all
            .iter()
            .enumerate()
            .filter(|(_, e)| hit(e))
            .map(|(i, e)| (e["time"].as_i64().expect("time"), i))
            .collect();
        v.sort_unstable_by_key(|&k| std::cmp::Reverse(k));
        v.iter()
            .take(limit)
            .map(|&(_, i)| all[i]["metadata"]["uid"].as_str().expect("uid").to_owned())
            .collect()
    };
    let state = agg.state_dir();
    let state = state.to_str().expect("utf-8 path");
    let mut searched = 0;
    // Every value the samples name, so the test follows the samples as they change.
    let mut classes: Vec<u64> = all.iter().filter_map(|e| e["class_uid"].as_u64()).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in &classes {
        let want = expect(&|e| e["class_uid"].as_u64() == Some(*class), 5);
        let c = class.to_string();
        assert_eq!(
            cli_uids(&[
                "events",
                "--state-dir",
                state,
                "--class",
                &c,
                "--limit",
                "5"
            ]),
            want,
            "class {class}"
        );
        searched += want.len();
    }
    let mut keyed = |flag: &str, paths: &[&[&str]]| {
        let mut values: Vec<&str> = all
            .iter()
            .flat_map(|e| paths.iter().filter_map(|p| text(e, p)))
            .collect();
        values.sort_unstable();
        values.dedup();
        assert!(!values.is_empty(), "the samples name no {flag}");
        for v in values {
            let want = expect(&|e| paths.iter().any(|p| text(e, p) == Some(v)), 3);
            assert_eq!(
                cli_uids(&["events", "--state-dir", state, flag, v, "--limit", "3"]),
                want,
                "{flag} {v}"
            );
            searched += want.len();
        }
    };
    keyed("--host", &[&["device", "hostname"]]);
    keyed("--ip", &[&["src_endpoint", "ip"], &["dst_endpoint", "ip"]]);
    // `user.name`, else `actor.user.name`: the store's rule.
    let mut users: Vec<&str> = all
        .iter()
        .filter_map(|e| text(e, &["user", "name"]).or_else(|| text(e, &["actor", "user", "name"])))
        .collect();
    users.sort_unstable();
    users.dedup();
    for u in users {
        let want = expect(
            &|e| {
                text(e, &["user", "name"]).or_else(|| text(e, &["actor", "user", "name"]))
                    == Some(u)
            },
            3,
        );
        assert_eq!(
            cli_uids(&["events", "--state-dir", state, "--user", u, "--limit", "3"]),
            want,
            "user {u}"
        );
        searched += want.len();
    }
    // No key: every event, newest first.
    assert_eq!(
        cli_uids(&["events", "--state-dir", state, "--limit", "7"]),
        expect(&|_| true, 7)
    );
    assert!(
        searched > 20,
        "too little found to test anything: {searched}"
    );
    // Nothing for an address nobody named; a window reaching before every event changes
    // nothing.
    assert!(cli_uids(&["events", "--state-dir", state, "--ip", "192.0.2.254"]).is_empty());
    let c = classes[0].to_string();
    assert_eq!(
        cli_uids(&[
            "events",
            "--state-dir",
            state,
            "--class",
            &c,
            "--since",
            "36500d"
        ]),
        cli_uids(&["events", "--state-dir", state, "--class", &c]),
    );
}

#[test]
fn events_past_the_retention_are_pruned_at_start_and_on_demand() {
    // Without retention the store only grew: a SOC keeps a set number of days, and the
    // disk under the aggregator is not infinite.
    use super::support::aggregator::{enrolled_agent, line_numbers};
    const OLD: usize = 500;
    const NEW: usize = 300;
    let scratch = Scratch::new("ship-retention");
    let mut agg =
        RunningAggregator::start_with(&scratch, "agg", None, "\n[store]\nretention = \"30d\"\n");
    let (_, cfg) = enrolled_agent(&scratch, &agg, 0, "");
    // Events of 2020 first, then recent ones, so no batch holds both.
    let old: String = (0..OLD)
        .map(|i| {
            format!(
                "2020-01-01T00:00:{:02}Z host1 app[1]: distinct line {i} of old\n",
                i % 60
            )
        })
        .collect();
    scratch.write("logs/old.log", old.as_bytes());
    let agent = RunningAgent::spawn(cfg.clone(), scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    assert_eq!(
        stored.wait_count(OLD as u64, Duration::from_secs(60)),
        OLD as u64
    );
    // Two hours ago: inside 30 days, outside an hour, whenever the test runs.
    let recent =
        jiff::Timestamp::from_millisecond(vedette_aggregator::io::clock::now_ms() - 2 * 3_600_000)
            .expect("a time");
    let new: String = (0..NEW)
        .map(|i| format!("{recent} host1 app[1]: distinct line {i} of new\n"))
        .collect();
    scratch.write("logs/new.log", new.as_bytes());
    assert_eq!(
        stored.wait_count((OLD + NEW) as u64, Duration::from_secs(60)),
        (OLD + NEW) as u64
    );
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // A restart prunes at start: the 2020 events go, the recent ones stay.
    agg.pause();
    agg.resume();
    let line = agg.wait_log("retention: deleted");
    assert!(line.contains(&format!("deleted {OLD} events")), "{line}");
    let stored = Stored::open(&agg.db());
    assert_eq!(stored.count(), NEW as u64);
    assert_eq!(line_numbers(&stored.events()).len(), NEW);
    let state = agg.state.to_str().unwrap().to_owned();
    let stats = aggregator_cli(&["stats", "--state-dir", &state]);
    assert!(stats.contains(&format!("events: {NEW}")), "{stats}");
    let hosts = aggregator_cli(&[
        "events",
        "--state-dir",
        &state,
        "--host",
        "host1",
        "--limit",
        "1000",
    ]);
    assert_eq!(hosts.lines().count(), NEW, "{hosts}");

    // On demand, while it serves: none of what is left is 30 days old; all of it is an
    // hour old.
    let none = aggregator_cli(&["prune", "--state-dir", &state, "--older-than", "30d"]);
    assert!(none.starts_with("pruned 0 events"), "{none}");
    let all = aggregator_cli(&["prune", "--state-dir", &state, "--older-than", "1h"]);
    assert!(all.starts_with(&format!("pruned {NEW} events")), "{all}");
    assert_eq!(stored.count(), 0);
}
