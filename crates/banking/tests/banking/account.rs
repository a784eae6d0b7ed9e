use banking::{
    Account, AccountCommand as C, AccountError, AccountEvent as E, CustomerId, Money, TransferId,
};

use crate::given_when_then;

fn check(given: &[E], when: C, then: Result<Vec<E>, AccountError>) {
    given_when_then::<Account>(given, when, then)
}

fn m(units: u64) -> Money {
    Money::from_minor(units)
}

fn opened(balance: u64) -> E {
    E::AccountOpened {
        customer_id: CustomerId::parse("c1").ok(),
        title: "Checking".into(),
        description: String::new(),
        initial_balance: m(balance),
    }
}

fn open_cmd(balance: u64) -> C {
    C::Open {
        customer_id: CustomerId::parse("c1").ok(),
        title: "Checking".into(),
        description: String::new(),
        initial_balance: m(balance),
    }
}

#[test]
fn opening_records_the_initial_balance_once() {
    check(&[], open_cmd(15000), Ok(vec![opened(15000)]));
    check(
        &[opened(1)],
        open_cmd(15000),
        Err(AccountError::AlreadyOpened),
    );
}

#[test]
fn commands_to_a_missing_account_fail_with_not_found() {
    let tx = TransferId::new();
    for cmd in [
        C::Debit {
            amount: m(1),
            transaction_id: tx,
        },
        C::Credit {
            amount: m(1),
            transaction_id: tx,
        },
        C::Refund {
            amount: m(1),
            transaction_id: tx,
        },
        C::Close,
    ] {
        check(&[], cmd, Err(AccountError::NotFound));
    }
}

#[test]
fn debit_within_balance_debits() {
    let tx = TransferId::new();
    check(
        &[opened(15000)],
        C::Debit {
            amount: m(8000),
            transaction_id: tx,
        },
        Ok(vec![E::AccountDebited {
            amount: m(8000),
            transaction_id: tx,
        }]),
    );
    check(
        &[opened(8000)],
        C::Debit {
            amount: m(8000),
            transaction_id: tx,
        },
        Ok(vec![E::AccountDebited {
            amount: m(8000),
            transaction_id: tx,
        }]),
    );
}

#[test]
fn debit_beyond_balance_fails_and_never_overdraws() {
    let tx = TransferId::new();
    let failed = E::AccountDebitFailedDueToInsufficientFunds {
        amount: m(20000),
        transaction_id: tx,
    };
    check(
        &[opened(15000)],
        C::Debit {
            amount: m(20000),
            transaction_id: tx,
        },
        Ok(vec![failed.clone()]),
    );
    // Previous debits count: 15000 - 8000 leaves 7000, which cannot cover 7001.
    let tx2 = TransferId::new();
    check(
        &[
            opened(15000),
            E::AccountDebited {
                amount: m(8000),
                transaction_id: tx,
            },
        ],
        C::Debit {
            amount: m(7001),
            transaction_id: tx2,
        },
        Ok(vec![E::AccountDebitFailedDueToInsufficientFunds {
            amount: m(7001),
            transaction_id: tx2,
        }]),
    );
}

#[test]
fn debit_of_a_closed_account_fails() {
    let tx = TransferId::new();
    check(
        &[opened(0), E::AccountClosed {}],
        C::Debit {
            amount: m(1),
            transaction_id: tx,
        },
        Ok(vec![E::AccountDebitFailedDueToInsufficientFunds {
            amount: m(1),
            transaction_id: tx,
        }]),
    );
}

#[test]
fn duplicate_debit_or_credit_for_the_same_transaction_changes_nothing() {
    let tx = TransferId::new();
    let debited = E::AccountDebited {
        amount: m(10),
        transaction_id: tx,
    };
    check(
        &[opened(100), debited.clone()],
        C::Debit {
            amount: m(10),
            transaction_id: tx,
        },
        Ok(vec![]),
    );
    let failed = E::AccountDebitFailedDueToInsufficientFunds {
        amount: m(1000),
        transaction_id: tx,
    };
    check(
        &[opened(100), failed],
        C::Debit {
            amount: m(10),
            transaction_id: tx,
        },
        Ok(vec![]),
    );
    let credited = E::AccountCredited {
        amount: m(10),
        transaction_id: tx,
    };
    check(
        &[opened(0), credited],
        C::Credit {
            amount: m(10),
            transaction_id: tx,
        },
        Ok(vec![]),
    );
    let refunded = E::AccountRefunded {
        amount: m(10),
        transaction_id: tx,
    };
    check(
        &[opened(100), debited, refunded],
        C::Refund {
            amount: m(10),
            transaction_id: tx,
        },
        Ok(vec![]),
    );
}

