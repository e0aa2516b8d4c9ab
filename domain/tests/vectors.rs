//! Cross-checks against an independent implementation: vectors made by viem and the
//! official x402 SDKs (`fixtures/vectors/generator`). Every hash, signature, address and
//! header must be reproduced byte for byte.

// Tests read their fixtures from disk; the library itself never does I/O.
#![allow(clippy::disallowed_methods)]

use alloy_primitives::{Address, B256};
use serde_json::Value;
use std::path::PathBuf;
use worldstore_domain::eip3009::{
    Authorization, Eip712Domain, LocalSigner, Signature, SignatureError,
};
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};
use worldstore_domain::x402::header;
use worldstore_domain::x402::{
    ChainFacts, NonceState, PaymentPayload, PaymentRequirements, SettleResponse, Simulation,
    VerifyPolicy, verify,
};

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn cases(file: &Value) -> &Vec<Value> {
    file["cases"].as_array().unwrap()
}

fn b256(value: &Value) -> B256 {
    value.as_str().unwrap().parse().unwrap()
}

fn address(value: &Value) -> Address {
    value.as_str().unwrap().parse().unwrap()
}

fn hex_bytes(value: &Value) -> Vec<u8> {
    alloy_primitives::hex::decode(value.as_str().unwrap()).unwrap()
}

#[test]
fn eip712_hashes_signatures_and_recovery_match_viem() {
    let file = load("eip3009.json");
    assert!(cases(&file).len() >= 12);
    for case in cases(&file) {
        let name = case["name"].as_str().unwrap();
        let domain: Eip712Domain = serde_json::from_value(case["domain"].clone()).unwrap();
        let authorization: Authorization = serde_json::from_value(case["message"].clone()).unwrap();
        assert_eq!(
            domain.separator(),
            b256(&case["domainSeparator"]),
            "{name}: domain separator"
        );
        assert_eq!(
            authorization.struct_hash(),
            b256(&case["structHash"]),
            "{name}: struct hash"
        );
        let hash = authorization.signing_hash(&domain);
        assert_eq!(hash, b256(&case["signingHash"]), "{name}: signing hash");

        let signer = LocalSigner::from_hex(case["privateKey"].as_str().unwrap()).unwrap();
        assert_eq!(
            signer.address(),
            address(&case["signer"]),
            "{name}: signer address"
        );
        let signature = signer.sign_hash(hash);
        assert_eq!(
            signature.to_bytes().as_slice(),
            hex_bytes(&case["signature"]).as_slice(),
            "{name}: signature bytes"
        );
        assert_eq!(
            signature.to_compact_bytes().as_slice(),
            hex_bytes(&case["compactSignature"]).as_slice(),
            "{name}: EIP-2098 bytes"
        );

        let parsed = Signature::parse_hex(case["signature"].as_str().unwrap()).unwrap();
        let compact = Signature::parse_hex(case["compactSignature"].as_str().unwrap()).unwrap();
        assert_eq!(
            parsed, compact,
            "{name}: both encodings parse to one signature"
        );
        assert_eq!(
            parsed.recover_address(hash),
            Ok(address(&case["recovered"])),
            "{name}: recovery"
        );
        assert_eq!(
            Signature::parse_hex(case["highSSignature"].as_str().unwrap()),
            Err(SignatureError::HighS),
            "{name}: the malleable twin is refused"
        );
        // The authorization re-serializes to viem's message exactly.
        assert_eq!(
            serde_json::to_value(&authorization).unwrap(),
            case["message"],
            "{name}"
        );
        // The table agrees with viem on every network's domain.
        if let Some(network) = case["network"].as_str() {
            let network = Network::parse(network).unwrap();
            if domain.verifying_contract == network.usdc().address {
                assert_eq!(
                    network.usdc().eip712_domain(),
                    domain,
                    "{name}: network table"
                );
            }
        }
    }
}

#[test]
fn wallet_derivation_matches_the_independent_implementation() {
    let file = load("wallets.json");
    let mut schemes = std::collections::HashSet::new();
    for case in cases(&file) {
        let scheme: DerivationScheme = case["scheme"].as_str().unwrap().parse().unwrap();
        schemes.insert(format!("{scheme:?}"));
        let master = MasterSecret::new(case["masterSecret"].as_str().unwrap().to_owned());
        let inbox = case["inboxId"].as_str().unwrap();
        let wallet = derive_wallet(&master, inbox, scheme).unwrap();
        assert_eq!(
            wallet.secret_bytes().as_slice(),
            hex_bytes(&case["privateKey"]).as_slice(),
            "{scheme:?} {inbox}: key"
        );
        assert_eq!(
            wallet.address(),
            address(&case["address"]),
            "{scheme:?} {inbox}: address"
        );
    }
    assert_eq!(schemes.len(), 2, "both schemes are covered");
}

fn base_sepolia_policy() -> VerifyPolicy {
    VerifyPolicy::new(vec![Network::BaseSepolia.usdc()])
}

fn good_facts() -> ChainFacts {
    ChainFacts {
        token_has_code: true,
        payer_balance: alloy_primitives::U256::from(10_000_000u64),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    }
}

