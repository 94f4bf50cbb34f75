//! The request lifecycle of an HTTP filter as a host-free state machine.
//!
//! [`HttpStream`] holds one request's [`Phase`] and the filter's per-request state. Each host
//! callback becomes an event (`on_request_headers`, `on_request_body`, ...); the machine runs the
//! filter's hooks and answers with a [`Step`]: header edits to apply, then one thing to do
//! ([`Then`]). The glue (`sdk_ext::proxy`, feature `glue`) only executes steps: it applies the
//! edits, performs the `Then`, and reports what the host refused with
//! [`HttpStream::on_host_error`] or what it read with [`HttpStream::on_body_read`], each of which
//! answers with the next step. The decisions (when to hold the body, what a refused call means,
//! that a denial is never forwarded) are all here, tested natively in `lifecycle_tests.rs`.

use crate::filter::{BodyChunk, Decision, HeaderOps, HostErrorPolicy, HttpFilter};
use crate::reply::LocalReply;
use crate::view::RequestView;
use std::rc::Rc;

/// Kinds of host call, for reporting a refused one (and for logging each kind's first failure
/// once per VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOp {
    ReadConfig,
    ReadHeaders,
    EditRequestHeaders,
    EditResponseHeaders,
    ReadBody,
    SendReply,
    ResetStream,
    Property,
    Metric,
    Clock,
}

/// Which header map [`Edits`] apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// Header edits the glue applies before the step's [`Then`] (removals, then sets, then adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edits {
    pub side: Side,
    pub ops: HeaderOps,
    /// Whether a refused edit is a host failure to report ([`HttpStream::on_host_error`]).
    /// False when a local reply follows (a denial does not depend on the edits) and for response
    /// edits (the upstream's answer is never dropped for them): the glue then only counts it.
    pub required: bool,
}

/// What the glue does after the edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// Answer the callback: continue.
    Continue,
    /// Answer the callback: pause (keep buffering the body, or ignore the rest of a stream that
    /// was answered).
    Pause,
    /// Send this local reply, then pause. Refused: report [`HostOp::SendReply`].
    Reply(LocalReply),
    /// Reset the stream, then pause. Refused: report [`HostOp::ResetStream`].
    Reset,
    /// Read up to this many bytes of the request body and hand them to
    /// [`HttpStream::on_body_read`]. Refused: report [`HostOp::ReadBody`].
    ReadBody(usize),
    /// Hand [`HttpStream::on_body_read`] an empty body at once, without a host call: the
    /// request has no body (or the filter buffers none).
    NoBody,
}

/// The machine's answer to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub edits: Option<Edits>,
    pub then: Then,
}

impl Step {
    fn then(then: Then) -> Self {
        Self { edits: None, then }
    }

    fn with(side: Side, ops: HeaderOps, required: bool, then: Then) -> Self {
        Self {
            edits: Some(Edits {
                side,
                ops,
                required,
            }),
            then,
        }
    }
}

/// How the body hook's `truncated` flag is decided once the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncated {
    /// Known before the read (the body callback saw the size).
    Known(bool),
    /// After trailers: the size is unknown, a read that fills the limit counts as truncated.
    IfFull,
}

/// Where a request is in its lifecycle.
#[derive(Debug)]
pub enum Phase {
    /// Waiting for request headers, or done with the request side.
    Headers,
    /// The body is held until it (up to the filter's limit) has arrived; the view is kept for
    /// the body hook.
    Buffering(RequestView),
    /// A body read was asked for ([`Then::ReadBody`] / [`Then::NoBody`]).
    Reading(RequestView, Truncated),
    /// A local reply was sent (or the stream reset): the rest of the stream is ignored.
    Replied,
}

/// One request: the filter, its per-request state and the phase.
pub struct HttpStream<F: HttpFilter> {
    filter: Rc<F>,
    state: F::State,
    phase: Phase,
}

