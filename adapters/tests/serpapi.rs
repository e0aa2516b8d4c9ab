//! The SerpAPI catalogue against recorded payloads replayed by a local server.

mod support;

use secrecy::SecretString;
use std::time::Duration;
use support::{ReplayServer, Reply};
use worldstore_adapters::serpapi::{SerpApiCatalog, SerpApiConfig};
use worldstore_domain::UsdcAmount;
use worldstore_domain::ports::ErrorClass;
use worldstore_domain::ports::catalog::{Asin, Catalog, CatalogError, SearchQuery};

const KEY: &str = "serp-test-key-123";

fn catalog(server: &ReplayServer) -> SerpApiCatalog {
    SerpApiCatalog::new(SerpApiConfig {
        base_url: reqwest::Url::parse(&server.base_url).unwrap(),
        api_key: SecretString::from(KEY),
        timeout: Duration::from_millis(300),
        retry_delay: Duration::from_millis(5),
    })
    .unwrap()
}

fn query(text: &str) -> SearchQuery {
    SearchQuery::parse(text).unwrap()
}

#[tokio::test]
async fn a_search_sends_the_amazon_engine_query_and_the_key() {
    let server =
        ReplayServer::start(vec![Reply::fixture(200, "serpapi/search_headphones.json")]).await;
    catalog(&server)
        .search(&query("wireless headphones"))
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, "/search.json");
    assert_eq!(sent.param("engine").as_deref(), Some("amazon"));
    assert_eq!(sent.param("k").as_deref(), Some("wireless headphones"));
    assert_eq!(sent.param("amazon_domain").as_deref(), Some("amazon.com"));
    assert_eq!(sent.param("api_key").as_deref(), Some(KEY));
    assert_eq!(sent.param("page"), None);
}

#[tokio::test]
async fn later_pages_are_asked_for_by_number() {
    let server =
        ReplayServer::start(vec![Reply::fixture(200, "serpapi/search_headphones.json")]).await;
    catalog(&server)
        .search(&SearchQuery::page_of("headphones", 2).unwrap())
        .await
        .unwrap();
    assert_eq!(server.requests()[0].param("page").as_deref(), Some("2"));
}

#[tokio::test]
async fn results_are_parsed_tolerantly_deduplicated_and_sponsored_last() {
    let server =
        ReplayServer::start(vec![Reply::fixture(200, "serpapi/search_headphones.json")]).await;
    let products = catalog(&server)
        .search(&query("wireless headphones"))
        .await
        .unwrap();
    let asins: Vec<&str> = products.iter().map(|p| p.asin.as_str()).collect();
    // No-ASIN and bad-ASIN results dropped, duplicates removed, the sponsored one last.
    assert_eq!(
        asins,
        ["B0ORGAN001", "B0ORGAN002", "B0ORGAN003", "B0SPONS001"]
    );
    let first = &products[0];
    assert_eq!(first.reviews, 1020, "reviews given as \"1,020\"");
    assert_eq!(first.price, Some(UsdcAmount::from_atomic(29_990_000)));
    assert_eq!(first.rating.unwrap().to_string(), "4.6");
    assert_eq!(first.url, "https://www.amazon.com/dp/B0ORGAN001");
    assert!(!first.sponsored);
    let budget = &products[1];
    assert_eq!(budget.price, None, "missing price stays missing");
    assert_eq!(budget.title.as_str(), "Budget Headphones with a bell");
    assert_eq!(products[2].price, Some(UsdcAmount::from_atomic(14_500_000)));
    assert_eq!(products[2].reviews, 37);
    assert!(products[3].sponsored);
}

#[tokio::test]
async fn an_empty_search_is_no_results_not_a_failure() {
    let server = ReplayServer::start(vec![Reply::fixture(200, "serpapi/search_empty.json")]).await;
    let products = catalog(&server).search(&query("qwzxv")).await.unwrap();
    assert!(products.is_empty());
}

