//! An upstream that answers every request with what it received, as JSON:
//! `{"upstream": NAME, "method": .., "path": .., "headers": [[name, value], ..], "body": ..}`,
//! with header `x-upstream: NAME`. Tests assert what reached the upstream with it.

use anyhow::{anyhow, Result};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Worker threads per echo server (requests are tiny; this bounds concurrency per upstream).
const WORKERS: usize = 8;

/// A running echo server on a free loopback port.
pub struct EchoServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl EchoServer {
    /// Start an echo server that names itself `name` in its answers.
    pub fn start(name: &str) -> Result<Self> {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow!("echo server: {e}"))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow!("echo server has no IP address"))?;
        let workers = (0..WORKERS)
            .map(|_| {
                let server = Arc::clone(&server);
                let name = name.to_string();
                std::thread::spawn(move || {
                    while let Ok(req) = server.recv() {
                        answer(&name, req);
                    }
                })
            })
            .collect();
        Ok(Self {
            addr,
            server,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn answer(name: &str, mut req: tiny_http::Request) {
    let mut body = Vec::new();
    let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let doc = json!({
        "upstream": name,
        "method": req.method().as_str(),
        "path": req.url(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut resp = tiny_http::Response::from_string(doc.to_string());
    for (n, v) in [("content-type", "application/json"), ("x-upstream", name)] {
        if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = req.respond(resp);
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
