//! A user's shopping profile: validated name, email and US shipping address, and the
//! completeness rule of the original system (seed-system.md section 4): a profile can be
//! used to order when name, email, line 1, city, state and postal code are set.
//!
//! Every value is personal data and lives inside [`Pii`], so it cannot reach a log.

use crate::pii::Pii;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("name must be 1 to 100 characters without control characters")]
    Name,
    #[error("email must look like name@example.com (at most 254 characters)")]
    Email,
    #[error("{field} must be 1 to {max} characters without control characters")]
    Line { field: &'static str, max: usize },
    #[error("state must be a two-letter US state or territory code such as WA")]
    State,
    #[error("ZIP code must be 5 digits or ZIP+4 (12345 or 12345-6789)")]
    Zip,
    #[error("only US addresses can be shipped to (country must be US)")]
    Country,
}

fn clean_text(input: &str, max: usize) -> Option<String> {
    let text = input.split_whitespace().collect::<Vec<_>>().join(" ");
    let ok = !text.is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control);
    ok.then_some(text)
}

/// A personal string value: parsed by `$parse`, held in [`Pii`], serialized as the string.
macro_rules! pii_value {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Pii<String>);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, ProfileError> {
                let parse: fn(&str) -> Result<String, ProfileError> = $parse;
                parse(input).map(|t| Self(Pii::new(t)))
            }
            pub fn expose(&self) -> &str {
                self.0.expose()
            }
        }

        impl TryFrom<String> for $name {
            type Error = ProfileError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.into_inner()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }
    };
}

pii_value!(
    /// A person's name as it goes on a parcel.
    PersonName,
    |input| clean_text(input, 100).ok_or(ProfileError::Name)
);
pii_value!(
    /// A street line.
    AddressLine,
    |input| clean_text(input, 100).ok_or(ProfileError::Line { field: "address line", max: 100 })
);
pii_value!(
    /// A city name.
    City,
    |input| clean_text(input, 60).ok_or(ProfileError::Line { field: "city", max: 60 })
);

pii_value!(
    /// An email address: one `@`, a non-empty local part, a dotted domain, no spaces.
    /// Deliverability is the mail system's business; this refuses what is clearly not an email.
    Email,
    parse_email
);

fn parse_email(input: &str) -> Result<String, ProfileError> {
    let text = input.trim();
    let (local, domain) = text.split_once('@').ok_or(ProfileError::Email)?;
    let labels_ok = domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    let ok = text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@')
        && labels_ok;
    ok.then(|| text.to_owned()).ok_or(ProfileError::Email)
}

/// USPS codes of the states, DC, the territories and the military "states".
const US_STATE_CODES: [&str; 62] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP", "UM", "FM", "MH", "AA", "AE", "AP",
];

/// A two-letter US state or territory code, stored upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UsState([u8; 2]);

impl UsState {
    pub fn parse(input: &str) -> Result<Self, ProfileError> {
        let code = input.trim().to_ascii_uppercase();
        if !US_STATE_CODES.contains(&code.as_str()) {
            return Err(ProfileError::State);
        }
        let b = code.as_bytes();
        Ok(Self([b[0], b[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Both bytes come from the ASCII table above.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for UsState {
    type Error = ProfileError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UsState> for String {
    fn from(value: UsState) -> Self {
        value.as_str().to_owned()
    }
}

pii_value!(
    /// A US ZIP code: `12345` or ZIP+4 `12345-6789`.
    ZipCode,
    parse_zip
);

fn parse_zip(input: &str) -> Result<String, ProfileError> {
    let text = input.trim();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match text.split_once('-') {
        Some((zip, plus4)) => digits(zip, 5) && digits(plus4, 4),
        None => digits(text, 5),
    };
    ok.then(|| text.to_owned()).ok_or(ProfileError::Zip)
}

/// Only `US` is served (Amazon.com through Crossmint ships to US addresses only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country;

impl TryFrom<String> for Country {
    type Error = ProfileError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.trim().to_ascii_uppercase().as_str() {
            "US" | "USA" | "UNITED STATES" => Ok(Country),
            _ => Err(ProfileError::Country),
        }
    }
}

impl From<Country> for String {
    fn from(_: Country) -> Self {
        "US".to_owned()
    }
}

/// A complete US shipping address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    pub line1: AddressLine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<AddressLine>,
    pub city: City,
    pub state: UsState,
    pub postal_code: ZipCode,
    #[serde(default)]
    pub country: Country,
}

/// A user's profile as it is being filled in: every field may still be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: Option<PersonName>,
    pub email: Option<Email>,
    pub line1: Option<AddressLine>,
    pub line2: Option<AddressLine>,
    pub city: Option<City>,
    pub state: Option<UsState>,
    pub postal_code: Option<ZipCode>,
}

/// A profile field, for telling the user what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    Name,
    Email,
    Line1,
    City,
    State,
    PostalCode,
}

impl ProfileField {
    pub fn label(self) -> &'static str {
        match self {
            ProfileField::Name => "name",
            ProfileField::Email => "email",
            ProfileField::Line1 => "street address",
            ProfileField::City => "city",
            ProfileField::State => "state",
            ProfileField::PostalCode => "ZIP code",
        }
    }
}

/// What an order needs from a complete profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: PersonName,
    pub email: Email,
    pub address: ShippingAddress,
}

impl Profile {
    /// The required fields not yet set, in the order a person would fill them in.
    pub fn missing_fields(&self) -> Vec<ProfileField> {
        let checks = [
            (self.name.is_none(), ProfileField::Name),
            (self.email.is_none(), ProfileField::Email),
            (self.line1.is_none(), ProfileField::Line1),
            (self.city.is_none(), ProfileField::City),
            (self.state.is_none(), ProfileField::State),
            (self.postal_code.is_none(), ProfileField::PostalCode),
        ];
        checks
            .into_iter()
            .filter(|(missing, _)| *missing)
            .map(|(_, f)| f)
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.missing_fields().is_empty()
    }