#[test]
fn credit_of_a_closed_account_is_refused() {
    let tx = TransferId::new();
    check(
        &[opened(0), E::AccountClosed {}],
        C::Credit {
            amount: m(5),
            transaction_id: tx,
        },
        Err(AccountError::Closed),
    );
    check(
        &[opened(0)],
        C::Credit {
            amount: m(5),
            transaction_id: tx,
        },
        Ok(vec![E::AccountCredited {
            amount: m(5),
            transaction_id: tx,
        }]),
    );
}

#[test]
fn credit_that_would_overflow_is_refused() {
    let tx = TransferId::new();
    check(
        &[opened(u64::MAX)],
        C::Credit {
            amount: m(1),
            transaction_id: tx,
        },
        Err(AccountError::Overflow),
    );
}

#[test]
fn refund_only_returns_a_debit_that_happened_even_to_a_closed_account() {
    let tx = TransferId::new();
    check(
        &[opened(100)],
        C::Refund {
            amount: m(10),
            transaction_id: tx,
        },
        Err(AccountError::NothingToRefund { transaction_id: tx }),
    );
    let history = [
        opened(10),
        E::AccountDebited {
            amount: m(10),
            transaction_id: tx,
        },
        E::AccountClosed {},
    ];
    check(
        &history,
        C::Refund {
            amount: m(10),
            transaction_id: tx,
        },
        Ok(vec![E::AccountRefunded {
            amount: m(10),
            transaction_id: tx,
        }]),
    );
}

#[test]
fn close_only_at_zero_balance() {
    check(
        &[opened(1)],
        C::Close,
        Err(AccountError::NonZeroBalance { balance: m(1) }),
    );
    check(&[opened(0)], C::Close, Ok(vec![E::AccountClosed {}]));
    let tx = TransferId::new();
    check(
        &[
            opened(10),
            E::AccountDebited {
                amount: m(10),
                transaction_id: tx,
            },
        ],
        C::Close,
        Ok(vec![E::AccountClosed {}]),
    );
    // Closing twice is a duplicate and changes nothing.
    check(&[opened(0), E::AccountClosed {}], C::Close, Ok(vec![]));
}

#[test]
fn apply_tracks_the_balance() {
    let tx = TransferId::new();
    let events = [
        opened(15000),
        E::AccountDebited {
            amount: m(8000),
            transaction_id: tx,
        },
        E::AccountCredited {
            amount: m(500),
            transaction_id: TransferId::new(),
        },
        E::AccountDebitFailedDueToInsufficientFunds {
            amount: m(99999),
            transaction_id: TransferId::new(),
        },
        E::AccountRefunded {
            amount: m(8000),
            transaction_id: tx,
        },
    ];
    let account: Account = es_core::aggregate::replay(events.iter());
    assert_eq!(account.balance, m(15500));
    let delta: i64 = events.iter().map(E::balance_delta).sum();
    assert_eq!(delta, 15500);
}

#[test]
fn the_state_remembers_a_bounded_number_of_transactions() {
    // Given more transaction steps than the state keeps, the oldest is forgotten: a repeat of it
    // is decided again (the event store drops that repeat by its derived event id), and a refund
    // can no longer be checked against it, so it is accepted.
    let first = TransferId::new();
    let mut history = vec![
        opened(1_000_000),
        E::AccountDebited {
            amount: m(1),
            transaction_id: first,
        },
    ];
    for _ in 0..Account::RECENT {
        history.push(E::AccountCredited {
            amount: m(1),
            transaction_id: TransferId::new(),
        });
    }
    let state: Account = es_core::aggregate::replay(history.iter());
    let snapshot = serde_json::to_string(&state).unwrap();
    assert!(
        snapshot.len() < 60 * Account::RECENT,
        "snapshot of {} bytes",
        snapshot.len()
    );
    check(
        &history,
        C::Debit {
            amount: m(1),
            transaction_id: first,
        },
        Ok(vec![E::AccountDebited {
            amount: m(1),
            transaction_id: first,
        }]),
    );
    let unknown = TransferId::new();
    check(
        &history,
        C::Refund {
            amount: m(1),
            transaction_id: unknown,
        },
        Ok(vec![E::AccountRefunded {
            amount: m(1),
            transaction_id: unknown,
        }]),
    );
    // The most recent steps are still remembered.
    let last = match history.last() {
        Some(E::AccountCredited { transaction_id, .. }) => *transaction_id,
        _ => unreachable!(),
    };
    check(
        &history,
        C::Credit {
            amount: m(1),
            transaction_id: last,
        },
        Ok(vec![]),
    );
}
