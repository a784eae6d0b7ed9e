//! The account view: CQRS query side.
