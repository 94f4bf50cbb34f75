//! The contract between a **network (L4) filter**'s logic and the proxy glue.
//!
//! The TCP counterpart of [`crate::filter`]: a filter built once per configuration and shared
//! by every connection, per-connection data in `State`, hooks that receive plain data (a
//! [`ConnectionView`], the bytes read so far) and return a [`NetDecision`]. The glue in
//! `sdk_ext::proxy_network` (feature `glue`) turns decisions into host calls: close the connection, hold its
//! bytes, or let them through to the next filter (usually `tcp_proxy`) after applying the
//! [`ConnOps`] (filter state such as `envoy.tcp_proxy.cluster`).
//!
//! Where Envoy runs the hooks: the Wasm network filter sits in the listener's filter chain
//! before `tcp_proxy`. Envoy initialises read filters in order and stops at the first one that
//! returns `StopIteration` from `onNewConnection`, so while a filter returns
//! [`NetDecision::Pause`] the filters after it (and `tcp_proxy`'s upstream connect) have not
//! started: no byte and no connection attempt reaches the upstream before the decision.
//! `tcp_proxy` must be configured with `max_early_data_bytes` for the paused filter to receive
//! bytes at all: otherwise it disables reading when it is created and re-enables it only once
//! its upstream is connected (measured with Envoy 1.40).

use crate::config::ConfigError;
/// The configure-time [`Setup`], shared with HTTP filters (formerly `NetworkSetup`).
pub use crate::filter::Setup;
use crate::view::{prop_i64, prop_string, PropertySource};
use serde::de::DeserializeOwned;
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What to do with the connection after a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetDecision {
    /// Let the bytes (and the rest of the connection) through to the next filter, after the
    /// hook's [`ConnOps`] are applied. Final: later reads pass through without a filter call
    /// or a copy (a Wasm filter pays a VM crossing per read, nothing more).
    Continue,
    /// Close the downstream connection (Envoy flushes pending writes, then closes). The
    /// filters after this one never see the connection.
    Close,
    /// Hold the bytes read so far and wait for more (Envoy: `StopIteration`). The next read
    /// calls [`NetworkFilter::on_downstream_data`] again with the new bytes; if none decide
    /// within [`NetworkFilter::pause_timeout`], [`NetworkFilter::on_timeout`] is called.
    Pause,
}

/// Side effects a hook asks for, applied before a [`NetDecision::Continue`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnOps {
    /// Envoy filter state objects to set on the connection (key, value as the object's
    /// factory reads it), through the `set_envoy_filter_state` foreign function. The key must
    /// be a well-known object with a registered factory, e.g. `envoy.tcp_proxy.cluster`.
    pub filter_state: Vec<(String, String)>,
}

impl ConnOps {
    /// Route `tcp_proxy` to `cluster` for this connection (filter state
    /// `envoy.tcp_proxy.cluster`, read by `tcp_proxy` when it starts, i.e. after this filter
    /// continues).
    pub fn route_to_cluster(&mut self, cluster: &str) {
        self.filter_state
            .push((TCP_PROXY_CLUSTER.to_string(), cluster.to_string()));
    }
}

/// The filter state key `tcp_proxy` reads its per-connection cluster from.
pub const TCP_PROXY_CLUSTER: &str = "envoy.tcp_proxy.cluster";

/// Bytes delivered to [`NetworkFilter::on_downstream_data`].
#[derive(Debug, Clone, Copy)]
pub struct DataChunk<'a> {
    /// Bytes not shown to the filter before (while paused, Envoy keeps earlier bytes buffered
    /// and the glue hands over only what is new).
    pub new_bytes: &'a [u8],
    /// Bytes Envoy currently holds for this filter, including `new_bytes`.
    pub buffered: usize,
    /// The peer half-closed: no more bytes will come.
    pub end_of_stream: bool,
}

/// One downstream connection as the filter sees it: addresses (read from the host once, on
/// first use) and the current time.
pub struct ConnectionView {
    props: Box<dyn PropertySource>,
    now_ms: u64,
    source: OnceCell<Option<SocketAddr>>,
}

impl std::fmt::Debug for ConnectionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionView")
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

impl ConnectionView {
    /// A view over `props` at time `now_ms` (milliseconds since the Unix epoch).
    pub fn new(props: Box<dyn PropertySource>, now_ms: u64) -> Self {
        Self {
            props,
            now_ms,
            source: OnceCell::new(),
        }
    }

    /// When the hook runs, in milliseconds since the Unix epoch (the proxy's clock).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Move the view's clock (the glue keeps one view per connection, addresses cached).
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The downstream peer (`source.address`).
    pub fn source_addr(&self) -> Option<SocketAddr> {
        *self
            .source
            .get_or_init(|| parse_addr(self.props.as_ref(), &["source", "address"], "source"))
    }

