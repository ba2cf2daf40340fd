//! Listening sockets with a backlog sized for bursts. `tokio::net::TcpListener::bind` asks the
//! kernel for 128 pending connections (mio's and std's value): a load generator or a fleet of
//! clients opening hundreds of streams at once overflows that and sees connection resets or
//! 1 s SYN retries. The kernel caps the backlog at `net.core.somaxconn`.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The backlog Strata's servers (API, gateway, simulator) listen with unless configured.
pub const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `addr` (address reuse on, as `TcpListener::bind`) with `backlog` pending
/// connections; needs a tokio runtime.
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
