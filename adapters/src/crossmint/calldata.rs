//! Reads the call (`to`, `value`, `data`) out of the unsigned transaction Crossmint
//! prepares (`payment.preparation.serializedTransaction`), for wallets that take a call
//! rather than a serialized transaction (MPC wallets, and smart wallets' `{to, value,
//! data}` form).
//!
//! Accepted: EIP-1559 (`0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas,
//! gas, to, value, data, accessList, ...])`), EIP-2930 (`0x01 || rlp([chainId, nonce,
//! gasPrice, gas, to, value, data, ...])`) and legacy (`rlp([nonce, gasPrice, gas, to,
//! value, data, ...])`). A contract creation (empty `to`) is refused: an order is never
//! paid by deploying code.

use alloy_primitives::{Address, U256, hex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub to: Address,
    pub value: U256,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the prepared transaction is not a readable call: {0}")]
pub struct CallError(&'static str);

enum Item<'a> {
    Bytes(&'a [u8]),
    List(&'a [u8]),
}

/// One RLP item at the start of `input`, and what follows it.
fn item(input: &[u8]) -> Result<(Item<'_>, &[u8]), CallError> {
    let err = CallError("bad RLP");
    let (&first, rest) = input.split_first().ok_or(err.clone())?;
    let long = |len_of_len: usize, rest: &[u8]| -> Result<(usize, usize), CallError> {
        let bytes = rest.get(..len_of_len).ok_or(err.clone())?;
        let len = bytes
            .iter()
            .try_fold(0usize, |acc, &b| {
                acc.checked_mul(256).map(|a| a + usize::from(b))
            })
            .ok_or(err.clone())?;
        Ok((len_of_len, len))
    };
    let (header, len, is_list) = match first {
        0x00..=0x7f => return Ok((Item::Bytes(&input[..1]), rest)),
        0x80..=0xb7 => (0, usize::from(first - 0x80), false),
        0xb8..=0xbf => {
            let (h, l) = long(usize::from(first - 0xb7), rest)?;
            (h, l, false)
        }
        0xc0..=0xf7 => (0, usize::from(first - 0xc0), true),
        0xf8..=0xff => {
            let (h, l) = long(usize::from(first - 0xf7), rest)?;
            (h, l, true)
        }
    };
    let end = header.checked_add(len).ok_or(err.clone())?;
    let body = rest.get(header..end).ok_or(err)?;
    let after = &rest[end..];
    Ok((
        if is_list {
            Item::List(body)
        } else {
            Item::Bytes(body)
        },
        after,
    ))
}

fn fields(list: &[u8]) -> Result<Vec<Item<'_>>, CallError> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (it, after) = item(rest)?;
        out.push(it);
        rest = after;
    }
    Ok(out)
}

fn bytes<'a>(items: &[Item<'a>], index: usize) -> Result<&'a [u8], CallError> {
    match items.get(index) {
        Some(Item::Bytes(b)) => Ok(b),
        _ => Err(CallError("missing field")),
    }
}

pub fn decode(serialized: &str) -> Result<Call, CallError> {
    let raw = hex::decode(serialized.trim()).map_err(|_| CallError("not hex"))?;
    let (to_index, payload) = match raw.first() {
        Some(0x02) => (5, &raw[1..]),
        Some(0x01) => (4, &raw[1..]),
        Some(b) if *b >= 0xc0 => (3, &raw[..]),
        _ => return Err(CallError("unknown transaction type")),
    };
    let (list, trailing) = item(payload)?;
    let Item::List(list) = list else {
        return Err(CallError("not a list"));
    };
    if !trailing.is_empty() {
        return Err(CallError("trailing bytes"));
    }
    let items = fields(list)?;
    let to = bytes(&items, to_index)?;
    if to.len() != 20 {
        return Err(CallError("no recipient (contract creation)"));
    }
    let value = bytes(&items, to_index + 1)?;
    if value.len() > 32 {
        return Err(CallError("value too large"));
    }
    Ok(Call {
        to: Address::from_slice(to),
        value: U256::from_be_slice(value),
        data: bytes(&items, to_index + 2)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // EIP-1559 on chain 84532 paying USDC: transfer(0x...beef, 12.34 USDC). The same transaction is in
    // fixtures/crossmint/order_awaiting_payment_bare.json.
    const TX: &str = "0x02f86c83014a3480018405f5e100830186a094036cbd53842c5426634e7929541ec2318f3dcf7e80b844a9059cbb000000000000000000000000000000000000000000000000000000000000beef0000000000000000000000000000000000000000000000000000000000bc4b20c0";

    #[test]
    fn an_eip1559_payment_is_read_as_a_call() {
        let call = decode(TX).unwrap();
        assert_eq!(
            call.to.to_checksum(None),
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
        );
        assert_eq!(call.value, U256::ZERO);
        assert_eq!(&call.data[..4], &[0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(call.data.len(), 68);
    }

    #[test]
    fn junk_is_refused_not_panicked_on() {
        for junk in ["", "0x", "0x02", "0x02c0", "zz", "0x02f8ff00", "0x03c0"] {
            assert!(decode(junk).is_err(), "{junk}");
        }
        // Contract creation: empty `to`.
        assert!(decode("0x02cf83014a3480010283038080808080c0").is_err());
    }
}
