//! The `Catalog` port: product search on Amazon.com (SerpAPI live, our own catalogue in the
//! sandbox).
//!
//! Contract:
//! - [`Catalog::search`] returns products ranked best first, each ASIN at most once; an
//!   empty list means "no results" (never an error).
//! - [`Catalog::product`] returns one product, or `None` when it is not found.
//! - Every text that comes from the catalogue is untrusted input ([`ProductText`]): it is
//!   cleaned of control characters and bounded here, and must still be presented to a
//!   language model as data, never as instructions.
//! - Prices are exact ([`UsdcAmount`], one US dollar priced as one USDC), never floats.

use super::ErrorClass;
use crate::money::UsdcAmount;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// An Amazon Standard Identification Number: exactly 10 characters `A-Z0-9`.
///
/// Lower case input is accepted and stored upper case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Asin(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an ASIN is exactly 10 letters or digits, like B0CHX3QBCH")]
pub struct AsinError;

impl Asin {
    pub fn parse(input: &str) -> Result<Self, AsinError> {
        let text = input.trim().to_ascii_uppercase();
        let ok = text.len() == 10
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        ok.then_some(Self(text)).ok_or(AsinError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical product page. Built from the ASIN rather than taken from the
    /// catalogue, so a link shown to the user always points at amazon.com.
    pub fn amazon_url(&self) -> String {
        format!("https://www.amazon.com/dp/{}", self.0)
    }
}

impl fmt::Display for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asin({})", self.0)
    }
}

impl TryFrom<String> for Asin {
    type Error = AsinError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Asin> for String {
    fn from(asin: Asin) -> Self {
        asin.0
    }
}

/// Text that came from an outside system (a product title, a merchant's message).
///
/// Untrusted: control characters are dropped, whitespace is collapsed and the length is
/// bounded to [`ProductText::MAX_CHARS`] characters (cut with an ellipsis). It may still
/// contain anything a seller wrote, including text aimed at a language model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ProductText(String);

impl ProductText {
    pub const MAX_CHARS: usize = 300;

