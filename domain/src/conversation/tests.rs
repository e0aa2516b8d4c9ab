use super::*;
use crate::ports::store::Key;
use crate::settlement::RequestId;
use proptest::prelude::*;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

struct Harness {
    conversation: Conversation,
    now: u64,
    messages: u64,
}

impl Harness {
    fn new() -> Self {
        Self {
            conversation: Conversation::default(),
            now: NOW,
            messages: 0,
        }
    }

    fn handle(&mut self, input: Input) -> Result<Vec<Effect>, Rejected> {
        let before = self.conversation.clone();
        let result = self.conversation.handle(self.now, input);
        if result.is_err() {
            assert_eq!(
                self.conversation, before,
                "a rejected input changed the state"
            );
        }
        let json = serde_json::to_string(&self.conversation).unwrap();
        assert_eq!(
            serde_json::from_str::<Conversation>(&json).unwrap(),
            self.conversation
        );
        result
    }

    fn send(&mut self, content: InboundContent) -> Vec<Effect> {
        self.messages += 1;
        let id = Key::parse(&format!("msg-{}", self.messages)).unwrap();
        self.handle(Input::Inbound(Inbound { id, content }))
            .unwrap()
    }

    fn say(&mut self, text: &str) -> Vec<Effect> {
        self.send(InboundContent::Text(text.into()))
    }

    /// Past the first-contact main menu.
    fn started() -> Self {
        let mut h = Self::new();
        h.say("hi");
        h
    }
}

