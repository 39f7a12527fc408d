//! UDP has no backpressure: when the agent cannot keep up, the kernel drops datagrams at the
//! socket. Peers lose those silently (rsyslog's imudp and Vector's syslog source report
//! nothing); the listener reads the kernel's own per-socket drop counter and reports it.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use jiff::tz::TimeZone;
use tokio::sync::{mpsc, watch};
use vedette_agent::config::{SyslogInput, SyslogProtocol};
use vedette_agent::core::Source;
use vedette_agent::core::allowlist::Allowlist;
use vedette_agent::core::time::TimeContext;
use vedette_agent::io::pipeline::{LiveSource, StageMsg};
use vedette_agent::io::syslog::{self, ListenerStats};

#[test]
fn datagrams_the_kernel_dropped_are_counted() {
    const SENT: u64 = 3000;
    let input = SyslogInput {
        protocol: SyslogProtocol::Udp,
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow: Allowlist(vec!["127.0.0.0/8".parse().expect("net")]),
        timezone: None,
        // The kernel's minimum, far less than SENT datagrams.
        receive_buffer_bytes: Some(1),
        max_connections: vedette_agent::config::DEFAULT_MAX_CONNECTIONS,
        max_connections_per_sender: vedette_agent::config::DEFAULT_MAX_CONNECTIONS,
        handshake_timeout_ms: vedette_agent::config::DEFAULT_HANDSHAKE_TIMEOUT_MS,
        keepalive_s: vedette_agent::config::DEFAULT_KEEPALIVE_S,
        evict_idle_ms: vedette_agent::config::DEFAULT_EVICT_IDLE_MS,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let bound = syslog::bind(&input).expect("bind");
        let to = bound.local_addr;
        // Everything is sent before the listener reads: the socket buffer overflows.
        let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
        let msg = format!("<13>Jan 15 10:00:00 h app: {}", "x".repeat(200));
        for _ in 0..SENT {
            sender.send_to(msg.as_bytes(), to).expect("send");
        }
        let source = Source {
            id: "udp-test".into(),
            uid_key: None,
            time: TimeContext::new(jiff::Timestamp::UNIX_EPOCH, TimeZone::UTC),
            syslog: true,
            sender_name: None,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(ListenerStats::default());
        let task = tokio::spawn(syslog::serve(
            bound,
            LiveSource::new(source),
            65536,
            tx,
            stop_rx,
            stats.clone(),
        ));
        let mut received = 0u64;
        // Whatever the socket held comes in the first rounds; then the counts must add up.
        while received + stats.kernel_drops.load(Relaxed) < SENT {
            match rx.recv().await {
                Some(StageMsg::Batch(b)) => received += b.len() as u64,
                Some(StageMsg::Reconfigure(_) | StageMsg::Flush { .. }) => {}
                None => break,
            }
        }
        let _ignored = stop.send(true);
        task.await.expect("listener");
        let dropped = stats.kernel_drops.load(Relaxed);
        assert!(dropped > 0, "the buffer should have overflowed");
        assert_eq!(
            received + dropped,
            SENT,
            "every datagram is received or counted"
        );
        assert_eq!(stats.messages.load(Relaxed), received);
    });
}
