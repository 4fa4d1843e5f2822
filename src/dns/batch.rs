//! Datagrams in and out by the batch: `recvmmsg` and `sendmmsg` (Linux), one system call for
//! up to [`BATCH`] packets each way.
//!
//! Under load the socket queue holds many questions at once; taking them together and sending
//! the fast-path answers together saves two system calls per query. With one packet queued it
//! behaves like `recv_from`/`send_to`. Buffers are allocated once per receive loop and reused:
//! nothing here allocates per packet. The unsafe code is confined to filling the kernel's
//! header arrays from buffers this module owns, which never move while a call runs.

use std::{
    io,
    mem::{MaybeUninit, size_of},
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
};

use socket2::SockAddr;

/// Packets per system call.
pub const BATCH: usize = 32;

/// Received datagrams: `len()` of them after [`Inbox::receive`].
pub struct Inbox {
    buffers: Vec<Box<[u8]>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
    /// Headers the kernel may have written into since they were last reset.
    dirty: usize,
}

impl Inbox {
    /// The headers point into the other vectors' heap storage, which never grows or moves
    /// while the `Inbox` lives (moving the `Inbox` moves only the vectors' handles), so they
    /// are filled once here; a receive resets only what the kernel wrote into them.
    pub fn new(datagram_size: usize) -> Inbox {
        let mut inbox = Inbox {
            buffers: (0..BATCH)
                .map(|_| vec![0u8; datagram_size].into_boxed_slice())
                .collect(),
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr (plain C data).
            addrs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            iovecs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            headers: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            received: 0,
            dirty: BATCH,
        };
        for i in 0..BATCH {
            inbox.iovecs[i] = libc::iovec {
                iov_base: inbox.buffers[i].as_mut_ptr().cast(),
                iov_len: inbox.buffers[i].len(),
            };
            let header = &mut inbox.headers[i].msg_hdr;
            header.msg_name = (&raw mut inbox.addrs[i]).cast();
            header.msg_iov = &raw mut inbox.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = std::ptr::null_mut();
        }
        inbox.reset_headers();
        inbox
    }

    /// Resets the fields the kernel overwrites (address length, flags, lengths) in the headers
    /// the last receive filled; the others still hold their values from [`Inbox::new`].
    fn reset_headers(&mut self) {
        for header in &mut self.headers[..self.dirty] {
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        self.dirty = 0;
    }

    /// Waits for one datagram (up to the socket's read timeout), then takes whatever else is
    /// already queued, up to [`BATCH`].
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.reset_headers();
        // SAFETY: every header points at a buffer, an iovec and an address slot owned by
        // `self`, sized as declared (set in `new`, heap storage that never moves); none is
        // touched by anything else until the call returns.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            // Nothing was received; reset every header anyway rather than trust that.
            self.received = 0;
            self.dirty = BATCH;
            return Err(io::Error::last_os_error());
        }
        self.received = received as usize;
        // The kernel writes into the headers it filled; the one after them it may have begun.
        self.dirty = (self.received + 1).min(BATCH);
        Ok(self.received)
    }

    pub fn len(&self) -> usize {
        self.received
    }

    /// The i-th datagram and its sender; `None` for an address family we do not serve.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let header = &self.headers[i];
        let len = (header.msg_len as usize).min(self.buffers[i].len());
        let mut storage = socket2::SockAddrStorage::zeroed();
        // SAFETY: `sockaddr_storage` is one of this platform's socket address types, and the
        // kernel wrote a socket address of `msg_namelen` bytes into this slot.
        let addr = unsafe {
            *storage.view_as::<libc::sockaddr_storage>() = self.addrs[i];
            SockAddr::new(storage, header.msg_hdr.msg_namelen)
        };
        Some((&self.buffers[i][..len], addr.as_socket()?))
    }
}

/// Answers waiting to go out together.
pub struct Outbox {
    buffers: Vec<Vec<u8>>,
    addrs: Vec<Option<SockAddr>>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    queued: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            buffers: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            addrs: vec![None; BATCH],
            // SAFETY: all-zero is a valid iovec and mmsghdr (plain C data).
            iovecs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            headers: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            queued: 0,
        }
    }
}

impl Outbox {
    /// A cleared buffer for the next answer; it is sent only if [`Outbox::commit`] follows.
    pub fn next_buffer(&mut self) -> Option<&mut Vec<u8>> {
        let buffer = self.buffers.get_mut(self.queued)?;
        buffer.clear();
        Some(buffer)
    }

