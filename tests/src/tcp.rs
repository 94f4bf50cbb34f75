//! TCP pieces for network-filter tests: a plain TCP echo upstream, a listener renderer
//! (Wasm network filter before `tcp_proxy`) and a client that binds a chosen source address.
//!
//! The echo upstream writes `upstream=NAME\n` as soon as it accepts a connection, then echoes
//! every byte back, so a client can tell which upstream it reached and check that the bytes
//! the proxy held during inspection arrived intact. It counts accepted connections, so a test
//! can prove that a refused connection never reached it.

use crate::render::{wasm_typed_config, FailurePolicy};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running TCP echo server on a free loopback port.
pub struct TcpEchoServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    /// Start a server that greets every connection with `upstream=NAME\n`.
    pub fn start(name: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let greeting = format!("upstream={name}\n").into_bytes();
        let (acc, st) = (Arc::clone(&accepted), Arc::clone(&stop));
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                acc.fetch_add(1, Ordering::SeqCst);
                let greeting = greeting.clone();
                std::thread::spawn(move || {
                    if stream.write_all(&greeting).is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            accepted,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// `envoy.filters.network.wasm` typed config for a module and its JSON configuration.
pub fn network_wasm_typed_config(name: &str, module: &Path, config: &str) -> Value {
    let mut v = wasm_typed_config(name, module, config, FailurePolicy::FailClosed);
    v["@type"] = json!("type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm");
    v
}

/// Early-data buffer of the rendered `tcp_proxy`. Without `max_early_data_bytes`, `tcp_proxy`
/// disables reading on the downstream as soon as it is created (before any filter's
/// `onNewConnection`) until its upstream connects, so a filter before it that holds the
/// connection to inspect the first bytes would never receive them.
pub const TCP_PROXY_EARLY_DATA_BYTES: u32 = 64 * 1024;

/// A TCP listener named `name` on 127.0.0.1 (`port` 0: any free port) running `filters`
/// (network filter entries `{name, typed_config}`) and then `tcp_proxy` to `cluster`, with
/// reading before the upstream connects enabled ([`TCP_PROXY_EARLY_DATA_BYTES`]).
pub fn tcp_proxy_listener(name: &str, port: u16, filters: Vec<Value>, cluster: &str) -> Value {
    let mut chain = filters;
    chain.push(json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": name,
            "cluster": cluster,
            "max_early_data_bytes": TCP_PROXY_EARLY_DATA_BYTES
        }
    }));
    json!({
        "name": name,
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [{ "filters": chain }]
    })
}

/// Connect to `to` from source IP `from` (any loopback address: Linux routes all of
/// 127.0.0.0/8 to `lo`), with a read timeout so a test cannot hang.
pub fn connect_from(from: IpAddr, to: SocketAddr) -> Result<TcpStream> {
    let domain = socket2::Domain::for_address(to);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket
        .connect(&to.into())
        .with_context(|| format!("connecting {from} -> {to}"))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What the proxy did with a connection, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The upstream's greeting line (`upstream=NAME`) and the echoed bytes after it.
    Upstream { name: String, echoed: Vec<u8> },
    /// The connection was closed (EOF or reset) with nothing received.
    Closed,
}

/// Read what comes back after sending: the upstream greeting plus `expect_echo` echoed bytes,
/// or a close with nothing received.
pub fn read_reply(stream: &mut TcpStream, expect_echo: usize) -> Result<Seen> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(nl) = got.iter().position(|b| *b == b'\n') {
            if got.len() >= nl + 1 + expect_echo {
                let line = String::from_utf8_lossy(&got[..nl]).to_string();
                let name = line.strip_prefix("upstream=").unwrap_or(&line).to_string();
                return Ok(Seen::Upstream {
                    name,
                    echoed: got[nl + 1..].to_vec(),
                });
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                break
            }
            Err(e) => return Err(e).context("reading the reply"),
        }
    }
    if got.is_empty() {
        Ok(Seen::Closed)
    } else {
        anyhow::bail!(
            "connection closed after a partial reply: {:?}",
            String::from_utf8_lossy(&got)
        )
    }
}
