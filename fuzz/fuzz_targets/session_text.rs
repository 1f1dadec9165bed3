//! session's chat-line path (text and lossy binary) into a snapshot: no panic, well-formed frames.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::session_text(data));
