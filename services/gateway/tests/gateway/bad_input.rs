//! Bad input gets a 4xx with a JSON error naming the field, never a 500.

use serde_json::{json, Value};

use crate::Fleet;

async fn check(fleet: &Fleet, method: &str, path: &str, body: Option<Value>, field: Option<&str>) {
    let (status, answer) = fleet.call(method, path, body.clone()).await;
    assert!(
        (400..500).contains(&status),
        "{method} {path} {body:?}: expected a 4xx, got {status} {answer}"
    );
    assert!(answer["error"].is_string(), "{method} {path}: {answer}");
    if let Some(field) = field {
        assert_eq!(answer["field"], field, "{method} {path} {body:?}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_a_4xx_naming_the_field() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("a", 100).await;
    let b = fleet.open_account("b", 100).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let transfer = |from: &str, to: &str, amount: Value| {
        Some(json!({"from_account_id": from, "to_account_id": to, "amount": amount}))
    };
    let cases: Vec<(&str, String, Option<Value>, Option<&str>)> = vec![
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &b, json!(-5)),
            Some("amount"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &b, json!(0)),
            Some("amount"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &b, json!(1.5)),
            Some("amount"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &b, json!("10")),
            Some("amount"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            Some(json!({"from_account_id": a, "to_account_id": b})),
            Some("amount"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            Some(json!({"to_account_id": b, "amount": 1})),
            Some("from_account_id"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &unknown, json!(1)),
            Some("to_account_id"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&unknown, &b, json!(1)),
            Some("from_account_id"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer("12x", &b, json!(1)),
            Some("from_account_id"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            transfer(&a, &a, json!(1)),
            Some("to_account_id"),
        ),
        (
            "POST",
            "/api/transfers".into(),
            Some(json!({"from_account_id": 7, "to_account_id": b, "amount": 1})),
            Some("from_account_id"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "x", "initial_balance": -1})),
            Some("initial_balance"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "x", "initial_balance": 2.5})),
            Some("initial_balance"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "x", "initial_balance": "5"})),
            Some("initial_balance"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"initial_balance": 5})),
            Some("title"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "x"})),
            Some("initial_balance"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "", "initial_balance": 5})),
            Some("title"),
        ),
        (
            "POST",
            "/api/accounts".into(),
            Some(json!({"title": "x", "initial_balance": 5, "customer_id": "no spaces"})),
            Some("customer_id"),
        ),
        (
            "GET",
            "/api/accounts/not-a-uuid".into(),
            None,
            Some("account_id"),
        ),
        (
            "GET",
            format!("/api/accounts/{a}?min_version=abc"),
            None,
            None,
        ),
        (
            "GET",
            "/api/transfers/xyz".into(),
            None,
            Some("transfer_id"),
        ),
        (
            "DELETE",
            "/api/accounts/42".into(),
            None,
            Some("account_id"),
        ),
        (
            "DELETE",
            format!("/api/accounts/{unknown}"),
            None,
            Some("account_id"),
        ),
        ("DELETE", format!("/api/accounts/{a}"), None, None),
        (
            "GET",
            "/api/customers/bad%20id/accounts".into(),
            None,
            Some("customer_id"),
        ),
        ("GET", format!("/api/accounts/{unknown}"), None, None),
    ];
    for (method, path, body, field) in cases {
        check(&fleet, method, &path, body, field).await;
    }

    // A body that is not JSON at all.
    let response = fleet
        .http
        .post(format!("{}/api/transfers", fleet.gateway))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400);
}
