use banking::saga::{
    account_command_for, compensation_for, transfer_command_for, ACCOUNTS_SAGA_EVENT_TYPES,
    TRANSFERS_SAGA_EVENT_TYPES,
};
use banking::testing::{every_account_event, every_transfer_event};
use banking::{
    AccountCommand, AccountError, AccountEvent, AccountId, Money, TransferCommand, TransferDetails,
    TransferEvent, TransferId,
};
use es_core::DomainEvent;

fn details() -> TransferDetails {
    TransferDetails {
        from_account_id: AccountId::new(),
        to_account_id: AccountId::new(),
        amount: Money::from_minor(80),
        date: time::OffsetDateTime::UNIX_EPOCH,
        description: String::new(),
    }
}

#[test]
fn transfer_created_debits_the_from_account_and_debit_recorded_credits_the_to_account() {
    let (t, d) = (TransferId::new(), details());
    let (account, cmd, _) =
        account_command_for(t, &TransferEvent::MoneyTransferCreated(d.clone())).unwrap();
    assert_eq!(
        (account, cmd),
        (
            d.from_account_id,
            AccountCommand::Debit {
                amount: d.amount,
                transaction_id: t
            }
        )
    );
    let (account, cmd, _) =
        account_command_for(t, &TransferEvent::DebitRecorded(d.clone())).unwrap();
    assert_eq!(
        (account, cmd),
        (
            d.to_account_id,
            AccountCommand::Credit {
                amount: d.amount,
                transaction_id: t
            }
        )
    );
    for terminal in [
        TransferEvent::CreditRecorded(d.clone()),
        TransferEvent::FailedDebitRecorded(d.clone()),
        TransferEvent::TransferRefunded(d),
    ] {
        assert_eq!(account_command_for(t, &terminal), None);
    }
}

#[test]
fn a_closed_or_missing_to_account_refunds_the_from_account() {
    let (t, d) = (TransferId::new(), details());
    for err in [AccountError::Closed, AccountError::NotFound] {
        let (account, cmd, _) = compensation_for(t, &d, &err).unwrap();
        assert_eq!(
            (account, cmd),
            (
                d.from_account_id,
                AccountCommand::Refund {
                    amount: d.amount,
                    transaction_id: t
                }
            )
        );
    }
    assert_eq!(compensation_for(t, &d, &AccountError::Overflow), None);
}

#[test]
fn account_events_are_recorded_on_their_transfer() {
    let t = TransferId::new();
    let a = Money::from_minor(1);
    let cases = [
        (
            AccountEvent::AccountDebited {
                amount: a,
                transaction_id: t,
            },
            Some((t, TransferCommand::RecordDebit)),
        ),
        (
            AccountEvent::AccountDebitFailedDueToInsufficientFunds {
                amount: a,
                transaction_id: t,
            },
            Some((t, TransferCommand::RecordDebitFailed)),
        ),
        (
            AccountEvent::AccountCredited {
                amount: a,
                transaction_id: t,
            },
            Some((t, TransferCommand::RecordCredit)),
        ),
        (
            AccountEvent::AccountRefunded {
                amount: a,
                transaction_id: t,
            },
            Some((t, TransferCommand::RecordRefund)),
        ),
        (AccountEvent::AccountClosed {}, None),
    ];
    for (event, expected) in cases {
        assert_eq!(transfer_command_for(&event), expected, "{event:?}");
    }
}

#[test]
fn the_type_lists_name_every_variant_once() {
    let account: Vec<&str> = every_account_event()
        .iter()
        .map(DomainEvent::event_type)
        .collect();
    assert_eq!(account, AccountEvent::TYPES);
    let transfer: Vec<&str> = every_transfer_event()
        .iter()
        .map(DomainEvent::event_type)
        .collect();
    assert_eq!(transfer, TransferEvent::TYPES);
}

#[test]
fn each_saga_subscribes_to_exactly_the_events_it_reacts_to() {
    let t = TransferId::new();
    let reacted: Vec<&str> = every_transfer_event()
        .iter()
        .filter(|e| account_command_for(t, e).is_some())
        .map(DomainEvent::event_type)
        .collect();
    assert_eq!(reacted, ACCOUNTS_SAGA_EVENT_TYPES);
    let reacted: Vec<&str> = every_account_event()
        .iter()
        .filter(|e| transfer_command_for(e).is_some())
        .map(DomainEvent::event_type)
        .collect();
    let mut expected = TRANSFERS_SAGA_EVENT_TYPES.to_vec();
    expected.sort_by_key(|t| AccountEvent::TYPES.iter().position(|a| a == t));
    assert_eq!(reacted, expected);
}
