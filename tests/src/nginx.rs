//! nginx + ModSecurity v3 + OWASP CRS, Debian's packages, as the anchor threat-score is compared
//! with: the same request mix in the bench (`modsecurity-crs` scenario) and the same corpus rows
//! in `cargo xtask corpus --engine modsecurity`.
//!
//! Debian packages (installed by `setup.sh`): `nginx` (1.22), `libnginx-mod-http-modsecurity`
//! (connector 1.0.3), `libmodsecurity3` (3.0.9), `modsecurity-crs` (CRS **3.3.4**) and
//! `libnginx-mod-http-echo`. One process (`master_process off`, one worker, `daemon off`) so its
//! CPU time is one `/proc/<pid>/stat` and it can be pinned like Envoy.
//!
//! The request is answered by the echo module *after* `echo_read_request_body`, in the content
//! phase: ModSecurity has inspected headers and body by then (nginx's `return 200` would answer
//! in the rewrite phase, before ModSecurity sees the body). A pass carries `x-upstream:
//! nginx-echo` (what [`crate::corpus::classify`] looks for); every ModSecurity denial is a 403
//! whose JSON body has `"error": "modsecurity_denied"` ([`BLOCK_ERROR`]).
//!
//! ModSecurity configuration: Debian's recommended `modsecurity.conf` (body access, the JSON and
//! XML body processors, body-parsing and multipart-strictness denials, PCRE limits) with
//! `SecRuleEngine On`, response body inspection, audit log and status engine off, and every
//! denial at 403; then Debian's `crs-setup.conf` and the CRS rules, with the paranoia level set
//! (`tx.paranoia_level`, CRS 3), the inbound threshold left at CRS's default 5, and
//! `tx.allowed_methods` extended with PUT, PATCH and DELETE, what a REST deployment sets (CRS at
//! PL1 allows only GET, HEAD, POST and OPTIONS otherwise).

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `error` code of a ModSecurity denial's JSON body.
pub const BLOCK_ERROR: &str = "modsecurity_denied";
/// Debian's nginx binary.
pub const NGINX_BIN: &str = "/usr/sbin/nginx";
/// Where Debian installs nginx's dynamic modules.
pub const MODULES_DIR: &str = "/usr/share/nginx/modules";
/// Debian's CRS rules and setup file.
pub const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules";
pub const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";
/// The Debian packages this needs, for error messages.
pub const PACKAGES: &str =
    "nginx libnginx-mod-http-modsecurity libmodsecurity3 modsecurity-crs libnginx-mod-http-echo";

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NginxOptions {
    /// `Some(level)`: ModSecurity on with CRS at that paranoia level (1-4); `None`: nginx alone
    /// (`modsecurity off`), the server's own cost.
    pub crs_paranoia: Option<u8>,
    /// CRS's `tx.enforce_bodyproc_urlencoded` (900010, off by default): parse a body without a
    /// `Content-Type` as a form, as threat-score does. Off, ModSecurity does not turn such a
    /// body into arguments and CRS's argument rules do not see it.
    pub force_urlencoded: bool,
}

impl NginxOptions {
    /// CRS as Debian ships it, at paranoia `level`.
    pub fn crs(level: u8) -> Self {
        Self {
            crs_paranoia: Some(level),
            force_urlencoded: false,
        }
    }

    /// nginx alone (`modsecurity off`).
    pub fn alone() -> Self {
        Self {
            crs_paranoia: None,
            force_urlencoded: false,
        }
    }
}

/// A running nginx, stopped (SIGKILL) on drop.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    opts: NginxOptions,
}

/// Why nginx + ModSecurity + CRS cannot run here (a file of the Debian packages is missing).
pub fn missing() -> Option<String> {
    let mut absent = Vec::new();
    for f in [
        NGINX_BIN.to_string(),
        format!("{MODULES_DIR}/ngx_http_modsecurity_module.so"),
        format!("{MODULES_DIR}/ngx_http_echo_module.so"),
        format!("{CRS_RULES}/REQUEST-949-BLOCKING-EVALUATION.conf"),
        CRS_SETUP.to_string(),
    ] {
        if !Path::new(&f).is_file() {
            absent.push(f);
        }
    }
    (!absent.is_empty()).then(|| {
        format!(
            "{} not found: install Debian's {PACKAGES} (./setup.sh does)",
            absent.join(", ")
        )
    })
}

