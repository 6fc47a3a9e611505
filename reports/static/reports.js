// The managers' reports page: plain JS, no library. All text goes in through textContent, and
// the server's SVG charts are shown as <img> (blob URLs), where they cannot run scripts.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tandem-reports-token") || "";
const READERS = ["manager", "supervisor"];
const TITLES = {
  containment: "Containment", escalations: "Escalations", faq: "FAQ", waiting: "Waiting",
  handling: "Handling", first_contact: "First-contact resolution", satisfaction: "Satisfaction (CSAT)", qa: "Quality review",
};

function el(tag, props, text) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (response.status === 401) { logout(); throw new Error("Please log in again."); }
  if (!response.ok) {
    let message = "Request failed (" + response.status + ")";
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function query() {
  const params = new URLSearchParams({ start: $("f-start").value, end: $("f-end").value });
  for (const [name, id] of [["channel", "f-channel"], ["team", "f-team"], ["agent", "f-agent"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  return params.toString();
}

// -- login ------------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/agent/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("login-user").value, password: $("login-password").value }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { $("login-error").textContent = data.error || "Login failed"; return; }
  if (!READERS.includes(data.account.role)) {
    $("login-error").textContent = "A " + data.account.role + " account cannot see the reports.";
    fetch("/api/agent/logout", { method: "POST", headers: { Authorization: "Bearer " + data.token } }).catch(() => {});
    return;
  }
  token = data.token;
  sessionStorage.setItem("tandem-reports-token", token);
  start();
});

function logout() {
  if (token) fetch("/api/agent/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  token = "";
  sessionStorage.removeItem("tandem-reports-token");
  $("app").hidden = true; $("login-view").hidden = false; $("logout").hidden = true; $("whoami").hidden = true;
}
$("logout").addEventListener("click", logout);

async function start() {
  let options;
  try { options = await (await api("/api/reports/options")).json(); } catch (e) { $("login-error").textContent = e.message; return; }
  $("login-view").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("whoami").hidden = false; $("whoami").textContent = options.me.display_name + " (" + options.me.role + ")";
  for (const channel of options.channels) $("f-channel").appendChild(el("option", { value: channel }, channel));
  for (const team of options.teams) $("f-team").appendChild(el("option", { value: team }, team));
  for (const agent of options.agents) $("f-agent").appendChild(el("option", { value: String(agent.id) }, agent.name));
  const today = new Date();
  const from = new Date(today.getTime() - 29 * 86400000);
  $("f-end").value = today.toISOString().slice(0, 10);
  $("f-start").value = from.toISOString().slice(0, 10);
  window.chartNames = options.charts;
  role = options.me.role;
  await show();
  showQa();
}

// -- figures ----------------------------------------------------------------------------------
function fmt(value, kind) {
  if (value === null || value === undefined) return "–";
  if (kind === "rate") return (100 * value).toFixed(1) + " %";
  if (kind === "s") return value < 120 ? value.toFixed(0) + " s" : (value / 60).toFixed(1) + " min";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
  return String(value);
}

function lines(name, f) {
  switch (name) {
    case "containment": return [["Conversations", f.conversations], ["Bot only", f.bot_only], ["Containment", fmt(f.rate, "rate")]];
    case "escalations": return [["Escalated conversations", f.escalated], ["Escalation rate", fmt(f.rate, "rate")]]
      .concat(Object.entries(f.reasons).map(([reason, n]) => ["Reason: " + reason, n]));
    case "faq": return [["Answers served", f.served], ["Helpful", f.helpful], ["Not helpful", f.unhelpful], ["Unanswered", f.missed]];
    case "waiting": return [["Cases", f.cases], ["First reply p50", fmt(f.first_reply_p50, "s")], ["First reply p90", fmt(f.first_reply_p90, "s")],
      ["Abandoned while waiting", f.abandoned], ["Service level (" + f.target_s + " s)", fmt(f.service_level, "rate")]];
    case "handling": return [["Closed cases", f.closed], ["Handle time p50", fmt(f.handle_p50, "s")], ["Handle time p90", fmt(f.handle_p90, "s")],
      ["Resolution time p50", fmt(f.resolution_p50, "s")], ["Transfers", f.transfers], ["Reopened", f.reopened], ["Reopen rate", fmt(f.reopen_rate, "rate")]];
    case "first_contact": return [["Judged cases", f.judged], ["Resolved at first contact", f.resolved_first], ["FCR", fmt(f.rate, "rate")],
      ["Still in " + f.window_days + "-day window", f.pending]];
    case "satisfaction": return [["Bot ratings", f.bot.ratings], ["Bot CSAT", fmt(f.bot.csat, "rate")], ["Bot mean", fmt(f.bot.mean)],
      ["Agent ratings", f.agent.ratings], ["Agent CSAT", fmt(f.agent.csat, "rate")], ["Agent mean", fmt(f.agent.mean)]]
      .concat(f.by_agent.map((a) => ["Agent " + a[1], fmt(a[3]) + " (" + a[2] + ")"]));
    case "qa": return [["Reviews", f.reviews], ["Mean score", fmt(f.mean)]].concat(f.by_agent.map((a) => ["Agent " + a[1], fmt(a[3]) + " (" + a[2] + ")"]))
      .concat(f.by_team.map((t) => ["Team " + t[0], fmt(t[2]) + " (" + t[1] + ")"]));
    default: return [];
  }
}

async function download(name) {
  try {
    const response = await api("/api/reports/csv/" + encodeURIComponent(name) + "?" + query());
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: "tandem-" + name + "-" + $("f-start").value + ".csv" });
    document.body.appendChild(link); link.click(); link.remove();
  } catch (e) { $("problem").textContent = e.message; }
}

async function show() {
  $("problem").textContent = ""; $("status").textContent = "Loading…";
  let data;
  try { data = await (await api("/api/reports/summary?" + query())).json(); }
  catch (e) { $("problem").textContent = e.message; $("status").textContent = ""; return; }
  const box = $("figures"); box.replaceChildren();
  for (const [name, figure] of Object.entries(data.figures)) {
    const card = el("section", { className: "card", id: "figure-" + name });
    card.setAttribute("aria-label", TITLES[name] || name);
    card.appendChild(el("h3", {}, TITLES[name] || name));
    const list = el("dl");
    for (const [label, value] of lines(name, figure)) { list.appendChild(el("dt", {}, label)); list.appendChild(el("dd", {}, value)); }
    card.appendChild(list);
    const button = el("button", { type: "button", className: "secondary" }, "Download CSV");
    button.setAttribute("aria-label", "Download " + (TITLES[name] || name) + " as CSV");
    button.addEventListener("click", () => download(name));
    card.appendChild(button);
    box.appendChild(card);
  }
  const charts = $("charts"); charts.replaceChildren();
  await Promise.all((window.chartNames || []).map(async (name) => {
    const holder = el("figure", { className: "card chart", id: "chart-" + name });
    charts.appendChild(holder);
    try {
      const blob = await (await api("/api/reports/charts/" + encodeURIComponent(name) + "?" + query())).blob();
      const img = el("img", { src: URL.createObjectURL(blob), alt: name.replace(/_/g, " ") + " chart" });
      holder.appendChild(img);
    } catch (e) { holder.appendChild(el("p", { className: "error" }, e.message)); }
  }));
  $("status").textContent = "Showing " + $("f-start").value + " to " + $("f-end").value + ".";
  showGaps();
}

$("filters").addEventListener("submit", (event) => { event.preventDefault(); show(); });
if (token) start();

// -- knowledge gaps ---------------------------------------------------------------------------
async function showGaps() {
  const body = $("gaps"); body.replaceChildren();
  try {
    const data = await (await api("/api/reports/gaps?" + query())).json();
    if (!data.gaps.length) { body.appendChild(el("tr")).appendChild(el("td", { colSpan: 3 }, "No unanswered questions in this period.")); }
    for (const gap of data.gaps) {
      const row = el("tr");
      row.appendChild(el("td", {}, gap.question));
      row.appendChild(el("td", {}, gap.count));
      row.appendChild(el("td", {}, gap.by_day.map((d) => d[0].slice(5) + ": " + d[1]).join(", ")));
      body.appendChild(row);
    }
  } catch (e) { body.appendChild(el("tr")).appendChild(el("td", { colSpan: 3, className: "error" }, e.message)); }
}

// -- quality review ---------------------------------------------------------------------------
let role = "";
let criteria = [];

async function send(method, path, body) {
  const response = await fetch(path, {
    method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || "Request failed (" + response.status + ")");
  return data;
}

function rubricRow(c) {
  const row = el("tr");
  row.dataset.id = c.id === undefined ? "" : String(c.id);
  if (role === "manager") {
    const name = el("input", { value: c.name || "", className: "c-name", maxLength: 80 }); name.setAttribute("aria-label", "Criterion name");
    const desc = el("input", { value: c.description || "", className: "c-desc", maxLength: 1000 }); desc.setAttribute("aria-label", "Criterion description");
    const weight = el("input", { value: String(c.weight || 1), className: "c-weight", type: "number", min: "0.1", step: "0.1" });
    weight.setAttribute("aria-label", "Criterion weight");
    const remove = el("button", { type: "button", className: "secondary" }, "Remove");
    remove.addEventListener("click", () => row.remove());
    for (const input of [name, desc, weight, remove]) row.appendChild(el("td")).appendChild(input);
  } else {
    row.appendChild(el("td", {}, c.name)); row.appendChild(el("td", {}, c.description));
    row.appendChild(el("td", {}, c.weight)); row.appendChild(el("td"));
  }
  return row;
}

async function showRubric() {
  const data = await (await api("/api/reports/qa/rubric")).json();
  criteria = data.criteria;
  $("rubric").replaceChildren(...criteria.map(rubricRow));
  $("rubric-actions").hidden = role !== "manager";
}

$("rubric-add").addEventListener("click", () => $("rubric").appendChild(rubricRow({ name: "", description: "", weight: 1 })));
$("rubric-save").addEventListener("click", async () => {
  const items = [...$("rubric").querySelectorAll("tr")].map((row) => {
    const item = { name: row.querySelector(".c-name").value, description: row.querySelector(".c-desc").value,
                   weight: Number(row.querySelector(".c-weight").value) };
    if (row.dataset.id) item.id = Number(row.dataset.id);
    return item;
  });
  try { await send("PUT", "/api/reports/qa/rubric", { criteria: items }); $("status").textContent = "Rubric saved."; await showRubric(); }
  catch (e) { $("problem").textContent = e.message; }
});

async function showQueue() {
  const data = await (await api("/api/reports/qa/queue")).json();
  const body = $("queue"); body.replaceChildren();
  if (!data.reviews.length) body.appendChild(el("tr")).appendChild(el("td", { colSpan: 5 }, "Nothing to review: sample some closed conversations."));
  for (const r of data.reviews) {
    const row = el("tr");
    for (const value of ["#" + r.case_id, r.agent_name, r.team || "", r.bucket.replace("_", " ")]) row.appendChild(el("td", {}, value));
    const open = el("button", { type: "button", className: "secondary" }, "Review");
    open.setAttribute("aria-label", "Review case " + r.case_id);
    open.addEventListener("click", () => openReview(r.id));
    row.appendChild(el("td")).appendChild(open);
    body.appendChild(row);
  }
}

$("sample-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const data = await send("POST", "/api/reports/qa/sample", {
      start: $("f-start").value, end: $("f-end").value, per_bucket: Number($("sample-size").value), seed: Number($("sample-seed").value),
    });
    $("status").textContent = data.queued.length + " conversation(s) added to the review queue.";
    await showQueue();
  } catch (e) { $("problem").textContent = e.message; }
});

