//! What one peer may hold on the aggregator: a batch stream that stalls mid-payload and
//! enrollment connections left idle are dropped after the stall timeout, and one agent
//! holds at most its share of the batch memory, so neither stops anyone else.

use std::time::Duration;

use super::support::Scratch;
use super::support::agent::RunningAgent;
use super::support::aggregator::{
    RunningAggregator, Stored, enroll_ok, enrolled_agent, line_numbers, quic_client,
};

/// The aggregator's `close::PROTOCOL`, `close::STALLED` and `close::BUSY`.
const PROTOCOL: u32 = 3;
const STALLED: u32 = 5;
const BUSY: u32 = 6;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A client of an agent enrolled here, for a test to speak the batch protocol by hand.
fn enrolled_client(scratch: &Scratch, agg: &RunningAggregator) -> quinn::ClientConfig {
    let hostile = scratch.path("hostile");
    enroll_ok(&hostile, &agg.server(), &agg.token("default", "1h"));
    let pem = |n: &str| std::fs::read_to_string(hostile.join("identity").join(n)).unwrap();
    quic_client(
        agg,
        Some((pem("agent.pem"), pem("agent.key"))),
        b"vedette/1",
    )
}

async fn connect(cfg: quinn::ClientConfig, addr: std::net::SocketAddr) -> quinn::Connection {
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.connect_with(cfg, addr, "localhost")
        .unwrap()
        .await
        .unwrap()
}

/// The start of a batch stream: its type byte and the header frame.
fn batch_stream_start(header: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(header).unwrap();
    let mut buf = vec![2u8];
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    buf
}

/// Sends one batch on a stream of its own and returns the aggregator's answer.
async fn send_one_batch(
    cfg: quinn::ClientConfig,
    addr: std::net::SocketAddr,
    header: &serde_json::Value,
    payload: &[u8],
) -> serde_json::Value {
    let conn = connect(cfg, addr).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut buf = batch_stream_start(header);
    buf.extend_from_slice(payload);
    send.write_all(&buf).await.unwrap();
    send.finish().unwrap();
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix)
        .await
        .expect("an answer, not a reset");
    let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
    recv.read_exact(&mut frame).await.unwrap();
    serde_json::from_slice(&frame).unwrap()
}

