//! Running the brain's validated tool calls, always for the conversation's own user.

use super::records::CheckoutDoc;
use super::{Agent, AgentError, AgentPorts};
use worldstore_adapters::brain::offline::ASIN_MARKER;
use worldstore_domain::checkout::Checkout;
use worldstore_domain::conversation::tools::ProfileEdit;
use worldstore_domain::conversation::{ProductCard, ToolCall, ToolOutcome};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::catalog::{self, Catalog, Product, SearchQuery, rank_sponsored_last};
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Key, MachineKind, MachineRecord, Store};
use worldstore_domain::profile::Profile;

/// Search results shown (and offered as quick-buy buttons).
const SHOWN_RESULTS: usize = 4;

fn text(content: impl Into<String>) -> ToolOutcome {
    ToolOutcome {
        content: content.into(),
        is_error: false,
        products: vec![],
        presented: false,
    }
}

fn error(content: impl Into<String>) -> ToolOutcome {
    ToolOutcome {
        is_error: true,
        ..text(content)
    }
}

/// A result the user already sees in a message of its own.
fn presented(content: impl Into<String>) -> ToolOutcome {
    ToolOutcome {
        presented: true,
        ..text(content)
    }
}

fn card(p: &Product) -> ProductCard {
    ProductCard {
        asin: p.asin.as_str().to_owned(),
        title: p.title.as_str().to_owned(),
        price: p.price,
        image: p.thumbnail.clone(),
        rating: p.rating.map(|r| r.to_string()),
        reviews: Some(u64::from(p.reviews)),
    }
}

fn price_text(price: Option<UsdcAmount>) -> String {
    price.map_or_else(|| "price unknown".to_owned(), |p| format!("${p}"))
}

fn apply(profile: &mut Profile, edit: ProfileEdit) {
    let ProfileEdit {
        name,
        email,
        line1,
        line2,
        city,
        state,
        postal_code,
    } = edit;
    profile.name = name.or(profile.name.take());
    profile.email = email.or(profile.email.take());
    profile.line1 = line1.or(profile.line1.take());
    profile.line2 = line2.or(profile.line2.take());
    profile.city = city.or(profile.city.take());
    profile.state = state.or(profile.state.take());
    profile.postal_code = postal_code.or(profile.postal_code.take());
}

fn describe(profile: &Profile) -> String {
    let field = |v: Option<&str>| v.unwrap_or("(not set)").to_owned();
    let mut text = format!(
        "Name: {}\nEmail: {}\nAddress: {}",
        field(profile.name.as_ref().map(|v| v.expose())),
        field(profile.email.as_ref().map(|v| v.expose())),
        field(profile.line1.as_ref().map(|v| v.expose())),
    );
    if let Some(line2) = &profile.line2 {
        text.push_str(&format!(", {}", line2.expose()));
    }
    text.push_str(&format!(
        ", {}, {} {}",
        field(profile.city.as_ref().map(|v| v.expose())),
        field(profile.state.as_ref().map(|v| v.as_str())),
        field(profile.postal_code.as_ref().map(|v| v.expose())),
    ));
    text
}

/// One line per order: id, product, status, total.
fn order_line(id: &Key, doc: &CheckoutDoc) -> String {
    let order = doc
        .order
        .as_ref()
        .map_or_else(|| id.to_string(), |o| o.order_id.to_string());
    let (title, total) = match (&doc.machine, doc.machine.quote()) {
        (_, Some(q)) => (q.product.title.clone(), format!(", {} USDC", q.total)),
        (Checkout::RequestingQuote(r), None) => (r.product.title.clone(), String::new()),
        (Checkout::Failed(e) | Checkout::Declined(e), None) => {
            (e.product.title.clone(), String::new())
        }
        _ => (String::new(), String::new()),
    };
    format!("Order {order}: {title} — {}{total}", doc.machine.status())
}

