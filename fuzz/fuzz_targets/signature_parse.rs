//! Signature parsing: never panics; an accepted signature is canonical (low-s), re-encodes
//! to the same signature, and recovery never panics.
#![no_main]
use alloy_primitives::B256;
use libfuzzer_sys::fuzz_target;
use worldstore_domain::eip3009::Signature;

fuzz_target!(|data: &[u8]| {
    if let Ok(signature) = Signature::from_bytes(data) {
        assert_eq!(Signature::from_bytes(&signature.to_bytes()), Ok(signature));
        assert_eq!(Signature::from_bytes(&signature.to_compact_bytes()), Ok(signature));
        let _ = signature.recover_address(B256::repeat_byte(0x5a));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(signature) = Signature::parse_hex(text) {
            assert_eq!(Signature::parse_hex(&signature.to_hex()), Ok(signature));
        }
    }
});
