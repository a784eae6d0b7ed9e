//! HTTP routes of the accounts service.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use banking::{Account, AccountCommand, AccountError, AccountId, CustomerId, DomainError, Money};
use es_client::{ClientError, CommandContext, ExecuteError};
use serde::Deserialize;
use serde_json::json;
use service_kit::{ApiJson, AppError, MetricsText};

use crate::saga::account_stream;
use crate::AppState;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/accounts", post(open_account))
        .route("/accounts/{id}", get(get_account).delete(close_account))
        .route("/health", get(service_kit::health::ok))
        .route("/metrics", get(metrics))
        .fallback(service_kit::error::route_not_found)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// The body of `POST /accounts`, as sent. Every field is optional here so that a missing one is
/// reported by name.
#[derive(Debug, Deserialize)]
struct OpenAccountRequest {
    customer_id: Option<String>,
    title: Option<String>,
    description: Option<String>,
    initial_balance: Option<i64>,
}

async fn open_account(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OpenAccountRequest>,
) -> Result<impl IntoResponse, AppError> {
    let title = required("title", body.title)?;
    let command = AccountCommand::Open {
        customer_id: body
            .customer_id
            .as_deref()
            .map(CustomerId::parse)
            .transpose()
            .map_err(|e| invalid("customer_id", e))?,
        title: banking::domain::parse_text("title", &title, 100, true)
            .map_err(|e| invalid("title", e))?,
        description: banking::domain::parse_text(
            "description",
            body.description.as_deref().unwrap_or(""),
            500,
            false,
        )
        .map_err(|e| invalid("description", e))?,
        initial_balance: Money::parse_balance(
            "initial_balance",
            required("initial_balance", body.initial_balance)?,
        )
        .map_err(|e| invalid("initial_balance", e))?,
    };
    let id = AccountId::new();
    let executed = execute(&state, id, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"account_id": id, "version": executed})),
    ))
}

async fn close_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = AccountId::parse(&id).map_err(|e| invalid("account_id", e))?;
    let version = execute(&state, id, AccountCommand::Close).await?;
    Ok(Json(
        json!({"account_id": id, "version": version, "status": "CLOSED"}),
    ))
}

/// The aggregate's own state, straight from the event store (not the view).
async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id = AccountId::parse(&id).map_err(|e| invalid("account_id", e))?;
    let loaded = state
        .accounts
        .load(&account_stream(id))
        .await
        .map_err(store_error)?;
    if loaded.version == 0 {
        return Err(not_found(id));
    }
    let a: &Account = &loaded.state;
    Ok(Json(json!({
        "account_id": id,
        "customer_id": a.customer_id,
        "title": a.title,
        "description": a.description,
        "balance": a.balance,
        "status": a.status,
        "version": loaded.version,
    })))
}

async fn metrics(State(state): State<AppState>) -> String {
    let m = &state.metrics;
    let mut text = MetricsText::new();
    text.counter(
        "accounts_commands_total",
        "Account commands received over HTTP.",
        m.commands.get(),
    )
    .counter(
        "accounts_commands_refused_total",
        "Account commands refused by a business rule.",
        m.commands_refused.get(),
    )
    .counter(
        "accounts_saga_events_total",
        "Transfer events handled by the saga.",
        m.saga_events.get(),
    )
    .counter(
        "accounts_saga_refunds_total",
        "Refunds issued because a credit was refused.",
        m.saga_refunds.get(),
    );
    text.finish()
}

/// Runs a command on a new flow and returns the stream version after it.
async fn execute(
    state: &AppState,
    id: AccountId,
    command: AccountCommand,
) -> Result<u64, AppError> {
    state.metrics.commands.inc();
    match state
        .accounts
        .execute_with(&account_stream(id), command, &CommandContext::new_flow())
        .await
    {
        Ok(executed) => Ok(executed.version),
        Err(ExecuteError::Refused(refusal)) => {
            state.metrics.commands_refused.inc();
            Err(match refusal {
                AccountError::NotFound => not_found(id),
                AccountError::NonZeroBalance { balance } => AppError::conflict(
                    "balance_not_zero",
                    format!("the account holds {balance}; move the money out before closing it"),
                )
                .with_field("balance", balance),
                other => AppError::conflict("account_refused", other.to_string()),
            })
        }
        Err(ExecuteError::Contended { .. }) => Err(AppError::unavailable(
            "contended",
            "the account is changing too fast right now; try again",
        )),
        Err(ExecuteError::Store(error)) => Err(store_error(error)),
    }
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

fn not_found(id: AccountId) -> AppError {
    AppError::not_found("account_not_found", format!("no account has the id {id}"))
        .with_field("field", "account_id")
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
