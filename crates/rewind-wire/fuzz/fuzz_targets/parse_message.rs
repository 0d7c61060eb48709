//! Feeds arbitrary bytes to the message parser: it must never panic, and
//! whatever it accepts must re-encode to a message it accepts again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, message)) = rewind_wire::parse_message(data) {
        if let Ok(bytes) = message.encode(header.request_id, header.response_to) {
            let (_, again) = rewind_wire::parse_message(&bytes).expect("re-encoded message parses");
            // Bytes, not values: a NaN double is unequal to itself.
            let bytes_again = again.encode(header.request_id, header.response_to).expect("encodes again");
            assert_eq!(bytes_again, bytes);
        }
    }
});
