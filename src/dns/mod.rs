//! The DNS front end: packets in, answers out, read-only over the registry.
//!
//! `answer` decides what a question gets (pure, no I/O); `handler` applies the protocol
//! rules around it (EDNS, AA, RA) and the forwarding policy; `exchange` runs the full path
//! from bytes to bytes; `wire` owns the wire layout; `udp` (with `batch` and the `fast` path)
//! and `tcp` carry packets to it; `listener` binds the sockets; `gateways` follows Docker
//! bridges with listeners; `rate_limit` is the optional UDP RRL; `turns` lets one lookup sent to
//! several of our addresses take one turn of the rotation; `predict` writes out, for
//! `netalias explain`, the answer `handler` would give, taking no turn. The commonest questions
//! are decided once (`answer::decide`, the header by `reply`), and the fast and full paths
//! only format that decision, as bytes and as hickory messages. Nothing here writes to
//! the registry.

mod answer;
mod batch;
pub mod exchange;
mod fast;
pub mod forward;
mod gateways;
mod handler;
pub mod host;
mod listener;
mod predict;
pub mod query_log;
mod rate_limit;
mod reply;
mod tcp;
mod turns;
mod udp;
mod wire;

pub use answer::{Answer, answer};
pub use fast::try_answer as fast_answer;
pub use gateways::follow_gateways;
pub use handler::{ForwardPolicy, Responder, Settings};
pub use listener::{BindError, Listeners, UdpOptions, bind};
pub use rate_limit::RateLimit;
pub use tcp::{Admission, TcpLimits, frame_codec, max_waiting as tcp_max_waiting};
pub use turns::{Sender, Turn, Turns};
