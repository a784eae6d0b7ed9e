//! The web UI in real headless Chromium: open two accounts, transfer between them, watch the
//! transfer reach COMPLETED, and see balances and history on the page; and type words into the
//! search box and see the matching account in the results.
//!
//! The page runs the steps named in its `?script=` query through the same code its buttons use;
//! Chromium's `--dump-dom` prints the DOM once the page is idle, and the test reads that.

use std::process::Command;

use crate::Fleet;

/// The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH (Debian's package).
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=60000",
            "--timeout=60000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {}: {e}; install Chromium (apt-get install -y chromium) or set CHROMIUM",
                chromium()
            )
        });
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of each `<td class="...{class}...">` in the DOM, in order.
/// [`dump_dom`] on a blocking thread, so the fleet keeps serving while Chromium runs.
async fn browse(url: String, profile: &std::path::Path) -> String {
    let profile = profile.to_owned();
    tokio::task::spawn_blocking(move || dump_dom(&url, &profile))
        .await
        .expect("chromium task")
}

fn cells(dom: &str, class: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("<td class=\"") {
        rest = &rest[i + 11..];
        let Some(end_attr) = rest.find('"') else {
            break;
        };
        let classes = &rest[..end_attr];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let Some(close) = rest.find("</td>") else {
            break;
        };
        if classes.split(' ').any(|c| c == class) {
            out.push(rest[open_end + 1..close].to_owned());
        }
        rest = &rest[close..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_ui_opens_accounts_transfers_and_shows_completed_balances_and_history() {
    let fleet = Fleet::spawn().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let customer = format!("web-{}", uuid::Uuid::new_v4().simple());
    let url = format!(
        "{}/?script=open:Alice:15000:{customer};open:Bob:30000:{customer};transfer:0:1:8000;history:0",
        fleet.gateway
    );
    let dom = browse(url, profile.path()).await;

    assert!(
        dom.contains("script done"),
        "the scripted flow did not finish:\n{dom}"
    );
    assert_eq!(cells(&dom, "transfer-state"), vec!["COMPLETED"], "{dom}");
    assert_eq!(cells(&dom, "balance"), vec!["7000", "38000"], "{dom}");
    // History of the first account: the opening balance is not a change; the debit is.
    assert!(dom.contains("-8000"), "the history shows the debit:\n{dom}");
    assert!(dom.contains("Alice"), "{dom}");

    // Opened fresh for the customer, the page lists their accounts with the new balances.
    let url = format!("{}/?customer={customer}", fleet.gateway);
    let dom = browse(url, profile.path()).await;
    assert!(dom.contains("customer loaded"), "{dom}");
    let mut balances = cells(&dom, "balance");
    balances.sort();
    assert_eq!(balances, vec!["38000", "7000"], "{dom}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_ui_search_box_finds_an_account_by_a_word_of_its_title() {
    let fleet = Fleet::spawn().await;
    let indexer = fleet.spawn_indexer().await;
    let gw = fleet.spawn_gateway_with_search(&indexer.url).await;
    let gateway_url = gw.url.clone();

    // A word unique to this test, so the result is this account and no other.
    let word = format!("zebra{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    fleet
        .open_account(&format!("Holiday {word} savings"), 100)
        .await;
    fleet.open_account("Rent", 100).await;
    // The index commits in the background: wait (bounded) until the API finds the account, so
    // the page's single search is not a race with the indexer.
    let http = reqwest::Client::new();
    let api = format!("{gateway_url}/api/search?q={word}&type=account&limit=20");
    let mut found = false;
    for _ in 0..300 {
        let (status, body) = crate::fleet::call(&http, &api, "GET", None).await;
        if status == 200 && body["total"] == 1 {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the indexer never found {word} through {api}");

    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("{gateway_url}/?script=search:{word}:account");
    let dom = browse(url, profile.path()).await;
    assert!(
        dom.contains("script done"),
        "the scripted search did not finish:\n{dom}"
    );
    assert!(
        dom.contains("1 found"),
        "the search box shows one result:\n{dom}"
    );
    let results = &dom[dom
        .find("id=\"search-results\"")
        .expect("the results table")..];
    let results = &results[..results.find("</tbody>").expect("the results end")];
    assert!(
        results.contains(&format!("Holiday {word} savings")),
        "the result row shows the account's title:\n{dom}"
    );
    assert!(!results.contains("Rent"), "{dom}");
    assert!(results.contains("OPEN"), "{dom}");
}
