//! Batched UDP I/O for shared endpoints (`--shared-endpoints`): one `sendmmsg` for every due
//! packet of streams sharing a socket, and `recvmmsg` on each shared socket. It exists because one
//! system call per packet costs the tool more machine CPU than the kernel path costs the proxy,
//! so without it the tool, not the proxy, is what saturates first.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::SockAddr;

use crate::rtp::PACKET_LEN;

/// Messages per system call.
pub(crate) const BATCH: usize = 64;
/// Largest datagram read; anything bigger is not ours.
pub(crate) const RECV_LEN: usize = 2048;

/// Asks for a receive buffer of `bytes` beyond `net.core.rmem_max` (root only); false when the
/// kernel refused, so the caller can fall back to the ordinary, capped request.
pub(crate) fn force_receive_buffer(socket: &UdpSocket, bytes: usize) -> bool {
    let Ok(value) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: the option value is a live c_int of the length passed, on an open socket.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    result == 0
}

/// Up to [`BATCH`] packets for one socket, each with its own destination.
pub(crate) struct SendBatch {
    packets: Box<[[u8; PACKET_LEN]; BATCH]>,
    dests: Vec<SockAddr>,
}

impl SendBatch {
    /// An empty batch.
    pub(crate) fn new() -> SendBatch {
        SendBatch {
            packets: Box::new([[0; PACKET_LEN]; BATCH]),
            dests: Vec::with_capacity(BATCH),
        }
    }

    /// Packets queued.
    pub(crate) fn len(&self) -> usize {
        self.dests.len()
    }

    /// The buffer of the next packet, to `fill`; `None` when the batch is full.
    pub(crate) fn push(&mut self, dest: SocketAddr) -> Option<&mut [u8; PACKET_LEN]> {
        let slot = self.packets.get_mut(self.dests.len())?;
        self.dests.push(SockAddr::from(dest));
        Some(slot)
    }

    /// Sends every queued packet from `socket` and empties the batch; returns how many the
    /// kernel took (the rest count as send errors).
    pub(crate) fn send(&mut self, socket: &UdpSocket) -> usize {
        let count = self.dests.len();
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
        for (index, dest) in self.dests.iter().enumerate() {
            let iovec = iovecs[index].write(libc::iovec {
                iov_base: self.packets[index].as_mut_ptr().cast(),
                iov_len: PACKET_LEN,
            });
            // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); the fields set
            // point at the iovec, packet and address above, alive until the call returns.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = dest.as_ptr().cast_mut().cast();
            header.msg_namelen = dest.len();
            header.msg_iov = iovec;
            header.msg_iovlen = 1;
            headers[index].write(libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            });
        }
        let mut sent = 0usize;
        while sent < count {
            // SAFETY: headers[sent..count] were initialised above and point at live buffers.
            let result = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers[sent].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    0,
                )
            };
            match usize::try_from(result) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        self.dests.clear();
        sent
    }
}

/// Receive buffers for one `recvmmsg`.
pub(crate) struct ReceiveBatch {
    buffers: Box<[[u8; RECV_LEN]; BATCH]>,
    lengths: [usize; BATCH],
    count: usize,
}

impl ReceiveBatch {
    /// Empty buffers.
    pub(crate) fn new() -> ReceiveBatch {
        ReceiveBatch {
            buffers: Box::new([[0; RECV_LEN]; BATCH]),
            lengths: [0; BATCH],
            count: 0,
        }
    }

    /// Waits for at least one datagram on `socket` (up to its read timeout) and takes every one
    /// already queued, up to [`BATCH`].
    pub(crate) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [MaybeUninit::uninit(); BATCH];
        for (index, buffer) in self.buffers.iter_mut().enumerate() {
            let iovec = iovecs[index].write(libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: RECV_LEN,
            });
            // SAFETY: as in `SendBatch::send`; no address is asked for.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_iov = iovec;
            header.msg_iovlen = 1;
            headers[index].write(libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            });
        }
        // SAFETY: every header is initialised and points at a live buffer of RECV_LEN bytes.
        let result = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers[0].as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let count = usize::try_from(result).map_err(|_| io::Error::last_os_error())?;
        for (index, header) in headers.iter().take(count).enumerate() {
            // SAFETY: the kernel filled the first `count` headers.
            self.lengths[index] = unsafe { header.assume_init_ref() }.msg_len as usize;
        }
        self.count = count;
        Ok(count)
    }

    /// The datagrams of the last `receive`.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.buffers
            .iter()
            .zip(self.lengths)
            .take(self.count)
            .map(|(buffer, len)| &buffer[..len.min(RECV_LEN)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_sends_arrives_as_one_batch_of_receives() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = receiver.local_addr().unwrap();
        let mut batch = SendBatch::new();
        for n in 0..10u8 {
            batch.push(dest).unwrap().fill(n);
        }
        assert_eq!(batch.send(&sender), 10);
        assert_eq!(batch.len(), 0);
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut received = ReceiveBatch::new();
        let mut firsts = Vec::new();
        while firsts.len() < 10 {
            received.receive(&receiver).unwrap();
            for datagram in received.datagrams() {
                assert_eq!(datagram.len(), PACKET_LEN);
                firsts.push(datagram[0]);
            }
        }
        assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn a_full_batch_takes_no_more() {
        let mut batch = SendBatch::new();
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..BATCH {
            assert!(batch.push(dest).is_some());
        }
        assert!(batch.push(dest).is_none());
        assert_eq!(batch.len(), BATCH);
    }
}