/// The CRS version of the installed rules (`OWASP_CRS/3.3.4` -> `3.3.4`).
pub fn crs_version() -> Option<String> {
    let text = std::fs::read_to_string(format!("{CRS_RULES}/REQUEST-949-BLOCKING-EVALUATION.conf"))
        .ok()?;
    let at = text.find("OWASP_CRS/")? + "OWASP_CRS/".len();
    let v: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The ModSecurity rules file: recommended engine settings, CRS setup, our overrides, the rules.
pub fn modsecurity_conf(dir: &Path, paranoia: u8, force_urlencoded: bool) -> String {
    let d = dir.display();
    let urlencoded = u8::from(force_urlencoded);
    format!(
        r#"# generated by envoy-harness (tests/src/nginx.rs)
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecRule &ARGS "@ge 1000" "id:200007,phase:2,t:none,log,deny,status:403,msg:'Failed to fully parse request body due to large argument count'"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:403,msg:'Failed to parse request body.',logdata:'%{{reqbody_error_msg}}'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:403,msg:'Multipart request body failed strict validation'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" "id:200004,phase:2,t:none,log,deny,status:403,msg:'Multipart parser detected a possible unmatched boundary.'"
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
SecRule TX:/^MSC_/ "!@streq 0" "id:200005,phase:2,t:none,deny,status:403,msg:'ModSecurity internal error flagged: %{{MATCHED_VAR_NAME}}'"
SecResponseBodyAccess Off
SecTmpDir {d}/
SecDataDir {d}/
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecUnicodeMapFile /etc/nginx/unicode.mapping 20127
SecStatusEngine Off

Include {CRS_SETUP}
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={paranoia}"
SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900200,phase:1,nolog,pass,t:none,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
SecAction "id:900010,phase:1,nolog,pass,t:none,setvar:tx.enforce_bodyproc_urlencoded={urlencoded}"
Include {CRS_RULES}/*.conf
"#
    )
}

/// The nginx configuration: one process, one server on `addr`, echo after reading the body.
pub fn nginx_conf(dir: &Path, addr: SocketAddr, opts: NginxOptions) -> String {
    let d = dir.display();
    let modsecurity = match opts.crs_paranoia {
        Some(_) => format!("modsecurity on;\n    modsecurity_rules_file {d}/modsecurity.conf;"),
        None => "modsecurity off;".to_string(),
    };
    format!(
        r#"# generated by envoy-harness (tests/src/nginx.rs)
load_module {MODULES_DIR}/ngx_http_modsecurity_module.so;
load_module {MODULES_DIR}/ngx_http_echo_module.so;
master_process off;
daemon off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  # Bodies stay in memory (the bench's are ~1 KB, corpus rows small).
  client_max_body_size 1m;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  default_type application/json;
  server {{
    listen {addr};
    {modsecurity}
    error_page 403 /__denied;
    location = /__denied {{
      internal;
      return 403 '{{"error":"{BLOCK_ERROR}"}}\n';
    }}
    location = /__status {{
      # Connections accepted, for the bench's keep-alive check; only from the harness.
      stub_status;
    }}
    location / {{
      echo_read_request_body;
      add_header x-upstream nginx-echo;
      echo '{{"ok":true}}';
    }}
  }}
}}
"#
    )
}

impl Nginx {
    /// Start nginx on a free loopback port and wait until it answers.
    pub fn start(opts: NginxOptions) -> Result<Self> {
        if let Some(reason) = missing() {
            bail!("{reason}");
        }
        if let Some(pl) = opts.crs_paranoia {
            if !(1..=4).contains(&pl) {
                bail!("CRS paranoia level {pl}: expected 1..=4");
            }
        }
        let mut last_error = None;
        // The port is picked by binding :0 and released before nginx binds it; another process
        // could take it in between, so try a few ports.
        for _ in 0..3 {
            match Self::start_once(opts) {
                Ok(n) => return Ok(n),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
    }

    fn start_once(opts: NginxOptions) -> Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let dir = tempfile::Builder::new().prefix("nginx-modsec-").tempdir()?;
        if let Some(pl) = opts.crs_paranoia {
            std::fs::write(
                dir.path().join("modsecurity.conf"),
                modsecurity_conf(dir.path(), pl, opts.force_urlencoded),
            )?;
        }
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), addr, opts))?;
        let out = std::fs::File::create(dir.path().join("stdout.log"))?;
        let child = Command::new(NGINX_BIN)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {NGINX_BIN}"))?;
        let mut nginx = Self {
            child,
            addr,
            dir,
            opts,
        };
        // CRS loads ~900 rules at start: about a second.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = crate::Client::new();
        loop {
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited with {status}: {}", nginx.log());
            }
            if let Ok(r) =
                client.request("GET", &nginx.url("/ready"), &[("host", "localhost")], b"")
            {
                if r.status == 200 && r.header("x-upstream").is_some() {
                    return Ok(nginx);
                }
                bail!(
                    "nginx on {addr} answered {} to a plain GET: {}",
                    r.status,
                    r.body
                );
            }
            if Instant::now() > deadline {
                bail!("nginx not ready on {addr}: {}", nginx.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn options(&self) -> NginxOptions {
        self.opts
    }

    /// The directory holding the generated configuration and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's error log (ModSecurity's matches are logged there) and its stdout/stderr.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("error.log"))
    }

    /// Connections nginx has accepted so far (`stub_status`), counting the one this asks on.
    pub fn accepted_connections(&self) -> Result<u64> {
        let r = crate::Client::new().request(
            "GET",
            &self.url("/__status"),
            &[("host", "localhost")],
            b"",
        )?;
        // "Active connections: 1 \nserver accepts handled requests\n 5 5 9 \n..."
        r.body
            .lines()
            .nth(2)
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected stub_status answer {:?}", r.body))
    }

    /// Where the generated nginx configuration is.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_sets_paranoia_methods_and_echo_after_the_body() {
        let dir = Path::new("/tmp/x");
        let m = modsecurity_conf(dir, 2, false);
        assert!(m.contains("setvar:tx.enforce_bodyproc_urlencoded=0"));
        assert!(m.contains("setvar:tx.paranoia_level=2"));
        assert!(m.contains("tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE"));
        assert!(m.contains("SecRuleEngine On"));
        let n = nginx_conf(dir, "127.0.0.1:8080".parse().unwrap(), NginxOptions::crs(2));
        assert!(n.contains("master_process off;") && n.contains("worker_processes 1;"));
        let echo = n.find("echo_read_request_body").unwrap();
        assert!(echo < n.find("echo '").unwrap());
        assert!(n.contains("modsecurity on;"));
        let off = nginx_conf(
            dir,
            "127.0.0.1:8080".parse().unwrap(),
            NginxOptions::alone(),
        );
        assert!(off.contains("modsecurity off;") && !off.contains("modsecurity_rules_file"));
    }
}
