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
//!
//! A gRPC callout ([`Decision::Call`]) is part of the same machine: [`Then::Call`] asks the glue
//! to send it and report the token ([`HttpStream::on_call_dispatched`]), the request is held
//! until [`HttpStream::on_call_closed`] (answer, failure or timeout, told apart here), and the
//! call hook's decision then resumes ([`Then::Resume`]) or answers the held request.

use crate::callout::{grpc_status, CallOutcome, GrpcCall};
use crate::filter::{BodyChunk, Decision, HeaderOps, HostErrorPolicy, HttpFilter};
use crate::reply::LocalReply;
use crate::view::RequestView;
use std::rc::Rc;
use std::time::Duration;

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
    /// Sending a gRPC call ([`Then::Call`]); also a call the filter asked for where none can be
    /// made ([`Then::Unsupported`]).
    GrpcCall,
    /// Reading a call's answer ([`Then::ReadCallAnswer`]).
    ReadCallAnswer,
    /// Resuming a request held for a call ([`Then::Resume`]).
    ResumeRequest,
}

impl HostOp {
    /// The variant's name, as `{:?}` writes it (for log lines built without `core::fmt`).
    pub fn name(self) -> &'static str {
        match self {
            HostOp::ReadConfig => "ReadConfig",
            HostOp::ReadHeaders => "ReadHeaders",
            HostOp::EditRequestHeaders => "EditRequestHeaders",
            HostOp::EditResponseHeaders => "EditResponseHeaders",
            HostOp::ReadBody => "ReadBody",
            HostOp::SendReply => "SendReply",
            HostOp::ResetStream => "ResetStream",
            HostOp::Property => "Property",
            HostOp::Metric => "Metric",
            HostOp::Clock => "Clock",
            HostOp::GrpcCall => "GrpcCall",
            HostOp::ReadCallAnswer => "ReadCallAnswer",
            HostOp::ResumeRequest => "ResumeRequest",
        }
    }
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
    /// Send this gRPC call and report its token with [`HttpStream::on_call_dispatched`] (which
    /// answers: pause, the request is held). Refused: report [`HostOp::GrpcCall`].
    Call(GrpcCall),
    /// Read up to this many bytes of the closed call's answer and hand them to
    /// [`HttpStream::on_call_answer`]. Refused: report [`HostOp::ReadCallAnswer`].
    ReadCallAnswer(usize),
    /// Resume the request held for a call (its header callback answered pause). Refused:
    /// report [`HostOp::ResumeRequest`].
    Resume,
    /// The filter asked for what cannot be done here (a call from the body hook, or a body
    /// inspection or second call from the call hook): count it as a refused host call of this
    /// kind and report it with [`HttpStream::on_host_error`].
    Unsupported(HostOp),
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
    /// The filter asked for a call ([`Then::Call`]) that the glue is sending; the view is kept
    /// for [`HttpFilter::on_call_response`], the timeout for the deadline.
    Dispatching(RequestView, Duration),
    /// The request (headers and body) is held until the call closes.
    Calling(RequestView, Pending),
    /// The call answered; its message is being read ([`Then::ReadCallAnswer`]). The flag: the
    /// answer came at or after the deadline.
    ReadingAnswer(RequestView, bool),
    /// A local reply was sent (or the stream reset): the rest of the stream is ignored.
    Replied,
}

/// A gRPC call in flight: its token, and when it must have ended (host clock, ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub token: u32,
    pub deadline_nanos: u64,
}

/// Event data of a closed gRPC call (proxy-wasm `on_grpc_call_response`), gathered by the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallClose {
    pub token: u32,
    /// gRPC status; 0 (`OK`) carries an answer of `response_size` bytes.
    pub status: u32,
    pub response_size: usize,
    /// The host's status message for a failed call (`proxy_get_status`), if it gave one.
    pub message: Option<String>,
    /// Host clock at the close, ns.
    pub now_nanos: u64,
}

impl CallClose {
    /// Whether a failed call ended at its deadline: a `DEADLINE_EXCEEDED` status, Envoy's own
    /// timeout reply (`UNAVAILABLE` with the message `upstream request timeout...`, its async
    /// client's timeout with the response details appended), or the deadline has passed.
    fn timed_out(&self, deadline_nanos: u64) -> bool {
        self.status == grpc_status::DEADLINE_EXCEEDED
            || (self.status == grpc_status::UNAVAILABLE
                && self
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("upstream request timeout")))
            || self.now_nanos >= deadline_nanos
    }
}

/// One request: the filter, its per-request state and the phase.
pub struct HttpStream<F: HttpFilter> {
    filter: Rc<F>,
    state: F::State,
    phase: Phase,
    /// The request header callback answered pause for a call: going on means resuming it
    /// ([`Then::Resume`]), not answering a callback.
    held: bool,
}