impl<P: AgentPorts> Agent<P> {
    /// Runs `call` for `user`. Port failures become error results the model can explain.
    pub(crate) async fn run_tool(
        &self,
        user: &Key,
        call: &ToolCall,
    ) -> Result<ToolOutcome, AgentError> {
        let store = &self.inner.store;
        Ok(match call {
            ToolCall::SearchProducts { query } => {
                let Ok(query) = SearchQuery::parse(query) else {
                    return Ok(error("a search needs 1 to 200 characters"));
                };
                match self.inner.catalog.search(&query).await {
                    Ok(found) if found.is_empty() => {
                        text(format!("No products found for \"{}\".", query.text()))
                    }
                    Ok(found) => {
                        let shown: Vec<Product> = rank_sponsored_last(found)
                            .into_iter()
                            .take(SHOWN_RESULTS)
                            .collect();
                        let lines: Vec<String> = shown
                            .iter()
                            .enumerate()
                            .map(|(i, p)| {
                                format!(
                                    "{}. {} — {} {}{}]",
                                    i + 1,
                                    p.title,
                                    price_text(p.price),
                                    ASIN_MARKER,
                                    p.asin
                                )
                            })
                            .collect();
                        ToolOutcome {
                            content: format!(
                                "Found (reply \"buy N\" to get a quote):\n{}",
                                lines.join("\n")
                            ),
                            is_error: false,
                            products: shown.iter().map(card).collect(),
                            presented: true,
                        }
                    }
                    Err(e) => error(format!("product search failed: {e}")),
                }
            }
            ToolCall::ProductDetails { asin } => {
                let Ok(asin) = catalog::Asin::parse(asin.as_str()) else {
                    return Ok(error("not an ASIN"));
                };
                match self.inner.catalog.product(&asin).await {
                    Ok(Some(p)) => text(format!(
                        "{} — {}, rated {} ({} reviews), {} {}{}]",
                        p.title,
                        price_text(p.price),
                        p.rating
                            .map_or_else(|| "unrated".to_owned(), |r| r.to_string()),
                        p.reviews,
                        p.url,
                        ASIN_MARKER,
                        p.asin
                    )),
                    Ok(None) => error(format!("no product {asin}")),
                    Err(e) => error(format!("product lookup failed: {e}")),
                }
            }
            ToolCall::ReadProfile => match store.load_profile(user).await? {
                Some(profile) => text(describe(&profile)),
                None => text("No profile saved yet."),
            },
            ToolCall::EditProfile(edit) => {
                let mut profile = store.load_profile(user).await?.unwrap_or_default();
                apply(&mut profile, edit.clone());
                store.save_profile(user, &profile, self.now()).await?;
                let missing: Vec<&str> =
                    profile.missing_fields().iter().map(|f| f.label()).collect();
                if missing.is_empty() {
                    text("Saved: your profile is complete.")
                } else {
                    text(format!("Saved. Still missing: {}.", missing.join(", ")))
                }
            }
            ToolCall::DeleteProfile => {
                text("I asked the user to confirm the deletion with the buttons.")
            }
            ToolCall::OrderHistory => {
                let records = store.machines_of_user(MachineKind::Checkout, user).await?;
                let lines: Vec<String> = records
                    .iter()
                    .filter_map(|r| CheckoutDoc::decode(r).ok().map(|d| order_line(&r.id, &d)))
                    .collect();
                if lines.is_empty() {
                    text("You have no orders yet.")
                } else {
                    text(lines.join("\n"))
                }
            }
            ToolCall::OrderStatus { order_id } => {
                let found = match Key::parse(order_id) {
                    Ok(id) => self.own_order(user, &id).await?,
                    Err(_) => None,
                };
                match found {
                    Some((id, doc)) => {
                        let mut line = order_line(&id, &doc);
                        if let Some(stage) = &doc.reported_stage {
                            line.push_str(&format!(" (merchant: {stage})"));
                        }
                        text(line)
                    }
                    // Someone else's order looks exactly like a missing one (invariant 5).
                    None => error(format!("you have no order {order_id}")),
                }
            }
            ToolCall::CheckBalance => text(self.balances_text(user).await?),
            ToolCall::SetSpendingLimits(limits) => {
                let policy = &self.inner.config.policy;
                let above = |own: Option<UsdcAmount>, ceiling: UsdcAmount, what: &str| {
                    own.filter(|own| *own > ceiling).map(|own| {
                        format!("{own} USDC is above this agent's {what} limit of {ceiling} USDC; yours can only be lower")
                    })
                };
                let refused = above(limits.per_order, policy.per_order_limit, "per-order")
                    .or_else(|| above(limits.per_day, policy.per_day_limit, "daily"));
                match refused {
                    Some(why) => error(why),
                    None => {
                        let mut parts = Vec::new();
                        if let Some(a) = limits.per_order {
                            parts.push(format!("{a} USDC per order"));
                        }
                        if let Some(a) = limits.per_day {
                            parts.push(format!("{a} USDC per day"));
                        }
                        text(format!("Your limits are now {}.", parts.join(" and ")))
                    }
                }
            }
            ToolCall::StartCheckout { asin } => {
                if self.start_checkout(user, asin).await? {
                    presented("Getting a quote; it will appear here with a confirmation menu.")
                } else {
                    presented("No quote yet: see the message above.")
                }
            }
        })
    }

    /// One of `user`'s own checkouts by merchant order id or checkout id (a user may name
    /// either).
    pub(crate) async fn own_order(
        &self,
        user: &Key,
        id: &Key,
    ) -> Result<Option<(Key, CheckoutDoc)>, AgentError> {
        let store = &self.inner.store;
        match store.machine_by_order(MachineKind::Checkout, id).await? {
            Some(record) => Self::owned(user, record),
            None => self.own_checkout(user, id).await,
        }
    }

    /// One of `user`'s own checkouts by checkout id: what the agent's own records name.
    pub(crate) async fn own_checkout(
        &self,
        user: &Key,
        id: &Key,
    ) -> Result<Option<(Key, CheckoutDoc)>, AgentError> {
        match self
            .inner
            .store
            .load_machine(MachineKind::Checkout, id)
            .await?
        {
            Some(record) => Self::owned(user, record),
            None => Ok(None),
        }
    }

    fn owned(user: &Key, record: MachineRecord) -> Result<Option<(Key, CheckoutDoc)>, AgentError> {
        if record.index.user.as_ref() != Some(user) {
            return Ok(None);
        }
        Ok(Some((record.id.clone(), CheckoutDoc::decode(&record)?)))
    }

    /// USDC and gas of `user`'s agent wallet on every configured network.
    pub(crate) async fn balances_text(&self, user: &Key) -> Result<String, AgentError> {
        let address = self.wallet_address(user)?;
        let mut lines = vec![format!("Your agent wallet {}:", address.to_checksum(None))];
        for chain in &self.inner.chains {
            match chain.balances(address).await {
                Ok(b) => lines.push(format!(
                    "{}: {} USDC",
                    b.network.v1_name(),
                    UsdcAmount::from_u256(b.usdc).map_or_else(|| "?".into(), |a| a.to_string())
                )),
                Err(e) => lines.push(format!("{}: unavailable ({e})", chain.network().v1_name())),
            }
        }
        Ok(lines.join("\n"))
    }
}