fn menus(effects: &[Effect]) -> Vec<&Menu> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Send(Outgoing::Actions(m)) = e {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

fn texts(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Send(Outgoing::Text(t)) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect()
}

fn brain_request(effects: &[Effect]) -> Option<RequestId> {
    effects.iter().find_map(|e| {
        if let Effect::AskBrain { request, .. } = e {
            Some(*request)
        } else {
            None
        }
    })
}

#[test]
fn first_contact_is_acknowledged_and_greeted_with_the_main_menu() {
    let mut h = Harness::new();
    let effects = h.say("hi");
    assert!(matches!(&effects[0], Effect::React { emoji, .. } if emoji == ACK_EMOJI));
    let sent = menus(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, MenuKind::Main);
    assert_eq!(sent[0].actions.len(), 5);
    assert!(
        brain_request(&effects).is_none(),
        "a greeting needs no model call"
    );
    assert!(
        sent[0]
            .fallback_text()
            .ends_with("[5] Get support\n\nReply with the number to select")
    );
}

#[test]
fn the_main_menu_returns_after_three_hours_of_silence_only() {
    let mut h = Harness::started();
    h.now += SILENCE_BEFORE_MAIN_MENU - 1;
    assert!(menus(&h.say("search socks")).is_empty());
    h.now += SILENCE_BEFORE_MAIN_MENU;
    let effects = h.say("search socks");
    assert_eq!(menus(&effects)[0].kind, MenuKind::Main);
    assert!(
        brain_request(&effects).is_some(),
        "the question is still answered"
    );
}

#[test]
fn a_number_selects_that_action_of_the_latest_menu() {
    let mut h = Harness::started();
    let effects = h.say("2");
    assert_eq!(h.conversation.context, Context::Profile, "{effects:?}");
    let effects = h.say("9");
    assert_eq!(
        texts(&effects),
        vec!["Please reply with a number from 1 to 5."]
    );
    let effects = h.say("3");
    assert_eq!(menus(&effects)[0].kind, MenuKind::Wallet);
    assert_eq!(
        h.say("2"),
        vec![
            Effect::React {
                to: Key::parse("msg-5").unwrap(),
                emoji: ACK_EMOJI.into()
            },
            Effect::RequestFunding {
                amount: Some(TOP_UP)
            }
        ]
    );
}

#[test]
fn intents_are_honoured_only_for_menus_we_sent_that_have_not_expired() {
    let mut h = Harness::started();
    let main = h.conversation.menus[0].id.clone();
    let effects = h.send(InboundContent::Intent {
        menu_id: "menu-999".into(),
        action_id: "shopping".into(),
    });
    assert_eq!(
        texts(&effects),
        vec!["I did not send that menu. Send /menu for a fresh one."]
    );
    let effects = h.send(InboundContent::Intent {
        menu_id: main.clone(),
        action_id: "topup".into(),
    });
    assert_eq!(
        texts(&effects),
        vec!["That option is not in the menu. Send /menu for a fresh one."]
    );
    h.send(InboundContent::Intent {
        menu_id: main.clone(),
        action_id: "shopping".into(),
    });
    assert_eq!(h.conversation.context, Context::Shopping);
    h.now += MENU_LIFETIME;
    let effects = h.send(InboundContent::Intent {
        menu_id: main,
        action_id: "profile".into(),
    });
    assert_eq!(
        texts(&effects),
        vec!["That menu has expired. Send /menu for a fresh one."]
    );
    assert_eq!(h.conversation.context, Context::Shopping);
}

#[test]
fn slash_commands_work_in_any_context() {
    let mut h = Harness::started();
    assert_eq!(texts(&h.say("/help")), vec![HELP_TEXT]);
    assert_eq!(menus(&h.say("/agents"))[0].kind, MenuKind::Assistants);
    h.say("1");
    assert_eq!(h.conversation.context, Context::Shopping);
    assert_eq!(menus(&h.say("/menu"))[0].kind, MenuKind::Main);
    assert_eq!(h.conversation.context, Context::Menu);
    let effects = h.say("/clear");
    assert!(effects.contains(&Effect::ClearHistory));
    assert!(
        h.conversation.menus.is_empty(),
        "old menus cannot be answered after /clear"
    );
}

#[test]
fn valid_tool_proposals_run_and_invalid_ones_go_back_to_the_brain() {
    let mut h = Harness::started();
    let request = brain_request(&h.say("find me running socks")).unwrap();
    let proposals = vec![
        ToolProposal {
            id: "t1".into(),
            name: "search_products".into(),
            input: json!({"query": "running socks"}),
        },
        ToolProposal {
            id: "t2".into(),
            name: "read_profile".into(),
            input: json!({"user_id": "someone-else"}),
        },
        ToolProposal {
            id: "t3".into(),
            name: "send_token".into(),
            input: json!({"to": "0xabc", "amount": "100"}),
        },
    ];
    let effects = h
        .handle(Input::BrainAnswered {
            request,
            text: None,
            proposals,
        })
        .unwrap();
    let run: Vec<_> = effects
        .iter()
        .filter(|e| matches!(e, Effect::RunTool { .. }))
        .collect();
    assert_eq!(run.len(), 1, "only the valid proposal runs: {effects:?}");
    let Effect::RunTool {
        request,
        call_id,
        call,
    } = run[0]
    else {
        unreachable!()
    };
    assert_eq!(
        call,
        &ToolCall::SearchProducts {
            query: "running socks".into()
        }
    );
    let outcome = ToolOutcome {
        content: "4 products".into(),
        is_error: false,
        products: vec![ProductCard {
            asin: "B0SOCKS001".into(),
            title: "Running socks, 6 pairs".into(),
            price: Some(crate::UsdcAmount::from_usdc(12)),
            ..Default::default()
        }],
        presented: true,
    };
    let effects = h
        .handle(Input::ToolFinished {
            request: *request,
            call_id: call_id.clone(),
            outcome,
        })
        .unwrap();
    let quick_buy = menus(&effects);
    assert_eq!(quick_buy[0].kind, MenuKind::QuickBuy);
    assert_eq!(quick_buy[0].actions[0].id, "buy:B0SOCKS001");
    let Some(Effect::AskBrain { tool_results, .. }) = effects
        .iter()
        .find(|e| matches!(e, Effect::AskBrain { .. }))
    else {
        panic!()
    };
    assert_eq!(
        tool_results.len(),
        3,
        "results and both tool errors go back together"
    );
    assert!(
        tool_results
            .iter()
            .any(|r| r.is_error && r.content.contains("unknown field `user_id`"))
    );
    assert!(
        tool_results
            .iter()
            .any(|r| r.is_error && r.content.contains("no tool named \"send_token\""))
    );
    // The quick-buy button starts a checkout directly.
    let menu_id = quick_buy[0].id.clone();
    let effects = h.send(InboundContent::Intent {
        menu_id,
        action_id: "buy:B0SOCKS001".into(),
    });
    assert!(
        matches!(effects.as_slice(), [Effect::StartCheckout { asin }] if asin.as_str() == "B0SOCKS001")
    );
}

#[test]
fn a_quote_is_confirmed_only_by_the_user_answering_its_menu() {
    let mut h = Harness::started();
    // "yes" with no quote on screen is just text for the brain.
    assert!(brain_request(&h.say("yes")).is_some());
    let effects = h
        .handle(Input::Present(Presentation::Quote {
            text: "Earbuds 12.34 + 0.31 fee = 12.65 USDC on base-sepolia".into(),
            card: None,
        }))
        .unwrap();
    assert_eq!(menus(&effects)[0].kind, MenuKind::Confirm);
    let effects = h.say("yes");
    assert!(effects.contains(&Effect::ConfirmPurchase));
    // The confirmation menu is used up.
    assert!(!h.say("yes").contains(&Effect::ConfirmPurchase));
    h.handle(Input::Present(Presentation::Quote {
        text: "again".into(),
        card: None,
    }))
    .unwrap();
    assert!(h.say("2").contains(&Effect::DeclinePurchase));
}

#[test]
fn a_yes_to_the_profile_deletion_question_deletes_the_profile_and_pays_nothing() {
    let mut h = Harness::started();
    h.handle(Input::Present(Presentation::Quote {
        text: "Earbuds 12.34 + 0.31 fee = 12.65 USDC on base-sepolia".into(),
        card: None,
    }))
    .unwrap();
    let _asked = h.conversation.ask_to_delete_profile(h.now);
    let effects = h.say("yes");
    assert!(effects.contains(&Effect::DeleteProfile), "{effects:?}");
    assert!(!effects.contains(&Effect::ConfirmPurchase), "{effects:?}");
    // The quote's own menu is the latest again, and still answers for the purchase.
    assert!(h.say("yes").contains(&Effect::ConfirmPurchase));
}

#[test]
fn a_newer_quote_retires_the_confirmation_menu_of_the_quote_before_it() {
    let mut h = Harness::started();
    let quote = |text: &str| {
        Input::Present(Presentation::Quote {
            text: text.into(),
            card: None,
        })
    };
    let first = h.handle(quote("Earbuds: 12.65 USDC")).unwrap();
    let stale = menus(&first)[0].id.clone();
    let second = h.handle(quote("Headphones: 44.19 USDC")).unwrap();
    let fresh = menus(&second)[0].id.clone();
    let effects = h.send(InboundContent::Intent {
        menu_id: stale,
        action_id: "confirm".into(),
    });
    assert!(!effects.contains(&Effect::ConfirmPurchase), "{effects:?}");
    assert_eq!(
        texts(&effects),
        ["I did not send that menu. Send /menu for a fresh one."]
    );
    let effects = h.send(InboundContent::Intent {
        menu_id: fresh,
        action_id: "confirm".into(),
    });
    assert!(effects.contains(&Effect::ConfirmPurchase));
}

#[test]
fn stale_brain_answers_are_rejected() {
    let mut h = Harness::started();
    let request = brain_request(&h.say("hello there, what can you do")).unwrap();
    let stale = RequestId(request.0 + 10);
    assert!(
        h.handle(Input::BrainAnswered {
            request: stale,
            text: Some("hi".into()),
            proposals: vec![]
        })
        .is_err()
    );
    let effects = h
        .handle(Input::BrainAnswered {
            request,
            text: Some("I can shop for you.".into()),
            proposals: vec![],
        })
        .unwrap();
    assert_eq!(texts(&effects), vec!["I can shop for you."]);
    assert!(
        h.handle(Input::BrainAnswered {
            request,
            text: None,
            proposals: vec![]
        })
        .is_err(),
        "answered once"
    );
}

#[test]
fn edit_profile_validates_every_field_the_model_sends() {
    let ok = ToolProposal {
        id: "1".into(),
        name: "edit_profile".into(),
        input: json!({"name": "Pat Lee", "state": "wa", "postal_code": "98101"}),
    };
    assert!(matches!(
        ToolCall::from_proposal(&ok),
        Ok(ToolCall::EditProfile(_))
    ));
    let bad_zip = ToolProposal {
        id: "2".into(),
        name: "edit_profile".into(),
        input: json!({"postal_code": "9810"}),
    };
    assert!(
        ToolCall::from_proposal(&bad_zip)
            .unwrap_err()
            .to_string()
            .contains("ZIP")
    );
    let other_user = ToolProposal {
        id: "3".into(),
        name: "edit_profile".into(),
        input: json!({"inboxId": "victim", "name": "x"}),
    };
    assert!(ToolCall::from_proposal(&other_user).is_err());
}

/// Answers the brain request in `effects` with one proposal and returns the effects.
fn propose(
    h: &mut Harness,
    effects: &[Effect],
    name: &str,
    input: serde_json::Value,
) -> Vec<Effect> {
    let request = brain_request(effects).unwrap();
    h.handle(Input::BrainAnswered {
        request,
        text: None,
        proposals: vec![ToolProposal {
            id: "call-1".into(),
            name: name.into(),
            input,
        }],
    })
    .unwrap()
}

#[test]
fn a_profile_change_must_be_in_the_users_own_words() {
    let mut h = Harness::started();
    let asked = h.say("ship to 1 Main St, Seattle, WA 98101 please");
    let ok = propose(
        &mut h,
        &asked,
        "edit_profile",
        json!({"line1": "1 main st", "city": "Seattle", "state": "wa", "postal_code": "98101"}),
    );
    assert!(
        ok.iter().any(|e| matches!(
            e,
            Effect::RunTool {
                call: ToolCall::EditProfile(_),
                ..
            }
        )),
        "letter case aside, every value is in the message: {ok:?}"
    );

    let mut h = Harness::started();
    let asked = h.say("search usb hub");
    let injected = propose(
        &mut h,
        &asked,
        "edit_profile",
        json!({"line1": "666 Attacker Way", "city": "Reno", "state": "NV", "postal_code": "89501"}),
    );
    assert!(!injected.iter().any(|e| matches!(e, Effect::RunTool { .. })));
    let Some(Effect::AskBrain { tool_results, .. }) = injected
        .iter()
        .find(|e| matches!(e, Effect::AskBrain { .. }))
    else {
        panic!("the refusal goes back to the brain: {injected:?}")
    };
    assert!(tool_results[0].is_error);
    assert!(
        tool_results[0]
            .content
            .contains("not in the user's own message")
    );
}

#[test]
fn spending_limits_are_set_only_with_amounts_the_user_wrote_and_only_lower_the_policy() {
    let mut h = Harness::started();
    let asked = h.say("please limit me to 20 per order");
    let ok = propose(
        &mut h,
        &asked,
        "set_spending_limits",
        json!({"per_order": "20"}),
    );
    let Some(Effect::RunTool {
        call: ToolCall::SetSpendingLimits(limits),
        ..
    }) = ok.iter().find(|e| matches!(e, Effect::RunTool { .. }))
    else {
        panic!("{ok:?}")
    };
    assert_eq!(limits.per_order, Some(crate::UsdcAmount::from_usdc(20)));

    let mut h = Harness::started();
    let asked = h.say("search usb hub");
    let injected = propose(
        &mut h,
        &asked,
        "set_spending_limits",
        json!({"per_day": "100000"}),
    );
    assert!(!injected.iter().any(|e| matches!(e, Effect::RunTool { .. })));

    let policy = crate::checkout::CheckoutPolicy {
        tokens: vec![],
        pay_to_allowlist: vec![],
        fee: crate::money::FeeRate::ZERO,
        per_order_limit: crate::UsdcAmount::from_usdc(30),
        per_day_limit: crate::UsdcAmount::from_usdc(100),
    };
    let own = crate::checkout::SpendingLimits {
        per_order: Some(crate::UsdcAmount::from_usdc(5)),
        per_day: Some(crate::UsdcAmount::from_usdc(1000)),
    };
    let lowered = policy.lowered_to(&own);
    assert_eq!(lowered.per_order_limit, crate::UsdcAmount::from_usdc(5));
    assert_eq!(
        lowered.per_day_limit,
        crate::UsdcAmount::from_usdc(100),
        "a user's limit never raises the configured one"
    );
}

#[test]
fn a_turn_whose_results_the_user_already_sees_ends_without_another_model_call() {
    let mut h = Harness::started();
    let asked = h.say("find me running socks");
    let run = propose(
        &mut h,
        &asked,
        "search_products",
        json!({"query": "running socks"}),
    );
    let Some(Effect::RunTool {
        request, call_id, ..
    }) = run.first()
    else {
        panic!("{run:?}")
    };
    let (request, call_id) = (*request, call_id.clone());
    let card = ProductCard {
        asin: "B0SOCKS001".into(),
        title: "Running socks, 6 pairs".into(),
        ..Default::default()
    };
    let mut shown = h.conversation.clone();
    let effects = shown
        .handle(
            NOW,
            Input::ToolFinished {
                request,
                call_id: call_id.clone(),
                outcome: ToolOutcome {
                    content: "1 product".into(),
                    is_error: false,
                    products: vec![card.clone()],
                    presented: true,
                },
            },
        )
        .unwrap();
    assert!(!effects.iter().any(|e| matches!(e, Effect::AskBrain { .. })));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Remember { tool_results } if tool_results.len() == 1))
    );
    assert!(shown.turn.is_none(), "the turn is over");

    // The same result, not presented (say, the search failed): the brain explains it.
    let effects = h
        .handle(Input::ToolFinished {
            request,
            call_id,
            outcome: ToolOutcome {
                content: "product search failed".into(),
                is_error: true,
                products: vec![],
                presented: false,
            },
        })
        .unwrap();
    assert!(effects.iter().any(|e| matches!(e, Effect::AskBrain { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a user (or a prompt-injected product title echoed back) sends, a purchase is
    /// confirmed only by answering a confirmation menu that was presented.
    #[test]
    fn purchases_are_confirmed_only_through_a_presented_confirmation(
        inputs in proptest::collection::vec(prop_oneof![
            Just("yes".to_owned()), Just("1".to_owned()), Just("2".to_owned()), Just("confirm".to_owned()),
            Just("/clear".to_owned()), Just("/menu".to_owned()), "[a-z0-9 ]{0,12}".prop_map(|s| s),
            Just("PRESENT".to_owned()), Just("WAIT".to_owned()),
        ], 1..25)
    ) {
        let mut h = Harness::new();
        let mut confirm_menus_shown = 0usize;
        let mut confirmations = 0usize;
        for input in inputs {
            let effects = match input.as_str() {
                "PRESENT" => {
                    confirm_menus_shown += 1;
                    h.handle(Input::Present(Presentation::Quote { text: "quote".into(), card: None })).unwrap()
                }
                "WAIT" => { h.now += MENU_LIFETIME / 2; continue; }
                text => h.say(text),
            };
            confirmations += effects.iter().filter(|e| matches!(e, Effect::ConfirmPurchase)).count();
            prop_assert!(confirmations <= confirm_menus_shown, "more confirmations than confirmation menus");
        }
    }
}