    pub fn clean(input: &str) -> Self {
        let words: Vec<&str> = input
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect();
        let text = words.join(" ");
        if text.chars().count() <= Self::MAX_CHARS {
            return Self(text);
        }
        let mut cut: String = text.chars().take(Self::MAX_CHARS - 1).collect();
        cut.push('…');
        Self(cut)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for ProductText {
    fn from(s: String) -> Self {
        Self::clean(&s)
    }
}

impl From<ProductText> for String {
    fn from(text: ProductText) -> Self {
        text.0
    }
}

impl fmt::Display for ProductText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A star rating from 0.0 to 5.0, kept in tenths of a star.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rating(u8);

impl Rating {
    pub fn from_tenths(tenths: u8) -> Option<Self> {
        (tenths <= 50).then_some(Self(tenths))
    }

    /// From a catalogue's decimal rating (4.6), rounded to a tenth. Not money: a float is
    /// fine here, but out-of-range or non-finite values are refused.
    pub fn from_stars(stars: f64) -> Option<Self> {
        if !stars.is_finite() || !(0.0..=5.0).contains(&stars) {
            return None;
        }
        Self::from_tenths((stars * 10.0).round() as u8)
    }

    pub fn tenths(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// A product as the agent shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub asin: Asin,
    pub title: ProductText,
    /// The canonical amazon.com page ([`Asin::amazon_url`]).
    pub url: String,
    /// The price in USD, one dollar counted as one USDC; `None` when the catalogue shows
    /// none (the quote decides the final price anyway).
    pub price: Option<UsdcAmount>,
    pub rating: Option<Rating>,
    pub reviews: u32,
    /// An https image address, when the catalogue has one.
    pub thumbnail: Option<String>,
    pub sponsored: bool,
}

/// A product search as the user asked it: 1 to 200 characters once cleaned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    text: String,
    page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchQueryError {
    #[error("a search needs 1 to 200 characters")]
    Length,
    #[error("result pages start at 1")]
    Page,
}

impl SearchQuery {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(text: &str) -> Result<Self, SearchQueryError> {
        Self::page_of(text, 1)
    }

    pub fn page_of(text: &str, page: u32) -> Result<Self, SearchQueryError> {
        let text = ProductText::clean(text).0;
        if text.is_empty() || text.chars().count() > Self::MAX_CHARS {
            return Err(SearchQueryError::Length);
        }
        if page == 0 {
            return Err(SearchQueryError::Page);
        }
        Ok(Self { text, page })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn page(&self) -> u32 {
        self.page
    }
}

/// Why a catalogue call failed. An empty search is not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the product search service is busy; try again shortly")]
    Throttled,
    #[error("the product search service has used up its search quota")]
    QuotaExhausted,
    #[error("the product search service refused our credentials")]
    Unauthorized,
    #[error("the product search service is unavailable: {0}")]
    Unavailable(String),
    #[error("the product search service answered something we cannot read: {0}")]
    Malformed(String),
}

impl CatalogError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CatalogError::Throttled | CatalogError::Unavailable(_) => ErrorClass::Transient,
            CatalogError::QuotaExhausted
            | CatalogError::Unauthorized
            | CatalogError::Malformed(_) => ErrorClass::Fatal,
        }
    }
}

/// Product search.
pub trait Catalog: Send + Sync {
    /// Products matching `query`, best first, unique by ASIN; empty when nothing matches.
    fn search(
        &self,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<Vec<Product>, CatalogError>> + Send;

    /// One product by ASIN, or `None` when the catalogue does not know it.
    fn product(
        &self,
        asin: &Asin,
    ) -> impl Future<Output = Result<Option<Product>, CatalogError>> + Send;
}

/// Orders search results the way the agent presents them: non-sponsored first (keeping
/// the catalogue's order within each group), each ASIN once, the non-sponsored copy kept
/// when an ASIN appears both ways.
pub fn rank_sponsored_last(products: Vec<Product>) -> Vec<Product> {
    let (organic, sponsored): (Vec<_>, Vec<_>) = products.into_iter().partition(|p| !p.sponsored);
    let mut seen = std::collections::HashSet::new();
    organic
        .into_iter()
        .chain(sponsored)
        .filter(|p| seen.insert(p.asin.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(asin: &str, sponsored: bool) -> Product {
        let asin = Asin::parse(asin).unwrap();
        Product {
            url: asin.amazon_url(),
            asin,
            title: ProductText::clean("x"),
            price: None,
            rating: None,
            reviews: 0,
            thumbnail: None,
            sponsored,
        }
    }

    #[test]
    fn asins_are_ten_letters_or_digits_stored_upper_case() {
        assert_eq!(Asin::parse("b0chx3qbch").unwrap().as_str(), "B0CHX3QBCH");
        for bad in ["", "B0CHX3QBC", "B0CHX3QBCHX", "B0CHX-QBCH", "B0CHX3QBÇH"] {
            assert_eq!(Asin::parse(bad), Err(AsinError), "{bad}");
        }
        assert!(serde_json::from_str::<Asin>("\"short\"").is_err());
        assert_eq!(
            Asin::parse("B0CHX3QBCH").unwrap().amazon_url(),
            "https://www.amazon.com/dp/B0CHX3QBCH"
        );
    }

    #[test]
    fn product_text_drops_control_characters_and_is_bounded() {
        let text = ProductText::clean("  Great\u{0}  headphones\n\u{1b}[31m ");
        assert_eq!(text.as_str(), "Great headphones [31m");
        let long = ProductText::clean(&"a".repeat(1000));
        assert_eq!(long.as_str().chars().count(), ProductText::MAX_CHARS);
        assert!(long.as_str().ends_with('…'));
    }

    #[test]
    fn ratings_are_tenths_from_zero_to_five_stars() {
        assert_eq!(Rating::from_stars(4.56).unwrap().to_string(), "4.6");
        assert_eq!(Rating::from_stars(5.0).unwrap().tenths(), 50);
        assert!(Rating::from_stars(5.1).is_none());
        assert!(Rating::from_stars(f64::NAN).is_none());
        assert!(Rating::from_stars(-1.0).is_none());
    }

    #[test]
    fn search_queries_are_cleaned_and_bounded() {
        assert_eq!(
            SearchQuery::parse("  usb-c   charger ").unwrap().text(),
            "usb-c charger"
        );
        assert_eq!(SearchQuery::parse("  "), Err(SearchQueryError::Length));
        assert_eq!(
            SearchQuery::parse(&"a".repeat(201)),
            Err(SearchQueryError::Length)
        );
        assert_eq!(SearchQuery::page_of("x", 0), Err(SearchQueryError::Page));
    }

    #[test]
    fn sponsored_results_rank_last_and_duplicates_keep_the_organic_copy() {
        let ranked = rank_sponsored_last(vec![
            product("AAAAAAAAA1", true),
            product("AAAAAAAAA2", false),
            product("AAAAAAAAA1", false),
            product("AAAAAAAAA3", true),
            product("AAAAAAAAA2", false),
        ]);
        let order: Vec<_> = ranked
            .iter()
            .map(|p| (p.asin.as_str(), p.sponsored))
            .collect();
        assert_eq!(
            order,
            vec![
                ("AAAAAAAAA2", false),
                ("AAAAAAAAA1", false),
                ("AAAAAAAAA3", true)
            ]
        );
    }

    #[test]
    fn catalog_errors_are_classified() {
        assert_eq!(CatalogError::Throttled.class(), ErrorClass::Transient);
        assert_eq!(CatalogError::QuotaExhausted.class(), ErrorClass::Fatal);
        assert_eq!(CatalogError::Unauthorized.class(), ErrorClass::Fatal);
    }
}