    /// The downstream peer's IP.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_addr().map(|a| a.ip())
    }

    /// The local address the connection was accepted on (`destination.address`).
    pub fn destination_addr(&self) -> Option<SocketAddr> {
        parse_addr(
            self.props.as_ref(),
            &["destination", "address"],
            "destination",
        )
    }

    /// Any string property.
    pub fn string_property(&self, path: &[&str]) -> Option<String> {
        prop_string(self.props.property(path)?)
    }
}

fn parse_addr(props: &dyn PropertySource, path: &[&str], port_root: &str) -> Option<SocketAddr> {
    let text = prop_string(props.property(path)?)?;
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa);
    }
    let ip = text.parse::<IpAddr>().ok()?;
    let port = props
        .property(&[port_root, "port"])
        .and_then(|raw| prop_i64(&raw))
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    Some(SocketAddr::new(ip, port))
}

/// A network filter's logic. Implement it, then export it with
/// [`crate::export_network_filter!`].
pub trait NetworkFilter: Sized + 'static {
    /// Filter name: metric prefix (`-` becomes `_`) and log prefix.
    const NAME: &'static str;
    /// The JSON configuration, as serde reads it (use `#[serde(deny_unknown_fields)]`).
    type Config: DeserializeOwned;
    /// Per-connection state, created with `Default` for each connection.
    type State: Default + 'static;

    /// Phase: plugin (re)configuration. Validate and compile `config`; define metrics.
    /// An error refuses the configuration (Envoy does not start with it; on a live update it
    /// keeps the previous one).
    fn configure(config: Self::Config, setup: Setup<'_>) -> Result<Self, ConfigError>;

    /// Phase: connection accepted, before any byte is read. Default: continue.
    /// `Pause` keeps the next filters (and `tcp_proxy`'s upstream connect) from starting until
    /// a later hook continues.
    fn on_new_connection(
        &self,
        _conn: &ConnectionView,
        _state: &mut Self::State,
        _ops: &mut ConnOps,
    ) -> NetDecision {
        NetDecision::Continue
    }

    /// Phase: bytes read from the downstream while the filter has not decided (the connection
    /// started paused, or an earlier call paused). Default: continue.
    fn on_downstream_data(
        &self,
        _conn: &ConnectionView,
        _data: DataChunk<'_>,
        _state: &mut Self::State,
        _ops: &mut ConnOps,
    ) -> NetDecision {
        NetDecision::Continue
    }

    /// How long a connection may stay paused before [`NetworkFilter::on_timeout`] runs.
    /// `None` (the default): no limit. Checked on a timer, so it fires up to
    /// [`NetworkFilter::timer_period`] late.
    fn pause_timeout(&self) -> Option<Duration> {
        None
    }

    /// Granularity of the pause timer. Default: a quarter of `pause_timeout`, between 20 ms
    /// and 1 s.
    fn timer_period(&self) -> Option<Duration> {
        self.pause_timeout()
            .map(|t| (t / 4).clamp(Duration::from_millis(20), Duration::from_secs(1)))
    }

    /// Phase: the connection stayed paused longer than `pause_timeout`. `Pause` is read as
    /// `Close`. Default: close.
    fn on_timeout(
        &self,
        _conn: &ConnectionView,
        _state: &mut Self::State,
        _ops: &mut ConnOps,
    ) -> NetDecision {
        NetDecision::Close
    }

    /// Phase: the downstream connection closed (by the peer or by the proxy, including after
    /// [`NetDecision::Close`]). Default: nothing.
    fn on_downstream_close(&self, _conn: &ConnectionView, _state: &mut Self::State) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeProperties;

    fn view(pairs: &[(&str, &[u8])]) -> ConnectionView {
        let mut p = FakeProperties::default();
        for (k, v) in pairs {
            p.0.insert((*k).to_string(), v.to_vec());
        }
        ConnectionView::new(Box::new(p), 42)
    }

    #[test]
    fn addresses_from_properties() {
        let v = view(&[
            ("source.address", b"127.0.0.2:5555"),
            ("destination.address", b"[::1]:443"),
        ]);
        assert_eq!(v.source_ip().unwrap().to_string(), "127.0.0.2");
        assert_eq!(v.source_addr().unwrap().port(), 5555);
        assert_eq!(v.destination_addr().unwrap().port(), 443);
        assert_eq!(v.now_ms(), 42);
    }

    #[test]
    fn bare_ip_takes_port_property() {
        let v = view(&[
            ("source.address", b"10.0.0.1"),
            ("source.port", &7i64.to_le_bytes()),
        ]);
        assert_eq!(v.source_addr().unwrap().to_string(), "10.0.0.1:7");
        assert_eq!(view(&[]).source_addr(), None);
    }

    #[test]
    fn route_to_cluster_sets_tcp_proxy_state() {
        let mut ops = ConnOps::default();
        ops.route_to_cluster("b");
        assert_eq!(
            ops.filter_state,
            vec![("envoy.tcp_proxy.cluster".to_string(), "b".to_string())]
        );
    }
}
