//! `PAYMENT-SIGNATURE`, `PAYMENT-REQUIRED` and `PAYMENT-RESPONSE` decoding: never panics,
//! and round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use worldstore_domain::x402::header;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    if let Ok(payment) = header::decode_payment_signature(value) {
        let again = header::decode_payment_signature(&payment.header_value()).expect("re-encoded payment decodes");
        assert_eq!(again, payment);
    }
    if let Ok(required) = header::decode_payment_required(value) {
        let again = header::decode_payment_required(&header::encode(&required)).expect("re-encoded 402 decodes");
        assert_eq!(again, required);
    }
    if let Ok(response) = header::decode_payment_response(value) {
        let again = header::decode_payment_response(&header::encode_payment_response(&response))
            .expect("re-encoded response decodes");
        assert_eq!(again, response);
    }
    let _ = header::decode_any(value);
});
