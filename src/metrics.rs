//! Counters per reactor and service, summed into Prometheus text at scrape time.
//!
//! Each reactor is the only writer of its own counters, so an update is a relaxed load
//! and store (no locked instruction, no shared cache line on the hot path); the scrape
//! reads them all with relaxed loads.

use crate::config::AppKind;
use crate::error::{Disconnect, Reject};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Services with counters: the apps (in `AppKind::ALL` order), then the admin port.
pub const SERVICES: usize = AppKind::ALL.len() + 1;
pub const ADMIN: usize = AppKind::ALL.len();

pub fn service_name(service: usize) -> &'static str {
    AppKind::ALL.get(service).map_or("admin", |a| a.name())
}

pub fn service_of(app: AppKind) -> usize {
    AppKind::ALL
        .iter()
        .position(|&a| a == app)
        .expect("AppKind::ALL lists every app")
}

/// Adds `n` to a counter that only the calling reactor writes.
#[inline]
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

#[derive(Debug, Default)]
pub struct ServiceStats {
    pub connections_active: AtomicI64,
    pub connections_total: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub disconnects: [AtomicU64; Disconnect::ALL.len()],
    pub rejects: [AtomicU64; Reject::ALL.len()],
}

impl ServiceStats {
    pub fn active(&self, delta: i64) {
        let a = &self.connections_active;
        a.store(a.load(Relaxed) + delta, Relaxed);
    }

    pub fn disconnect(&self, reason: Disconnect) {
        let i = Disconnect::ALL
            .iter()
            .position(|&d| d == reason)
            .expect("ALL lists every reason");
        bump(&self.disconnects[i], 1);
    }

    pub fn reject(&self, reason: Reject) {
        let i = Reject::ALL
            .iter()
            .position(|&r| r == reason)
            .expect("ALL lists every reason");
        bump(&self.rejects[i], 1);
    }
}

/// One reactor's counters.
#[derive(Debug, Default)]
pub struct ReactorStats {
    pub services: [ServiceStats; SERVICES],
}

type Labels = Vec<(&'static str, &'static str)>;

/// Renders all reactors' counters as Prometheus text (version 0.0.4).
pub fn render(reactors: &[ReactorStats]) -> String {
    let active = Family::<Labels, Gauge>::default();
    let total = Family::<Labels, Counter>::default();
    let msg_in = Family::<Labels, Counter>::default();
    let msg_out = Family::<Labels, Counter>::default();
    let bytes_in = Family::<Labels, Counter>::default();
    let bytes_out = Family::<Labels, Counter>::default();
    let disconnects = Family::<Labels, Counter>::default();
    let rejects = Family::<Labels, Counter>::default();
    for service in 0..SERVICES {
        let app = vec![("app", service_name(service))];
        let sum = |f: &dyn Fn(&ServiceStats) -> u64| -> u64 {
            reactors.iter().map(|r| f(&r.services[service])).sum()
        };
        let live: i64 = reactors
            .iter()
            .map(|r| r.services[service].connections_active.load(Relaxed))
            .sum();
        active.get_or_create(&app).set(live);
        total
            .get_or_create(&app)
            .inc_by(sum(&|s| s.connections_total.load(Relaxed)));
        msg_in
            .get_or_create(&app)
            .inc_by(sum(&|s| s.messages_in.load(Relaxed)));
        msg_out
            .get_or_create(&app)
            .inc_by(sum(&|s| s.messages_out.load(Relaxed)));
        bytes_in
            .get_or_create(&app)
            .inc_by(sum(&|s| s.bytes_in.load(Relaxed)));
        bytes_out
            .get_or_create(&app)
            .inc_by(sum(&|s| s.bytes_out.load(Relaxed)));
        for (i, d) in Disconnect::ALL.iter().enumerate() {
            let labels = vec![("app", service_name(service)), ("reason", d.label())];
            disconnects
                .get_or_create(&labels)
                .inc_by(sum(&|s| s.disconnects[i].load(Relaxed)));
        }
        for (i, r) in Reject::ALL.iter().enumerate() {
            let labels = vec![("app", service_name(service)), ("reason", r.label())];
            rejects
                .get_or_create(&labels)
                .inc_by(sum(&|s| s.rejects[i].load(Relaxed)));
        }
    }
    let mut registry = Registry::with_prefix("switchboard");
    registry.register("connections_active", "Open connections", active);
    registry.register("connections", "Connections accepted", total);
    registry.register("messages_in", "Messages received from clients", msg_in);
    registry.register("messages_out", "Messages queued to clients", msg_out);
    registry.register("bytes_in", "Bytes read from sockets", bytes_in);
    registry.register("bytes_out", "Bytes written to sockets", bytes_out);
    registry.register("disconnects", "Connections ended, by reason", disconnects);
    registry.register(
        "handshake_rejects",
        "Requests refused before the upgrade",
        rejects,
    );
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_names() {
        let r = vec![ReactorStats::default(), ReactorStats::default()];
        bump(&r[0].services[3].messages_in, 2);
        bump(&r[1].services[3].messages_in, 3);
        r[1].services[3].disconnect(Disconnect::SlowConsumer);
        let text = render(&r);
        assert!(
            text.contains("switchboard_messages_in_total{app=\"pair\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "switchboard_disconnects_total{app=\"pair\",reason=\"slow_consumer\"} 1\n"
            )
        );
        assert!(text.contains("switchboard_connections_active{app=\"admin\"} 0\n"));
        assert!(
            text.contains(
                "switchboard_handshake_rejects_total{app=\"pester\",reason=\"timeout\"} 0"
            )
        );
    }
}
