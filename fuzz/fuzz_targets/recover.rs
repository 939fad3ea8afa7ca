//! Recovery fed truncated or corrupted recordings never panics, and is idempotent: finalising
//! its own output again changes nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::mux::finalize::finalize;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut file = Cursor::new(data.to_vec());
    if finalize(&mut file).is_ok() {
        let once = file.get_ref().clone();
        let again = finalize(&mut file);
        assert!(again.is_ok(), "finalised output must finalise again");
        assert_eq!(file.get_ref(), &once, "finalising is idempotent");
    }
});
