//! Money: USDC in integer atomic units, and the merchant's fee.
//!
//! USDC has 6 decimals on every network we serve, so one USDC is 1_000_000 atomic units.
//! Amounts are never floating point: decimal strings ("12.34") are parsed exactly and
//! anything that cannot be represented exactly is refused rather than rounded.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Number of decimals of USDC on every supported network.
pub const USDC_DECIMALS: u32 = 6;
const ATOMIC_PER_USDC: u128 = 1_000_000;

/// An amount of USDC in atomic units (1 USDC = 1_000_000).
///
/// Parses from a decimal string in whole units (`"12.34"`, `"0.000001"`); displays with at
/// least two decimals (`"12.34"`, `"1.80"`, `"0.000001"`), and `parse(display(x)) == x`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UsdcAmount(u128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error(
        "amount {0:?} is not a plain decimal number (digits, optionally '.' and up to 6 digits)"
    )]
    Malformed(String),
    #[error("amount {0:?} has more than 6 decimals; USDC cannot represent it exactly")]
    TooPrecise(String),
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl UsdcAmount {
    pub const ZERO: Self = Self(0);

    pub const fn from_atomic(atomic: u128) -> Self {
        Self(atomic)
    }

    /// Whole USDC, for tests and configuration defaults.
    pub const fn from_usdc(whole: u64) -> Self {
        Self(whole as u128 * ATOMIC_PER_USDC)
    }

    pub const fn atomic(self) -> u128 {
        self.0
    }

    /// Parses a decimal amount in whole USDC: `digits[.digits]` with at most 6 decimals.
    /// No sign, exponent, separators, spaces or leading/trailing dot.
    pub fn parse_decimal(input: &str) -> Result<Self, AmountError> {
        if input.is_empty() {
            return Err(AmountError::Empty);
        }
        let (whole, fraction) = match input.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (input, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Malformed(input.to_owned()));
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > USDC_DECIMALS as usize {
            return Err(AmountError::TooPrecise(input.to_owned()));
        }
        let overflow = || AmountError::Overflow(input.to_owned());
        let whole: u128 = whole.parse().map_err(|_| overflow())?;
        let mut fraction_atomic: u128 = 0;
        for i in 0..USDC_DECIMALS as usize {
            let digit = fraction
                .as_bytes()
                .get(i)
                .map_or(0, |b| u128::from(b - b'0'));
            fraction_atomic = fraction_atomic * 10 + digit;
        }
        whole
            .checked_mul(ATOMIC_PER_USDC)
            .and_then(|w| w.checked_add(fraction_atomic))
            .map(Self)
            .ok_or_else(overflow)
    }

    /// Parses atomic units written as a decimal integer string, as x402 carries them
    /// (`"1250000"`). Digits only.
    pub fn parse_atomic(input: &str) -> Result<Self, AmountError> {
        if input.is_empty() {
            return Err(AmountError::Empty);
        }
        if !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Malformed(input.to_owned()));
        }
        input
            .parse()
            .map(Self)
            .map_err(|_| AmountError::Overflow(input.to_owned()))
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    pub fn checked_mul(self, factor: u128) -> Option<Self> {
        self.0.checked_mul(factor).map(Self)
    }

    /// `self - other`, or zero when `other` is larger (a shortfall never goes negative).
    pub fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The amount as an on-chain `uint256`.
    pub fn to_u256(self) -> alloy_primitives::U256 {
        alloy_primitives::U256::from(self.0)
    }

    /// An on-chain `uint256` as an amount, if it fits.
    pub fn from_u256(value: alloy_primitives::U256) -> Option<Self> {
        u128::try_from(value).ok().map(Self)
    }
}

impl fmt::Display for UsdcAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / ATOMIC_PER_USDC;
        let fraction = self.0 % ATOMIC_PER_USDC;
        let mut digits = format!("{fraction:06}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{whole}.{digits}")
    }
}

impl fmt::Debug for UsdcAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} USDC")
    }
}

impl FromStr for UsdcAmount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_decimal(s)
    }
}

impl TryFrom<String> for UsdcAmount {
    type Error = AmountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse_decimal(&s)
    }
}

impl From<UsdcAmount> for String {
    fn from(amount: UsdcAmount) -> Self {
        amount.to_string()
    }
}

/// The merchant's fee as a rate in basis points (1 bp = 0.01 %), 0 to 10_000.
///
/// Configured as a percentage string (`ORDER_FEE_PERCENTAGE`, e.g. `"2.5"`), with at most
/// two decimals so that the rate is an exact number of basis points.
///
/// **Rounding rule**: the fee is rounded *up* to the next atomic unit
/// (`ceil(amount * bps / 10_000)`), so the merchant never receives less than the configured
/// rate, and the user pays at most 0.000001 USDC more than the exact fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeeRate {
    basis_points: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeRateError {
    #[error(
        "fee percentage {0:?} must be a number from 0 to 100 with at most two decimals, like \"2.5\""
    )]
    Malformed(String),
}

impl FeeRate {
    pub const ZERO: Self = Self { basis_points: 0 };
    const MAX_BPS: u32 = 10_000;

    pub fn from_basis_points(basis_points: u32) -> Result<Self, FeeRateError> {
        if basis_points > Self::MAX_BPS {
            return Err(FeeRateError::Malformed(format!("{basis_points} bp")));
        }
        Ok(Self { basis_points })
    }

