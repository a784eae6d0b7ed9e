use banking::{
    AccountId, Money, MoneyTransfer, TransferCommand as C, TransferDetails, TransferError,
    TransferEvent as E, TransferState as S,
};
use es_core::Aggregate;

use crate::given_when_then;

fn check(given: &[E], when: C, then: Result<Vec<E>, TransferError>) {
    given_when_then::<MoneyTransfer>(given, when, then)
}

fn details() -> TransferDetails {
    TransferDetails {
        from_account_id: AccountId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
        to_account_id: AccountId::parse("22222222-2222-4222-8222-222222222222").unwrap(),
        amount: Money::from_minor(8000),
        date: time::macros::datetime!(2026-11-26 12:00 UTC),
        description: "rent".into(),
    }
}

/// The event histories that lead to each state.
fn history(state: S) -> Vec<E> {
    let d = details();
    match state {
        S::NotCreated => vec![],
        S::Initial => vec![E::MoneyTransferCreated(d)],
        S::Debited => vec![E::MoneyTransferCreated(d.clone()), E::DebitRecorded(d)],
        S::Completed => vec![
            E::MoneyTransferCreated(d.clone()),
            E::DebitRecorded(d.clone()),
            E::CreditRecorded(d),
        ],
        S::FailedDueToInsufficientFunds => vec![
            E::MoneyTransferCreated(d.clone()),
            E::FailedDebitRecorded(d),
        ],
        S::FailedAndRefunded => vec![
            E::MoneyTransferCreated(d.clone()),
            E::DebitRecorded(d.clone()),
            E::TransferRefunded(d),
        ],
    }
}

#[test]
fn creating_checks_the_accounts_and_amount() {
    check(
        &[],
        C::Create(details()),
        Ok(vec![E::MoneyTransferCreated(details())]),
    );
    let same = TransferDetails {
        to_account_id: details().from_account_id,
        ..details()
    };
    check(&[], C::Create(same), Err(TransferError::SameAccount));
    let zero = TransferDetails {
        amount: Money::ZERO,
        ..details()
    };
    check(&[], C::Create(zero), Err(TransferError::ZeroAmount));
    check(
        &history(S::Initial),
        C::Create(details()),
        Err(TransferError::AlreadyExists),
    );
}

#[test]
fn every_transition_checks_the_current_state() {
    let d = details();
    let invalid = |state, action| Err(TransferError::InvalidTransition { state, action });
    // (command, state, expected outcome)
    let cases: Vec<(C, S, Result<Vec<E>, TransferError>)> = vec![
        (C::RecordDebit, S::NotCreated, Err(TransferError::NotFound)),
        (
            C::RecordDebit,
            S::Initial,
            Ok(vec![E::DebitRecorded(d.clone())]),
        ),
        (C::RecordDebit, S::Debited, Ok(vec![])),
        (C::RecordDebit, S::Completed, Ok(vec![])),
        (C::RecordDebit, S::FailedAndRefunded, Ok(vec![])),
        (
            C::RecordDebit,
            S::FailedDueToInsufficientFunds,
            invalid(S::FailedDueToInsufficientFunds, "record a debit"),
        ),
        (
            C::RecordDebitFailed,
            S::Initial,
            Ok(vec![E::FailedDebitRecorded(d.clone())]),
        ),
        (
            C::RecordDebitFailed,
            S::FailedDueToInsufficientFunds,
            Ok(vec![]),
        ),
        (
            C::RecordDebitFailed,
            S::Debited,
            invalid(S::Debited, "record a failed debit"),
        ),
        (
            C::RecordDebitFailed,
            S::Completed,
            invalid(S::Completed, "record a failed debit"),
        ),
        (
            C::RecordCredit,
            S::Debited,
            Ok(vec![E::CreditRecorded(d.clone())]),
        ),
        (C::RecordCredit, S::Completed, Ok(vec![])),
        (
            C::RecordCredit,
            S::Initial,
            invalid(S::Initial, "record a credit"),
        ),
        (
            C::RecordCredit,
            S::FailedAndRefunded,
            invalid(S::FailedAndRefunded, "record a credit"),
        ),
        (
            C::RecordCredit,
            S::FailedDueToInsufficientFunds,
            invalid(S::FailedDueToInsufficientFunds, "record a credit"),
        ),
        (
            C::RecordRefund,
            S::Debited,
            Ok(vec![E::TransferRefunded(d.clone())]),
        ),
        (C::RecordRefund, S::FailedAndRefunded, Ok(vec![])),
        (
            C::RecordRefund,
            S::Completed,
            invalid(S::Completed, "record a refund"),
        ),
        (
            C::RecordRefund,
            S::Initial,
            invalid(S::Initial, "record a refund"),
        ),
    ];
    for (command, state, then) in cases {
        check(&history(state), command, then);
    }
}

#[test]
fn apply_moves_through_the_states() {
    for state in [
        S::NotCreated,
        S::Initial,
        S::Debited,
        S::Completed,
        S::FailedDueToInsufficientFunds,
        S::FailedAndRefunded,
    ] {
        let t: MoneyTransfer = es_core::aggregate::replay(history(state).iter());
        assert_eq!(t.state, state);
        assert_eq!(
            t.state.is_terminal(),
            matches!(
                state,
                S::Completed | S::FailedDueToInsufficientFunds | S::FailedAndRefunded
            )
        );
    }
}

#[test]
fn a_duplicate_event_applied_again_leaves_the_same_state() {
    let events = history(S::Completed);
    let once: MoneyTransfer = es_core::aggregate::replay(events.iter());
    let twice = events
        .iter()
        .fold(MoneyTransfer::default(), |s, e| s.apply(e).apply(e));
    assert_eq!(once, twice);
}

#[test]
fn states_have_the_api_spelling() {
    assert_eq!(
        serde_json::to_value(S::FailedDueToInsufficientFunds).unwrap(),
        "FAILED_DUE_TO_INSUFFICIENT_FUNDS"
    );
    assert_eq!(S::Completed.as_str(), "COMPLETED");
}
