// Tandem knowledge-base editor. Plain JS; every piece of KB or customer text is rendered with
// textContent (never innerHTML), because entries and customer questions are untrusted text.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tandem-editor-token") || "";
let current = null; // the entry open in the form (as loaded: its version guards against overwrites)

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function say(text) { $("status").textContent = text; }
function problem(text) { $("problem").textContent = text || ""; }

async function api(method, path, body, raw) {
  const headers = { Authorization: "Bearer " + token };
  let payload;
  if (raw !== undefined) { payload = raw; } else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const response = await fetch("/api/editor" + path, { method, headers, body: payload });
  if (response.status === 401) { logout(); throw new Error("Your session ended; log in again."); }
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : await response.text();
  if (!response.ok) { const err = new Error((data && data.error) || response.statusText); err.status = response.status; err.data = data; throw err; }
  return data;
}

// -- login ------------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/editor/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("login-user").value, password: $("login-password").value }),
  });
  const data = await response.json();
  if (!response.ok) { $("login-error").textContent = data.error || "Login failed"; return; }
  token = data.token;
  sessionStorage.setItem("tandem-editor-token", token);
  start(data.account);
});

function logout() {
  if (token) fetch("/api/agent/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  token = "";
  sessionStorage.removeItem("tandem-editor-token");
  $("app").hidden = true; $("login-view").hidden = false; $("logout").hidden = true; $("whoami").hidden = true;
}
$("logout").addEventListener("click", logout);

function start(account) {
  $("login-view").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("whoami").hidden = false; $("whoami").textContent = "Signed in as " + account.display_name;
  loadCategories(); loadList();
}

// -- tabs (arrow keys move between them, as the ARIA tabs pattern expects) ----------------------
const tabs = Array.from(document.querySelectorAll("[role=tab]"));
function selectTab(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on)); t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  tab.focus();
  if (tab.id === "tab-gaps") loadGaps();
  if (tab.id === "tab-suggestions") loadSuggestions();
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") selectTab(tabs[(i + 1) % tabs.length]);
    if (e.key === "ArrowLeft") selectTab(tabs[(i - 1 + tabs.length) % tabs.length]);
  });
});

// -- list -----------------------------------------------------------------------------------
async function loadCategories() {
  const { categories } = await api("GET", "/categories");
  const select = $("filter-category"), list = $("category-list");
  const chosen = select.value;
  select.replaceChildren(el("option", "All", { value: "" }));
  list.replaceChildren();
  for (const c of categories) { select.append(el("option", c, { value: c })); list.append(el("option", null, { value: c })); }
  select.value = chosen;
}

async function loadList() {
  const params = new URLSearchParams();
  if ($("filter-q").value) params.set("q", $("filter-q").value);
  if ($("filter-category").value) params.set("category", $("filter-category").value);
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  const data = await api("GET", "/faqs?" + params);
  const body = $("faq-table").querySelector("tbody");
  body.replaceChildren();
  for (const faq of data.faqs) {
    const row = el("tr", null, { tabindex: "0", "data-id": faq.id });
    const question = el("td"); question.append(el("strong", faq.question), el("div", faq.id, { class: "muted" }));
    row.append(question, el("td", faq.category), el("td", faq.status), el("td", faq.version), el("td", faq.usage.served),
      el("td", `👍 ${faq.usage.helpful} / 👎 ${faq.usage.unhelpful}`, { "aria-label": `${faq.usage.helpful} helpful, ${faq.usage.unhelpful} not helpful` }));
    row.addEventListener("click", () => openEntry(faq.id));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") openEntry(faq.id); });
    body.append(row);
  }
  $("list-count").textContent = `${data.faqs.length} of ${data.total} entries`;
}
$("filters").addEventListener("submit", (e) => { e.preventDefault(); loadList().catch((err) => problem(err.message)); });

