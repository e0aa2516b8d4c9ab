//! Building a 402 answer: one offer, written both ways so v1 and v2 clients can pay.
//!
//! The order server answers 402 with the v1 JSON body AND the v2 `PAYMENT-REQUIRED` header
//! (x402.md, "Versions on the wire"). Both are built from one [`PaymentOffer`], which is
//! stored with the order, so the payment is later checked against exactly what was offered.

use super::header;
use super::messages::{
    Extra, PaymentRequiredV1, PaymentRequiredV2, PaymentRequirementsV1, PaymentRequirementsV2,
    ResourceInfo, SCHEME_EXACT, Version,
};
use crate::money::UsdcAmount;
use crate::network::UsdcDeployment;
use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a resource costs and where to pay, independent of the x402 version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOffer {
    pub resource: String,
    pub description: String,
    pub mime_type: String,
    pub token: UsdcDeployment,
    pub amount: UsdcAmount,
    #[serde(with = "crate::eip3009::checksum")]
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    /// Extra fields for `extra` besides the token's EIP-712 `name` and `version`.
    #[serde(default)]
    pub extra: Extra,
}

impl PaymentOffer {
    fn extra(&self) -> Extra {
        let mut extra = Extra::new();
        extra.insert("name".into(), Value::String(self.token.eip712_name.clone()));
        extra.insert(
            "version".into(),
            Value::String(self.token.eip712_version.clone()),
        );
        for (key, value) in &self.extra {
            extra.entry(key.clone()).or_insert_with(|| value.clone());
        }
        extra
    }

    pub fn requirements_v1(&self) -> PaymentRequirementsV1 {
        PaymentRequirementsV1 {
            scheme: SCHEME_EXACT.into(),
            network: self.token.network.v1_name().into(),
            max_amount_required: self.amount.to_u256(),
            resource: self.resource.clone(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            output_schema: None,
            pay_to: self.pay_to,
            max_timeout_seconds: self.max_timeout_seconds,
            asset: self.token.address,
            extra: Some(self.extra()),
        }
    }

    pub fn requirements_v2(&self) -> PaymentRequirementsV2 {
        PaymentRequirementsV2 {
            scheme: SCHEME_EXACT.into(),
            network: self.token.network.caip2().into(),
            amount: self.amount.to_u256(),
            asset: self.token.address,
            pay_to: self.pay_to,
            max_timeout_seconds: self.max_timeout_seconds,
            extra: self.extra(),
            wire_case: Default::default(),
        }
    }

    pub fn resource_info(&self) -> ResourceInfo {
        ResourceInfo {
            url: self.resource.clone(),
            description: Some(self.description.clone()),
            mime_type: Some(self.mime_type.clone()),
        }
    }
}

/// A 402 answer in both versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequiredAnswer {
    /// The JSON body (v1).
    pub body: PaymentRequiredV1,
    /// The v2 message; its encoded form goes in `PAYMENT-REQUIRED`.
    pub v2: PaymentRequiredV2,
}

impl PaymentRequiredAnswer {
    /// Builds the answer for `offers` (several = the client may choose, e.g. one per network).
    pub fn new(error: &str, offers: &[PaymentOffer]) -> Self {
        let resource = offers.first().map_or_else(
            || ResourceInfo {
                url: String::new(),
                description: None,
                mime_type: None,
            },
            PaymentOffer::resource_info,
        );
        Self {
            body: PaymentRequiredV1 {
                x402_version: Version,
                error: error.to_owned(),
                accepts: offers.iter().map(PaymentOffer::requirements_v1).collect(),
            },
            v2: PaymentRequiredV2 {
                x402_version: Version,
                error: Some(error.to_owned()),
                resource,
                accepts: offers.iter().map(PaymentOffer::requirements_v2).collect(),
                extensions: None,
            },
        }
    }

    /// The value of the `PAYMENT-REQUIRED` header.
    pub fn header_value(&self) -> String {
        header::encode(&self.v2)
    }
}
