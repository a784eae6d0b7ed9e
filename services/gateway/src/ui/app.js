// The banking UI: open accounts, transfer money, watch the transfer's state and see balances
// and history. Plain browser JavaScript against the gateway's /api; no build step.
"use strict";

const TERMINAL = ["COMPLETED", "FAILED_DUE_TO_INSUFFICIENT_FUNDS", "FAILED_AND_REFUNDED"];
const accounts = new Map(); // id -> latest account document (or a placeholder)
const transfers = new Map(); // id -> latest transfer document
let selected = null;

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function say(text) { $("message").textContent = text || ""; }

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  return { status: res.status, data };
}

function errorText(r) {
  return (r.data && r.data.message) || ("request failed with status " + r.status);
}

// Reads a document from the view, waiting until it reaches minVersion (the view answers 503
// view_out_of_date while it is behind; retry a few times).
async function readFresh(path, minVersion) {
  for (let i = 0; i < 50; i++) {
    const q = minVersion ? "?min_version=" + minVersion : "";
    const r = await api("GET", path + q);
    if (r.status === 200) return r.data;
    if (r.status !== 503 && r.status !== 404) throw new Error(errorText(r));
    await sleep(100);
  }
  throw new Error("the view did not catch up; reload the page later");
}

async function openAccount(title, balance, customer) {
  const body = { title, initial_balance: Number(balance) };
  if (customer) body.customer_id = customer;
  const r = await api("POST", "/api/accounts", body);
  if (r.status !== 201) throw new Error(errorText(r));
  const doc = await readFresh("/api/accounts/" + r.data.account_id, r.data.version);
  accounts.set(doc.id, doc);
  remember();
  render();
  return doc;
}

async function refreshAccount(id) {
  const r = await api("GET", "/api/accounts/" + id);
  if (r.status === 200) accounts.set(id, r.data);
}

async function closeAccount(id) {
  const r = await api("DELETE", "/api/accounts/" + id);
  if (r.status >= 300) throw new Error(errorText(r));
  await readFresh("/api/accounts/" + id, r.data.version);
  await refreshAccount(id);
  render();
}

// Creates a transfer, then follows its state until it ends, then refreshes both accounts.
async function transfer(from, to, amount, description) {
  const body = { from_account_id: from, to_account_id: to, amount: Number(amount) };
  if (description) body.description = description;
  const r = await api("POST", "/api/transfers", body);
  if (r.status !== 201) throw new Error(errorText(r));
  const id = r.data.transfer_id;
  let doc = await readFresh("/api/transfers/" + id, r.data.version);
  transfers.set(id, doc);
  render();
  while (!TERMINAL.includes(doc.state)) {
    doc = await readFresh("/api/transfers/" + id, doc.version + 1);
    transfers.set(id, doc);
    render();
  }
  await Promise.all([refreshAccount(from), refreshAccount(to)]);
  render();
  return doc;
}

// Shows every account of a customer, as the view lists them.
async function loadCustomer(customer) {
  const r = await api("GET", "/api/customers/" + encodeURIComponent(customer) + "/accounts");
  if (r.status !== 200) throw new Error(errorText(r));
  await Promise.all(r.data.accounts.map((a) => refreshAccount(a.id)));
  remember();
  render();
}

function remember() {
  try { localStorage.setItem("bank.accounts", JSON.stringify([...accounts.keys()])); } catch (_) {}
}

async function restore() {
  let ids = [];
  try { ids = JSON.parse(localStorage.getItem("bank.accounts") || "[]"); } catch (_) {}
  await Promise.all(ids.map(refreshAccount));
  render();
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function label(id) {
  const a = accounts.get(id);
  return a ? a.title + " (" + id.slice(0, 8) + ")" : id.slice(0, 8);
}

function render() {
  const body = $("accounts");
  body.replaceChildren();
  for (const [id, a] of accounts) {
    const row = document.createElement("tr");
    row.dataset.accountId = id;
    cell(row, a.title);
    cell(row, id, "muted");
    cell(row, String(a.balance), "num balance");
    cell(row, a.status || "");
    const actions = cell(row, "");
    const show = document.createElement("button");
    show.textContent = "History";
    show.onclick = () => { selected = id; render(); };
    const close = document.createElement("button");
    close.textContent = "Close";
    close.onclick = () => closeAccount(id).catch((e) => say(e.message));
    actions.append(show, close);
    body.appendChild(row);
  }
  for (const sel of [$("transfer-from"), $("transfer-to")]) {
    const keep = sel.value;
    sel.replaceChildren();
    for (const id of accounts.keys()) {
      const o = document.createElement("option");
      o.value = id;
      o.textContent = label(id);
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
  }
  const tbody = $("transfers");
  tbody.replaceChildren();
  for (const [id, t] of [...transfers].reverse()) {
    const row = document.createElement("tr");
    row.dataset.transferId = id;
    cell(row, id.slice(0, 8));
    cell(row, label(t.from_account_id));
    cell(row, label(t.to_account_id));
    cell(row, String(t.amount), "num");
    cell(row, t.state, "transfer-state state-" + t.state);
    tbody.appendChild(row);
  }
  const hist = $("history");
  hist.replaceChildren();
  const a = selected && accounts.get(selected);
  $("history-title").textContent = a ? label(selected) : "(choose an account)";
  if (a) {
    for (const c of a.changes || []) {
      const row = document.createElement("tr");
      cell(row, c.transaction_type);
      cell(row, (c.transaction_id || "").slice(0, 8));
      cell(row, String(c.amount), "num");
      cell(row, (c.balance_delta > 0 ? "+" : "") + c.balance_delta, "num");
      hist.appendChild(row);
    }
  }
}

$("open-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  say("");
  openAccount($("open-title").value, $("open-balance").value, $("open-customer").value.trim())
    .catch((e) => say(e.message));
});

$("customer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  say("");
  loadCustomer($("customer").value.trim()).catch((e) => say(e.message));
});

