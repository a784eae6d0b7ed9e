//! Given/when/then tests for every banking rule, plus the saga decisions and weak-schema loading.

mod account;
mod saga;
mod schema;
mod transfer;

use es_core::{Aggregate, AggregateTest};

/// Given these past events, when this command arrives, then expect these events or this error
/// (through `es_core::AggregateTest`, which also checks that each event survives the stored-JSON
/// round trip).
pub fn given_when_then<A>(
    given: &[A::Event],
    when: A::Command,
    then: Result<Vec<A::Event>, A::Error>,
) where
    A: Aggregate,
    A::Event: PartialEq,
    A::Error: PartialEq,
{
    let outcome = AggregateTest::<A>::given(given.iter().cloned()).when(when);
    match then {
        Ok(events) => {
            outcome.then_expect_events(events);
        }
        Err(error) => outcome.then_expect_error(error),
    }
}