// -- the form ---------------------------------------------------------------------------------
function fill(faq) {
  current = faq;
  $("edit-view").hidden = false;
  $("f-id").value = faq ? faq.id : ""; $("f-id").readOnly = Boolean(faq);
  $("f-category").value = faq ? faq.category : "";
  $("f-question").value = faq ? faq.question : "";
  $("f-answer").value = faq ? faq.answer : "";
  $("f-paraphrases").value = faq ? faq.paraphrases.join("\n") : "";
  $("f-tags").value = faq ? faq.tags.join(", ") : "";
  $("f-status").value = faq ? faq.status : "draft";
  $("f-version").textContent = faq ? `Version ${faq.version}, last changed by ${faq.updated_by} on ${new Date(faq.updated_at * 1000).toLocaleString()}` : "New entry (not saved yet)";
  $("delete").hidden = !faq;
  $("edit-title").textContent = faq ? "Edit entry" : "New entry";
  $("diff").replaceChildren(); $("preview-result").replaceChildren();
  if (faq) loadHistory(faq.id); else $("history").replaceChildren();
  $("edit-view").scrollIntoView({ block: "start" });
}

function formEntry() {
  const lines = (text, sep) => text.split(sep).map((s) => s.trim()).filter(Boolean);
  const entry = {
    category: $("f-category").value.trim(), question: $("f-question").value.trim(), answer: $("f-answer").value.trim(),
    paraphrases: lines($("f-paraphrases").value, "\n"), tags: lines($("f-tags").value, ","), status: $("f-status").value,
  };
  if ($("f-id").value.trim()) entry.id = $("f-id").value.trim();
  return entry;
}

async function openEntry(id) {
  problem("");
  try { fill((await api("GET", "/faqs/" + encodeURIComponent(id))).faq); $("f-question").focus(); } catch (err) { problem(err.message); }
}
$("new-entry").addEventListener("click", () => { problem(""); fill(null); $("f-category").focus(); });
$("close-edit").addEventListener("click", () => { $("edit-view").hidden = true; current = null; });

async function save(status) {
  problem("");
  if (status) $("f-status").value = status;
  if (!$("edit-form").reportValidity()) return;
  const entry = formEntry();
  try {
    const data = current
      ? await api("PUT", "/faqs/" + encodeURIComponent(current.id), { ...entry, expected_version: current.version })
      : await api("POST", "/faqs", entry);
    fill(data.faq);
    say(`Saved "${data.faq.question}" as version ${data.faq.version} (${data.faq.status}).`);
    loadList(); loadCategories();
  } catch (err) {
    problem(err.message); // a 409 says who changed it; the form keeps the editor's text so nothing is lost
  }
}
$("edit-form").addEventListener("submit", (e) => { e.preventDefault(); save(); });
$("publish").addEventListener("click", () => save("published"));
$("delete").addEventListener("click", async () => {
  if (!current || !confirm(`Delete "${current.question}"? It stays in the history and can be rolled back.`)) return;
  try {
    await api("DELETE", `/faqs/${encodeURIComponent(current.id)}?expected_version=${current.version}`);
    say(`Deleted ${current.id}.`); $("edit-view").hidden = true; current = null; loadList();
  } catch (err) { problem(err.message); }
});

// -- history, diff, rollback -------------------------------------------------------------------
async function loadHistory(id) {
  const { versions } = await api("GET", `/faqs/${encodeURIComponent(id)}/history`);
  const list = $("history");
  list.replaceChildren();
  for (const v of versions) {
    const item = el("li", `Version ${v.version}: ${v.action} by ${v.author}, ${new Date(v.at * 1000).toLocaleString()} (${v.snapshot.status}) `);
    if (v.version !== versions[0].version) {
      const diff = el("button", `Compare with version ${versions[0].version}`, { type: "button" });
      diff.addEventListener("click", () => showDiff(id, v.version, versions[0].version));
      const back = el("button", `Roll back to version ${v.version}`, { type: "button", class: "danger" });
      back.addEventListener("click", () => rollback(id, v.version));
      item.append(diff, " ", back);
    }
    list.append(item);
  }
}

async function showDiff(id, from, to) {
  const data = await api("GET", `/faqs/${encodeURIComponent(id)}/diff?from=${from}&to=${to}`);
  const box = $("diff");
  box.replaceChildren(el("h4", `Changes from version ${from} to ${to}`));
  if (!data.changes.length) box.append(el("p", "No differences."));
  for (const change of data.changes) {
    box.append(el("h5", change.field));
    const pre = el("pre");
    for (const line of change.diff) pre.append(el("div", line, { class: "diff-line " + (line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "") }));
    box.append(pre);
  }
}

