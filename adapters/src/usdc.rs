//! The USDC contract surface both chain adapters use (FiatToken v2.2 and the sandbox token
//! share it), the `Transfer` log check and revert-reason decoding.

use alloy::sol;
use alloy::sol_types::SolEvent;
use alloy_primitives::{Address, Bytes, Log, U256};
use worldstore_domain::ports::chain::UsdcTransfer;
use worldstore_domain::x402::SignedPayment;

sol! {
    /// The subset of FiatToken v2.2 used here. Overloads get suffixes in ABI order.
    #[allow(missing_docs)]
    interface IUsdc {
        function name() external view returns (string);
        function version() external view returns (string);
        function balanceOf(address account) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function mint(address to, uint256 amount) external returns (bool);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }
}

/// `transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s)`
/// call data for a payment (the (v, r, s) overload exists in every FiatToken v2.x).
pub fn transfer_with_authorization_call(payment: &SignedPayment) -> Bytes {
    use alloy::sol_types::SolCall;
    let a = &payment.authorization;
    let s = &payment.signature;
    IUsdc::transferWithAuthorizationCall {
        from: a.from,
        to: a.to,
        value: a.value,
        validAfter: a.valid_after,
        validBefore: a.valid_before,
        nonce: a.nonce.as_b256(),
        v: s.v(),
        r: s.r().into(),
        s: s.s().into(),
    }
    .abi_encode()
    .into()
}

/// `transfer(to, value)` call data.
pub fn transfer_call(to: Address, value: U256) -> Bytes {
    use alloy::sol_types::SolCall;
    IUsdc::transferCall { to, value }.abi_encode().into()
}

/// Whether `logs` hold `Transfer(from, to, value)` emitted by the token.
pub fn has_transfer_log<'a>(
    logs: impl IntoIterator<Item = &'a Log>,
    expected: &UsdcTransfer,
) -> bool {
    logs.into_iter().any(|log| {
        log.address == expected.token
            && IUsdc::Transfer::decode_log(log).is_ok_and(|event| {
                event.from == expected.from
                    && event.to == expected.to
                    && event.value == expected.value
            })
    })
}

/// The reason string of revert data (`Error(string)`, a panic code or a custom error),
/// or a hex dump when it cannot be decoded.
pub fn revert_reason(data: &[u8]) -> String {
    alloy::sol_types::decode_revert_reason(data).unwrap_or_else(|| {
        format!(
            "undecodable revert data 0x{}",
            alloy_primitives::hex::encode(data)
        )
    })
}
