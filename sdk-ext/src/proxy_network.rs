//! The glue for **network** filters: the only code besides [`crate::proxy`] that calls the
//! proxy-wasm host.
//!
//! [`install_network_filter`] registers a root context that compiles the configuration once
//! per `on_configure` and a stream context per downstream connection that runs the
//! [`NetworkFilter`] hooks and applies their [`NetDecision`]s:
//!
//! * `Continue` sets the requested filter state, then returns `Continue` to Envoy, which
//!   starts the next filters (`tcp_proxy` connects upstream at that point) and hands them the
//!   bytes held so far. The decision is final: later reads pass through without a copy or a
//!   filter call.
//! * `Close` asks Envoy to close the downstream (deferred until the hook returns, with
//!   `FlushWrite`) and returns `StopIteration`, so the next filters never run.
//! * `Pause` returns `StopIteration`; Envoy keeps the bytes in the connection's read buffer
//!   (bounded by the listener's `per_connection_buffer_limit_bytes`, 1 MiB by default) and
//!   calls again with the whole buffer on the next read; the glue copies out only the bytes
//!   the filter has not seen.
//!
//! Proxy-wasm has no per-connection timer, so the pause timeout runs on the root context's
//! tick: each paused connection is registered with its deadline (fixed at the first pause, so
//! a client trickling one byte at a time cannot extend it), and the tick calls
//! [`NetworkFilter::on_timeout`] for expired ones after switching the host's effective context
//! to that connection.

use crate::abi;
use crate::build_info::BuildInfo;
use crate::config::parse_json;
use crate::metrics::Metrics;
use crate::network::{ConnOps, ConnectionView, DataChunk, NetDecision, NetworkFilter};
use crate::proxy::{host_services, init_logging, sync_log_level, HostMetrics, HostProperties};
use crate::proxy_defaults::{
    no_host_context_defaults, no_host_rootcontext_defaults, no_host_streamcontext_defaults,
};
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, PeerType, StreamType};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The proxy's clock in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    abi::current_time_nanos().map_or(0, |n| n / 1_000_000)
}

/// Encode `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments`
/// (`path` = 1, `value` = 2, `span` = 3 left at its default `FilterChain`, which on a
/// connection lives as long as the connection): two length-delimited string fields.
pub fn encode_filter_state_args(path: &str, value: &str) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        let mut len = bytes.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(path.len() + value.len() + 6);
    field(&mut out, 0x0a, path.as_bytes());
    field(&mut out, 0x12, value.as_bytes());
    out
}

/// Set an Envoy filter state object on the current connection through the
/// `set_envoy_filter_state` foreign function (Envoy builds the object with the factory
/// registered for `key`, so only well-known keys work).
fn set_filter_state(key: &str, value: &str) -> Result<(), String> {
    let args = encode_filter_state_args(key, value);
    abi::call_foreign_function("set_envoy_filter_state", &args)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Register `F` as this module's network filter. Called from `_initialize` by
/// [`crate::export_network_filter!`].
pub fn install_network_filter<F: NetworkFilter>() {
    install_network_filter_built::<F>(crate::proxy::module_build(F::NAME));
}

/// [`install_network_filter`] with the module's [`BuildInfo`], logged and exposed at VM start.
pub fn install_network_filter_built<F: NetworkFilter>(build: BuildInfo) {
    init_logging();
    crate::proxy::set_build(build);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NetRoot::<F> {
            filter: None,
            paused: Rc::new(RefCell::new(BTreeMap::new())),
            build: crate::proxy::module_build(F::NAME),
        })
    });
}

/// Per-connection data, shared between the stream context and the root's timer.
struct Conn<F: NetworkFilter> {
    view: ConnectionView,
    state: F::State,
    phase: Phase,
    /// Bytes of Envoy's buffer already shown to the filter.
    seen: usize,
    /// When the pause timeout fires (ms since epoch), set at the first pause.
    deadline_ms: Option<u64>,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The filter has not decided yet (before the first hook, or paused).
    Deciding,
    /// Continued: bytes pass through untouched.
    Passed,
    /// Closed by the filter: nothing passes.
    Closed,
}

/// A paused connection waiting for its timeout: the filter it was created with (a live
/// update may have replaced the root's) and its data.
struct PausedEntry<F: NetworkFilter> {
    deadline_ms: u64,
    filter: Rc<F>,
    conn: Rc<RefCell<Conn<F>>>,
}

type PausedMap<F> = Rc<RefCell<BTreeMap<u32, PausedEntry<F>>>>;

