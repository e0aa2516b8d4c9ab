//! SerpAPI's Amazon result shapes, read tolerantly (external-apis.md, "SerpAPI").
//!
//! Every field of a result may be missing or oddly typed: `reviews` is a number or a
//! string like "1,020", `price` is "$29.99" (or absent, with `extracted_price` a number),
//! `rating` a number. A result without a valid ASIN is dropped; nothing else is fatal.
//! Prices are read exactly from their decimal text, never through float arithmetic.
//! The sandbox catalogue uses the same shape and this same reader.

use serde::Deserialize;
use serde_json::Value;
use worldstore_domain::UsdcAmount;
use worldstore_domain::ports::catalog::{Asin, Product, ProductText, Rating};

/// A search answer: results, or an `error` (which, with HTTP 200, means "no results").
#[derive(Debug, Default, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub organic_results: Option<Vec<Value>>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A product page answer (`engine=amazon_product`); an `error` instead means "not found".
#[derive(Debug, Default, Deserialize)]
pub struct ProductPage {
    #[serde(default)]
    pub product_results: Option<Value>,
}

/// Reads one result; `None` when it has no valid ASIN (or `fallback_asin` is used).
pub fn product_from(result: &Value, fallback_asin: Option<&Asin>) -> Option<Product> {
    let asin = match result.get("asin").and_then(Value::as_str) {
        Some(text) => Asin::parse(text).ok()?,
        None => fallback_asin?.clone(),
    };
    let title = result
        .get("title")
        .and_then(Value::as_str)
        .map(ProductText::clean)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| ProductText::clean("(untitled product)"));
    let thumbnail = result
        .get("thumbnail")
        .or_else(|| result.get("thumbnails").and_then(|t| t.get(0)))
        .and_then(Value::as_str)
        .filter(|url| url.starts_with("https://") && url.len() <= 2048)
        .filter(|url| !url.chars().any(|c| c.is_whitespace() || c.is_control()))
        .map(str::to_owned);
    Some(Product {
        url: asin.amazon_url(),
        asin,
        title,
        price: price(result),
        rating: result.get("rating").and_then(rating),
        reviews: result.get("reviews").map_or(0, reviews),
        thumbnail,
        sponsored: result
            .get("sponsored")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// `price` as shown ("$1,299.99"), else `extracted_price` (a JSON number whose decimal
/// text is parsed exactly).
fn price(result: &Value) -> Option<UsdcAmount> {
    let shown = match result.get("price") {
        Some(Value::String(text)) => Some(text.as_str()),
        Some(Value::Object(map)) => map.get("raw").and_then(Value::as_str),
        _ => None,
    };
    if let Some(amount) = shown.and_then(dollars) {
        return Some(amount);
    }
    match result.get("extracted_price") {
        Some(Value::Number(n)) => UsdcAmount::parse_decimal(&n.to_string()).ok(),
        Some(Value::String(text)) => dollars(text),
        _ => None,
    }
}

/// "$29.99", "29.99", "$1,299.00" -> exact amount; ranges and other currencies -> None.
pub fn dollars(text: &str) -> Option<UsdcAmount> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).replace(',', "");
    UsdcAmount::parse_decimal(&text).ok()
}

fn rating(value: &Value) -> Option<Rating> {
    match value {
        Value::Number(n) => Rating::from_stars(n.as_f64()?),
        Value::String(s) => Rating::from_stars(s.trim().parse().ok()?),
        _ => None,
    }
}

/// 1020, "1,020", "1.020" (some locales) -> 1020; anything else -> 0.
fn reviews(value: &Value) -> u32 {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        Value::String(s) => {
            let digits: String = s
                .trim()
                .chars()
                .filter(|c| !matches!(c, ',' | '.' | ' '))
                .collect();
            digits.parse().unwrap_or(0)
        }
        _ => 0,
    }
}

/// Reads a page of results in SerpAPI's order: drops results without an ASIN, then ranks
/// sponsored results last and removes duplicates.
pub fn products_from(results: &[Value]) -> Vec<Product> {
    let products = results
        .iter()
        .filter_map(|r| product_from(r, None))
        .collect();
    worldstore_domain::ports::catalog::rank_sponsored_last(products)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reviews_are_read_as_numbers_or_grouped_strings() {
        assert_eq!(reviews(&json!(1020)), 1020);
        assert_eq!(reviews(&json!("1,020")), 1020);
        assert_eq!(reviews(&json!("12,345,678")), 12_345_678);
        assert_eq!(reviews(&json!("many")), 0);
        assert_eq!(reviews(&json!(-3)), 0);
        assert_eq!(reviews(&json!(null)), 0);
    }

    #[test]
    fn prices_are_exact_from_the_shown_text_or_the_extracted_number() {
        let p = |v: Value| price(&v);
        assert_eq!(
            p(json!({"price": "$1,299.99"})),
            Some(UsdcAmount::from_atomic(1_299_990_000))
        );
        assert_eq!(
            p(json!({"extracted_price": 29.99})),
            Some(UsdcAmount::from_atomic(29_990_000))
        );
        assert_eq!(
            p(json!({"price": {"raw": "$5.49"}})),
            Some(UsdcAmount::from_atomic(5_490_000))
        );
        assert_eq!(p(json!({"price": "$10.99 - $15.99"})), None);
        assert_eq!(p(json!({"price": "€10,99"})), None);
        assert_eq!(p(json!({})), None);
    }

    #[test]
    fn results_without_a_valid_asin_are_dropped_and_links_are_canonical() {
        assert!(product_from(&json!({"title": "x"}), None).is_none());
        assert!(product_from(&json!({"asin": "bad"}), None).is_none());
        let product = product_from(
            &json!({"asin": "B0CHX3QBCH", "link": "https://evil.example/x", "thumbnail": "http://plain.example/a.jpg"}),
            None,
        )
        .unwrap();
        assert_eq!(product.url, "https://www.amazon.com/dp/B0CHX3QBCH");
        assert_eq!(product.thumbnail, None);
        assert_eq!(product.title.as_str(), "(untitled product)");
    }
}