impl<F: HttpFilter> HttpStream<F> {
    pub fn new(filter: Rc<F>) -> Self {
        Self {
            filter,
            state: F::State::default(),
            phase: Phase::Headers,
            held: false,
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
            Decision::Call(call) => {
                self.phase = Phase::Dispatching(view, call.timeout);
                Then::Call(call)
            }
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
            // Keep buffering (Envoy: StopIterationAndBuffer) until the limit or the end; held
            // for a call, Envoy buffers the body until the request is resumed.
            held @ (Phase::Buffering(_)
            | Phase::Reading(..)
            | Phase::Dispatching(..)
            | Phase::Calling(..)
            | Phase::ReadingAnswer(..)) => {
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
            held @ (Phase::Dispatching(..) | Phase::Calling(..) | Phase::ReadingAnswer(..)) => {
                self.phase = held;
                Step::then(Then::Pause)
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
            // A call is only possible from the header hook.
            Decision::Call(_) => Step::with(
                Side::Request,
                ops,
                true,
                Then::Unsupported(HostOp::GrpcCall),
            ),
        }
    }

    /// Event: the call asked for by [`Then::Call`] was sent with this token at `now_nanos`
    /// (host clock). The request is held until [`Self::on_call_closed`].
    pub fn on_call_dispatched(&mut self, token: u32, now_nanos: u64) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Dispatching(view, timeout) => {
                let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
                let pending = Pending {
                    token,
                    deadline_nanos: now_nanos.saturating_add(timeout),
                };
                self.phase = Phase::Calling(view, pending);
                self.held = true;
                Step::then(Then::Pause)
            }
            // No call was being sent: nothing to hold.
            other => {
                self.phase = other;
                Step::then(Then::Continue)
            }
        }
    }

    /// Event: a gRPC call closed. Not this request's pending call: ignored ([`Then::Pause`]:
    /// nothing to do). An answer is read first ([`Then::ReadCallAnswer`]); a failure goes to
    /// the call hook at once, a timeout told apart from other failures.
    pub fn on_call_closed(&mut self, close: &CallClose) -> Step {
        let (view, pending) = match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Calling(view, p) if p.token == close.token => (view, p),
            other => {
                self.phase = other;
                return Step::then(Then::Pause);
            }
        };
        if close.status == 0 {
            let late = close.now_nanos >= pending.deadline_nanos;
            self.phase = Phase::ReadingAnswer(view, late);
            return Step::then(Then::ReadCallAnswer(close.response_size));
        }
        let outcome = CallOutcome::Failed {
            status: close.status,
            dispatched: true,
            timed_out: close.timed_out(pending.deadline_nanos),
        };
        self.call_hook(&view, outcome)
    }

    /// Event: the answer asked for by [`Then::ReadCallAnswer`]; runs the call hook.
    pub fn on_call_answer(&mut self, answer: Vec<u8>) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::ReadingAnswer(view, _) => self.call_hook(&view, CallOutcome::Answer(&answer)),
            other => {
                self.phase = other;
                Step::then(Then::Pause)
            }
        }
    }

    /// The filter's call hook; its decision for the held request.
    fn call_hook(&mut self, view: &RequestView, outcome: CallOutcome<'_>) -> Step {
        let mut ops = HeaderOps::default();
        let decision = self
            .filter
            .on_call_response(view, outcome, &mut self.state, &mut ops);
        self.phase = Phase::Headers;
        match decision {
            Decision::Respond(r) => self.reply(ops, r),
            Decision::Continue => {
                let then = self.go_on();
                Step::with(Side::Request, ops, true, then)
            }
            // Neither a body inspection nor a second call can start once the headers were
            // held for a call.
            Decision::InspectBody | Decision::Call(_) => Step::with(
                Side::Request,
                ops,
                true,
                Then::Unsupported(HostOp::GrpcCall),
            ),
        }
    }

    /// How the request side goes on: answer the callback, or resume a held request. `held`
    /// stays set: a refused edit before the resume must still resume (fail open), and once
    /// resumed no request-side event can fail.
    fn go_on(&self) -> Then {
        if self.held {
            Then::Resume
        } else {
            Then::Continue
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
    /// the request as it is (resuming it if it was held for a call). A call the proxy refused
    /// to send, or whose answer cannot be read, is a failed call for the call hook; a held
    /// request that cannot be resumed is reset.
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
            // A held request that cannot be resumed must not hang: reset it.
            HostOp::ResumeRequest => {
                self.held = false;
                self.phase = Phase::Replied;
                Step::then(Then::Reset)
            }
            HostOp::GrpcCall | HostOp::ReadCallAnswer => {
                match (op, std::mem::replace(&mut self.phase, Phase::Headers)) {
                    // The proxy refused to send the call: the call hook decides, as for any
                    // failure.
                    (HostOp::GrpcCall, Phase::Dispatching(view, _)) => {
                        let outcome = CallOutcome::Failed {
                            status: grpc_status::UNAVAILABLE,
                            dispatched: false,
                            timed_out: false,
                        };
                        self.call_hook(&view, outcome)
                    }
                    // The answer could not be read: a failed call.
                    (HostOp::ReadCallAnswer, Phase::ReadingAnswer(view, late)) => {
                        let outcome = CallOutcome::Failed {
                            status: grpc_status::INTERNAL,
                            dispatched: true,
                            timed_out: late,
                        };
                        self.call_hook(&view, outcome)
                    }
                    // A call asked for where none can be made.
                    (_, other) => {
                        self.phase = other;
                        self.fail()
                    }
                }
            }
            _ => self.fail(),
        }
    }

    /// A request-path failure, as the filter declares ([`HttpFilter::ON_HOST_ERROR`]).
    fn fail(&mut self) -> Step {
        match F::ON_HOST_ERROR {
            HostErrorPolicy::FailOpen => {
                self.phase = Phase::Headers;
                Step::then(self.go_on())
            }
            HostErrorPolicy::FailClosed => {
                self.phase = Phase::Replied;
                self.held = false;
                let reply = LocalReply::json(503, "unavailable", "filter could not run", None);
                Step::then(Then::Reply(reply))
            }
        }
    }

    /// Answer locally: the edits are applied if the host takes them (not required), then the
    /// reply; the rest of the stream is ignored.
    fn reply(&mut self, ops: HeaderOps, reply: LocalReply) -> Step {
        self.phase = Phase::Replied;
        self.held = false;
        Step::with(Side::Request, ops, false, Then::Reply(reply))
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