/// Root context: the compiled filter and the paused connections of this worker.
pub struct NetRoot<F: NetworkFilter> {
    filter: Option<Rc<F>>,
    paused: PausedMap<F>,
    build: BuildInfo,
}

impl<F: NetworkFilter> Context for NetRoot<F> {
    no_host_context_defaults!();
}

impl<F: NetworkFilter> RootContext for NetRoot<F> {
    no_host_rootcontext_defaults!();

    fn on_vm_start(&mut self, _size: usize) -> bool {
        crate::proxy::announce_build(F::NAME, &self.build);
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        sync_log_level();
        let bytes = match abi::buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        ) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => {
                log::error!(
                    "{}: cannot read the plugin configuration ({e}); configuration rejected",
                    F::NAME
                );
                return false;
            }
        };
        let mut metrics = Metrics::new(F::NAME, Rc::new(HostMetrics));
        let built = parse_json::<F::Config>(&bytes).and_then(|cfg| {
            F::configure(
                cfg,
                crate::filter::Setup {
                    metrics: &mut metrics,
                    services: host_services(),
                },
            )
        });
        match built {
            Ok(filter) => {
                let period = match filter.timer_period() {
                    Some(p) => p,
                    // Connections paused under a previous configuration still need a timer.
                    None if !self.paused.borrow().is_empty() => Duration::from_secs(1),
                    None => Duration::ZERO,
                };
                if let Err(e) = abi::set_tick_period(period) {
                    // Without a tick, paused connections are closed only by Envoy's own
                    // timeouts: said once, not fatal to the configuration.
                    log::error!("{}: cannot set the tick period: {e}", F::NAME);
                }
                log::info!("{}: configuration accepted", F::NAME);
                self.filter = Some(Rc::new(filter));
                true
            }
            Err(err) => {
                log::error!("{}: {err}; configuration rejected", F::NAME);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        let expired: Vec<(u32, PausedEntry<F>)> = {
            let mut paused = self.paused.borrow_mut();
            let ids: Vec<u32> = paused
                .iter()
                .filter(|(_, e)| e.deadline_ms <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| paused.remove(&id).map(|e| (id, e)))
                .collect()
        };
        for (id, entry) in expired {
            // Host calls below act on the connection, not on this root context.
            if abi::set_effective_context(id).is_err() {
                continue; // the connection is already gone
            }
            let mut conn = entry.conn.borrow_mut();
            if conn.phase != Phase::Deciding {
                continue;
            }
            conn.view.set_now_ms(now);
            let mut ops = ConnOps::default();
            let Conn { view, state, .. } = &mut *conn;
            let decision = match entry.filter.on_timeout(view, state, &mut ops) {
                NetDecision::Pause => NetDecision::Close,
                d => d,
            };
            if apply::<F>(&mut conn, decision, &ops) == Action::Continue {
                // Not inside a callback of this connection: wake its filter chain explicitly.
                if let Err(e) = abi::continue_stream(StreamType::Downstream) {
                    log::warn!("{}: cannot resume connection {id}: {e}", F::NAME);
                }
            }
        }
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(NetStream::<F> {
            id: context_id,
            filter: self.filter.clone(),
            conn: Rc::new(RefCell::new(Conn {
                view: ConnectionView::new(Box::new(HostProperties), 0),
                state: F::State::default(),
                phase: Phase::Deciding,
                seen: 0,
                deadline_ms: None,
            })),
            paused: Rc::clone(&self.paused),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

/// Turn a decision into host calls for the current (or effective) connection; returns the
/// action for Envoy.
fn apply<F: NetworkFilter>(conn: &mut Conn<F>, decision: NetDecision, ops: &ConnOps) -> Action {
    match decision {
        NetDecision::Continue => {
            for (key, value) in &ops.filter_state {
                if let Err(status) = set_filter_state(key, value) {
                    // Continuing without the state would send the connection to the wrong
                    // place (tcp_proxy's default cluster): fail closed, loudly.
                    log::error!(
                        "{}: could not set filter state `{key}` ({status}); closing the connection",
                        F::NAME
                    );
                    return close(conn);
                }
            }
            conn.phase = Phase::Passed;
            Action::Continue
        }
        NetDecision::Close => close(conn),
        NetDecision::Pause => Action::Pause,
    }
}

fn close<F: NetworkFilter>(conn: &mut Conn<F>) -> Action {
    conn.phase = Phase::Closed;
    if let Err(e) = abi::close_stream(StreamType::Downstream) {
        // Returning Pause still stops the filter chain: the connection never reaches the
        // upstream, it waits for Envoy's idle timeout instead.
        log::warn!("{}: cannot close the connection: {e}", F::NAME);
    }
    Action::Pause
}

/// Per-connection context.
pub struct NetStream<F: NetworkFilter> {
    id: u32,
    /// `None` if the plugin was never configured successfully: connections are closed.
    filter: Option<Rc<F>>,
    conn: Rc<RefCell<Conn<F>>>,
    paused: PausedMap<F>,
}

impl<F: NetworkFilter> NetStream<F> {
    /// Apply `decision`; on `Pause`, register the connection's deadline (once).
    fn finish(
        &self,
        filter: &Rc<F>,
        conn: &mut Conn<F>,
        decision: NetDecision,
        ops: &ConnOps,
    ) -> Action {
        let action = apply::<F>(conn, decision, ops);
        if decision == NetDecision::Pause {
            if let (None, Some(timeout)) = (conn.deadline_ms, filter.pause_timeout()) {
                let deadline = conn
                    .view
                    .now_ms()
                    .saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
                conn.deadline_ms = Some(deadline);
                self.paused.borrow_mut().insert(
                    self.id,
                    PausedEntry {
                        deadline_ms: deadline,
                        filter: Rc::clone(filter),
                        conn: Rc::clone(&self.conn),
                    },
                );
            }
        } else {
            self.paused.borrow_mut().remove(&self.id);
        }
        action
    }
}

impl<F: NetworkFilter> Context for NetStream<F> {
    no_host_context_defaults!();
}

impl<F: NetworkFilter> StreamContext for NetStream<F> {
    no_host_streamcontext_defaults!();

    fn on_new_connection(&mut self) -> Action {
        let Some(filter) = self.filter.clone() else {
            log::warn!("{}: not configured; closing the connection", F::NAME);
            let _ = abi::close_stream(StreamType::Downstream);
            return Action::Pause;
        };
        let conn_rc = Rc::clone(&self.conn);
        let mut conn = conn_rc.borrow_mut();
        conn.view.set_now_ms(now_ms());
        let mut ops = ConnOps::default();
        let Conn { view, state, .. } = &mut *conn;
        let decision = filter.on_new_connection(view, state, &mut ops);
        self.finish(&filter, &mut conn, decision, &ops)
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        let Some(filter) = self.filter.clone() else {
            return Action::Pause;
        };
        let conn_rc = Rc::clone(&self.conn);
        let mut conn = conn_rc.borrow_mut();
        match conn.phase {
            Phase::Passed => return Action::Continue,
            Phase::Closed => return Action::Pause,
            Phase::Deciding => {}
        }
        let start = conn.seen.min(data_size);
        let new_bytes = if data_size > start {
            abi::buffer(BufferType::DownstreamData, start, data_size - start)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        log::debug!(
            "{}: {data_size} bytes buffered ({} new, end_of_stream={end_of_stream})",
            F::NAME,
            new_bytes.len()
        );
        conn.seen = data_size;
        conn.view.set_now_ms(now_ms());
        let mut ops = ConnOps::default();
        let chunk = DataChunk {
            new_bytes: &new_bytes,
            buffered: data_size,
            end_of_stream,
        };
        let Conn { view, state, .. } = &mut *conn;
        let decision = filter.on_downstream_data(view, chunk, state, &mut ops);
        self.finish(&filter, &mut conn, decision, &ops)
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {
        self.paused.borrow_mut().remove(&self.id);
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let mut conn = self.conn.borrow_mut();
        conn.view.set_now_ms(now_ms());
        let Conn { view, state, .. } = &mut *conn;
        filter.on_downstream_close(view, state);
    }
}

#[cfg(test)]
mod tests {
    use super::encode_filter_state_args;

    #[test]
    fn filter_state_arguments_are_protobuf() {
        let b = encode_filter_state_args("envoy.tcp_proxy.cluster", "a");
        let mut want = vec![0x0a, 23];
        want.extend_from_slice(b"envoy.tcp_proxy.cluster");
        want.extend_from_slice(&[0x12, 1, b'a']);
        assert_eq!(b, want);
        // Lengths over 127 use a multi-byte varint.
        let long = "x".repeat(300);
        let b = encode_filter_state_args("k", &long);
        assert_eq!(&b[3..6], &[0x12, 0xac, 0x02]);
    }
}
