//! The server protocol from the first byte: handshake (rml_rtmp) then chunk stream, with the
//! input split at two offsets taken from the first bytes. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::rtmp::protocol::ServerProtocol;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = usize::from(data[0]) * 16 % data.len().max(1);
    let body = &data[1..];
    let split = split.min(body.len());
    let mut protocol = ServerProtocol::new();
    for part in [&body[..split], &body[split..]] {
        if protocol.receive(part).is_err() {
            return;
        }
        loop {
            match protocol.poll_event() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        let _ = protocol.take_output();
    }
});
