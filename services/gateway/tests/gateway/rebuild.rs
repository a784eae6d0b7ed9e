//! Rebuild: a view rebuilt from position 0 equals the incrementally built one.

use account_view::ViewDb;

use crate::fleet::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuilt_view_equals_the_incrementally_built_view() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("a", 15000).await;
    let b = fleet.open_account("b", 30000).await;
    let c = fleet.open_account("c", 10).await;
    let mut transfers = Vec::new();
    for (from, to, amount) in [(&a, &b, 8000), (&a, &b, 20000), (&b, &c, 5), (&c, &a, 15)] {
        transfers.push(fleet.transfer(from, to, amount).await);
    }
    for t in &transfers {
        fleet.wait_terminal(t).await;
    }
    fleet.wait_view_caught_up().await;
    let live = ViewDb::open(&fleet.view_db_path()).expect("open live view");
    let incremental = live.dump().expect("dump");
    assert_eq!(incremental.0.len(), 3);
    assert_eq!(incremental.1.len(), 4);

    // Rebuild into a view that already holds data: the reset empties it first.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rebuilt.sqlite3");
    std::fs::copy(fleet.view_db_path(), &path).expect("copy");
    let mut db = ViewDb::open(&path).expect("open");
    db.reset().expect("reset");
    assert_eq!(db.checkpoint().expect("checkpoint"), 0);
    assert!(db.dump().expect("dump").0.is_empty());
    let (db, checkpoint) = account_view::catch_up(&fleet.store_client(), db)
        .await
        .expect("rebuild");
    assert_eq!(checkpoint, live.checkpoint().expect("checkpoint"));
    assert_eq!(db.dump().expect("dump"), incremental);
}
