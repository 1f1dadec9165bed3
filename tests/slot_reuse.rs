//! A connection lost while the end of a turn flushes is reaped in the next turn, after its
//! slab slot may already hold a newcomer. The app must get the lost connection's Closed,
//! never the newcomer's: the bench app drops a member on Closed, so a newcomer wrongly
//! closed stops receiving its room.

mod common;

use common::*;
use std::net::TcpStream;
use std::time::Duration;
use switchboard::config::AppKind;
use tungstenite::Message;

const ROUNDS: usize = 15;
const VICTIMS: usize = 40;

#[test]
fn a_close_found_while_flushing_never_closes_the_newcomer_in_its_slot() {
    let server = start(config(1, &[AppKind::Bench]));
    let addr = server.addr(AppKind::Bench).unwrap();
    let mut publisher = Client::connect(addr, "/?room=r");
    let payload = "x".repeat(1024);
    for round in 0..ROUNDS {
        // Members that never read, then vanish with a reset while frames are on their
        // way to them, so some writes fail in the flush rather than in a read.
        let victims: Vec<Client> = (0..VICTIMS)
            .map(|_| Client::connect(addr, "/?room=r"))
            .collect();
        for _ in 0..20 {
            publisher.send_text(&payload);
        }
        for v in victims {
            let sock: &TcpStream = v.ws.get_ref();
            socket2::SockRef::from(sock)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(v);
        }
        for _ in 0..20 {
            publisher.send_text(&payload);
        }
        // Newcomers, likely in the slots just freed; each is a member before its 101.
        let mut newcomers: Vec<Client> = (0..VICTIMS)
            .map(|_| Client::connect(addr, "/?room=r"))
            .collect();
        let marker = format!("marker {round}");
        publisher.send_text(&marker);
        for (i, n) in newcomers.iter_mut().enumerate() {
            // Payloads sent before it joined may still reach it; the marker must.
            for _ in 0..=40 {
                match n.recv() {
                    Message::Text(t) if t.as_str() == marker => break,
                    Message::Text(t) => assert_eq!(t.as_str(), payload, "round {round}"),
                    other => panic!("round {round}, newcomer {i}: {other:?}"),
                }
            }
        }
        for n in newcomers {
            n.close();
        }
    }
    server.stop(DEADLINE).unwrap();
}
