//! TCP_NODELAY on the database connections. sqlx 0.9.0 connects without it (sqlx issue
//! #4335; sqlx sets it again after 0.9.0): a `COPY`'s data goes out, then its small
//! end-of-copy message waits under Nagle's algorithm for the server's delayed ACK, about
//! 40 ms per batch. Until a sqlx release sets it, each new connection sets it on every
//! TCP socket this process holds: cutover's sockets are database, webhook and Odoo
//! connections, all of which want their requests sent at once.

/// Set TCP_NODELAY on every TCP socket of this process; errors (a socket closed while we
/// look) are ignored.
pub fn on_every_tcp_socket() {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::BorrowedFd;
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let socket = std::fs::read_link(entry.path())
                .is_ok_and(|p| p.as_os_str().as_encoded_bytes().starts_with(b"socket:"));
            if !socket {
                continue;
            }
            // SAFETY: only borrowed for the calls below; an fd closed meanwhile makes them
            // fail (EBADF, ENOTSOCK), and one reused for another TCP socket gets the same
            // harmless option.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&fd);
            let tcp = sock.r#type().is_ok_and(|t| t == socket2::Type::STREAM)
                && sock.local_addr().is_ok_and(|a| a.is_ipv4() || a.is_ipv6());
            if tcp {
                let _ = sock.set_tcp_nodelay(true);
            }
        }
    }
}
