//! The public banking API, through the gateway: open accounts, transfer, read what the view
//! shows (waiting for a given version where the caller knows one).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::Error;

/// A client of the gateway's `/api`.
#[derive(Clone)]
pub struct Gateway {
    base: String,
    http: reqwest::Client,
}

/// A 201 from a command: the new id and the stream version it reached.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub version: u64,
}

impl Gateway {
    pub fn new(base: &str) -> Result<Gateway, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(Error::http("building the HTTP client"))?;
        Ok(Gateway {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Opens `n` accounts of `balance` each and waits until the view shows them. Returns their
    /// ids.
    pub async fn open_accounts(&self, n: usize, balance: i64) -> Result<Vec<String>, Error> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let created = self.open_account(&format!("load {i}"), balance).await?;
            self.account(&created.id, created.version, Duration::from_secs(30))
                .await?;
            ids.push(created.id);
        }
        Ok(ids)
    }

    /// Opens an account with `balance` minor units.
    pub async fn open_account(&self, title: &str, balance: i64) -> Result<Created, Error> {
        self.create(
            "/api/accounts",
            json!({"title": title, "initial_balance": balance}),
            "account_id",
        )
        .await
    }

    /// Asks for a transfer of `amount` from `from` to `to`.
    pub async fn transfer(&self, from: &str, to: &str, amount: i64) -> Result<Created, Error> {
        self.create(
            "/api/transfers",
            json!({"from_account_id": from, "to_account_id": to, "amount": amount}),
            "transfer_id",
        )
        .await
    }

    async fn create(&self, path: &str, body: Value, id_field: &str) -> Result<Created, Error> {
        let what = format!("POST {path} {body}");
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .map_err(Error::http(what.clone()))?;
        let status = r.status();
        let answer: Value = r.json().await.map_err(Error::http(what.clone()))?;
        if status.as_u16() != 201 {
            return Err(Error::unexpected(
                what,
                format!("answered {status}: {answer}"),
            ));
        }
        let id = answer[id_field].as_str().unwrap_or_default().to_owned();
        let version = answer["version"].as_u64().unwrap_or_default();
        if id.is_empty() {
            return Err(Error::unexpected(
                what,
                format!("no {id_field} in {answer}"),
            ));
        }
        Ok(Created { id, version })
    }

    /// `GET /api/accounts/{id}?min_version=N`, retrying while the view is behind (503) for up to
    /// `wait`.
    pub async fn account(
        &self,
        id: &str,
        min_version: u64,
        wait: Duration,
    ) -> Result<Value, Error> {
        self.read(
            &format!("/api/accounts/{id}?min_version={min_version}"),
            wait,
        )
        .await
    }

    /// `GET /api/transfers/{id}?min_version=N`, like [`Self::account`].
    pub async fn transfer_doc(
        &self,
        id: &str,
        min_version: u64,
        wait: Duration,
    ) -> Result<Value, Error> {
        self.read(
            &format!("/api/transfers/{id}?min_version={min_version}"),
            wait,
        )
        .await
    }

    /// A transfer once its `state` is one of `states`, polling for up to `wait`.
    pub async fn transfer_in_state(
        &self,
        id: &str,
        states: &[&str],
        wait: Duration,
    ) -> Result<Value, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let doc = self.transfer_doc(id, 1, wait).await?;
            if states.contains(&doc["state"].as_str().unwrap_or_default()) {
                return Ok(doc);
            }
            if Instant::now() >= deadline {
                return Err(Error::unexpected(
                    format!("waiting for transfer {id} to reach {states:?}"),
                    format!("still {doc} after {wait:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn read(&self, path: &str, wait: Duration) -> Result<Value, Error> {
        let what = format!("GET {path}");
        let deadline = Instant::now() + wait;
        loop {
            let last = match self.http.get(format!("{}{path}", self.base)).send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(Error::http(what));
                }
                Ok(r) => format!(
                    "answered {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(Error::unexpected(
                    what,
                    format!("after {wait:?}, last {last}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
