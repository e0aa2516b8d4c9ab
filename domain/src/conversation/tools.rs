//! The tools offered to the brain, and the validation of its proposals.
//!
//! The brain proposes; the domain disposes. A proposal is a tool name and a JSON input from
//! the model: untrusted. [`ToolCall::from_proposal`] accepts only the tools below with
//! exactly their fields (`deny_unknown_fields`), so a model that tries to name a user, a
//! wallet or an amount gets a tool error back instead of an action. None of these tools
//! moves funds or signs.

use crate::checkout::SpendingLimits;
use crate::money::UsdcAmount;
use crate::profile::{AddressLine, City, Email, PersonName, ProfileError, UsState, ZipCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A tool call the model proposed: `id` is the model's (echoed with the result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolProposal {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// An Amazon product id: 10 characters, upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Asin(String);

impl Asin {
    pub fn parse(input: &str) -> Result<Self, ToolError> {
        let text = input.trim().to_ascii_uppercase();
        if text.len() == 10
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(Self(text))
        } else {
            Err(ToolError::Invalid(format!(
                "{input:?} is not an ASIN (10 letters and digits)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Asin {
    type Error = ToolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Asin> for String {
    fn from(a: Asin) -> Self {
        a.0
    }
}

/// Profile fields the model may set; each is validated like the profile itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileEdit {
    pub name: Option<PersonName>,
    pub email: Option<Email>,
    pub line1: Option<AddressLine>,
    pub line2: Option<AddressLine>,
    pub city: Option<City>,
    pub state: Option<UsState>,
    pub postal_code: Option<ZipCode>,
}

/// A validated tool call. The user is never a field: it is the conversation's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolCall {
    SearchProducts {
        query: String,
    },
    ProductDetails {
        asin: Asin,
    },
    ReadProfile,
    EditProfile(ProfileEdit),
    /// Asks the user to confirm; the deletion itself needs their button or number.
    DeleteProfile,
    OrderHistory,
    OrderStatus {
        order_id: String,
    },
    CheckBalance,
    /// Asks the merchant for a quote; paying needs the user's confirmation of that quote.
    StartCheckout {
        asin: Asin,
    },
    /// The user's own spending limits (they only ever lower the configured ones).
    SetSpendingLimits(SpendingLimits),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ToolError {
    #[error("there is no tool named {0:?}")]
    Unknown(String),
    /// A profile change the user did not write themselves (for instance one suggested by
    /// a product description).
    #[error("the {0} was not in the user's own message; ask the user to type the change")]
    NotTheUsersWords(String),
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl From<ProfileError> for ToolError {
    fn from(e: ProfileError) -> Self {
        ToolError::Invalid(e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AsinInput {
    asin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderInput {
    order_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsInput {
    per_order: Option<Value>,
    per_day: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditInput {
    name: Option<String>,
    email: Option<String>,
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
}

fn input<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ToolError> {
    // A model may send `null` for a tool without arguments.
    let value = if value.is_null() {
        json!({})
    } else {
        value.clone()
    };
    serde_json::from_value(value).map_err(|e| ToolError::Invalid(e.to_string()))
}

fn parse_opt<T>(
    field: Option<String>,
    parse: fn(&str) -> Result<T, ProfileError>,
) -> Result<Option<T>, ToolError> {
    field
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse(&s))
        .transpose()
        .map_err(ToolError::from)
}

impl ToolCall {
    /// Validates a proposal from the model.
    pub fn from_proposal(proposal: &ToolProposal) -> Result<Self, ToolError> {
        let value = &proposal.input;
        match proposal.name.as_str() {
            "search_products" => {
                let Query { query } = input(value)?;
                let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
                if query.is_empty() || query.chars().count() > 200 {
                    return Err(ToolError::Invalid(
                        "query must be 1 to 200 characters".into(),
                    ));
                }
                Ok(ToolCall::SearchProducts { query })
            }
            "product_details" => Ok(ToolCall::ProductDetails {
                asin: Asin::parse(&input::<AsinInput>(value)?.asin)?,
            }),
            "read_profile" => input::<Nothing>(value).map(|_| ToolCall::ReadProfile),
            "edit_profile" => {
                let e: EditInput = input(value)?;
                let edit = ProfileEdit {
                    name: parse_opt(e.name, PersonName::parse)?,
                    email: parse_opt(e.email, Email::parse)?,
                    line1: parse_opt(e.line1, AddressLine::parse)?,
                    line2: parse_opt(e.line2, AddressLine::parse)?,
                    city: parse_opt(e.city, City::parse)?,
                    state: parse_opt(e.state, UsState::parse)?,
                    postal_code: parse_opt(e.postal_code, ZipCode::parse)?,
                };
                if edit == ProfileEdit::default() {
                    return Err(ToolError::Invalid(
                        "give at least one field to change".into(),
                    ));
                }
                Ok(ToolCall::EditProfile(edit))
            }
            "delete_profile" => input::<Nothing>(value).map(|_| ToolCall::DeleteProfile),
            "order_history" => input::<Nothing>(value).map(|_| ToolCall::OrderHistory),
            "order_status" => {
                let OrderInput { order_id } = input(value)?;
                crate::ports::store::Key::parse(&order_id)
                    .map_err(|e| ToolError::Invalid(e.to_string()))?;
                Ok(ToolCall::OrderStatus { order_id })
            }
            "check_balance" => input::<Nothing>(value).map(|_| ToolCall::CheckBalance),
            "start_checkout" => Ok(ToolCall::StartCheckout {
                asin: Asin::parse(&input::<AsinInput>(value)?.asin)?,
            }),
            "set_spending_limits" => {
                let LimitsInput { per_order, per_day } = input(value)?;
                let amount = |v: Option<Value>| -> Result<Option<UsdcAmount>, ToolError> {
                    v.map(|v| {
                        let text = match &v {
                            Value::String(s) => s.trim().to_owned(),
                            other => other.to_string(),
                        };
                        text.parse::<UsdcAmount>().map_err(|e| {
                            ToolError::Invalid(format!("{text:?} is not an amount of USDC: {e}"))
                        })
                    })
                    .transpose()
                };
                let limits = SpendingLimits {
                    per_order: amount(per_order)?,
                    per_day: amount(per_day)?,
                };
                if limits == SpendingLimits::default() {
                    return Err(ToolError::Invalid("give per_order, per_day or both".into()));
                }
                Ok(ToolCall::SetSpendingLimits(limits))
            }
            other => Err(ToolError::Unknown(other.to_owned())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::SearchProducts { .. } => "search_products",
            ToolCall::ProductDetails { .. } => "product_details",
            ToolCall::ReadProfile => "read_profile",
            ToolCall::EditProfile(_) => "edit_profile",
            ToolCall::DeleteProfile => "delete_profile",
            ToolCall::OrderHistory => "order_history",
            ToolCall::OrderStatus { .. } => "order_status",
            ToolCall::CheckBalance => "check_balance",
            ToolCall::StartCheckout { .. } => "start_checkout",
            ToolCall::SetSpendingLimits(_) => "set_spending_limits",
        }
    }
}

/// A tool as described to the model: name, description and JSON schema of its input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Every tool, for the brain adapters to send to the model. Built once: every model call
/// offers the same tools, and their schemas are JSON trees of many small allocations.
pub fn tool_specs() -> &'static [ToolSpec] {
    static SPECS: std::sync::LazyLock<Vec<ToolSpec>> = std::sync::LazyLock::new(build_tool_specs);
    &SPECS
}

fn build_tool_specs() -> Vec<ToolSpec> {
    let text = |d: &str| json!({"type": "string", "description": d});
    vec![
        ToolSpec {
            name: "search_products",
            description: "Search Amazon.com products. Returns up to 4 results.",
            input_schema: object(json!({"query": text("What to look for")}), &["query"]),
        },
        ToolSpec {
            name: "product_details",
            description: "Details of one product by ASIN.",
            input_schema: object(json!({"asin": text("10-character Amazon ASIN")}), &["asin"]),
        },
        ToolSpec {
            name: "read_profile",
            description: "The user's saved name, email and shipping address.",
            input_schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "edit_profile",
            description: "Save parts of the user's profile. US addresses only.",
            input_schema: object(
                json!({"name": text("Full name"), "email": text("Email"), "line1": text("Street address"), "line2": text("Apartment, suite"), "city": text("City"), "state": text("Two-letter US state"), "postal_code": text("ZIP or ZIP+4")}),
                &[],
            ),
        },
        ToolSpec {
            name: "delete_profile",
            description: "Ask the user to confirm deleting their profile.",
            input_schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "order_history",
            description: "The user's past orders.",
            input_schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "order_status",
            description: "Status and tracking of one of the user's orders.",
            input_schema: object(json!({"order_id": text("Order id")}), &["order_id"]),
        },
        ToolSpec {
            name: "check_balance",
            description: "USDC balance of the user's agent wallet on every network.",
            input_schema: object(json!({}), &[]),
        },
        ToolSpec {
            name: "set_spending_limits",
            description: "Lower the user's own per-order or per-day spending limit (USDC); only when the user asks, with the amount they give.",
            input_schema: object(
                json!({"per_order": text("Most USDC one order may cost"), "per_day": text("Most USDC spent in 24 hours")}),
                &[],
            ),
        },
        ToolSpec {
            name: "start_checkout",
            description: "Get a price quote for buying a product; the user must confirm before anything is paid.",
            input_schema: object(json!({"asin": text("10-character Amazon ASIN")}), &["asin"]),
        },
    ]
}