let reviewing = null;
async function openReview(id) {
  const data = await (await api("/api/reports/qa/reviews/" + id)).json();
  reviewing = data.review.id;
  $("review").hidden = false;
  $("review-title").textContent = "Review of case #" + data.review.case_id + " (" + data.review.agent_name + ")";
  $("review-transcript").replaceChildren(...data.transcript.map((line) => {
    const item = el("li");
    item.appendChild(el("span", { className: "sender" }, line.agent_name || line.sender));
    item.appendChild(el("span", {}, line.text));
    return item;
  }));
  $("review-criteria").replaceChildren(...criteria.map((c) => {
    const wrap = el("div");
    const label = el("label", { htmlFor: "score-" + c.id }, c.name + " (weight " + c.weight + ")");
    const select = el("select", { id: "score-" + c.id, className: "score" });
    select.dataset.id = String(c.id);
    for (let s = 5; s >= 1; s--) select.appendChild(el("option", { value: String(s) }, String(s)));
    wrap.appendChild(label); wrap.appendChild(select);
    return wrap;
  }));
  $("review-submit").hidden = role !== "supervisor";
}

$("review-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const scores = {};
  for (const select of $("review-criteria").querySelectorAll("select")) scores[select.dataset.id] = Number(select.value);
  try {
    const data = await send("POST", "/api/reports/qa/reviews/" + reviewing, { scores, comment: $("review-comment").value });
    $("review").hidden = true; $("review-comment").value = "";
    await showQueue();
    await show();  // refreshes the figures (and says what it shows): the saved review is said last
    $("status").textContent = "Review saved: " + data.review.score.toFixed(0) + " / 100.";
  } catch (e) { $("problem").textContent = e.message; }
});

async function showQa() {
  try { await showRubric(); await showQueue(); } catch (e) { $("problem").textContent = e.message; }
}
