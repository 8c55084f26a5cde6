//! A TCP proxy in front of a real store that breaks chosen connections: it answers 503,
//! or accepts and never answers (a stall), for the first N connections or for all of them.
//! Clients reuse connections, so "the first N connections" are the first requests.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// `503 Service Unavailable` for the first N connections.
    Unavailable(usize),
    /// Read the request and never answer, for the first N connections.
    Stall(usize),
    /// `503` for every connection.
    AlwaysUnavailable,
}

pub struct FaultProxy {
    pub port: u16,
    /// Connections answered with a fault so far.
    pub faulted: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faulted = Arc::new(AtomicUsize::new(0));
        let count = faulted.clone();
        // stalled sockets are held here so they stay open
        let stalled: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let fault_this = match fault {
                    Fault::Unavailable(n) | Fault::Stall(n) => i < n,
                    Fault::AlwaysUnavailable => true,
                };
                if !fault_this {
                    let upstream = upstream.clone();
                    std::thread::spawn(move || pipe(conn, &upstream));
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                read_head(&mut conn);
                match fault {
                    Fault::Stall(_) => stalled.lock().unwrap().push(conn),
                    _ => {
                        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        let _ = conn.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        FaultProxy { port, faulted }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Read up to the end of the request head (the body, if any, is left unread).
fn read_head(conn: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Copy bytes both ways between a client and the upstream until either side closes.
fn pipe(client: TcpStream, upstream: &str) {
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let mut client = client;
        let mut server = server;
        let _ = std::io::copy(&mut client, &mut server);
        let _ = server.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut s2, &mut c2);
    let _ = c2.shutdown(Shutdown::Write);
    let _ = up.join();
}
