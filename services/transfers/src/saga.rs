//! The transfers side of the saga: a durable subscriber to account events that records each
//! debit, failed debit, credit and refund on its transfer. A stale or duplicate event is refused
//! by the transfer's state check (or derives an event id the store already has) and changes
//! nothing.

use std::future::Future;
use std::time::Duration;

use banking::saga::{purpose, transfer_command_for};
use banking::{AccountEvent, MoneyTransfer, TransferError, TransferId};
use es_client::partitioned::{self, PartitionedGroup};
use es_client::{CommandContext, ExecuteError, Poison};
use es_core::{EventEnvelope, StreamId};

use crate::AppState;

/// The consumer group of this handler in the event store.
pub const GROUP: &str = "transfers-saga";

/// The account events this handler reacts to.
pub const EVENT_TYPES: [&str; 4] = banking::saga::TRANSFERS_SAGA_EVENT_TYPES;

/// The saga's poison policy, as in the accounts service: an event the handler keeps failing on
/// is tried again a few times, then the saga stops and `/health` answers 503, rather than leave a
/// transfer without its outcome.
pub const POISON: Poison = Poison::RetryThenStop { attempts: 5 };

/// Why handling one account event failed.
pub type SagaError = partitioned::ReactionError<TransferError>;

/// Handles account events until `stop` completes; events of different transfers run in
/// parallel, those of one transfer in log order.
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
    let client = state.transfers.client().clone();
    es_client::partitioned::run(
        client,
        group,
        // An event that does not decode gets a lane of its own, where its handler fails.
        |envelope| match envelope.decode::<AccountEvent>() {
            Ok(event) => event.transaction_id().map(Ok),
            Err(_) => Some(Err(envelope.event_id)),
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
pub async fn handle(state: &AppState, envelope: &EventEnvelope) -> Result<(), SagaError> {
    if !EVENT_TYPES.contains(&envelope.event_type.as_str()) {
        return Ok(()); // not one this saga reacts to (its group never delivers it)
    }
    let event: AccountEvent = envelope.decode()?;
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
        Err(error) => Err(error.into()),
    }
}

/// The event store stream of a transfer.
pub fn transfer_stream(id: TransferId) -> StreamId {
    es_core::stream_of::<MoneyTransfer>(id.as_uuid())
}
