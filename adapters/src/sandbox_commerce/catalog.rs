//! The sandbox `Catalog`: our own invented products (`fixtures/catalog/products.json`,
//! SerpAPI's `organic_results` shape, read by the SerpAPI reader), searched offline.
//!
//! Ranking, deterministic: products whose titles contain the most query words first (a
//! word matches a title word equal to it or to it plus/minus a plural "s"), then higher
//! rating, then more reviews, then non-sponsored, then ASIN. A product matching no word is
//! not a result.

use crate::serpapi::products_from;
use serde_json::Value;
use std::cmp::Reverse;
use worldstore_domain::ports::catalog::{Asin, Catalog, CatalogError, Product, SearchQuery};

/// The catalogue shipped with the project.
const BUILTIN: &str = include_str!("../../../fixtures/catalog/products.json");

/// How many results a page holds.
pub const PAGE_SIZE: usize = 10;

#[derive(Debug, Clone)]
pub struct SandboxCatalog {
    products: Vec<Product>,
    /// The [`words`] of each product's title, in the order of `products`: split and
    /// lowercased once, not on every search.
    title_words: Vec<Vec<String>>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn same_word(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix('s') == Some(b) || b.strip_suffix('s') == Some(a)
}

impl SandboxCatalog {
    /// The built-in catalogue (parsed once per process; each agent gets a copy).
    pub fn builtin() -> Result<Self, CatalogError> {
        static PARSED: std::sync::OnceLock<Result<SandboxCatalog, String>> =
            std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| Self::from_json(BUILTIN).map_err(|e| e.to_string()))
            .clone()
            .map_err(CatalogError::Malformed)
    }

    /// A catalogue from a SerpAPI-shaped search page (`{organic_results: [...]}`).
    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let page: Value =
            serde_json::from_str(json).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        let results = page
            .get("organic_results")
            .and_then(Value::as_array)
            .ok_or_else(|| CatalogError::Malformed("no organic_results".into()))?;
        Ok(Self::of(products_from(results)))
    }

    fn of(products: Vec<Product>) -> Self {
        let title_words = products.iter().map(|p| words(p.title.as_str())).collect();
        Self {
            products,
            title_words,
        }
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// This catalogue plus `more` (a product of `more` replaces one with the same ASIN).
    pub fn extended(self, more: &SandboxCatalog) -> Self {
        let mut products = self.products;
        products.retain(|p| !more.products.iter().any(|m| m.asin == p.asin));
        products.extend(more.products.iter().cloned());
        Self::of(products)
    }

    /// Every match, best first.
    pub fn ranked(&self, query: &str) -> Vec<&Product> {
        let query_words = words(query);
        let mut scored: Vec<(usize, &Product)> = self
            .products
            .iter()
            .zip(&self.title_words)
            .map(|(product, title)| {
                let hits = query_words
                    .iter()
                    .filter(|q| title.iter().any(|t| same_word(q, t)))
                    .count();
                (hits, product)
            })
            .filter(|(hits, _)| *hits > 0)
            .collect();
        scored.sort_by_key(|(hits, p)| {
            (
                Reverse(*hits),
                Reverse(p.rating),
                Reverse(p.reviews),
                p.sponsored,
                p.asin.clone(),
            )
        });
        scored.into_iter().map(|(_, p)| p).collect()
    }
}

impl Catalog for SandboxCatalog {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Product>, CatalogError> {
        let skip = (query.page() as usize - 1) * PAGE_SIZE;
        Ok(self
            .ranked(query.text())
            .into_iter()
            .skip(skip)
            .take(PAGE_SIZE)
            .cloned()
            .collect())
    }

    async fn product(&self, asin: &Asin) -> Result<Option<Product>, CatalogError> {
        Ok(self.products.iter().find(|p| &p.asin == asin).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> SandboxCatalog {
        SandboxCatalog::builtin().unwrap()
    }

    #[test]
    fn the_builtin_catalogue_has_at_least_200_priced_unique_products() {
        let products = catalog().products;
        assert!(products.len() >= 200, "{}", products.len());
        let unique: std::collections::HashSet<_> = products.iter().map(|p| &p.asin).collect();
        assert_eq!(unique.len(), products.len());
        assert!(products.iter().all(|p| p.price.is_some()));
    }

    #[test]
    fn titles_matching_more_words_rank_first() {
        let catalog = catalog();
        let ranked = catalog.ranked("noise cancelling earbuds");
        let top = ranked[0].title.as_str().to_lowercase();
        assert!(top.contains("noise cancelling earbuds"), "{top}");
        assert!(ranked.len() > 3);
    }

    #[test]
    fn equal_matches_rank_by_rating_then_reviews() {
        let catalog = catalog();
        let ranked = catalog.ranked("headphones");
        assert!(!ranked.is_empty());
        for pair in ranked.windows(2) {
            assert!(
                (pair[0].rating, pair[0].reviews) >= (pair[1].rating, pair[1].reviews),
                "{:?} before {:?}",
                pair[0].title,
                pair[1].title
            );
        }
    }

    #[test]
    fn plural_and_singular_words_match_and_unknown_words_find_nothing() {
        let catalog = catalog();
        assert!(!catalog.ranked("charger").is_empty());
        assert!(!catalog.ranked("Chargers").is_empty());
        assert!(catalog.ranked("zeppelin").is_empty());
    }

    #[tokio::test]
    async fn search_pages_through_results_deterministically() {
        let catalog = catalog();
        let first = catalog
            .search(&SearchQuery::parse("usb-c charger").unwrap())
            .await
            .unwrap();
        let again = catalog
            .search(&SearchQuery::parse("usb-c charger").unwrap())
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(first.len(), PAGE_SIZE);
        let second = catalog
            .search(&SearchQuery::page_of("usb-c charger", 2).unwrap())
            .await
            .unwrap();
        assert!(second.iter().all(|p| !first.contains(p)));
        let asin = first[0].asin.clone();
        assert_eq!(
            catalog.product(&asin).await.unwrap(),
            Some(first[0].clone())
        );
    }
}
