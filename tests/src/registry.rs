//! A real OCI registry for tests: Debian's `docker-registry` (CNCF Distribution 2.8) on a free
//! loopback port with storage in a temporary directory, stopped on drop.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs Distribution's registry (`apt-get install docker-registry`).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Start a registry on a free loopback port and wait until `/v2/` answers.
    pub fn start() -> Result<Self> {
        let bin = std::env::var_os("REGISTRY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(REGISTRY_BIN));
        if !bin.is_file() {
            bail!(
                "{} not found: install Debian's docker-registry (./setup.sh)",
                bin.display()
            );
        }
        let mut last_error = None;
        // The port is picked by binding :0 and released before the registry binds it; another
        // process could take it in between, so try a few ports.
        for _ in 0..3 {
            match Self::start_once(&bin) {
                Ok(r) => return Ok(r),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn start_once(bin: &std::path::Path) -> Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let dir = tempfile::Builder::new().prefix("registry-").tempdir()?;
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut registry = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = crate::Client::new();
        loop {
            if let Some(status) = registry.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", registry.log());
            }
            if let Ok(r) = client.get(&format!("http://{addr}/v2/")) {
                if r.status == 200 {
                    return Ok(registry);
                }
            }
            if Instant::now() > deadline {
                bail!("docker-registry not ready on {addr}: {}", registry.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