$("transfer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  say("");
  transfer($("transfer-from").value, $("transfer-to").value, $("transfer-amount").value,
    $("transfer-description").value.trim()).catch((e) => say(e.message));
});

// Full-text search through the indexer; a refused query (400) shows the indexer's message.
async function search(q, type) {
  const path = "/api/search?q=" + encodeURIComponent(q) + "&type=" + encodeURIComponent(type) + "&limit=20";
  const r = await api("GET", path);
  const head = $("search-head");
  const body = $("search-results");
  head.replaceChildren();
  body.replaceChildren();
  if (r.status !== 200 || !r.data) {
    $("search-message").textContent = errorText(r);
    return;
  }
  const results = r.data.results || [];
  $("search-message").textContent = r.data.total + " found" + (results.length < r.data.total ? ", showing " + results.length : "");
  const hr = document.createElement("tr");
  const columns = type === "account"
    ? [["Title"], ["Customer"], ["Status"]]
    : [["Description"], ["From → To"], ["Amount", "num"], ["State"]];
  for (const [name, cls] of columns) {
    const th = document.createElement("th");
    th.textContent = name;
    if (cls) th.className = cls;
    hr.appendChild(th);
  }
  head.appendChild(hr);
  for (const hit of results) {
    const row = document.createElement("tr");
    if (hit.type === "account") {
      cell(row, hit.title);
      cell(row, hit.customer_id || "");
      cell(row, hit.status);
    } else {
      cell(row, hit.description || "");
      cell(row, (hit.from_title || String(hit.from_account_id).slice(0, 8)) + " → " +
        (hit.to_title || String(hit.to_account_id).slice(0, 8)));
      cell(row, String(hit.amount), "num");
      cell(row, hit.state, "state-" + hit.state);
    }
    body.appendChild(row);
  }
}

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  search($("search-q").value, $("search-type").value)
    .catch((e) => { $("search-message").textContent = e.message; });
});

// Scripted use for demos and the browser test: ?script=open:Title:15000:customer;transfer:0:1:8000
// (also history:N and search:words:account|transfer).
// Steps fill the same forms and go through the same functions a click does; accounts are named
// by the order they were opened in. ?customer=ID shows that customer's accounts instead.
async function runScript(script) {
  const opened = [];
  for (const step of script.split(";").filter(Boolean)) {
    const [verb, ...args] = step.split(":");
    if (verb === "open") {
      $("open-title").value = args[0];
      $("open-balance").value = args[1];
      $("open-customer").value = args[2] || "";
      const doc = await openAccount($("open-title").value, $("open-balance").value,
        $("open-customer").value);
      opened.push(doc.id);
    } else if (verb === "transfer") {
      $("transfer-from").value = opened[Number(args[0])];
      $("transfer-to").value = opened[Number(args[1])];
      $("transfer-amount").value = args[2];
      await transfer($("transfer-from").value, $("transfer-to").value, $("transfer-amount").value, "");
    } else if (verb === "history") {
      selected = opened[Number(args[0])];
      render();
    } else if (verb === "search") {
      $("search-q").value = args[0];
      $("search-type").value = args[1] || "account";
      await search($("search-q").value, $("search-type").value);
    }
  }
}

(async () => {
  const params = new URLSearchParams(location.search);
  const script = params.get("script");
  const customer = params.get("customer");
  if (customer) {
    $("customer").value = customer;
    try {
      await loadCustomer(customer);
      $("script-status").textContent = "customer loaded";
    } catch (e) {
      say(e.message);
    }
  } else if (script) {
    try {
      await runScript(script);
      $("script-status").textContent = "script done";
    } catch (e) {
      say(e.message);
      $("script-status").textContent = "script failed: " + e.message;
    }
  } else {
    await restore();
  }
})();