#[test]
fn an_agent_that_stalls_mid_batch_holds_no_other_agent_up() {
    // The header alone reserved a batch's memory and the payload was awaited for ever: an
    // agent (compromised, or on a link that died without a close) announcing the largest
    // batches allowed and sending nothing held the server's whole 512 MiB budget, and every
    // other agent's batches waited behind it. (Each announces 8 MiB of payload for 32 MiB
    // of text: ~116 MiB to decode, within the agent's 128 MiB share.)
    const N: usize = 3_000;
    let scratch = Scratch::new("ship-stall");
    let mut agg = RunningAggregator::start_with(&scratch, "agg", None, "stall_timeout = \"2s\"\n");
    let cfg = enrolled_client(&scratch, &agg);
    let addr = agg.addr;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stalls = std::thread::spawn(move || {
        runtime().block_on(async {
            let conn = connect(cfg, addr).await;
            let mut streams = Vec::new();
            for seq in 1..=3u64 {
                let (mut send, recv) = conn.open_bi().await.unwrap();
                let header = serde_json::json!({
                    "agent_id": "hostile", "epoch": 1, "seq": seq, "events": 1,
                    "first_time": 0, "last_time": 0, "created_ms": 0,
                    "raw_len": 32u64 << 20, "zstd_len": 8u64 << 20,
                    "checksum": 0, "watermarks": [],
                });
                send.write_all(&batch_stream_start(&header)).await.unwrap();
                streams.push((send, recv));
            }
            ready_tx.send(()).unwrap();
            // What became of each stream: the server's reset code, or nothing.
            let mut codes = Vec::new();
            for (_send, mut recv) in streams {
                let mut b = [0u8; 4];
                codes.push(
                    match tokio::time::timeout(Duration::from_secs(60), recv.read_exact(&mut b))
                        .await
                    {
                        Ok(Err(quinn::ReadExactError::ReadError(quinn::ReadError::Reset(c)))) => {
                            format!("reset {c}")
                        }
                        other => format!("{other:?}"),
                    },
                );
            }
            codes
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stalling agent connected");

    let (_dir, cfg) = enrolled_agent(&scratch, &agg, N, "");
    let agent = RunningAgent::spawn(cfg, scratch.path("unused.ndjson"));
    let stored = Stored::open(&agg.db());
    // Well inside the stalling agent's 60 s: the others are not waiting for it.
    let have = stored.wait_count(N as u64, Duration::from_secs(30));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(have, N as u64, "{log}\n---\n{}", agg.log());
    let seen = line_numbers(&stored.events());
    assert!(seen.len() == N && seen.values().all(|&c| c == 1));
    // Each stalled stream was dropped and the agent told; the server said why.
    let codes = stalls.join().unwrap();
    assert_eq!(codes, vec![format!("reset {STALLED}"); 3], "{}", agg.log());
    // Each was dropped: waiting for its payload, or (those the share could not take
    // while another held it) waiting for memory, which is bounded the same way.
    let dropped = |log: &str, seq: u64| {
        log.lines().any(|l| {
            l.contains(&format!("batch {seq} ")) && l.ends_with("nothing arrived for 2 s, dropped")
        })
    };
    // The server logs a drop just after the reset the client saw: up to 30 s for the
    // lines to come.
    let mut log = agg.log();
    for _ in 0..600 {
        if (1..=3).all(|seq| dropped(&log, seq)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        log = agg.log();
    }
    for seq in 1..=3 {
        assert!(dropped(&log, seq), "batch {seq}:\n{log}");
    }
}

#[test]
fn a_batch_too_big_to_decode_within_the_agents_share_is_refused_for_good() {
    // Its charge was clamped to the agent's share (128 MiB) whatever the header announced,
    // so one batch of 256 MiB of text (up to ~1 GiB to decode) was let in on a quarter of
    // that. Now it is read to its end without being kept and refused with the reason: the
    // agent sets it aside instead of sending it again.
    let scratch = Scratch::new("ship-too-big");
    let mut agg = RunningAggregator::start(&scratch, "agg");
    let cfg = enrolled_client(&scratch, &agg);
    let addr = agg.addr;
    let header = serde_json::json!({
        "agent_id": "hostile", "epoch": 9, "seq": 4, "events": 1,
        "first_time": 0, "last_time": 0, "created_ms": 0,
        "raw_len": 48u64 << 20, "zstd_len": 300_000,
        "checksum": 0, "watermarks": [],
    });
    let ack = runtime().block_on(send_one_batch(cfg, addr, &header, &[7u8; 300_000]));
    assert_eq!(
        (ack["epoch"].as_u64(), ack["seq"].as_u64()),
        (Some(9), Some(4))
    );
    assert_eq!(ack["outcome"]["result"], "rejected", "{ack}");
    let reason = ack["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("MiB, over the 128 MiB one agent may hold"),
        "{reason}"
    );
    agg.wait_log("decoding it would take 148 MiB, over the 128 MiB one agent may hold");
}

#[test]
fn a_batch_with_more_source_ranges_than_a_header_may_carry_is_refused_for_good() {
    // The connection was closed as a protocol fault, so the agent that sent it (the
    // batcher had no cap) reconnected and sent the same batch again, forever. Its
    // batcher now cuts at the cap (`batcher::tests::a_batch_is_cut_before_it_carries_more_ranges_than_the_wire_allows`); a batch over it
    // is answered, and set aside.
    let scratch = Scratch::new("ship-ranges");
    let mut agg = RunningAggregator::start(&scratch, "agg");
    let cfg = enrolled_client(&scratch, &agg);
    let ranges: Vec<_> = (0..=vedette_schemas::wire::MAX_WATERMARKS)
        .map(|i| {
            serde_json::json!({
                "source": format!("/var/log/app/{i}.log"), "stream": "dev=1,ino=2",
                "unit": "byte", "first": 0, "end": 10, "records": 1,
            })
        })
        .collect();
    // Refused before its payload is read, so the payload need not be zstd.
    let payload = vec![7u8; 64];
    let header = serde_json::json!({
        "agent_id": "hostile", "epoch": 9, "seq": 5, "events": 1,
        "first_time": 0, "last_time": 0, "created_ms": 0,
        "raw_len": 1024, "zstd_len": payload.len(),
        "checksum": 0, "watermarks": ranges,
    });
    let ack = runtime().block_on(send_one_batch(cfg, agg.addr, &header, &payload));
    assert_eq!(ack["seq"].as_u64(), Some(5), "{ack}");
    assert_eq!(ack["outcome"]["result"], "rejected", "{ack}");
    let reason = ack["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("it carries 4097 source ranges, over the 4096 one batch may"),
        "{reason}"
    );
    agg.wait_log("refused batch 5 of");
}

#[test]
fn control_frames_are_bounded_in_number_and_time() {
    // A connection could open any number of control streams, each reading frames of up
    // to 1 MiB with no time limit once their length was sent: an enrolled agent held
    // memory outside every budget. Now one control stream per connection, and a frame's
    // body comes within the stall timeout or the stream is dropped.
    let scratch = Scratch::new("ship-control");
    let mut agg = RunningAggregator::start_with(&scratch, "agg", None, "stall_timeout = \"1s\"\n");
    let cfg = enrolled_client(&scratch, &agg);
    let addr = agg.addr;
    let closed = runtime().block_on(async {
        let conn = connect(cfg.clone(), addr).await;
        // A frame announced at 1 MiB, then nothing.
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        let mut start = vec![1u8];
        start.extend_from_slice(&(1u32 << 20).to_be_bytes());
        send.write_all(&start).await.unwrap();
        // A second control stream on the same connection.
        let (mut second, _recv2) = conn.open_bi().await.unwrap();
        second.write_all(&[1u8]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), conn.closed())
            .await
            .expect("the connection closed")
    });
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, quinn::VarInt::from_u32(PROTOCOL), "{c:?}");
        }
        other => panic!("{other:?}"),
    }
    agg.wait_log("a second control stream on one connection");
    // The stalled frame alone, on a connection of its own (kept open by its own thread
    // while the log is read): dropped after the timeout.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let client = std::thread::spawn(move || {
        runtime().block_on(async {
            let conn = connect(cfg, addr).await;
            let (mut send, _recv) = conn.open_bi().await.unwrap();
            let mut start = vec![1u8];
            start.extend_from_slice(&(1u32 << 20).to_be_bytes());
            send.write_all(&start).await.unwrap();
            let _ignored = done_rx.await;
        });
    });
    agg.wait_log("a control frame (0 of 1048576 bytes in): nothing arrived for 1 s");
    done_tx.send(()).unwrap();
    client.join().unwrap();
}