    /// Queues the buffer last handed out, for `to`.
    pub fn commit(&mut self, to: SocketAddr) {
        if self.queued < BATCH {
            self.addrs[self.queued] = Some(SockAddr::from(to));
            self.queued += 1;
        }
    }

    /// Sends everything queued. A datagram the kernel refuses is dropped (UDP), the rest go on.
    pub fn flush(&mut self, socket: &UdpSocket) {
        let mut start = 0;
        while start < self.queued {
            let count = self.queued - start;
            for i in 0..count {
                let slot = start + i;
                let Some(addr) = &self.addrs[slot] else {
                    continue;
                };
                self.iovecs[i] = libc::iovec {
                    iov_base: self.buffers[slot].as_mut_ptr().cast(),
                    iov_len: self.buffers[slot].len(),
                };
                let header = &mut self.headers[i].msg_hdr;
                header.msg_name = addr.as_ptr().cast_mut().cast();
                header.msg_namelen = addr.len();
                header.msg_iov = &raw mut self.iovecs[i];
                header.msg_iovlen = 1;
                header.msg_control = std::ptr::null_mut();
                header.msg_controllen = 0;
                header.msg_flags = 0;
            }
            // SAFETY: the first `count` headers point at buffers, iovecs and addresses owned
            // by `self`, which stay put until the call returns.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    count as libc::c_uint,
                    0,
                )
            };
            if sent <= 0 {
                // The first one failed (e.g. ICMP-refused peer): skip it and go on.
                tracing::debug!(error = %io::Error::last_os_error(), "udp send failed");
                start += 1;
            } else {
                start += sent as usize;
            }
        }
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::{net::UdpSocket, time::Duration};

    use super::{Inbox, Outbox};

    fn bound(addr: &str) -> UdpSocket {
        let socket = UdpSocket::bind(addr).expect("bind on loopback");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        socket
    }

    /// Receives until `want` datagrams have come (they may arrive over several calls).
    fn receive_all(inbox: &mut Inbox, socket: &UdpSocket, want: usize) -> Vec<(Vec<u8>, u16)> {
        let mut got = Vec::new();
        while got.len() < want {
            inbox.receive(socket).expect("datagrams were sent");
            for i in 0..inbox.len() {
                let (bytes, src) = inbox.get(i).expect("an inet address");
                got.push((bytes.to_vec(), src.port()));
            }
        }
        got
    }

    #[test]
    fn every_receive_sees_the_right_bytes_and_senders_after_larger_and_failed_ones() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let server = bound(local);
            let to = server.local_addr().expect("bound");
            let a = bound(local);
            let b = bound(local);
            let mut inbox = Inbox::new(512);

            for i in 0..5u8 {
                let sender = if i % 2 == 0 { &a } else { &b };
                sender
                    .send_to(&vec![i; 10 + usize::from(i)], to)
                    .expect("send");
            }
            let got = receive_all(&mut inbox, &server, 5);
            for (i, (bytes, port)) in got.iter().enumerate() {
                let sender = if i % 2 == 0 { &a } else { &b };
                assert_eq!(bytes, &vec![i as u8; 10 + i]);
                assert_eq!(*port, sender.local_addr().expect("bound").port());
            }

            // Nothing queued: the receive times out and says so.
            assert!(inbox.receive(&server).is_err());
            assert_eq!(inbox.len(), 0);

            b.send_to(b"after", to).expect("send");
            let got = receive_all(&mut inbox, &server, 1);
            assert_eq!(
                got,
                vec![(b"after".to_vec(), b.local_addr().expect("bound").port())]
            );
        }
    }

    #[test]
    fn an_outbox_sends_each_committed_answer_to_its_own_peer() {
        let server = bound("127.0.0.1:0");
        let peers = [bound("127.0.0.1:0"), bound("127.0.0.1:0")];
        let mut outbox = Outbox::default();
        for (i, peer) in peers.iter().enumerate() {
            let buffer = outbox.next_buffer().expect("room");
            buffer.extend_from_slice(format!("answer {i}").as_bytes());
            outbox.commit(peer.local_addr().expect("bound"));
        }
        // A buffer handed out but not committed is not sent.
        outbox
            .next_buffer()
            .expect("room")
            .extend_from_slice(b"dropped");
        outbox.flush(&server);
        for (i, peer) in peers.iter().enumerate() {
            let mut buf = [0u8; 64];
            let (len, from) = peer.recv_from(&mut buf).expect("an answer");
            assert_eq!(&buf[..len], format!("answer {i}").as_bytes());
            assert_eq!(from, server.local_addr().expect("bound"));
            assert!(peer.recv_from(&mut buf).is_err(), "one answer per peer");
        }
    }
}
