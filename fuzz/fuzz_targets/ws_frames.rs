//! The WebSocket frame reader as the reactor runs it, over arbitrarily chunked input: no panic, no message over the limit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::ws_frames(data));