#[tokio::test]
async fn product_details_are_read_by_asin() {
    let server = ReplayServer::start(vec![
        Reply::fixture(200, "serpapi/product_details.json"),
        Reply::fixture(200, "serpapi/product_not_found.json"),
    ])
    .await;
    let catalog = catalog(&server);
    let asin = Asin::parse("B0ORGAN001").unwrap();
    let product = catalog.product(&asin).await.unwrap().unwrap();
    assert_eq!(product.asin, asin);
    assert_eq!(product.price, Some(UsdcAmount::from_atomic(29_990_000)));
    assert_eq!(
        product.thumbnail.as_deref(),
        Some("https://m.media-amazon.example/o1.jpg")
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.param("engine").as_deref(), Some("amazon_product"));
    assert_eq!(sent.param("asin").as_deref(), Some("B0ORGAN001"));
    assert_eq!(sent.param("api_key").as_deref(), Some(KEY));

    let missing = Asin::parse("B0MISSING1").unwrap();
    assert_eq!(catalog.product(&missing).await.unwrap(), None);
}

#[tokio::test]
async fn a_bad_key_is_unauthorized_and_fatal() {
    let server = ReplayServer::start(vec![Reply::fixture(401, "serpapi/error_401.json")]).await;
    let error = catalog(&server).search(&query("x")).await.unwrap_err();
    assert_eq!(error, CatalogError::Unauthorized);
    assert_eq!(error.class(), ErrorClass::Fatal);
    assert_eq!(server.requests().len(), 1, "no retry on 401");
}

#[tokio::test]
async fn throttling_and_an_exhausted_quota_are_told_apart() {
    let server = ReplayServer::start(vec![
        Reply::fixture(429, "serpapi/error_429_throttled.json"),
        Reply::fixture(429, "serpapi/error_429_out_of_searches.json"),
    ])
    .await;
    let catalog = catalog(&server);
    let throttled = catalog.search(&query("x")).await.unwrap_err();
    assert_eq!(throttled, CatalogError::Throttled);
    assert_eq!(throttled.class(), ErrorClass::Transient);
    let exhausted = catalog.search(&query("x")).await.unwrap_err();
    assert_eq!(exhausted, CatalogError::QuotaExhausted);
    assert_eq!(exhausted.class(), ErrorClass::Fatal);
}

#[tokio::test]
async fn a_server_error_is_retried_once() {
    let server = ReplayServer::start(vec![
        Reply::fixture(503, "serpapi/error_503.json"),
        Reply::fixture(200, "serpapi/search_headphones.json"),
    ])
    .await;
    let products = catalog(&server).search(&query("headphones")).await.unwrap();
    assert_eq!(products.len(), 4);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_second_server_error_is_reported_as_unavailable() {
    let server = ReplayServer::start(vec![
        Reply::fixture(503, "serpapi/error_503.json"),
        Reply::fixture(500, "serpapi/error_503.json"),
        Reply::fixture(200, "serpapi/search_headphones.json"),
    ])
    .await;
    let error = catalog(&server).search(&query("x")).await.unwrap_err();
    assert!(matches!(error, CatalogError::Unavailable(_)));
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(server.requests().len(), 2, "exactly one retry");
}

#[tokio::test]
async fn a_slow_answer_times_out_without_leaking_the_key() {
    let server = ReplayServer::start(vec![
        Reply::fixture(200, "serpapi/search_headphones.json").delayed(Duration::from_secs(2)),
    ])
    .await;
    let error = catalog(&server).search(&query("x")).await.unwrap_err();
    assert_eq!(error, CatalogError::Unavailable("timed out".into()));
    assert!(!format!("{error:?} {error}").contains(KEY));
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output() {
    let server = ReplayServer::start(vec![]).await;
    let debug = format!("{:?}", catalog(&server));
    assert!(!debug.contains(KEY), "{debug}");
}
