//! The `Catalog` port over SerpAPI's Amazon engines (external-apis.md, "SerpAPI").
//!
//! - Search: `GET {base}/search.json?engine=amazon&k=<query>&amazon_domain=amazon.com&api_key=`
//!   (`page` from 2 on). Product: `engine=amazon_product&asin=`.
//! - HTTP 200 with an `error` and no results is "no results" (an empty list / `None`).
//! - 401/403: [`CatalogError::Unauthorized`]. 429 is told apart by its message: "run out of
//!   searches" is [`CatalogError::QuotaExhausted`], anything else
//!   [`CatalogError::Throttled`]. 5xx is retried once, then
//!   [`CatalogError::Unavailable`]; so is a timeout (no retry).
//! - The API key travels in the query string, so no URL is ever put into an error or a
//!   log (`reqwest::Error::without_url`), and the key stays a `SecretString`.

mod wire;

pub use wire::{dollars, product_from, products_from};

use crate::retry::RetryPolicy;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use worldstore_domain::ports::catalog::{Asin, Catalog, CatalogError, Product, SearchQuery};

/// Where and how to reach SerpAPI.
#[derive(Debug, Clone)]
pub struct SerpApiConfig {
    /// `https://serpapi.com` in production.
    pub base_url: reqwest::Url,
    pub api_key: SecretString,
    pub timeout: Duration,
    /// Pause before the single retry after a 5xx.
    pub retry_delay: Duration,
}

impl SerpApiConfig {
    pub const PRODUCTION_URL: &'static str = "https://serpapi.com";

    pub fn production(api_key: SecretString) -> Self {
        Self {
            base_url: reqwest::Url::parse(Self::PRODUCTION_URL).unwrap_or_else(|_| unreachable!()),
            api_key,
            timeout: Duration::from_secs(45),
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// Live product search through SerpAPI.
#[derive(Debug, Clone)]
pub struct SerpApiCatalog {
    http: reqwest::Client,
    config: SerpApiConfig,
}

impl SerpApiCatalog {
    pub fn new(config: SerpApiConfig) -> Result<Self, CatalogError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| CatalogError::Unavailable(e.without_url().to_string()))?;
        Ok(Self { http, config })
    }

    /// GET `search.json` with `params` and the key; one retry on 5xx.
    async fn get(&self, params: &[(&str, &str)]) -> Result<Vec<u8>, CatalogError> {
        let url = self
            .config
            .base_url
            .join("search.json")
            .map_err(|e| CatalogError::Malformed(e.to_string()))?;
        let policy = RetryPolicy {
            max_retries: 1,
            base_delay: self.config.retry_delay,
            max_delay: self.config.retry_delay,
        };
        let mut retry = 0;
        loop {
            let response = self
                .http
                .get(url.clone())
                .query(params)
                .query(&[("api_key", self.config.api_key.expose_secret())])
                .send()
                .await
                .map_err(transport_error)?;
            let status = response.status();
            let body = response.bytes().await.map_err(transport_error)?.to_vec();
            if status.is_server_error() && retry < policy.max_retries {
                tokio::time::sleep(policy.delay(retry, None)).await;
                retry += 1;
                continue;
            }
            return classify(status, body);
        }
    }
}

fn transport_error(error: reqwest::Error) -> CatalogError {
    let what = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.without_url().to_string()
    };
    CatalogError::Unavailable(what)
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<wire::SearchPage>(body)
        .ok()
        .and_then(|page| page.error)
        .unwrap_or_default()
}

fn classify(status: StatusCode, body: Vec<u8>) -> Result<Vec<u8>, CatalogError> {
    match status {
        s if s.is_success() => Ok(body),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(CatalogError::Unauthorized),
        StatusCode::TOO_MANY_REQUESTS => {
            let message = error_message(&body).to_ascii_lowercase();
            if message.contains("run out of searches") || message.contains("out of searches") {
                Err(CatalogError::QuotaExhausted)
            } else {
                Err(CatalogError::Throttled)
            }
        }
        s if s.is_server_error() => Err(CatalogError::Unavailable(format!("HTTP {s}"))),
        s => Err(CatalogError::Malformed(format!(
            "HTTP {s}: {}",
            worldstore_domain::ports::catalog::ProductText::clean(&error_message(&body))
        ))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CatalogError> {
    serde_json::from_slice(body).map_err(|e| CatalogError::Malformed(e.to_string()))
}

impl Catalog for SerpApiCatalog {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Product>, CatalogError> {
        let page = query.page().to_string();
        let mut params = vec![
            ("engine", "amazon"),
            ("k", query.text()),
            ("amazon_domain", "amazon.com"),
        ];
        if query.page() > 1 {
            params.push(("page", &page));
        }
        let body = self.get(&params).await?;
        let page: wire::SearchPage = parse(&body)?;
        Ok(page
            .organic_results
            .map(|results| products_from(&results))
            .unwrap_or_default())
    }

    async fn product(&self, asin: &Asin) -> Result<Option<Product>, CatalogError> {
        let params = [
            ("engine", "amazon_product"),
            ("asin", asin.as_str()),
            ("amazon_domain", "amazon.com"),
        ];
        let body = self.get(&params).await?;
        let page: wire::ProductPage = parse(&body)?;
        Ok(page
            .product_results
            .and_then(|result| product_from(&result, Some(asin)))
            // The page must be about the product asked for.
            .filter(|product| &product.asin == asin))
    }
}
