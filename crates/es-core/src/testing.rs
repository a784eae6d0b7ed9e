//! Given/when/then tests for aggregates: given past events, when a command arrives, then expect
//! these events or this error.
//!
//! ```text
//! AggregateTest::<Account>::given([opened(100)])
//!     .when(AccountCommand::Debit { amount: 30 })
//!     .then_expect_events([debited(30)]);
//! ```
//!
//! `then_expect_events` also checks that each produced event survives the stored-JSON round trip
//! (`encode` then `decode`), which catches an event type that does not match its serde name.

use crate::{replay, Aggregate, DomainEvent};

/// The "given" and "when" of an aggregate test.
#[derive(Debug)]
pub struct AggregateTest<A: Aggregate> {
    state: A,
}

/// The outcome of `when`, to check with one of the `then_*` methods.
#[derive(Debug)]
#[must_use = "call a then_expect_* method to check the outcome"]
pub struct AggregateTestOutcome<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state that these past events produce.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let events: Vec<A::Event> = events.into_iter().collect();
        Self {
            state: replay::<A>(&events),
        }
    }

    /// Starts from the default state.
    pub fn given_no_previous_events() -> Self {
        Self {
            state: A::default(),
        }
    }

    /// Runs the decision.
    pub fn when(self, command: A::Command) -> AggregateTestOutcome<A> {
        let result = self.state.handle(command);
        AggregateTestOutcome {
            state: self.state,
            result,
        }
    }
}

