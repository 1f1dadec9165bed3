//! switchboard: one mio server that speaks the wire protocols of five small realtime
//! WebSocket servers (pester, session, rooms, pair, signal).
//!
//! Three layers, one rule each:
//! - [`apps`] are pure state machines: `handle(event, now, &mut Outbox)`; no IO, no clock.
//! - [`router`] is data: connection ids, tables, owners of keys; no sockets, no formats.
//! - [`reactor`] is the only IO: one single-threaded mio loop per core, sockets in a slab,
//!   frames encoded once ([`frame`]) and flushed once per turn with `writev`.
//!
//! Around them: [`config`] (every limit with its default), [`http`] (the request head and
//! the upgrade), [`error`] (what a disconnect means on the wire), [`metrics`], [`server`]
//! (starting and stopping the reactors) and [`cli`].

pub mod apps;
pub mod cli;
pub mod config;
pub mod error;
pub mod frame;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod metrics;
pub mod reactor;
pub mod router;
pub mod server;
