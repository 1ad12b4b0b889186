//! A tiny HTTP/1.1 receiver for recording uploads, on its own thread: it records every request
//! it read completely, and can be told to cut the first upload in the middle of its body, to
//! answer 503, or to accept (200).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Read half the body, then close the connection without answering (once; then accept).
    CutOnce = 0,
    /// Read the whole body and answer 503.
    Unavailable = 1,
    /// Read the whole body and answer 200.
    Accept = 2,
}

/// One request read in full.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether it was answered 200 (a delivered upload).
    pub accepted: bool,
}

/// The running receiver; it lives as long as the test process.
pub struct Receiver {
    pub port: u16,
    mode: Arc<AtomicU8>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Listens on a free loopback port in `mode`.
    pub fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (thread_mode, thread_received) = (Arc::clone(&mode), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &thread_mode, &thread_received);
            }
        });
        Receiver {
            port,
            mode,
            received,
        }
    }

    /// Changes what the next requests get.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every request read in full so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests answered 200.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

fn serve(stream: TcpStream, mode: &AtomicU8, received: &Mutex<Vec<Received>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let current = mode.load(Ordering::SeqCst);
    if current == Mode::CutOnce as u8 {
        let mut half = vec![0; length / 2];
        let _ = reader.read_exact(&mut half);
        mode.store(Mode::Accept as u8, Ordering::SeqCst);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let accepted = current == Mode::Accept as u8;
    let answer: &[u8] = if accepted {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    let mut writer = stream;
    let _ = writer.write_all(answer);
    received.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
        accepted,
    });
}