impl<F: HttpFilter> HttpStream<F> {
    pub fn new(filter: Rc<F>) -> Self {
        Self {
            filter,
            state: F::State::default(),
            phase: Phase::Headers,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The filter's per-request state (for tests and tools).
    pub fn state(&self) -> &F::State {
        &self.state
    }

    /// Event: the request headers arrived (read by the glue into `view`).
    pub fn on_request_headers(&mut self, view: RequestView, end_of_stream: bool) -> Step {
        let mut ops = HeaderOps::default();
        let decision = self
            .filter
            .on_request_headers(&view, &mut self.state, &mut ops);
        self.phase = Phase::Headers;
        let then = match decision {
            Decision::Continue => Then::Continue,
            Decision::Respond(r) => return self.reply(ops, r),
            Decision::InspectBody if end_of_stream || self.filter.max_body_bytes() == 0 => {
                self.phase = Phase::Reading(view, Truncated::Known(false));
                Then::NoBody
            }
            Decision::InspectBody => {
                // Continue, not Pause: under ABI 0.2.1 Envoy turns a paused headers callback
                // into StopAllIterationAndWatermark, which also withholds the body from this
                // filter, so the body hook would never run and the request would hang. The
                // headers therefore travel on (the router opens the upstream request) while
                // the body is held by pausing `on_request_body` (StopIterationAndBuffer); a
                // local reply from the body hook resets the upstream request.
                self.phase = Phase::Buffering(view);
                Then::Continue
            }
        };
        Step::with(Side::Request, ops, true, then)
    }

    /// Event: `size` body bytes are buffered so far; `end_of_stream` when that is all.
    pub fn on_request_body(&mut self, size: usize, end_of_stream: bool) -> Step {
        let limit = self.filter.max_body_bytes();
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Buffering(view) if end_of_stream || size >= limit => {
                self.phase = Phase::Reading(view, Truncated::Known(size > limit));
                Step::then(Then::ReadBody(size.min(limit)))
            }
            // Keep buffering (Envoy: StopIterationAndBuffer) until the limit or the end.
            held @ (Phase::Buffering(_) | Phase::Reading(..)) => {
                self.phase = held;
                Step::then(Then::Pause)
            }
            Phase::Replied => {
                self.phase = Phase::Replied;
                Step::then(Then::Pause)
            }
            Phase::Headers => Step::then(Then::Continue),
        }
    }

    /// Event: request trailers. A body followed by trailers never sets `end_of_stream` on the
    /// body: inspect what is buffered now.
    pub fn on_request_trailers(&mut self) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Buffering(view) => {
                self.phase = Phase::Reading(view, Truncated::IfFull);
                Step::then(Then::ReadBody(self.filter.max_body_bytes()))
            }
            other => {
                self.phase = other;
                Step::then(Then::Continue)
            }
        }
    }

    /// Event: the body asked for by [`Then::ReadBody`] / [`Then::NoBody`]; runs the body hook.
    pub fn on_body_read(&mut self, body: Vec<u8>) -> Step {
        let Phase::Reading(view, flag) = std::mem::replace(&mut self.phase, Phase::Headers) else {
            // No read was pending: nothing to inspect.
            return Step::then(Then::Continue);
        };
        let truncated = match flag {
            Truncated::Known(t) => t,
            Truncated::IfFull => body.len() >= self.filter.max_body_bytes(),
        };
        let mut ops = HeaderOps::default();
        let chunk = BodyChunk {
            bytes: &body,
            truncated,
        };
        let decision = self
            .filter
            .on_request_body(&view, chunk, &mut self.state, &mut ops);
        match decision {
            Decision::Respond(r) => self.reply(ops, r),
            // The body was held; release it.
            Decision::Continue | Decision::InspectBody => {
                Step::with(Side::Request, ops, true, Then::Continue)
            }
        }
    }

    /// Event: the response headers arrived (from the upstream or a local reply). The filter's
    /// edits apply to them; a refused edit never drops the response.
    pub fn on_response_headers(&mut self) -> Step {
        let mut ops = HeaderOps::default();
        self.filter.on_response_headers(&mut self.state, &mut ops);
        Step::with(Side::Response, ops, false, Then::Continue)
    }

    /// Event: the host refused `op` (the glue has logged and counted it). A refused reply
    /// resets the stream (a denial is never forwarded); a refused reset just stops; a refused
    /// response edit lets the response go on. Any other refused call on the request path fails
    /// as the filter declares ([`HttpFilter::ON_HOST_ERROR`]): closed answers 503, open forwards
    /// the request as it is.
    pub fn on_host_error(&mut self, op: HostOp) -> Step {
        match op {
            HostOp::SendReply => {
                self.phase = Phase::Replied;
                Step::then(Then::Reset)
            }
            HostOp::ResetStream => {
                self.phase = Phase::Replied;
                Step::then(Then::Pause)
            }
            HostOp::EditResponseHeaders => Step::then(Then::Continue),
            _ => match F::ON_HOST_ERROR {
                HostErrorPolicy::FailOpen => {
                    self.phase = Phase::Headers;
                    Step::then(Then::Continue)
                }
                HostErrorPolicy::FailClosed => {
                    self.phase = Phase::Replied;
                    let reply = LocalReply::json(503, "unavailable", "filter could not run", None);
                    Step::then(Then::Reply(reply))
                }
            },
        }
    }

    /// Answer locally: the edits are applied if the host takes them (not required), then the
    /// reply; the rest of the stream is ignored.
    fn reply(&mut self, ops: HeaderOps, reply: LocalReply) -> Step {
        self.phase = Phase::Replied;
        Step::with(Side::Request, ops, false, Then::Reply(reply))
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
