//! An upstream that answers every request with what it received, as JSON:
//! `{"upstream": NAME, "method": .., "path": .., "headers": [[name, value], ..], "body": ..}`,
//! with header `x-upstream: NAME`. Tests assert what reached the upstream with it.
//!
//! hyper on a small tokio runtime of its own: it must keep up with parallel keep-alive
//! traffic from several Envoy workers without stalling (load and hot-swap tests depend on it).

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running echo server on a free loopback port; stops on drop.
pub struct EchoServer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EchoServer {
    /// Start an echo server that names itself `name` in its answers.
    pub fn start(name: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("echo-upstream")
            .enable_io()
            .build()
            .context("echo server runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("echo server bind")?;
        let addr = listener.local_addr()?;
        let name: Arc<str> = Arc::from(name);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let name = Arc::clone(&name);
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service =
                        hyper::service::service_fn(move |req| answer(Arc::clone(&name), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            runtime: Some(runtime),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn answer(
    name: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let doc = json!({
        "upstream": &*name,
        "method": parts.method.as_str(),
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut resp = Response::new(Full::new(Bytes::from(doc.to_string())));
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&name) {
        h.insert("x-upstream", v);
    }
    Ok(resp)
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
