//! Debian's `redis-server` on loopback, and the little of the Redis protocol (RESP) the
//! rate-limit service needs: pipelined commands, integer replies.
//!
//! The server runs without persistence (`--save ""`, `--appendonly no`), as rate-limit
//! counters usually do: a restart forgets every count (see `ratelimit` for what that means).

use anyhow::{anyhow, bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where Debian installs the server (`apt-get install redis-server`, done by `setup.sh`).
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A `redis-server` process on a free loopback port; killed on drop.
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start one and wait until it answers `PING`.
    pub fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            dir: tempfile::tempdir()?,
        };
        server.spawn()?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn binary() -> PathBuf {
        std::env::var_os("REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(REDIS_SERVER))
    }

    fn spawn(&mut self) -> Result<()> {
        let bin = Self::binary();
        if !bin.exists() {
            bail!(
                "{} not found: run ./setup.sh (it installs Debian's redis-server)",
                bin.display()
            );
        }
        let child = Command::new(&bin)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ping(self.addr).is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("redis-server exited at start: {status}");
                }
            }
            if Instant::now() > deadline {
                bail!("redis-server on {} did not answer PING in 20s", self.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the server (its counts are lost: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop it and start a new one on the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One blocking `PING` (for start-up checks).
fn ping(addr: SocketAddr) -> Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    s.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    if &buf != b"+PONG\r\n" {
        bail!("unexpected PING reply {:?}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}

/// A connection speaking RESP: commands are sent as arrays of bulk strings, all at once
/// (pipelined), then one reply is read per command.
pub struct RedisConnection {
    stream: BufReader<TcpStream>,
}

/// A reply the service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Integer(i64),
    Status(String),
    Bulk(Option<Vec<u8>>),
}

impl RedisConnection {
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to redis {addr}: timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    /// Send every command in one write, then read their replies in order. An error reply
    /// (`-ERR ...`) is an error.
    pub async fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> Result<Vec<Reply>> {
        let mut out = Vec::with_capacity(64 * commands.len());
        for cmd in commands {
            out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for arg in cmd {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.stream.get_mut().write_all(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }

    async fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self.stream.read_line(&mut line).await?;
        if n == 0 {
            bail!("redis closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    async fn reply(&mut self) -> Result<Reply> {
        let line = self.line().await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            ":" => Ok(Reply::Integer(rest.parse()?)),
            "+" => Ok(Reply::Status(rest.to_string())),
            "-" => bail!("redis error: {rest}"),
            "$" => {
                let len: i64 = rest.parse()?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0u8; usize::try_from(len)? + 2];
                tokio::io::AsyncReadExt::read_exact(&mut self.stream, &mut buf).await?;
                buf.truncate(buf.len() - 2);
                Ok(Reply::Bulk(Some(buf)))
            }
            other => bail!("unsupported redis reply type {other:?}"),
        }
    }
}
