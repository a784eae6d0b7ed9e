//! The account view's projection version: `account_view::PROJECTION_VERSION` in the code, and
//! `ci/events/account-view.projection`, which the image's `io.fleet.projection.version` label is
//! built from. The deployer rebuilds the view blue/green when the label changes, so the two must
//! agree. No Docker needed.

use tests::workspace_root;

#[test]
fn the_declared_projection_version_is_the_code_s() {
    let path = workspace_root().join("ci/events/account-view.projection");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    // `#` lines are comments, as in the other declarations.
    let value: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let declared: u32 = value.parse().unwrap_or_else(|e| {
        panic!(
            "{} holds {value:?}, not a projection version (one integer): {e}",
            path.display()
        )
    });
    assert_eq!(
        declared,
        account_view::PROJECTION_VERSION,
        "{} declares projection version {declared}; account_view::PROJECTION_VERSION is {}: raise both together",
        path.display(),
        account_view::PROJECTION_VERSION
    );
}
