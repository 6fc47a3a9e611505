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
  await show();
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
}

$("filters").addEventListener("submit", (event) => { event.preventDefault(); show(); });
if (token) start();
