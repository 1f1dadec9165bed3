//! The pre-upgrade request parser, the handshake check and every app's route: no panic on any head, bad upgrades refused.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::http_request(data));