#[test]
fn sdk_headers_decode_and_reencode_byte_for_byte() {
    let file = load("x402_headers.json");
    let mut seen = std::collections::HashSet::new();
    for case in cases(&file) {
        let name = case["name"].as_str().unwrap();
        let kind = case["header"].as_str().unwrap();
        let value = case["value"].as_str().unwrap();
        seen.insert(kind.to_owned());
        let reencoded = match kind {
            "PAYMENT-SIGNATURE" => header::decode_payment_signature(value)
                .unwrap()
                .header_value(),
            "X-PAYMENT" => header::decode_x_payment(value).unwrap().header_value(),
            "PAYMENT-REQUIRED" => header::encode(&header::decode_payment_required(value).unwrap()),
            "PAYMENT-RESPONSE" => {
                let response = header::decode_payment_response(value).unwrap();
                // The v2 resource server's order, or a facilitator's own order.
                if name.contains("facilitator object order") {
                    header::encode(&response)
                } else {
                    header::encode_payment_response(&response)
                }
            }
            "X-PAYMENT-RESPONSE" => {
                header::encode_x_payment_response(&header::decode_payment_response(value).unwrap())
            }
            other => panic!("{name}: unknown header kind {other}"),
        };
        assert_eq!(reencoded, value, "{name}: re-encoding differs");
        // The decoded message equals the SDK's object, field for field.
        let decoded = header::decode_bytes(value).unwrap();
        let decoded: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(decoded, case["json"], "{name}");
    }
    for kind in [
        "PAYMENT-SIGNATURE",
        "X-PAYMENT",
        "PAYMENT-REQUIRED",
        "PAYMENT-RESPONSE",
        "X-PAYMENT-RESPONSE",
    ] {
        assert!(seen.contains(kind), "no vector for {kind}");
    }
}

#[test]
fn payments_signed_by_the_sdks_pass_our_verification() {
    let file = load("x402_headers.json");
    let mut verified = 0;
    for case in cases(&file) {
        let kind = case["header"].as_str().unwrap();
        if kind != "PAYMENT-SIGNATURE" && kind != "X-PAYMENT" {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let payment: PaymentPayload =
            header::decode_x_payment(case["value"].as_str().unwrap()).unwrap();
        let requirements = match payment {
            PaymentPayload::V1(_) => PaymentRequirements::V1(
                serde_json::from_value(case["requirements"].clone()).unwrap(),
            ),
            PaymentPayload::V2(_) => PaymentRequirements::V2(
                serde_json::from_value(case["requirements"].clone()).unwrap(),
            ),
        };
        let now = case["now"].as_u64().unwrap();
        let result = verify(
            &payment,
            &requirements,
            &good_facts(),
            &base_sepolia_policy(),
            now,
        )
        .unwrap_or_else(|refusal| panic!("{name}: {refusal}"));
        assert_eq!(result.payer, address(&case["signer"]), "{name}");
        assert_eq!(result.signing_hash, b256(&case["signingHash"]), "{name}");
        let domain: Eip712Domain = serde_json::from_value(case["domain"].clone()).unwrap();
        let token = UsdcDeployment {
            network: Network::from_chain_id(domain.chain_id).unwrap(),
            address: domain.verifying_contract,
            eip712_name: domain.name.clone(),
            eip712_version: domain.version.clone(),
        };
        assert_eq!(result.token, token, "{name}");
        verified += 1;
    }
    assert!(
        verified >= 3,
        "v1 and v2 payments from the SDKs are covered"
    );
}

#[test]
fn settle_responses_from_the_sdks_decode_to_our_types() {
    let file = load("x402_headers.json");
    for case in cases(&file) {
        let kind = case["header"].as_str().unwrap();
        if !kind.ends_with("RESPONSE") {
            continue;
        }
        let response: SettleResponse =
            header::decode_payment_response(case["value"].as_str().unwrap()).unwrap();
        assert_eq!(response.success, case["json"]["success"].as_bool().unwrap());
        assert_eq!(
            response.transaction,
            case["json"]["transaction"].as_str().unwrap()
        );
        if let Some(reason) = case["json"]["errorReason"].as_str() {
            assert_eq!(response.error_reason.unwrap().as_str(), reason);
        }
    }
}

#[test]
fn our_402_answer_is_byte_identical_to_the_sdk_server() {
    use worldstore_domain::x402::{PaymentOffer, PaymentRequiredAnswer};
    let file = load("x402_headers.json");
    let case = cases(&file)
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .starts_with("v2 PAYMENT-REQUIRED one accept")
        })
        .expect("vector present");
    let json = &case["json"];
    let accept = &json["accepts"][0];
    let offer = PaymentOffer {
        resource: json["resource"]["url"].as_str().unwrap().into(),
        description: json["resource"]["description"].as_str().unwrap().into(),
        mime_type: json["resource"]["mimeType"].as_str().unwrap().into(),
        token: Network::BaseSepolia.usdc(),
        amount: worldstore_domain::UsdcAmount::parse_atomic(accept["amount"].as_str().unwrap())
            .unwrap(),
        pay_to: address(&accept["payTo"]),
        max_timeout_seconds: accept["maxTimeoutSeconds"].as_u64().unwrap(),
        extra: Default::default(),
    };
    let answer = PaymentRequiredAnswer::new(json["error"].as_str().unwrap(), &[offer]);
    assert_eq!(answer.header_value(), case["value"].as_str().unwrap());
}