impl<A: Aggregate> AggregateTestOutcome<A> {
    /// Passes when the command produced exactly `expected`, in order.
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) -> A
    where
        A::Event: PartialEq,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error}"),
        };
        assert_eq!(events, expected, "the command produced other events");
        for event in &events {
            let encoded = match event.encode() {
                Ok(encoded) => encoded,
                Err(error) => panic!("event {event:?} cannot be stored: {error}"),
            };
            match A::Event::decode(encoded.event_type, encoded.schema_version, encoded.data) {
                Ok(back) => assert_eq!(&back, event, "event changed in the stored-JSON round trip"),
                Err(error) => panic!("event {event:?} cannot be loaded back: {error}"),
            }
        }
        events.iter().fold(self.state, A::apply)
    }

    /// Passes when the command produced no events.
    pub fn then_expect_no_events(self) -> A
    where
        A::Event: PartialEq,
    {
        self.then_expect_events([])
    }

    /// Passes when the command failed with `expected`.
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
            Err(error) => assert_eq!(error, expected, "the command failed differently"),
        }
    }

    /// Passes when the command failed with an error whose message is `expected`.
    pub fn then_expect_error_message(self, expected: &str) {
        match self.result {
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
            Err(error) => assert_eq!(
                error.to_string(),
                expected,
                "the command failed differently"
            ),
        }
    }

    /// The raw outcome, for checks the `then_*` methods do not cover.
    pub fn inspect_result(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// A tiny wallet: no overdraft, and a closed wallet refuses everything.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Wallet {
        open: bool,
        balance: i64,
    }

    #[derive(Debug)]
    enum WalletCommand {
        Open,
        Deposit(i64),
        Withdraw(i64),
        Close,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum WalletEvent {
        Opened,
        Deposited { amount: i64 },
        Withdrawn { amount: i64 },
        Closed,
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum WalletError {
        #[error("wallet is not open")]
        NotOpen,
        #[error("wallet is already open")]
        AlreadyOpen,
        #[error("amount must be positive, got {0}")]
        NotPositive(i64),
        #[error("balance {balance} is below {amount}")]
        InsufficientFunds { balance: i64, amount: i64 },
    }

    impl DomainEvent for WalletEvent {
        fn event_type(&self) -> &'static str {
            match self {
                WalletEvent::Opened => "Opened",
                WalletEvent::Deposited { .. } => "Deposited",
                WalletEvent::Withdrawn { .. } => "Withdrawn",
                WalletEvent::Closed => "Closed",
            }
        }
    }

    impl Aggregate for Wallet {
        type Command = WalletCommand;
        type Event = WalletEvent;
        type Error = WalletError;
        const TYPE: &'static str = "Wallet";

        fn handle(&self, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
            match command {
                WalletCommand::Open if self.open => Err(WalletError::AlreadyOpen),
                WalletCommand::Open => Ok(vec![WalletEvent::Opened]),
                _ if !self.open => Err(WalletError::NotOpen),
                WalletCommand::Deposit(amount) | WalletCommand::Withdraw(amount) if amount <= 0 => {
                    Err(WalletError::NotPositive(amount))
                }
                WalletCommand::Deposit(amount) => Ok(vec![WalletEvent::Deposited { amount }]),
                WalletCommand::Withdraw(amount) if amount > self.balance => {
                    Err(WalletError::InsufficientFunds {
                        balance: self.balance,
                        amount,
                    })
                }
                WalletCommand::Withdraw(amount) => Ok(vec![WalletEvent::Withdrawn { amount }]),
                WalletCommand::Close if self.balance == 0 => Ok(vec![WalletEvent::Closed]),
                WalletCommand::Close => Ok(vec![
                    WalletEvent::Withdrawn {
                        amount: self.balance,
                    },
                    WalletEvent::Closed,
                ]),
            }
        }

        fn apply(self, event: &WalletEvent) -> Self {
            match event {
                WalletEvent::Opened => Wallet { open: true, ..self },
                WalletEvent::Deposited { amount } => Wallet {
                    balance: self.balance + amount,
                    ..self
                },
                WalletEvent::Withdrawn { amount } => Wallet {
                    balance: self.balance - amount,
                    ..self
                },
                WalletEvent::Closed => Wallet {
                    open: false,
                    ..self
                },
            }
        }
    }

    fn opened_with(balance: i64) -> Vec<WalletEvent> {
        vec![
            WalletEvent::Opened,
            WalletEvent::Deposited { amount: balance },
        ]
    }

    #[test]
    fn new_wallet_opens() {
        let state = AggregateTest::<Wallet>::given_no_previous_events()
            .when(WalletCommand::Open)
            .then_expect_events([WalletEvent::Opened]);
        assert_eq!(
            state,
            Wallet {
                open: true,
                balance: 0
            }
        );
    }

    #[test]
    fn withdraw_within_balance_emits_withdrawn_and_lowers_balance() {
        let state = AggregateTest::<Wallet>::given(opened_with(100))
            .when(WalletCommand::Withdraw(30))
            .then_expect_events([WalletEvent::Withdrawn { amount: 30 }]);
        assert_eq!(state.balance, 70);
    }

    #[test]
    fn withdraw_above_balance_is_refused() {
        AggregateTest::<Wallet>::given(opened_with(10))
            .when(WalletCommand::Withdraw(11))
            .then_expect_error(WalletError::InsufficientFunds {
                balance: 10,
                amount: 11,
            });
    }

    #[test]
    fn closing_empties_the_wallet_first() {
        AggregateTest::<Wallet>::given(opened_with(5))
            .when(WalletCommand::Close)
            .then_expect_events([WalletEvent::Withdrawn { amount: 5 }, WalletEvent::Closed]);
    }

    #[test]
    fn commands_on_an_unopened_wallet_fail_with_a_message() {
        for command in [WalletCommand::Deposit(1), WalletCommand::Close] {
            AggregateTest::<Wallet>::given_no_previous_events()
                .when(command)
                .then_expect_error_message("wallet is not open");
        }
    }

    #[test]
    fn inspect_result_exposes_the_raw_outcome() {
        let result = AggregateTest::<Wallet>::given(opened_with(1))
            .when(WalletCommand::Deposit(0))
            .inspect_result();
        assert_eq!(result, Err(WalletError::NotPositive(0)));
    }

    // The helper itself must be able to fail: each of these pins one way it catches a mistake.

    #[test]
    #[should_panic(expected = "the command produced other events")]
    fn then_expect_events_fails_on_other_events() {
        AggregateTest::<Wallet>::given(opened_with(100))
            .when(WalletCommand::Withdraw(30))
            .then_expect_events([WalletEvent::Withdrawn { amount: 31 }]);
    }

    #[test]
    #[should_panic(expected = "but the command failed")]
    fn then_expect_events_fails_on_error() {
        AggregateTest::<Wallet>::given_no_previous_events()
            .when(WalletCommand::Deposit(3))
            .then_expect_events([WalletEvent::Deposited { amount: 3 }]);
    }

    #[test]
    #[should_panic(expected = "but the command produced")]
    fn then_expect_error_fails_on_success() {
        AggregateTest::<Wallet>::given(opened_with(100))
            .when(WalletCommand::Withdraw(30))
            .then_expect_error(WalletError::NotOpen);
    }

    #[test]
    #[should_panic(expected = "the command failed differently")]
    fn then_expect_error_message_fails_on_other_message() {
        AggregateTest::<Wallet>::given(opened_with(1))
            .when(WalletCommand::Open)
            .then_expect_error_message("wallet is not open");
    }

    #[derive(Debug, Clone, Default)]
    struct Misnamed;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum MisnamedEvent {
        Happened,
    }

    impl DomainEvent for MisnamedEvent {
        fn event_type(&self) -> &'static str {
            "SomethingElse"
        }
    }

    impl Aggregate for Misnamed {
        type Command = ();
        type Event = MisnamedEvent;
        type Error = WalletError;
        const TYPE: &'static str = "Misnamed";
        fn handle(&self, _: ()) -> Result<Vec<MisnamedEvent>, WalletError> {
            Ok(vec![MisnamedEvent::Happened])
        }
        fn apply(self, _: &MisnamedEvent) -> Self {
            self
        }
    }

    #[test]
    #[should_panic(expected = "cannot be stored")]
    fn then_expect_events_catches_an_event_type_that_is_not_its_serde_name() {
        AggregateTest::<Misnamed>::given_no_previous_events()
            .when(())
            .then_expect_events([MisnamedEvent::Happened]);
    }
}