async function rollback(id, version) {
  problem("");
  try {
    const data = await api("POST", `/faqs/${encodeURIComponent(id)}/rollback`, { version });
    fill(data.faq); say(`Rolled back to version ${version}; now version ${data.faq.version}.`); loadList();
  } catch (err) { problem(err.message); }
}

// -- try a question -----------------------------------------------------------------------------
function renderTry(box, data) {
  box.replaceChildren();
  const d = data.decision;
  const said = { answer: "answer", clarify: "ask which of two entries is meant", miss: "not answer (it does not cover this: asks to rephrase; misses in a row → a person)" };
  box.append(el("p", `The bot would ${said[d.action] || d.action}`, { class: "decision " + d.action }));
  box.append(el("p", d.reason, { class: "muted" }));
  const table = el("table");
  table.append(el("caption", `Top ${data.matches.length} matches (threshold ${data.threshold}, clarify margin ${data.clarify_margin})`, { class: "sr-only" }));
  const ranked = data.matches.some((m) => m.rank_score !== null && m.rank_score !== undefined);
  const columns = ranked ? ["Score", "Rank (score + learned)", "Entry", "Matched text"] : ["Score", "Entry", "Matched text"];
  const head = el("tr"); columns.forEach((h) => head.append(el("th", h, { scope: "col" })));
  const thead = el("thead"); thead.append(head); table.append(thead);
  const body = el("tbody");
  for (const m of data.matches) {
    const row = el("tr");
    row.append(el("td", m.score.toFixed(3)));
    if (ranked) row.append(el("td", m.rank_score === null || m.rank_score === undefined ? "—" : m.rank_score.toFixed(3)));
    row.append(el("td", (m.editing ? "✎ (this entry) " : "") + m.question), el("td", m.matched_text));
    body.append(row);
  }
  table.append(body); box.append(table);
}

function renderCalibration(data) {
  const c = data.calibration, th = data.thresholds;
  let text = `Thresholds in use: answer at ${th.faq_threshold.toFixed(2)}, clarify margin ${th.clarify_margin.toFixed(2)} (${th.source}).`;
  if (c) text = `Tested on its own texts (revision ${c.revision}, ${c.entries} entries): the knowledge base ${c.summary}. ` + text;
  if (data.pending) text += " Recalculating after the latest change…";
  if (data.head) text += ` Ranking also learns from the entries' paraphrases (trained on revision ${data.head.revision} in ${data.head.seconds}s).`;
  else if (data.head_pending) text += " Learning from the entries' paraphrases…";
  const a = data.adaptation;
  if (a && a.state === "in force") text += ` Search uses an ${a.summary}.`;
  else if (a && a.state === "training") text += " Adapting the search model to the entries' paraphrases in the background (a few minutes; answers go on meanwhile)…";
  else if (a && a.state === "loading") text += " Switching to the search model adapted to the entries' paraphrases…";
  else if (a && a.state === "shipped encoder kept") text += ` Search model: ${a.summary}.`;
  $("calibration").textContent = text;
}

async function loadCalibration() {
  try { renderCalibration(await api("GET", "/calibration")); } catch (err) { problem(err.message); }
}

$("tab-try").addEventListener("click", () => loadCalibration());

$("try-form").addEventListener("submit", async (e) => {
  e.preventDefault(); problem("");
  try { renderTry($("try-result"), await api("POST", "/try", { text: $("try-text").value })); loadCalibration(); } catch (err) { problem(err.message); }
});
$("preview-form").addEventListener("submit", async (e) => {
  e.preventDefault(); problem("");
  const entry = formEntry();
  if (current) entry.id = current.id;
  try { renderTry($("preview-result"), await api("POST", "/try", { text: $("preview-text").value, entry })); } catch (err) { problem(err.message); }
});

