//! What the event gates found, as the plan carries it (in full in `--output json` and saved
//! plans) and shows it (a short "events" section of the human plan).

use serde::{Deserialize, Serialize};

use super::EventVersion;

/// The event gates' result. `Default` (not `checked`) is a plan made without them: an older
/// saved plan, or a rollback plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventReport {
    /// Whether the gates ran.
    pub checked: bool,
    /// One line per check that passed.
    #[serde(default)]
    pub passed: Vec<String>,
    /// What makes the plan refused: `plan` exits 1 and `apply` changes nothing.
    #[serde(default)]
    pub refusals: Vec<Finding>,
    /// Refusals let through by `--allow-incompatible`; apply records them in history.
    #[serde(default)]
    pub allowed: Vec<Finding>,
    /// The `--allow-incompatible` versions given.
    #[serde(default)]
    pub allow_incompatible: Vec<EventVersion>,
    /// Checks skipped and why, images without a contract, flags that changed nothing.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Images without contract labels (ignored by the gates).
    #[serde(default)]
    pub without_contract: Vec<String>,
    /// The roll order chosen, levels of the services that roll (a level rolls in parallel).
    #[serde(default)]
    pub order: Vec<Vec<String>>,
    /// Read models whose projection version the plan changes: apply rebuilds them blue/green.
    #[serde(default)]
    pub rebuilds: Vec<Rebuild>,
}

/// A read model that the plan rolls to another projection version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuild {
    pub service: String,
    /// The running containers' projection version.
    pub from: u64,
    /// The desired image's.
    pub to: u64,
}

/// One refusal (or allowed refusal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// The event versions it is about; `--allow-incompatible` with one of them lets it pass.
    pub events: Vec<EventVersion>,
    /// The producing service, when one is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// The consuming service, when one is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Which check refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The desired fleet emits a version one of its consumers cannot read.
    ConsumerCannotRead,
    /// Every roll order leaves a consumer unable to read what is emitted at some step.
    NoRollOrder,
    /// A produced version's schema changed incompatibly.
    SchemaChanged,
    /// A consumer would no longer read a version the store holds.
    StoredUnreadable,
}

impl EventReport {
    /// True when the plan must not be applied.
    pub fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// The `--allow-incompatible` versions that let a refusal pass, for history.
    pub fn overrides(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .allowed
            .iter()
            .flat_map(|f| f.events.iter())
            .filter(|e| self.allow_incompatible.contains(e))
            .map(ToString::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The human "events" section: empty when the gates did not run.
    pub fn render(&self) -> String {
        if !self.checked {
            return String::new();
        }
        let mut out = String::from("events:\n");
        for p in &self.passed {
            out.push_str(&format!("  ok      {p}\n"));
        }
        for f in &self.allowed {
            out.push_str(&format!(
                "  ALLOWED {} (--allow-incompatible {})\n          {}\n",
                f.kind.title(),
                super::join(
                    f.events
                        .iter()
                        .filter(|e| self.allow_incompatible.contains(e))
                ),
                f.message
            ));
        }
        for f in &self.refusals {
            out.push_str(&format!(
                "  REFUSED {}\n          {}\n",
                f.kind.title(),
                f.message
            ));
        }
        for r in &self.rebuilds {
            out.push_str(&format!(
                "  rebuild {}: projection {} → {}, blue/green (the new container rebuilds from the log beside the old one, which serves until the new one has caught up)\n",
                r.service, r.from, r.to
            ));
        }
        if self.order.len() > 1 {
            let levels: Vec<String> = self.order.iter().map(|l| l.join(", ")).collect();
            out.push_str(&format!("  order   {}\n", levels.join(" → ")));
        }
        for n in &self.notes {
            out.push_str(&format!("  note    {n}\n"));
        }
        out
    }
}

impl Kind {
    pub fn title(self) -> &'static str {
        match self {
            Kind::ConsumerCannotRead => "a consumer cannot read what is produced",
            Kind::NoRollOrder => "no roll order keeps every consumer reading",
            Kind::SchemaChanged => "a version's schema changed",
            Kind::StoredUnreadable => "a stored version would become unreadable",
        }
    }
}
