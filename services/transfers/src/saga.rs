//! The transfers side of the saga: a durable subscriber to account events that records each
//! debit, failed debit, credit and refund on its transfer. A stale or duplicate event is refused
//! by the transfer's state check (or derives an event id the store already has) and changes
//! nothing.

use std::future::Future;
use std::time::Duration;

use banking::saga::{purpose, transfer_command_for};
use banking::{AccountEvent, MoneyTransfer, TransferError, TransferId};
use es_client::partitioned::PartitionedGroup;
use es_client::{ClientError, CommandContext, ExecuteError};
use es_core::{EventEnvelope, StreamId};

use crate::AppState;

/// The consumer group of this handler in the event store.
pub const GROUP: &str = "transfers-saga";

/// The account events this handler reacts to.
pub const EVENT_TYPES: [&str; 4] = banking::saga::TRANSFERS_SAGA_EVENT_TYPES;

/// Handles account events until `stop` completes; events of different transfers run in
/// parallel, those of one transfer in log order.
pub async fn run(state: AppState, stop: impl Future<Output = ()>) -> Result<(), ClientError> {
    let group = PartitionedGroup {
        group: GROUP.to_owned(),
        event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        batch_size: 500,
        wait: Duration::from_secs(2),
    };
    let client = state.transfers.client().clone();
    es_client::partitioned::run(
        client,
        group,
        |envelope| {
            envelope
                .decode::<AccountEvent>()
                .ok()
                .and_then(|event| event.transaction_id())
        },
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

/// Records one account event on its transfer. Safe to run twice for the same event.
pub async fn handle(
    state: &AppState,
    envelope: &EventEnvelope,
) -> Result<(), ExecuteError<TransferError>> {
    let event: AccountEvent = match envelope.decode() {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(event_id = %envelope.event_id, %error, "skipping an undecodable account event");
            return Ok(());
        }
    };
    let Some((transfer_id, command)) = transfer_command_for(&event) else {
        return Ok(());
    };
    let context = CommandContext::caused_by(envelope, purpose::RECORD);
    match state
        .transfers
        .execute_with(&transfer_stream(transfer_id), command, &context)
        .await
    {
        Ok(_) => Ok(()),
        Err(ExecuteError::Refused(refusal)) => {
            state.metrics.saga_stale.inc();
            tracing::warn!(%transfer_id, %refusal, event_type = %envelope.event_type, "stale saga event ignored");
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// The event store stream of a transfer.
pub fn transfer_stream(id: TransferId) -> StreamId {
    StreamId::for_aggregate::<MoneyTransfer>(id.as_uuid())
}