    /// The recipient for an order, when the profile is complete.
    pub fn recipient(&self) -> Option<Recipient> {
        Some(Recipient {
            name: self.name.clone()?,
            email: self.email.clone()?,
            address: ShippingAddress {
                line1: self.line1.clone()?,
                line2: self.line2.clone(),
                city: self.city.clone()?,
                state: self.state?,
                postal_code: self.postal_code.clone()?,
                country: Country,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> Profile {
        Profile {
            name: Some(PersonName::parse("Pat Lee").unwrap()),
            email: Some(Email::parse("pat@example.com").unwrap()),
            line1: Some(AddressLine::parse("1 Main St").unwrap()),
            line2: None,
            city: Some(City::parse("Seattle").unwrap()),
            state: Some(UsState::parse("wa").unwrap()),
            postal_code: Some(ZipCode::parse("98101").unwrap()),
        }
    }

    #[test]
    fn a_profile_is_complete_with_name_email_line1_city_state_and_zip() {
        let profile = complete();
        assert!(profile.is_complete());
        let recipient = profile.recipient().unwrap();
        assert_eq!(recipient.address.state.as_str(), "WA");
        let mut partial = complete();
        partial.city = None;
        partial.email = None;
        assert_eq!(
            partial.missing_fields(),
            vec![ProfileField::Email, ProfileField::City]
        );
        assert!(partial.recipient().is_none());
        assert_eq!(Profile::default().missing_fields().len(), 6);
    }

    #[test]
    fn line2_is_optional() {
        let mut profile = complete();
        profile.line2 = None;
        assert!(profile.is_complete());
    }

    #[test]
    fn zip_codes_are_five_digits_or_zip_plus_four() {
        for ok in ["98101", "98101-1234", " 02134 "] {
            assert!(ZipCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "9810",
            "981011",
            "98101-123",
            "98101 1234",
            "ABCDE",
            "98101-12345",
            "",
        ] {
            assert_eq!(ZipCode::parse(bad), Err(ProfileError::Zip), "{bad}");
        }
    }

    #[test]
    fn states_are_known_us_codes() {
        assert_eq!(UsState::parse("ny").unwrap().as_str(), "NY");
        assert_eq!(UsState::parse("DC").unwrap().as_str(), "DC");
        for bad in ["XX", "Washington", "", "W", "ON"] {
            assert_eq!(UsState::parse(bad), Err(ProfileError::State), "{bad}");
        }
    }

    #[test]
    fn emails_must_look_like_emails() {
        assert!(Email::parse("pat.lee+shop@mail.example.co").is_ok());
        for bad in [
            "pat",
            "pat@",
            "@example.com",
            "pat@example",
            "pat lee@example.com",
            "pat@@example.com",
            "pat@exa mple.com",
        ] {
            assert_eq!(Email::parse(bad), Err(ProfileError::Email), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("  Pat   Lee ").unwrap().expose(),
            "Pat Lee"
        );
        assert_eq!(PersonName::parse("   "), Err(ProfileError::Name));
        assert_eq!(PersonName::parse(&"a".repeat(101)), Err(ProfileError::Name));
        assert_eq!(PersonName::parse("Pat\u{0007}"), Err(ProfileError::Name));
    }

    #[test]
    fn only_us_addresses_are_accepted() {
        let json = r#"{"line1":"1 Main St","city":"Seattle","state":"WA","postalCode":"98101","country":"CA"}"#;
        assert!(serde_json::from_str::<ShippingAddress>(json).is_err());
        let json = json.replace("\"CA\"", "\"US\"");
        assert!(serde_json::from_str::<ShippingAddress>(&json).is_ok());
    }

    #[test]
    fn profile_debug_output_contains_no_personal_data() {
        let debug = format!("{:?}", complete());
        for secret in ["Pat", "pat@example.com", "Main", "Seattle", "98101"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }
}
