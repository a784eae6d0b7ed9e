//! The accounts side of the transfer saga: a durable subscriber to transfer events that debits
//! the from-account, credits the to-account, and refunds the from-account when the credit is
//! refused because the to-account is closed or missing.

use std::future::Future;
use std::time::Duration;

use banking::saga::{account_command_for, compensation_for};
use banking::{Account, AccountError, AccountId, MoneyTransfer, TransferEvent, TransferId};
use es_client::partitioned::{self, PartitionedGroup};
use es_client::{CommandContext, ExecuteError, Poison};
use es_core::{Aggregate, EventEnvelope, StreamId};

use crate::AppState;

/// The consumer group of this handler in the event store.
pub const GROUP: &str = "accounts-saga";

/// The transfer events this handler reacts to.
pub const EVENT_TYPES: [&str; 2] = banking::saga::ACCOUNTS_SAGA_EVENT_TYPES;

/// The saga's poison policy: a reaction left out would lose a debit, credit or refund, so an
/// event the handler keeps failing on (one that does not decode, a request the store refuses) is
/// tried again a few times, then the saga stops and `/health` answers 503.
pub const POISON: Poison = Poison::RetryThenStop { attempts: 5 };

/// Why handling one transfer event failed.
pub type SagaError = partitioned::ReactionError<AccountError>;

/// Handles transfer events until `stop` completes; events for different accounts run in
/// parallel, those for one account in log order.
pub async fn run(
    state: AppState,
    stop: impl Future<Output = ()>,
) -> Result<(), partitioned::Error> {
    let group = PartitionedGroup {
        group: GROUP.to_owned(),
        event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        batch_size: 500,
        wait: Duration::from_secs(2),
        poison: POISON,
    };
    let client = state.accounts.client().clone();
    es_client::partitioned::run(
        client,
        group,
        target_account,
        |envelope| {
            let state = state.clone();
            async move {
                state.metrics.saga_events.inc();
                handle(&state, &envelope).await
            }
        },
        stop,
    )
    .await
}

/// The account a transfer event's reaction changes (its partition key); an event that does not
/// decode gets a lane of its own, where its handler fails.
fn target_account(envelope: &EventEnvelope) -> Option<Result<AccountId, uuid::Uuid>> {
    let transfer_id =
        TransferId::parse(aggregate_id(&envelope.stream_id, MoneyTransfer::TYPE)?).ok()?;
    let Ok(event) = envelope.decode::<TransferEvent>() else {
        return Some(Err(envelope.event_id));
    };
    account_command_for(transfer_id, &event).map(|(account, _, _)| Ok(account))
}

/// Reacts to one transfer event. Safe to run twice for the same event: the event ids derive from
/// the trigger, and the account ignores a transaction it already saw.
pub async fn handle(state: &AppState, envelope: &EventEnvelope) -> Result<(), SagaError> {
    let Some(transfer_id) = aggregate_id(&envelope.stream_id, MoneyTransfer::TYPE)
        .and_then(|id| TransferId::parse(id).ok())
    else {
        return Ok(());
    };
    if !EVENT_TYPES.contains(&envelope.event_type.as_str()) {
        return Ok(()); // not one this saga reacts to (its group never delivers it)
    }
    let event: TransferEvent = envelope.decode()?;
    let Some((account, command, purpose)) = account_command_for(transfer_id, &event) else {
        return Ok(());
    };
    let context = CommandContext::caused_by(envelope, purpose);
    match state
        .accounts
        .execute_with(&account_stream(account), command, &context)
        .await
    {
        Ok(_) => Ok(()),
        Err(ExecuteError::Refused(refusal)) => {
            let Some((from, refund, purpose)) =
                compensation_for(transfer_id, event.details(), &refusal)
            else {
                tracing::warn!(%transfer_id, %account, %refusal, "saga command refused; nothing to compensate");
                return Ok(());
            };
            tracing::info!(%transfer_id, to = %account, %refusal, "credit refused; refunding the from-account");
            state.metrics.saga_refunds.inc();
            let context = CommandContext::caused_by(envelope, purpose);
            match state
                .accounts
                .execute_with(&account_stream(from), refund, &context)
                .await
            {
                Ok(_) => Ok(()),
                Err(ExecuteError::Refused(refusal)) => {
                    tracing::error!(%transfer_id, %from, %refusal, "refund refused");
                    Ok(())
                }
                Err(error) => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// The event store stream of an account.
pub fn account_stream(id: AccountId) -> StreamId {
    es_core::stream_of::<Account>(id.as_uuid())
}

/// The `<uuid>` of a `<Type>-<uuid>` stream.
pub fn aggregate_id<'a>(stream: &'a StreamId, kind: &str) -> Option<&'a str> {
    stream.as_str().strip_prefix(kind)?.strip_prefix('-')
}
