//! `X-PAYMENT` and `X-PAYMENT-RESPONSE` decoding: never panics, and whatever decodes
//! re-encodes to a header that decodes to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use worldstore_domain::x402::header;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    if let Ok(payment) = header::decode_x_payment(value) {
        let again = header::decode_x_payment(&payment.header_value()).expect("re-encoded payment decodes");
        assert_eq!(again, payment);
    }
    if let Ok(response) = header::decode_payment_response(value) {
        let again = header::decode_payment_response(&header::encode_x_payment_response(&response))
            .expect("re-encoded response decodes");
        assert_eq!(again, response);
    }
});
