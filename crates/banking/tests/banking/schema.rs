use banking::{AccountEvent, Money, TransferEvent};
use es_core::DomainEvent;
use serde_json::json;

#[test]
fn money_transfer_created_without_description_loads_with_a_default() {
    // As written by an older version: no description, no date.
    let data = json!({
        "from_account_id": "11111111-1111-4111-8111-111111111111",
        "to_account_id": "22222222-2222-4222-8222-222222222222",
        "amount": 8000
    });
    let event = TransferEvent::decode("MoneyTransferCreated", 1, data).unwrap();
    let d = event.details();
    assert_eq!(d.description, "");
    assert_eq!(d.amount, Money::from_minor(8000));
    assert_eq!(d.date, time::OffsetDateTime::UNIX_EPOCH);
}

#[test]
fn an_event_with_an_unknown_extra_field_loads() {
    let data = json!({
        "from_account_id": "11111111-1111-4111-8111-111111111111",
        "to_account_id": "22222222-2222-4222-8222-222222222222",
        "amount": 5,
        "description": "x",
        "memo": "added by a newer version"
    });
    let event = TransferEvent::decode("MoneyTransferCreated", 1, data).unwrap();
    assert_eq!(event.details().description, "x");
    let data =
        json!({"amount": 5, "transaction_id": "33333333-3333-4333-8333-333333333333", "memo": 1});
    assert!(matches!(
        AccountEvent::decode("AccountCredited", 1, data).unwrap(),
        AccountEvent::AccountCredited { .. }
    ));
}

#[test]
fn every_event_round_trips_through_its_stored_form() {
    let t = banking::TransferId::new();
    let events = [
        AccountEvent::AccountOpened {
            customer_id: None,
            title: "t".into(),
            description: String::new(),
            initial_balance: Money::from_minor(3),
        },
        AccountEvent::AccountDebited {
            amount: Money::from_minor(1),
            transaction_id: t,
        },
        AccountEvent::AccountClosed {},
    ];
    for e in events {
        let enc = e.encode().unwrap();
        assert_eq!(enc.event_type, e.event_type());
        assert_eq!(
            AccountEvent::decode(enc.event_type, enc.schema_version, enc.data).unwrap(),
            e
        );
    }
}

#[test]
fn a_float_or_string_amount_does_not_load() {
    for amount in [json!(1.5), json!("10"), json!(-1)] {
        let data =
            json!({"amount": amount, "transaction_id": "33333333-3333-4333-8333-333333333333"});
        assert!(
            AccountEvent::decode("AccountDebited", 1, data).is_err(),
            "{amount}"
        );
    }
}
