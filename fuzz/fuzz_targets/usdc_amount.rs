//! Money parsing: never panics; whatever parses displays and parses back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use worldstore_domain::UsdcAmount;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(amount) = UsdcAmount::parse_decimal(text) {
        assert_eq!(UsdcAmount::parse_decimal(&amount.to_string()), Ok(amount));
    }
    let _ = UsdcAmount::parse_atomic(text);
});
