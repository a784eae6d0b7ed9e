//! `Repository::with_cache`: commands start from the state this process stored last; the
//! expected version proves it current, and a refusal or duplicate is decided on the store's
//! current state.

use es_client::{CommandContext, Repository};
use es_core::StreamId;
use uuid::Uuid;

use crate::support::{new_stream, TestStore, Wallet, WalletCommand};

fn open() -> WalletCommand {
    WalletCommand::Open {
        owner: "ada".into(),
    }
}

/// A caching repository and a plain one (a writer elsewhere) on one store, and a new stream.
struct Two {
    _store: TestStore,
    stream: StreamId,
    cached: Repository<Wallet>,
    elsewhere: Repository<Wallet>,
}

async fn two(capacity: usize) -> Two {
    let store = TestStore::spawn().await;
    Two {
        stream: new_stream(),
        cached: Repository::new(store.client.clone()).with_cache(capacity),
        elsewhere: Repository::new(store.client.clone()),
        _store: store,
    }
}

/// Opens the stream through the cache, then deposits 10 elsewhere: the cached state is behind.
async fn opened_then_deposited_elsewhere() -> Two {
    let t = two(10).await;
    t.cached.execute(&t.stream, open()).await.expect("open");
    t.elsewhere
        .execute(&t.stream, WalletCommand::Deposit { amount: 10 })
        .await
        .expect("deposit elsewhere");
    t
}

#[tokio::test]
async fn a_cached_state_behind_the_stream_catches_up_on_the_conflict() {
    let Two {
        _store,
        stream,
        cached,
        ..
    } = opened_then_deposited_elsewhere().await;

    let deposited = cached
        .execute(&stream, WalletCommand::Deposit { amount: 5 })
        .await
        .expect("deposit");
    // The first try started from the cached version 1 and met the deposit made elsewhere.
    assert_eq!((deposited.attempts, deposited.version), (2, 3));
    assert_eq!(deposited.state.balance, 15);
    let loaded = cached.load(&stream).await.expect("load");
    assert_eq!((loaded.version, loaded.state), (3, deposited.state));

    // Nothing moved since: the next command needs one try.
    let again = cached
        .execute(&stream, WalletCommand::Deposit { amount: 1 })
        .await
        .expect("deposit");
    assert_eq!(
        (again.attempts, again.version, again.state.balance),
        (1, 4, 16)
    );
}

#[tokio::test]
async fn a_refusal_on_a_cached_state_is_decided_again_on_the_current_one() {
    let Two {
        _store,
        stream,
        cached,
        ..
    } = opened_then_deposited_elsewhere().await;

    // The cached state has balance 0 and would refuse; the current one allows it.
    let withdrawn = cached
        .execute(&stream, WalletCommand::Withdraw { amount: 5 })
        .await
        .expect("the current balance covers it");
    assert_eq!((withdrawn.version, withdrawn.state.balance), (3, 5));
}

#[tokio::test]
async fn a_redelivered_trigger_on_a_stale_cache_is_stored_once() {
    let Two {
        _store,
        stream,
        cached,
        elsewhere,
    } = two(10).await;
    cached.execute(&stream, open()).await.expect("open");
    let trigger = CommandContext {
        derive_ids_from: Some((Uuid::new_v4(), "deposit".into())),
        ..CommandContext::default()
    };
    // The trigger is handled elsewhere first, and the stream moves on after it.
    elsewhere
        .execute_with(&stream, WalletCommand::Deposit { amount: 7 }, &trigger)
        .await
        .expect("handled elsewhere");
    elsewhere
        .execute(&stream, WalletCommand::Deposit { amount: 1 })
        .await
        .expect("deposit elsewhere");

    let redelivered = cached
        .execute_with(&stream, WalletCommand::Deposit { amount: 7 }, &trigger)
        .await
        .expect("redelivered");
    // The store's answer is the original append's version: the state after it.
    assert_eq!((redelivered.version, redelivered.state.balance), (2, 7));
    let loaded = cached.load(&stream).await.expect("load");
    assert_eq!((loaded.version, loaded.state.balance), (3, 8));

    // The cached state (version 2) is behind; the next command catches up.
    let next = cached
        .execute(&stream, WalletCommand::Deposit { amount: 2 })
        .await
        .expect("deposit");
    assert_eq!((next.version, next.state.balance), (4, 10));
}

#[tokio::test]
async fn the_oldest_streams_are_evicted_beyond_the_capacity() {
    let Two {
        _store,
        cached,
        elsewhere,
        ..
    } = two(2).await;
    let streams = [new_stream(), new_stream(), new_stream()];
    for stream in &streams {
        cached.execute(stream, open()).await.expect("open");
    }
    for stream in &streams {
        elsewhere
            .execute(stream, WalletCommand::Deposit { amount: 1 })
            .await
            .expect("deposit elsewhere");
    }
    // The first stream was evicted: loaded afresh, one try. The others start from the cache
    // and meet the deposit made elsewhere. (Newest first: each command caches its stream and
    // may evict another.)
    let mut attempts = Vec::new();
    for stream in streams.iter().rev() {
        let deposited = cached
            .execute(stream, WalletCommand::Deposit { amount: 1 })
            .await
            .expect("deposit");
        assert_eq!(deposited.state.balance, 2);
        attempts.push(deposited.attempts);
    }
    assert_eq!(attempts, [2, 2, 1]);
}
