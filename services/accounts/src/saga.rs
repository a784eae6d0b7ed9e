//! The accounts side of the transfer saga: a durable subscriber to transfer events that debits
//! the from-account, credits the to-account, and refunds the from-account when the credit is
//! refused because the to-account is closed or missing.

use std::future::Future;
use std::time::Duration;

use banking::saga::{account_command_for, compensation_for};
use banking::{Account, AccountError, AccountId, MoneyTransfer, TransferEvent, TransferId};
use es_client::{ClientError, CommandContext, ExecuteError};
use es_core::{Aggregate, EventEnvelope, StreamId};

use crate::AppState;
use es_client::partitioned::PartitionedGroup;

/// The consumer group of this handler in the event store.
pub const GROUP: &str = "accounts-saga";

/// The transfer events this handler reacts to.
pub const EVENT_TYPES: [&str; 2] = banking::saga::ACCOUNTS_SAGA_EVENT_TYPES;

/// Handles transfer events until `stop` completes; events for different accounts run in
/// parallel, those for one account in log order.
pub async fn run(state: AppState, stop: impl Future<Output = ()>) -> Result<(), ClientError> {
    let group = PartitionedGroup {
        group: GROUP.to_owned(),
        event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        batch_size: 500,
        wait: Duration::from_secs(2),
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

/// The account a transfer event's reaction changes (its partition key).
fn target_account(envelope: &EventEnvelope) -> Option<AccountId> {
    let transfer_id =
        TransferId::parse(aggregate_id(&envelope.stream_id, MoneyTransfer::TYPE)?).ok()?;
    let event: TransferEvent = envelope.decode().ok()?;
    account_command_for(transfer_id, &event).map(|(account, _, _)| account)
}

/// Reacts to one transfer event. Safe to run twice for the same event: the event ids derive from
/// the trigger, and the account ignores a transaction it already saw.
pub async fn handle(
    state: &AppState,
    envelope: &EventEnvelope,
) -> Result<(), ExecuteError<AccountError>> {
    let Some(transfer_id) = aggregate_id(&envelope.stream_id, MoneyTransfer::TYPE)
        .and_then(|id| TransferId::parse(id).ok())
    else {
        return Ok(());
    };
    let event: TransferEvent = match envelope.decode() {
        Ok(event) => event,
        Err(error) => {
            // A poison event would block the group forever; it is logged and skipped.
            tracing::error!(event_id = %envelope.event_id, %error, "skipping an undecodable transfer event");
            return Ok(());
        }
    };
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
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// The event store stream of an account.
pub fn account_stream(id: AccountId) -> StreamId {
    StreamId::for_aggregate::<Account>(id.as_uuid())
}

/// The `<uuid>` of a `<Type>-<uuid>` stream.
pub fn aggregate_id<'a>(stream: &'a StreamId, kind: &str) -> Option<&'a str> {
    stream.as_str().strip_prefix(kind)?.strip_prefix('-')
}
