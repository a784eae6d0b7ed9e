//! HTTP routes of the transfers service.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use banking::{
    Account, AccountId, AccountStatus, DomainError, Money, TransferCommand, TransferDetails,
    TransferError, TransferId,
};
use es_client::{ClientError, CommandContext, ExecuteError};
use serde::Deserialize;
use serde_json::json;
use service_kit::{ApiJson, AppError, MetricsText};
use time::OffsetDateTime;

use crate::saga::transfer_stream;
use crate::AppState;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/transfers", post(create_transfer))
        .route("/transfers/{id}", get(get_transfer))
        .route("/health", get(service_kit::health::ok))
        .route("/metrics", get(metrics))
        .fallback(service_kit::error::route_not_found)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// The body of `POST /transfers`, as sent; each field is optional here so that a missing one is
/// reported by name.
#[derive(Debug, Deserialize)]
struct CreateTransferRequest {
    from_account_id: Option<String>,
    to_account_id: Option<String>,
    amount: Option<i64>,
    description: Option<String>,
}

async fn create_transfer(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTransferRequest>,
) -> Result<impl IntoResponse, AppError> {
    let from = AccountId::parse(&required("from_account_id", body.from_account_id)?)
        .map_err(|e| invalid("from_account_id", e))?;
    let to = AccountId::parse(&required("to_account_id", body.to_account_id)?)
        .map_err(|e| invalid("to_account_id", e))?;
    let amount = Money::parse_amount("amount", required("amount", body.amount)?)
        .map_err(|e| invalid("amount", e))?;
    let description = banking::domain::parse_text(
        "description",
        body.description.as_deref().unwrap_or(""),
        500,
        false,
    )
    .map_err(|e| invalid("description", e))?;
    if from == to {
        return Err(AppError::unprocessable(
            "invalid_field",
            "to_account_id must differ from from_account_id",
        )
        .with_field("field", "to_account_id"));
    }
    let (from_ok, to_ok) = tokio::join!(account_exists(&state, from), account_exists(&state, to));
    for (ok, field, id) in [
        (from_ok?, "from_account_id", from),
        (to_ok?, "to_account_id", to),
    ] {
        if !ok {
            return Err(AppError::unprocessable(
                "unknown_account",
                format!("{field} {id} is not a known account; open it first"),
            )
            .with_field("field", field));
        }
    }
    let id = TransferId::new();
    let details = TransferDetails {
        from_account_id: from,
        to_account_id: to,
        amount,
        date: OffsetDateTime::now_utc(),
        description,
    };
    match state
        .transfers
        .execute_with(
            &transfer_stream(id),
            TransferCommand::Create(details),
            &CommandContext::new_flow(),
        )
        .await
    {
        Ok(executed) => {
            state.metrics.created.inc();
            Ok((
                StatusCode::CREATED,
                Json(json!({"transfer_id": id, "version": executed.version})),
            ))
        }
        Err(ExecuteError::Refused(refusal)) => {
            state.metrics.rejected.inc();
            let field = match refusal {
                TransferError::SameAccount => "to_account_id",
                TransferError::ZeroAmount => "amount",
                _ => "transfer_id",
            };
            Err(
                AppError::unprocessable("transfer_refused", refusal.to_string())
                    .with_field("field", field),
            )
        }
        Err(ExecuteError::Contended { .. }) => Err(AppError::unavailable(
            "contended",
            "the transfer is changing too fast right now; try again",
        )),
        Err(ExecuteError::Store(error)) => Err(store_error(error)),
    }
}

/// The aggregate's own state, straight from the event store (not the view).
async fn get_transfer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = TransferId::parse(&id).map_err(|e| invalid("transfer_id", e))?;
    let loaded = state
        .transfers
        .load(&transfer_stream(id))
        .await
        .map_err(store_error)?;
    let Some(d) = loaded.state.details.as_ref() else {
        return Err(AppError::not_found(
            "transfer_not_found",
            format!("no transfer has the id {id}"),
        )
        .with_field("field", "transfer_id"));
    };
    Ok(Json(json!({
        "transfer_id": id,
        "from_account_id": d.from_account_id,
        "to_account_id": d.to_account_id,
        "amount": d.amount,
        "description": d.description,
        "state": loaded.state.state,
        "version": loaded.version,
    })))
}

/// Whether the account was ever opened. Accounts are never deleted (closing keeps the stream), so
/// a positive answer is cached; a transfer to an account closed since then is compensated by the
/// saga, and one from it fails like an overdraft.
async fn account_exists(state: &AppState, id: AccountId) -> Result<bool, AppError> {
    if state.known_accounts.contains(&id) {
        return Ok(true);
    }
    let stream = es_core::stream_of::<Account>(id.as_uuid());
    let loaded = state.accounts.load(&stream).await.map_err(store_error)?;
    let exists = loaded.state.status != AccountStatus::NotOpened;
    if exists {
        state.known_accounts.insert(id);
    }
    Ok(exists)
}

async fn metrics(State(state): State<AppState>) -> String {
    let m = &state.metrics;
    let mut text = MetricsText::new();
    text.counter(
        "transfers_created_total",
        "Transfers created.",
        m.created.get(),
    )
    .counter(
        "transfers_rejected_total",
        "Transfer requests refused by a business rule.",
        m.rejected.get(),
    )
    .counter(
        "transfers_saga_events_total",
        "Account events handled by the saga.",
        m.saga_events.get(),
    )
    .counter(
        "transfers_saga_stale_total",
        "Saga events refused by the transfer's state check (stale or out of place).",
        m.saga_stale.get(),
    );
    text.finish()
}

fn store_error(error: ClientError) -> AppError {
    match error {
        ClientError::Unreachable { .. } | ClientError::Unavailable { .. } => {
            tracing::warn!(%error, "event store unavailable");
            AppError::unavailable(
                "event_store_unavailable",
                "the event store is not reachable; try again shortly",
            )
        }
        other => AppError::internal(other),
    }
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, AppError> {
    value.ok_or_else(|| {
        AppError::unprocessable("invalid_field", format!("the field `{field}` is required"))
            .with_field("field", field)
    })
}

fn invalid(field: &'static str, error: DomainError) -> AppError {
    AppError::unprocessable("invalid_field", error.to_string()).with_field("field", field)
}
