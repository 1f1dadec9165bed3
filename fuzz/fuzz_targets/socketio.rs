//! The Socket.IO packet decoder: no panic on any text packet.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::socketio(data));