#[test]
fn a_connection_gets_a_certificate_signed_at_most_once_per_twentieth_of_its_life() {
    // A connection asking in a loop must not keep the CA signing; the limit is a twentieth
    // of a certificate's life (here 1 min: 3 s), at most a minute, so that an agent whose
    // renewal could not be saved asks again well before its certificate ends.
    let scratch = Scratch::new("ship-renew-rate");
    let agg = RunningAggregator::start_with(&scratch, "agg", None, "cert_lifetime = \"1m\"\n");
    let cfg = enrolled_client(&scratch, &agg);
    let key = rcgen::KeyPair::generate().unwrap();
    let csr_pem = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let answers = runtime().block_on(async {
        let conn = connect(cfg, agg.addr).await;
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let frame =
            serde_json::to_vec(&serde_json::json!({"type": "renew", "csr_pem": csr_pem})).unwrap();
        let mut buf = vec![1u8];
        for _ in 0..2 {
            buf.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            buf.extend_from_slice(&frame);
        }
        send.write_all(&buf).await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..2 {
            let mut prefix = [0u8; 4];
            recv.read_exact(&mut prefix).await.expect("an answer");
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            recv.read_exact(&mut body).await.unwrap();
            answers.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
        }
        answers
    });
    assert_eq!(answers[0]["type"], "renewed", "{answers:?}");
    assert_eq!(answers[1]["type"], "error", "{answers:?}");
    let reason = answers[1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("a renewal was signed less than 3000 ms ago on this connection"),
        "{reason}"
    );
}

#[test]
fn idle_enrollment_connections_are_bounded_and_dropped() {
    // The enrollment ALPN is the one door open without a certificate. Each connection on
    // it was served for as long as the client kept it alive: anyone who could reach the
    // port could hold as many as they liked.
    const IDLE: usize = 40;
    let scratch = Scratch::new("ship-enroll-idle");
    let agg = RunningAggregator::start_with(&scratch, "agg", None, "stall_timeout = \"2s\"\n");
    let cfg = quic_client(&agg, None, b"vedette-enroll/1");
    let codes: Vec<u32> = runtime().block_on(async {
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut conns = Vec::new();
        for _ in 0..IDLE {
            let c = ep.connect_with(cfg.clone(), agg.addr, "localhost").unwrap();
            conns.push(c.await.expect("the handshake"));
        }
        let mut codes = Vec::new();
        for c in conns {
            match tokio::time::timeout(Duration::from_secs(30), c.closed()).await {
                Ok(quinn::ConnectionError::ApplicationClosed(a)) => {
                    codes.push(a.error_code.into_inner() as u32);
                }
                Ok(other) => panic!("closed otherwise: {other}"),
                Err(_) => panic!("the server still holds an idle enrollment after 30 s"),
            }
        }
        codes
    });
    let stalled = codes.iter().filter(|&&c| c == STALLED).count();
    let busy = codes.iter().filter(|&&c| c == BUSY).count();
    assert_eq!(stalled + busy, IDLE, "{codes:?}");
    // At most 16 are served at once: the rest were turned away at the door.
    assert!(busy >= IDLE - 16, "{codes:?}");
    assert!(stalled >= 1, "{codes:?}");
    // And the door still opens for a real enrollment.
    enroll_ok(
        &scratch.path("agent"),
        &agg.server(),
        &agg.token("default", "1h"),
    );
}

