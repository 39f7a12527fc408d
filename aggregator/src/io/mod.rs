//! The I/O shell: state files, the QUIC server, the store thread, the clock.

pub mod clock;
pub mod server;
pub mod state;
pub mod store_thread;
pub mod tls;