// -- import / export ------------------------------------------------------------------------------
$("import-form").addEventListener("submit", async (e) => {
  e.preventDefault(); problem("");
  const file = $("import-file").files[0];
  if (!file) return;
  const apply = e.submitter && e.submitter.value === "apply";
  const format = /\.ya?ml$/i.test(file.name) ? "yaml" : "csv";
  const box = $("import-result");
  box.replaceChildren();
  try {
    const data = await api("POST", `/import?format=${format}&apply=${apply ? 1 : 0}`, undefined, await file.arrayBuffer());
    box.append(el("p", apply ? `Imported ${data.applied} entries.` : `${data.rows} entries are fine; nothing imported yet.`));
    for (const note of data.notes || []) box.append(el("p", note, { class: "note" }));  // e.g. converted from GB18030
    if (apply) { loadList(); loadCategories(); }
  } catch (err) {
    box.append(el("p", err.message, { class: "error" }));
    const list = el("ul");
    for (const r of (err.data && err.data.errors) || []) list.append(el("li", (r.row === null ? "File" : r.row === 0 ? "Header" : `Row ${r.row}`) + ": " + r.message));
    box.append(list);
  }
});

async function download(format) {
  const response = await fetch(`/api/editor/export?format=${format}`, { headers: { Authorization: "Bearer " + token } });
  if (!response.ok) { problem("Export failed: " + response.status); return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", null, { href: url, download: `faqs.${format}` });
  document.body.append(link); link.click(); link.remove(); URL.revokeObjectURL(url);
}
$("export-csv").addEventListener("click", () => download("csv"));
$("export-yaml").addEventListener("click", () => download("yaml"));

// -- gaps and agents' answers -----------------------------------------------------------------------
async function loadGaps() {
  const list = $("gaps");
  list.replaceChildren(el("li", "Loading…"));
  try {
    const { gaps } = await api("GET", "/gaps");
    list.replaceChildren();
    if (!gaps.length) list.append(el("li", "No unanswered questions yet."));
    for (const gap of gaps) {
      const item = el("li");
      item.append(el("strong", `${gap.count}× “${gap.question}”`), el("p", `${gap.conversations} conversation(s), latest ${new Date(gap.latest_at * 1000).toLocaleString()}; ${gap.reasons.join(", ")}`, { class: "muted" }));
      const examples = el("ul");
      for (const ex of gap.examples) examples.append(el("li", ex.text));
      const write = el("button", "Write an entry for this", { type: "button" });
      write.addEventListener("click", () => { selectTab($("tab-entries")); fill(null); $("f-question").value = gap.question; $("f-category").focus(); });
      item.append(examples, write);
      list.append(item);
    }
  } catch (err) { problem(err.message); }
}
$("gaps-refresh").addEventListener("click", loadGaps);

async function loadSuggestions() {
  const list = $("suggestions");
  list.replaceChildren(el("li", "Loading…"));
  try {
    const { suggestions } = await api("GET", "/suggestions");
    list.replaceChildren();
    if (!suggestions.length) list.append(el("li", "No agent answers waiting."));
    for (const s of suggestions) {
      const item = el("li");
      item.append(el("p", "Customer: " + s.question), el("pre", s.answer), el("p", `Answered by ${s.agent} (case ${s.case_id})`, { class: "muted" }));
      const use = el("button", "Edit as a draft entry", { type: "button" });
      use.addEventListener("click", () => {
        selectTab($("tab-entries")); fill(null);
        const d = s.draft;
        $("f-id").value = d.id; $("f-category").value = d.category; $("f-question").value = d.question; $("f-answer").value = d.answer;
        $("f-tags").value = d.tags.join(", "); $("f-status").value = "draft"; $("f-question").focus();
      });
      item.append(use);
      list.append(item);
    }
  } catch (err) { problem(err.message); }
}
$("suggestions-refresh").addEventListener("click", loadSuggestions);

// -- resume a session ------------------------------------------------------------------------------
if (token) {
  fetch("/api/agent/me", { headers: { Authorization: "Bearer " + token } })
    .then((r) => (r.ok ? r.json() : Promise.reject()))
    .then((d) => (d.account.role === "editor" ? start(d.account) : logout()))
    .catch(() => logout());
}
