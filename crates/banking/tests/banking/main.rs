//! Given/when/then tests for every banking rule, plus the saga decisions and weak-schema loading.

mod account;
mod saga;
mod schema;
mod transfer;

use es_core::Aggregate;

/// Given these past events, when this command arrives, then expect these events or this error.
pub fn given_when_then<A>(
    given: &[A::Event],
    when: A::Command,
    then: Result<Vec<A::Event>, A::Error>,
) where
    A: Aggregate,
    A::Event: PartialEq,
    A::Error: PartialEq,
{
    let state = given.iter().fold(A::default(), |s, e| s.apply(e));
    let got = state.handle(when);
    match (&got, &then) {
        (Ok(g), Ok(t)) if g == t => {}
        (Err(g), Err(t)) if g == t => {}
        _ => panic!("given {given:?}\nexpected {then:?}\n     got {got:?}"),
    }
}
