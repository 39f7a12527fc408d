//! Waiting for the stage's acknowledgements, for the inputs that checkpoint what it wrote
//! (file tails, the journal reader). The stage may hold a batch a long time (a full spool
//! while the aggregator is away), so every wait is cut into slices between which a stop,
//! or the stage's end, is seen.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often an input waiting for acknowledgements looks for a stop.
pub(super) const ACK_SLICE: Duration = Duration::from_millis(100);

/// How long a stopping input waits for the stage to acknowledge what it sent.
pub(super) const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// For a stopping input: asks the stage to close the dedup windows holding repeats of
/// its `sources` ([`super::pipeline::LiveSource::uid_hash`]) and waits (up to
/// [`DRAIN_WAIT`]) until it has, so the checkpoint moves that follow arrive before the
/// input's last save (see `StageMsg::Flush`). A stage already gone answers nothing.
pub(super) fn flush_stage(
    stage: &tokio::sync::mpsc::Sender<super::pipeline::StageMsg>,
    sources: Vec<u64>,
) {
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    if stage
        .blocking_send(super::pipeline::StageMsg::Flush {
            sources,
            reply: reply_tx,
        })
        .is_ok()
    {
        let _ignored = reply_rx.recv_timeout(DRAIN_WAIT);
    }
}

/// The next acknowledgement; `None` once `give_up()` says so (checked every
/// [`ACK_SLICE`]) or every sender is gone.
pub(super) fn next<T>(acks: &Receiver<T>, give_up: impl Fn() -> bool) -> Option<T> {
    loop {
        match acks.recv_timeout(ACK_SLICE) {
            Ok(a) => return Some(a),
            Err(RecvTimeoutError::Timeout) => {
                if give_up() {
                    return None;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// At a stop: the acknowledgements still to come, for up to [`DRAIN_WAIT`] of waiting and
/// only while `stage_open()`. What the stage never acknowledges is read again at the next
/// start.
pub(super) fn draining<'a, T>(
    acks: &'a Receiver<T>,
    stage_open: impl Fn() -> bool + 'a,
) -> impl Iterator<Item = T> + 'a {
    let mut waited = Duration::ZERO;
    std::iter::from_fn(move || {
        loop {
            match acks.recv_timeout(ACK_SLICE) {
                Ok(a) => return Some(a),
                Err(RecvTimeoutError::Timeout) if stage_open() && waited < DRAIN_WAIT => {
                    waited += ACK_SLICE;
                }
                Err(_) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    #[test]
    fn a_wait_ends_at_an_ack_a_give_up_or_the_senders_end() {
        let (tx, rx) = channel();
        tx.send(7).unwrap();
        assert_eq!(super::next(&rx, || false), Some(7));
        assert_eq!(super::next(&rx, || true), None::<i32>);
        drop(tx);
        assert_eq!(super::next(&rx, || false), None::<i32>);
    }

    #[test]
    fn draining_yields_what_comes_and_stops_with_the_stage() {
        let (tx, rx) = channel();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let got: Vec<i32> = super::draining(&rx, || false).collect();
        assert_eq!(got, [1, 2]);
        drop(tx);
        assert_eq!(super::draining(&rx, || true).next(), None::<i32>);
    }
}
