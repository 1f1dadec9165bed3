//! ConnTable against a model, owner_of in range, bench room fan-out reaching exactly the other members.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::router_ops(data));