    /// Parses a percentage such as `"5"`, `"2.5"` or `"0.25"`.
    pub fn parse_percentage(input: &str) -> Result<Self, FeeRateError> {
        let malformed = || FeeRateError::Malformed(input.to_owned());
        let (whole, fraction) = input.split_once('.').unwrap_or((input, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 3
            || !digits(whole)
            || fraction.len() > 2
            || !digits(fraction)
            || (input.contains('.') && fraction.is_empty())
        {
            return Err(malformed());
        }
        let whole: u32 = whole.parse().map_err(|_| malformed())?;
        let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| malformed())?;
        Self::from_basis_points(whole * 100 + fraction).map_err(|_| malformed())
    }

    pub fn basis_points(self) -> u32 {
        self.basis_points
    }

    /// The fee on `amount`, rounded up to the next atomic unit (see the type's docs).
    pub fn fee_on(self, amount: UsdcAmount) -> Option<UsdcAmount> {
        let scaled = amount.0.checked_mul(u128::from(self.basis_points))?;
        Some(UsdcAmount(scaled.div_ceil(u128::from(Self::MAX_BPS))))
    }

    /// `amount` plus its fee.
    pub fn total_with_fee(self, amount: UsdcAmount) -> Option<UsdcAmount> {
        amount.checked_add(self.fee_on(amount)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_amounts_parse_exactly() {
        let cases = [
            ("12.34", 12_340_000),
            ("0.000001", 1),
            ("1.80", 1_800_000),
            ("5", 5_000_000),
            ("0", 0),
            ("0.5", 500_000),
            ("007.1", 7_100_000),
        ];
        for (text, atomic) in cases {
            assert_eq!(
                UsdcAmount::parse_decimal(text),
                Ok(UsdcAmount(atomic)),
                "{text}"
            );
        }
    }

    #[test]
    fn junk_amounts_are_refused_with_the_reason() {
        for junk in [
            "-1", "+1", "1e6", "1E6", " 1", "1 ", "1,000", ".5", "5.", "1.2.3", "0x10", "NaN", "١",
        ] {
            assert!(
                matches!(
                    UsdcAmount::parse_decimal(junk),
                    Err(AmountError::Malformed(_))
                ),
                "{junk:?} must be malformed"
            );
        }
        assert_eq!(UsdcAmount::parse_decimal(""), Err(AmountError::Empty));
        assert!(matches!(
            UsdcAmount::parse_decimal("0.0000001"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            UsdcAmount::parse_decimal("999999999999999999999999999999999999"),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn atomic_strings_are_digits_only() {
        assert_eq!(
            UsdcAmount::parse_atomic("1250000"),
            Ok(UsdcAmount(1_250_000))
        );
        for junk in ["", "1.5", "-1", "0x10", " 1"] {
            assert!(UsdcAmount::parse_atomic(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn amounts_display_with_at_least_two_decimals() {
        assert_eq!(UsdcAmount(12_340_000).to_string(), "12.34");
        assert_eq!(UsdcAmount(1_800_000).to_string(), "1.80");
        assert_eq!(UsdcAmount(1).to_string(), "0.000001");
        assert_eq!(UsdcAmount(0).to_string(), "0.00");
        assert_eq!(UsdcAmount(1_234_567).to_string(), "1.234567");
    }

    #[test]
    fn fee_is_rounded_up_to_the_next_atomic_unit() {
        let rate = FeeRate::parse_percentage("2.5").unwrap();
        assert_eq!(rate.basis_points(), 250);
        assert_eq!(rate.fee_on(UsdcAmount(1_000_000)), Some(UsdcAmount(25_000)));
        // 2.5% of 1 atomic unit is 0.025 units: charged as 1.
        assert_eq!(rate.fee_on(UsdcAmount(1)), Some(UsdcAmount(1)));
        assert_eq!(
            FeeRate::ZERO.fee_on(UsdcAmount(123)),
            Some(UsdcAmount::ZERO)
        );
        assert_eq!(
            rate.total_with_fee(UsdcAmount::parse_decimal("12.34").unwrap()),
            Some(UsdcAmount(12_648_500))
        );
    }

    #[test]
    fn fee_percentages_are_exact_or_refused() {
        assert_eq!(FeeRate::parse_percentage("5").unwrap().basis_points(), 500);
        assert_eq!(
            FeeRate::parse_percentage("0.25").unwrap().basis_points(),
            25
        );
        assert_eq!(
            FeeRate::parse_percentage("100").unwrap().basis_points(),
            10_000
        );
        for bad in ["", "101", "2.555", "-1", "abc", "5.", ".5", "1e2"] {
            assert!(FeeRate::parse_percentage(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(atomic in any::<u64>()) {
            let amount = UsdcAmount(u128::from(atomic));
            prop_assert_eq!(UsdcAmount::parse_decimal(&amount.to_string()), Ok(amount));
        }

        #[test]
        fn parse_then_display_preserves_value(whole in 0u64..1_000_000_000, fraction in 0u32..1_000_000, places in 0usize..=6) {
            let fraction_text = format!("{fraction:06}")[..places].to_string();
            let text = if places == 0 { whole.to_string() } else { format!("{whole}.{fraction_text}") };
            let amount = UsdcAmount::parse_decimal(&text).unwrap();
            let again = UsdcAmount::parse_decimal(&amount.to_string()).unwrap();
            prop_assert_eq!(amount, again);
        }

        #[test]
        fn fee_is_never_below_the_exact_rate_and_at_most_one_unit_above(atomic in 0u128..1u128 << 80, bps in 0u32..=10_000) {
            let rate = FeeRate::from_basis_points(bps).unwrap();
            let fee = rate.fee_on(UsdcAmount(atomic)).unwrap().atomic();
            let exact_times_10k = atomic * u128::from(bps);
            prop_assert!(fee * 10_000 >= exact_times_10k);
            prop_assert!(fee * 10_000 < exact_times_10k + 10_000);
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in ".{0,40}") {
            let _ = UsdcAmount::parse_decimal(&text);
        }
    }
}