#[test]
fn one_agent_holds_a_bounded_number_of_connections() {
    // Each connection of an agent holds what its memory share does not count (QUIC's
    // receive windows, up to 32 MiB; batch headers waiting for the share), and nothing
    // bounded their number: one enrolled agent could open connections until the server
    // ran out of memory. Now four at once; the fifth is turned away as busy, and a place
    // given back is taken again.
    let scratch = Scratch::new("ship-conns");
    let mut agg = RunningAggregator::start(&scratch, "agg");
    let cfg = enrolled_client(&scratch, &agg);
    let addr = agg.addr;
    runtime().block_on(async {
        // A connection is counted once its handler runs: each is seen to run by the
        // welcome its hello gets.
        let hello = serde_json::to_vec(&serde_json::json!({
            "type": "hello", "version": "test", "hostname": "h", "host": {}, "epoch": 1
        }))
        .unwrap();
        let mut open = Vec::new();
        for _ in 0..4 {
            let conn = connect(cfg.clone(), addr).await;
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            let mut frame = vec![1u8];
            frame.extend_from_slice(&(hello.len() as u32).to_be_bytes());
            frame.extend_from_slice(&hello);
            send.write_all(&frame).await.unwrap();
            let mut len = [0u8; 4];
            recv.read_exact(&mut len).await.unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            recv.read_exact(&mut body).await.unwrap();
            assert!(String::from_utf8_lossy(&body).contains("welcome"));
            open.push((conn, send));
        }
        let fifth = connect(cfg.clone(), addr).await;
        let closed = tokio::time::timeout(Duration::from_secs(30), fifth.closed())
            .await
            .expect("the fifth connection is closed");
        match closed {
            quinn::ConnectionError::ApplicationClosed(c) => {
                assert_eq!(c.error_code, quinn::VarInt::from_u32(BUSY), "{c:?}");
            }
            other => panic!("{other:?}"),
        }
        let (conn, _send) = open.pop().unwrap();
        conn.close(0u32.into(), b"done");
        drop(conn);
        // The place comes back once the server sees the close.
        let mut again = None;
        for _ in 0..100 {
            let c = connect(cfg.clone(), addr).await;
            match tokio::time::timeout(Duration::from_millis(300), c.closed()).await {
                Err(_) => {
                    again = Some(c);
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert!(again.is_some(), "a place given back is taken again");
    });
    agg.wait_log("more than 4 connections at once");
}

#[test]
fn an_enrollment_request_trickled_or_oversized_is_dropped() {
    // The stall timeout restarted with every byte: a client sending a large frame a byte
    // now and then held one of the 16 enrollment places as long as it liked, and sixteen
    // of them kept every new agent out. The request must come whole within one stall
    // period, and be the size of a token and a CSR.
    let scratch = Scratch::new("ship-enroll-trickle");
    let agg = RunningAggregator::start_with(&scratch, "agg", None, "stall_timeout = \"2s\"\n");
    let cfg = quic_client(&agg, None, b"vedette-enroll/1");
    let (trickled, oversized) = runtime().block_on(async {
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let trickler = ep.connect_with(cfg.clone(), agg.addr, "localhost").unwrap();
        let trickler = trickler.await.expect("the handshake");
        let (mut send, _recv) = trickler.open_bi().await.unwrap();
        send.write_all(&(8000u32).to_be_bytes()).await.unwrap();
        let start = tokio::time::Instant::now();
        // A byte every half second: never silent for a stall period.
        let closed = loop {
            tokio::select! {
                e = trickler.closed() => break e,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if send.write_all(b"x").await.is_err() {
                        break trickler.closed().await;
                    }
                    assert!(start.elapsed() < Duration::from_secs(20), "still held after 20 s");
                }
            }
        };
        let big = ep.connect_with(cfg.clone(), agg.addr, "localhost").unwrap();
        let big = big.await.expect("the handshake");
        let (mut send, _recv) = big.open_bi().await.unwrap();
        send.write_all(&(100_000u32).to_be_bytes()).await.unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(20), big.closed())
            .await
            .expect("an oversized request is refused at once");
        let code = |e: quinn::ConnectionError| match e {
            quinn::ConnectionError::ApplicationClosed(a) => a.error_code.into_inner() as u32,
            other => panic!("closed otherwise: {other}"),
        };
        ((code(closed), start.elapsed()), code(refused))
    });
    assert_eq!(trickled.0, STALLED);
    assert!(
        trickled.1 < Duration::from_secs(6),
        "held for {:?}",
        trickled.1
    );
    assert_eq!(oversized, PROTOCOL);
    enroll_ok(
        &scratch.path("agent"),
        &agg.server(),
        &agg.token("default", "1h"),
    );
}
