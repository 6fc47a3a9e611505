// Tandem agent console: vanilla JS, no build step. Every piece of customer, agent or
// knowledge-base text is put on the page with textContent, never innerHTML.
"use strict";

const state = {
  token: sessionStorage.getItem("tandem.console.token"),
  me: null,
  ws: null,
  retry: 0,
  teams: [],
  agents: [],
  canned: [],
  waiting: new Map(),  // case id -> case
  assigned: new Map(), // case id -> case
  sla: {},             // case id -> {first_response, resolution} timers (GET /sla)
  tabs: new Map(),     // "case:7" | "ticket:3" -> {kind, id, button, panel, cursorIds:Set, conversationId}
  active: null,
  unseen: 0,
  pingTimer: null,
  refreshTimer: null,
};

const $ = (sel, root = document) => root.querySelector(sel);

// Bidi embedding/override/isolate controls (U+202A-U+202E, U+2066-U+2069) in untrusted text
// would reorder what the agent reads ("‮gnp.exe" shows as "exe.png"): shown as visible
// markers instead, and every text node sits in its own isolated, direction-auto run (CSS).
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;
function neutralBidi(value) {
  return String(value).replace(BIDI_CONTROLS, (c) => "[U+" + c.charCodeAt(0).toString(16).toUpperCase() + "]");
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") { node.textContent = neutralBidi(value); node.dir = "auto"; }
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// -- HTTP ----------------------------------------------------------------------------------
async function api(method, path, body) {
  const response = await fetch("/api/agent" + path, {
    method,
    headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* empty body */ }
  if (response.status === 401) { logout("Your session has expired; please log in again."); }
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

// -- login ---------------------------------------------------------------------------------
$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#login-error").textContent = "";
  const response = await fetch("/api/agent/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("#login-username").value, password: $("#login-password").value }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { $("#login-error").textContent = data.error || "Login failed"; return; }
  if (!["agent", "supervisor"].includes(data.account.role)) { $("#login-error").textContent = "This account is not an agent or supervisor."; return; }
  state.token = data.token;
  sessionStorage.setItem("tandem.console.token", data.token);
  start();
});

$("#logout-button").addEventListener("click", async () => {
  try { await api("POST", "/logout"); } catch (_) { /* already gone */ }
  logout("");
});

function logout(message) {
  state.token = null;
  sessionStorage.removeItem("tandem.console.token");
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  clearInterval(state.pingTimer);
  $("#app-view").hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = message;
}

// -- live connection -----------------------------------------------------------------------
function start() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The token goes in the first frame, never in the URL (browsers cannot set headers here).
  const ws = new WebSocket(`${scheme}//${location.host}/api/agent/ws`);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: state.token }));
  setConnection("connecting…", false);
  ws.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch (_) { return; }
    handle(message);
  };
  ws.onclose = (event) => {
    clearInterval(state.pingTimer);
    if (event.code === 4401 || event.code === 4403) { logout("Your session has expired; please log in again."); return; }
    setConnection("reconnecting…", false);
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(() => { if (state.token) connect(); }, 300 * 2 ** state.retry);
  };
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function setConnection(text, ok) {
  const node = $("#connection");
  node.textContent = text;
  node.classList.toggle("ok", ok);
}

function handle(message) {
  switch (message.type) {
    case "hello": return hello(message);
    case "error": if (message.status === 401) logout(message.error); return;
    case "case_opened": return caseOpened(message.case);
    case "case_claimed": case "case_assigned": case "case_transferred": case "case_closed":
      return caseChanged(message.case, message);
    case "case_cancelled": return caseCancelled(message.case_id);
    case "message": return liveMessage(message);
    case "typing": return customerTyping(message);
    case "presence": return presenceChanged(message.agent);
    case "note": return noteAdded(message.case_id, message.note);
    case "ticket_opened": case "ticket_updated": notifyNew(message.type === "ticket_opened"); return refreshTickets();
    case "case_reassigned": return caseReassigned(message);
    case "sla_breached": return refreshSla();
    case "followup_scheduled": case "followup_asked": case "followup_answered": case "followup_cancelled": case "followup_unanswered":
      return refreshFollowups();
    case "customer_updated": case "customer_erased": return reloadCustomers();
    default: return undefined;
  }
}

async function hello(message) {
  state.retry = 0;
  state.me = message.me;
  state.teams = message.teams;
  setConnection("live", true);
  $("#me-name").textContent = `${message.me.display_name} (${message.me.role})`;
  $("#presence-select").value = message.presence.status;
  state.waiting = new Map(message.waiting.map((c) => [c.id, c]));
  state.assigned = new Map(message.assigned.map((c) => [c.id, c]));
  renderQueue();
  renderOpen();
  clearInterval(state.pingTimer);
  state.pingTimer = setInterval(() => send({ type: "ping" }), (message.check_in_s || 15) * 1000);
  refreshAgents();
  refreshTickets();
  loadCanned();
  refreshSla();
  refreshFollowups();
  // After a reconnect (or a server restart) reload every open tab from the database.
  for (const tab of state.tabs.values()) reloadTab(tab);
  for (const c of state.assigned.values()) if (c.agent_id === state.me.id && !state.tabs.has("case:" + c.id)) openCase(c.id, false);
}

$("#presence-select").addEventListener("change", (event) => send({ type: "presence", status: event.target.value }));

// -- queue and lists -----------------------------------------------------------------------
function waited(c) {
  const seconds = Math.max(0, Date.now() / 1000 - c.created_at);
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function caseItem(c, extra) {
  const li = el("li", { "data-case-id": String(c.id) });
  const line = el("div", { class: "case-line" },
    el("strong", { text: `#${c.id} ${c.reason.replace(/_/g, " ")}` }),
    extra);
  const tags = el("div", { class: "meta" },
    el("span", { class: "tag", text: c.team || "any team" }),
    el("span", { class: "tag", text: c.channel }),
    c.tier ? el("span", { class: "tag", text: c.tier }) : null,
    el("span", { class: "tag prio", text: `priority ${c.priority}` }), slaTag(c));
  const meta = el("div", { class: "meta case-meta" });
  li.append(line, tags, meta);
  return li;
}

function renderQueue() {
  const list = $("#queue-list");
  list.replaceChildren();
  const cases = [...state.waiting.values()].sort((a, b) => (a.position || 999) - (b.position || 999));
  for (const c of cases) {
    const claim = el("button", { type: "button", text: "Claim", "aria-label": `Claim case ${c.id}` });
    claim.addEventListener("click", () => claimCase(c.id));
    const li = caseItem(c, claim);
    if (c.fresh) li.classList.add("new");
    li.querySelector(".case-meta").textContent = neutralBidi(`position ${c.position || "?"} · waiting ${waited(c)} · ${c.detail || ""}`);
    li.addEventListener("dblclick", () => openCase(c.id, true));
    const view = el("button", { type: "button", class: "secondary", text: "View", "aria-label": `View case ${c.id}` });
    view.addEventListener("click", () => openCase(c.id, true));
    li.querySelector(".case-line").append(view);
    list.append(li);
  }
  $("#queue-count").textContent = String(cases.length);
}

function renderOpen() {
  const list = $("#open-list");
  list.replaceChildren();
  const supervisor = state.me && state.me.role === "supervisor";
  for (const c of state.assigned.values()) {
    const mine = c.agent_id === state.me.id;
    if (!mine && !supervisor) continue;
    const open = el("button", { type: "button", class: "secondary", text: "Open", "aria-label": `Open case ${c.id}` });
    open.addEventListener("click", () => openCase(c.id, true));
    const li = caseItem(c, open);
    li.querySelector(".case-meta").textContent = mine ? "with you" : `with ${c.agent_name || "an agent"}`;
    list.append(li);
  }
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshCases, 150);
}

async function refreshCases() {
  try {
    const [waiting, assigned] = await Promise.all([api("GET", "/cases?status=waiting"), api("GET", "/cases?status=assigned")]);
    const fresh = new Set([...state.waiting.values()].filter((c) => c.fresh).map((c) => c.id));
    state.waiting = new Map(waiting.cases.map((c) => [c.id, { ...c, fresh: fresh.has(c.id) }]));
    state.assigned = new Map(assigned.cases.map((c) => [c.id, c]));
    renderQueue();
    renderOpen();
    for (const tab of state.tabs.values()) if (tab.kind === "case") updateTabState(tab);
  } catch (error) { console.warn(error); }
}
setInterval(() => { if (state.me) renderQueue(); }, 5000);  // waiting times tick

function caseOpened(c) {
  state.waiting.set(c.id, { ...c, fresh: true });
  renderQueue();
  notifyNew(true);
  scheduleRefresh();
}

function caseChanged(c, message) {
  state.waiting.delete(c.id);
  if (c.status === "assigned") state.assigned.set(c.id, c); else state.assigned.delete(c.id);
  if (c.status === "waiting") state.waiting.set(c.id, c);
  renderQueue();
  renderOpen();
  const tab = state.tabs.get("case:" + c.id);
  if (tab) { tab.case = c; updateTabState(tab); }
  if (c.status === "assigned" && c.agent_id === state.me.id && !tab) { openCase(c.id, true); notifyNew(true); }
  if (tab && message.type === "case_transferred") reloadTab(tab);
  scheduleRefresh();
}

function caseCancelled(caseId) {
  state.waiting.delete(caseId);
  renderQueue();
  const tab = state.tabs.get("case:" + caseId);
  if (tab) {
    $(".typing", tab.panel).textContent = "The customer left the queue and went back to the assistant.";
    if (tab.case) { tab.case.status = "cancelled"; updateTabState(tab); }
  }
  scheduleRefresh();
}

function presenceChanged(agent) {
  if (!agent) return;
  const i = state.agents.findIndex((a) => a.account_id === agent.account_id);
  if (i >= 0) state.agents[i] = agent; else state.agents.push(agent);
  if (state.me && agent.account_id === state.me.id) $("#presence-select").value = agent.status;
  renderAgents();
}

async function refreshAgents() {
  try { state.agents = (await api("GET", "/agents")).agents; renderAgents(); } catch (error) { console.warn(error); }
}

function renderAgents() {
  const list = $("#agent-list");
  list.replaceChildren();
  for (const a of state.agents) {
    list.append(el("li", {}, el("span", { class: "dot " + a.effective_status, "aria-hidden": "true" }),
      `${a.display_name} — ${a.effective_status}, ${a.active}/${a.capacity} chats, ${a.teams.join(", ") || "no team"}`));
  }
  for (const tab of state.tabs.values()) if (tab.kind === "case") fillTransferTargets(tab);
}

async function refreshTickets() {
  try {
    const tickets = (await api("GET", "/tickets?status=pending")).tickets;
    const list = $("#ticket-list");
    list.replaceChildren();
    for (const t of tickets) {
      const open = el("button", { type: "button", class: "secondary", text: "Open", "aria-label": `Open ticket ${t.id}` });
      open.addEventListener("click", () => openTicket(t.id));
      list.append(el("li", { "data-ticket-id": String(t.id) },
        el("div", { class: "case-line" }, el("strong", { text: `Ticket #${t.id}` }), open),
        el("div", { class: "meta", text: `${t.status} · ${t.contact} · ${t.team || "any team"} · ${t.channel}` })));
    }
    $("#tickets-count").textContent = String(tickets.length);
  } catch (error) { console.warn(error); }
}

async function loadCanned() {
  try { state.canned = (await api("GET", "/canned")).canned; } catch (error) { console.warn(error); }
  for (const tab of state.tabs.values()) if (tab.kind === "case") fillCanned(tab);
}

// -- attention: title badge and a short tone -----------------------------------------------
function notifyNew(sound) {
  if (document.hasFocus() && document.visibilityState === "visible") { state.unseen = 0; }
  else { state.unseen += 1; }
  document.title = state.unseen ? `(${state.unseen}) Tandem console` : "Tandem console";
  if (sound) beep();
}
window.addEventListener("focus", () => { state.unseen = 0; document.title = "Tandem console"; });

function beep() {
  try {
    const ctx = beep.ctx || (beep.ctx = new (window.AudioContext || window.webkitAudioContext)());
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.05;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.15);
  } catch (_) { /* no audio: the title badge still works */ }
}

// -- tabs ----------------------------------------------------------------------------------
function addTab(key, label, panel) {
  const button = el("button", { type: "button", role: "tab", id: "tab-" + key.replace(":", "-"), "aria-selected": "false", text: label });
  panel.id = "panel-" + key.replace(":", "-");
  panel.setAttribute("aria-labelledby", button.id);
  panel.hidden = true;
  button.setAttribute("aria-controls", panel.id);
  button.addEventListener("click", () => selectTab(key));
  button.addEventListener("keydown", (event) => {
    const keys = [...state.tabs.keys()];
    const i = keys.indexOf(key);
    if (event.key === "ArrowRight") selectTab(keys[(i + 1) % keys.length], true);
    if (event.key === "ArrowLeft") selectTab(keys[(i - 1 + keys.length) % keys.length], true);
  });
  $("#tabs").append(button);
  $("#panels").append(panel);
  $("#no-chat").hidden = true;
  return button;
}

function selectTab(key, focus) {
  state.active = key;
  for (const [k, tab] of state.tabs) {
    const on = k === key;
    tab.button.setAttribute("aria-selected", String(on));
    tab.button.tabIndex = on ? 0 : -1;
    tab.panel.hidden = !on;
    if (on) tab.button.classList.remove("unread");
  }
  if (focus) state.tabs.get(key).button.focus();
}

function removeTab(key) {
  const tab = state.tabs.get(key);
  if (!tab) return;
  tab.button.remove();
  tab.panel.remove();
  state.tabs.delete(key);
  if (state.active === key) {
    const next = state.tabs.keys().next();
    if (!next.done) selectTab(next.value); else { state.active = null; $("#no-chat").hidden = false; }
  }
}

// -- a case tab ----------------------------------------------------------------------------
async function claimCase(caseId) {
  try {
    const data = await api("POST", `/cases/${caseId}/claim`);
    state.waiting.delete(caseId);
    state.assigned.set(caseId, data.case);
    renderQueue();
    renderOpen();
    await openCase(caseId, true);
  } catch (error) {
    alertError(error.message);
    scheduleRefresh();
  }
}

function alertError(message) {
  const tab = state.tabs.get(state.active || "");
  if (tab) $(".chat-error", tab.panel).textContent = message;
  else $("#connection").textContent = message;
}

async function openCase(caseId, select) {
  const key = "case:" + caseId;
  if (state.tabs.has(key)) { if (select) selectTab(key); return; }
  const panel = $("#chat-template").content.firstElementChild.cloneNode(true);
  panel.dataset.caseId = String(caseId);
  const tab = { kind: "case", id: caseId, panel, seen: new Set(), case: state.waiting.get(caseId) || state.assigned.get(caseId) };
  tab.button = addTab(key, `Case #${caseId}`, panel);
  state.tabs.set(key, tab);
  wireCase(tab);
  if (select || !state.active) selectTab(key);
  await reloadTab(tab);
}

function wireCase(tab) {
  const { panel } = tab;
  const textarea = $(".composer textarea", panel);
  const label = $(".composer label", panel);
  textarea.id = `reply-${tab.id}`;
  label.setAttribute("for", textarea.id);
  $(".composer", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (!text) return;
    // Cleared before the round trip: what the agent types next while this one travels is kept.
    textarea.value = "";
    stopTyping(tab);
    try {
      const data = await api("POST", `/cases/${tab.id}/messages`, { text });
      appendMessage(tab, data.message);
      $(".chat-error", panel).textContent = "";
    } catch (error) {
      restoreText(textarea, text);
      $(".chat-error", panel).textContent = error.message;
    }
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $(".composer", panel).requestSubmit(); }
  });
  textarea.addEventListener("input", () => {
    if (!tab.typing) { tab.typing = true; send({ type: "typing", case_id: tab.id, typing: true }); }
    clearTimeout(tab.typingTimer);
    tab.typingTimer = setTimeout(() => stopTyping(tab), 3000);
  });
  $(".close-form", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { resolution: $(".resolution", panel).value };
      const followup = $(".followup", panel).value;
      if (followup) body.followup = followup === "yes";
      await api("POST", `/cases/${tab.id}/close`, body);
      removeTab("case:" + tab.id);
      scheduleRefresh();
    } catch (error) { $(".chat-error", panel).textContent = error.message; }
  });
  $(".transfer-form", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = $(".transfer-target", panel).value;
    if (!target) return;
    const body = { note: $(".transfer-note", panel).value };
    if (target.startsWith("team:")) body.team = target.slice(5); else body.agent_id = Number(target.slice(6));
    try {
      await api("POST", `/cases/${tab.id}/transfer`, body);
      if (!(state.me.role === "supervisor")) removeTab("case:" + tab.id);
      scheduleRefresh();
    } catch (error) { $(".chat-error", panel).textContent = error.message; }
  });
  $(".takeover", panel).addEventListener("click", async () => {
    try { const data = await api("POST", `/cases/${tab.id}/takeover`); tab.case = data.case; updateTabState(tab); reloadTab(tab); }
    catch (error) { $(".chat-error", panel).textContent = error.message; }
  });
  $(".claim", panel).addEventListener("click", () => claimCase(tab.id));
  $(".insert-canned", panel).addEventListener("click", () => {
    const item = state.canned.find((c) => String(c.id) === $(".canned", panel).value);
    if (item) insertText(tab, item.text);
  });
  $(".merge-form", panel).addEventListener("submit", (event) => { event.preventDefault(); mergeCustomer(tab); });
  $(".note-form", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $(".note-text", panel);
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try {
      const data = await api("POST", `/cases/${tab.id}/notes`, { text });
      noteAdded(tab.id, data.note);
    } catch (error) { restoreText(input, text); $(".chat-error", panel).textContent = error.message; }
  });
  fillCanned(tab);
  fillTransferTargets(tab);
}

/** Puts an unsent text back in front of whatever was typed since, so a failed send loses nothing. */
function restoreText(textarea, text) {
  textarea.value = textarea.value ? text + "\n" + textarea.value : text;
}

function stopTyping(tab) {
  clearTimeout(tab.typingTimer);
  if (tab.typing) { tab.typing = false; send({ type: "typing", case_id: tab.id, typing: false }); }
}

function insertText(tab, text) {
  const textarea = $(".composer textarea", tab.panel);
  textarea.value = textarea.value ? textarea.value + "\n" + text : text;
  textarea.focus();
}

function fillCanned(tab) {
  const select = $(".canned", tab.panel);
  select.replaceChildren(...state.canned.map((c) => el("option", { value: String(c.id), text: c.title })));
}

function fillTransferTargets(tab) {
  const select = $(".transfer-target", tab.panel);
  const current = select.value;
  const options = [el("option", { value: "", text: "Choose…" })];
  for (const team of state.teams) options.push(el("option", { value: "team:" + team, text: `Team ${team}` }));
  for (const a of state.agents) {
    if (state.me && a.account_id === state.me.id) continue;
    options.push(el("option", { value: "agent:" + a.account_id, text: `${a.display_name} (${a.effective_status})` }));
  }
  select.replaceChildren(...options);
  select.value = current;
}

function updateTabState(tab) {
  const c = tab.case || {};
  const mine = c.status === "assigned" && state.me && c.agent_id === state.me.id;
  const status = c.status === "assigned" ? `with ${mine ? "you" : (c.agent_name || "an agent")}` : (c.status || "");
  $(".chat-state", tab.panel).textContent = `${status} · ${c.channel || ""}`;
  $(".composer", tab.panel).hidden = !mine;
  $(".close-form", tab.panel).hidden = !mine;
  $(".transfer-form", tab.panel).hidden = !(mine || (state.me.role === "supervisor" && c.status === "assigned"));
  $(".takeover", tab.panel).hidden = !(state.me.role === "supervisor" && c.status === "assigned" && !mine);
  $(".claim", tab.panel).hidden = c.status !== "waiting";
}

async function reloadTab(tab) {
  if (tab.kind === "ticket") return loadTicket(tab);
  try {
    const data = await api("GET", `/cases/${tab.id}/context`);
    tab.case = data.case;
    tab.conversationId = data.case.conversation_id;
    $(".chat-title", tab.panel).textContent = neutralBidi(data.conversation.customer_name || `Customer on ${data.conversation.channel}`);
    $(".transcript", tab.panel).replaceChildren();
    tab.seen = new Set();
    for (const m of data.transcript) appendMessage(tab, m);
    renderContext(tab, data);
    updateTabState(tab);
    loadSuggestions(tab);
  } catch (error) { $(".chat-error", tab.panel).textContent = error.message; }
}

function sentimentLabel(s) {
  if (s == null) return "";
  if (typeof s === "number") return `sentiment ${s.toFixed(2)}`;
  if (typeof s === "object") return `sentiment ${s.label || ""}${s.score != null ? " " + Number(s.score).toFixed(2) : ""}`;
  return `sentiment ${s}`;
}

function appendMessage(tab, m) {
  if (tab.seen.has(m.id)) return;
  tab.seen.add(m.id);
  const who = m.sender === "agent" ? (m.agent_name || "Agent") : m.sender;
  const item = el("li", { class: "msg " + m.sender, "data-message-id": String(m.id) },
    el("span", { class: "who", text: `${who} · ${new Date(m.created_at * 1000).toLocaleTimeString()}` }),
    el("span", { class: "text", text: m.text }));
  if (m.sentiment != null) item.append(el("span", { class: "sentiment", text: sentimentLabel(m.sentiment) }));
  const list = $(".transcript", tab.panel);
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function dl(target, pairs) {
  target.replaceChildren();
  for (const [key, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    target.append(el("dt", { text: key }), el("dd", { text: typeof value === "object" ? JSON.stringify(value) : String(value) }));
  }
}

function renderContext(tab, data) {
  const { panel } = tab;
  const esc = data.escalation;
  dl($(".why", panel), [["Reason", esc.reason.replace(/_/g, " ")], ["Detail", esc.detail], ["Team", data.case.team || "any"],
    ["Priority", data.case.priority], ["Waited", `${data.case.waiting_seconds}s`], ["Sentiment", esc.sentiment ? sentimentLabel(esc.sentiment) : ""]]);
  const profile = data.conversation.profile || {};
  dl($(".profile", panel), [["Name", data.conversation.customer_name], ["Channel", data.conversation.channel],
    ["Tier", profile.tier || data.case.tier || "unknown"], ...Object.entries(profile).filter(([k]) => k !== "tier")]);
  const nlu = esc.nlu || {};
  const lastTurn = [...data.turns].reverse().find((t) => t.nlu) || {};
  const understood = nlu.intent ? nlu : (lastTurn.nlu || {});
  dl($(".nlu", panel), [["Intent", understood.intent ? `${understood.intent} (${understood.confidence})` : "unknown"],
    ["Entities", (understood.entities || []).map((e) => `${e.entity}=${e.value}`).join(", ") || "none"]]);
  const candidates = esc.candidates.length ? esc.candidates : (lastTurn.candidates || []);
  $(".candidates", panel).replaceChildren(...candidates.map((c) =>
    el("li", { text: `${c.question || c.faq_id} — ${c.faq_id} (score ${Number(c.score).toFixed(2)})` })));
  if (!candidates.length) $(".candidates", panel).append(el("li", { text: "no FAQ candidates recorded" }));
  $(".notes", panel).replaceChildren();
  for (const note of data.notes) noteAdded(tab.id, note);
  renderSla(tab);
  loadCustomer(tab);
}

function noteAdded(caseId, note) {
  const tab = [...state.tabs.values()].find((t) => t.kind === "case" && (t.id === caseId || (t.conversationId && t.conversationId === note.conversation_id)));
  if (!tab) return;
  const list = $(".notes", tab.panel);
  if (list.querySelector(`[data-note-id="${note.id}"]`)) return;
  list.append(el("li", { class: note.kind, "data-note-id": String(note.id) },
    el("strong", { text: `${note.author_name || "agent"}: ` }), el("span", { text: note.text })));
}

async function loadSuggestions(tab) {
  const list = $(".suggestions", tab.panel);
  try {
    const data = await api("GET", `/cases/${tab.id}/suggestions`);
    $(".suggest-query", tab.panel).textContent = data.query ? neutralBidi(`For: “${data.query}”`) : "No customer question yet.";
    list.replaceChildren();
    for (const s of data.suggestions) {
      const insert = el("button", { type: "button", class: "secondary", text: "Insert", "aria-label": `Insert answer: ${s.question}` });
      insert.addEventListener("click", () => insertText(tab, s.answer));
      list.append(el("li", {}, el("strong", { text: s.question }), el("span", { class: "meta", text: ` (${s.faq_id}, ${s.score.toFixed(2)})` }),
        el("div", { text: s.answer }), insert));
    }
  } catch (error) { list.replaceChildren(el("li", { text: error.message })); }
}

function liveMessage(event) {
  const m = event.message;
  for (const tab of state.tabs.values()) {
    if (tab.kind !== "case" || tab.conversationId !== m.conversation_id) continue;
    appendMessage(tab, m);
    if (m.sender === "customer") {
      $(".typing", tab.panel).textContent = "";
      clearTimeout(tab.suggestTimer);
      tab.suggestTimer = setTimeout(() => loadSuggestions(tab), 400);
    }
    if (state.active !== "case:" + tab.id) tab.button.classList.add("unread");
    if (m.sender === "customer") notifyNew(false);
  }
}

function customerTyping(event) {
  for (const tab of state.tabs.values()) {
    if (tab.kind !== "case" || tab.conversationId !== event.conversation_id) continue;
    const line = $(".typing", tab.panel);
    line.textContent = event.typing ? "The customer is typing…" : "";
    clearTimeout(tab.customerTypingTimer);
    if (event.typing) tab.customerTypingTimer = setTimeout(() => { line.textContent = ""; }, 6000);
  }
}

// -- a ticket tab --------------------------------------------------------------------------
async function openTicket(ticketId) {
  const key = "ticket:" + ticketId;
  if (state.tabs.has(key)) { selectTab(key); return; }
  const panel = $("#ticket-template").content.firstElementChild.cloneNode(true);
  panel.dataset.ticketId = String(ticketId);
  const tab = { kind: "ticket", id: ticketId, panel, seen: new Set() };
  tab.button = addTab(key, `Ticket #${ticketId}`, panel);
  state.tabs.set(key, tab);
  $(".ticket-reply", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    const textarea = $(".ticket-reply textarea", panel);
    const text = textarea.value.trim();
    if (!text) return;
    textarea.value = "";
    try { await api("POST", `/tickets/${ticketId}/reply`, { text }); await loadTicket(tab); refreshTickets(); }
    catch (error) { restoreText(textarea, text); $(".chat-error", panel).textContent = error.message; }
  });
  $(".ticket-close", panel).addEventListener("click", async () => {
    try { await api("POST", `/tickets/${ticketId}/close`); removeTab(key); refreshTickets(); }
    catch (error) { $(".chat-error", panel).textContent = error.message; }
  });
  selectTab(key);
  await loadTicket(tab);
}

async function loadTicket(tab) {
  try {
    const t = (await api("GET", `/tickets/${tab.id}`)).ticket;
    $(".chat-title", tab.panel).textContent = `Ticket #${t.id}`;
    $(".chat-state", tab.panel).textContent = t.status;
    dl($(".ticket-info", tab.panel), [["Contact", t.contact], ["Channel", t.channel], ["Team", t.team || "any"],
      ["Reason", t.reason], ["Detail", t.detail], ["Left at", new Date(t.created_at * 1000).toLocaleString()]]);
    tab.seen = new Set();
    $(".transcript", tab.panel).replaceChildren();
    for (const m of t.transcript) appendMessage(tab, m);
    $(".replies", tab.panel).replaceChildren(...t.replies.map((r) =>
      el("li", {}, el("strong", { text: `${r.agent_name}: ` }), el("span", { text: r.text }))));
  } catch (error) { $(".chat-error", tab.panel).textContent = error.message; }
}

// -- boot ----------------------------------------------------------------------------------
if (state.token) start();

// -- my quality (GET /api/reports/mine): the agent's own CSAT and finished QA reviews --------
function pct(value) { return value == null ? "–" : Math.round(value * 100) + "%"; }

async function loadQuality() {
  const box = $("#quality");
  box.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
  const response = await fetch("/api/reports/mine", { headers: { "Authorization": "Bearer " + state.token } });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { box.replaceChildren(el("p", { class: "error", text: data.error || ("HTTP " + response.status) })); return; }
  const c = data.csat;
  const figures = el("dl", { class: "quality-figures" },
    el("dt", { text: "CSAT ratings" }), el("dd", { class: "quality-csat-count", text: String(c.count) }),
    el("dt", { text: "Average score" }), el("dd", { class: "quality-csat-mean", text: c.mean == null ? "–" : c.mean.toFixed(2) + " / 5" }),
    el("dt", { text: "Satisfied (4-5)" }), el("dd", { class: "quality-csat-share", text: pct(c.csat) }),
    el("dt", { text: "QA reviews" }), el("dd", { class: "quality-qa-count", text: String(data.qa.count) }),
    el("dt", { text: "QA average" }), el("dd", { class: "quality-qa-mean", text: data.qa.mean == null ? "–" : data.qa.mean.toFixed(1) + " / 100" }));
  const comments = el("ul", { class: "quality-ratings", "aria-label": "Latest ratings" });
  for (const r of c.recent) {
    comments.append(el("li", { text: `${r.score}/5` + (r.comment ? ` – “${r.comment}”` : "") + (r.case_id ? ` (case #${r.case_id})` : "") }));
  }
  const reviews = el("ul", { class: "quality-reviews", "aria-label": "My QA reviews" });
  for (const r of data.reviews) {
    const parts = Object.entries(r.scores).map(([id, s]) => `${data.criteria[id] || ("#" + id)}: ${s}`).join(", ");
    reviews.append(el("li", {},
      el("strong", { text: `Case #${r.case_id}: ${r.score == null ? "–" : r.score.toFixed(1)} / 100` }),
      el("div", { class: "quality-scores", text: parts }),
      r.comment ? el("div", { class: "quality-comment", text: r.comment }) : null));
  }
  box.replaceChildren(figures, el("h3", { text: "Latest ratings" }), comments, el("h3", { text: "Reviews" }), reviews);
}

$("#quality-button").addEventListener("click", () => { loadQuality().catch((e) => { $("#quality").textContent = String(e); }); });

// -- customers, SLA timers, follow-ups (issue 12) --------------------------------------------
function duration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return seconds < 0 ? `${text} over` : `${text} left`;
}

function timerText(name, t) {
  if (!t) return "";
  if (t.state === "met") return `${name}: met`;
  if (t.state === "missed") return `${name}: missed`;
  return `${name}: ${duration(t.left_s)}${t.state === "warn" ? " (breach soon)" : t.state === "breached" ? " (breached)" : ""}`;
}

function worstState(sla) {
  const order = ["ok", "met", "warn", "missed", "breached"];
  return [sla.first_response.state, sla.resolution.state].sort((a, b) => order.indexOf(b) - order.indexOf(a))[0];
}

function slaTag(c) {
  const sla = state.sla && state.sla[String(c.id)];
  if (!sla) return null;
  const running = ["ok", "warn", "breached"].includes(sla.first_response.state) ? ["first reply", sla.first_response] : ["resolution", sla.resolution];
  return el("span", { class: `tag sla sla-${worstState(sla)}`, "data-sla-case": String(c.id), text: timerText(running[0], running[1]) });
}

async function refreshSla() {
  try {
    state.sla = (await api("GET", "/sla")).cases;
    renderQueue();
    renderOpen();
    for (const tab of state.tabs.values()) if (tab.kind === "case") renderSla(tab);
  } catch (error) { console.warn(error); }
}
setInterval(() => { if (state.me) refreshSla(); }, 5000);  // time left ticks, warnings appear before a breach

function renderSla(tab) {
  const sla = state.sla && state.sla[String(tab.id)];
  const target = $(".sla", tab.panel);
  if (!target) return;
  if (!sla) { dl(target, [["Timers", "not running (case closed)"]]); return; }
  dl(target, [["First reply", timerText("first reply", sla.first_response)], ["Resolution", timerText("resolution", sla.resolution)]]);
  target.dataset.state = worstState(sla);
}

function caseReassigned(message) {
  const c = message.case;
  const mine = state.me && (message.from_agent_id === state.me.id || message.to_agent_id === state.me.id);
  if (mine || state.me.role === "supervisor") {
    const why = message.reason === "agent_offline" ? "the agent went offline" : `the customer waited ${Math.round(message.waited_s)}s`;
    setConnection(`case #${c.id} reassigned: ${why}`, true);
  }
  if (message.note) noteAdded(c.id, message.note);
  if (state.me && message.to_agent_id === state.me.id) openCase(c.id, false);
  if (state.me && message.from_agent_id === state.me.id && state.me.role !== "supervisor") removeTab("case:" + c.id);
  scheduleRefresh();
}

async function refreshFollowups() {
  try {
    const due = (await api("GET", "/followups?status=due")).followups;
    const asked = (await api("GET", "/followups?status=asked")).followups;
    const list = $("#followup-list");
    list.replaceChildren(...[...due, ...asked].map((f) => el("li", { "data-followup-id": String(f.id) },
      el("div", { class: "case-line" }, el("strong", { text: `case #${f.case_id}` })),
      el("div", { class: "meta", text: `${f.status === "asked" ? "asked, waiting for the answer" : "due now"} · ${f.channel}${f.team ? " · " + f.team : ""}` }))));
    $("#followups-count").textContent = String(due.length + asked.length);
  } catch (error) { console.warn(error); }
}
setInterval(() => { if (state.me) refreshFollowups(); }, 30000);

async function loadCustomer(tab) {
  const { panel } = tab;
  try {
    const data = await api("GET", `/cases/${tab.id}/customer`);
    tab.customer = data.customer;
    $(".record-none", panel).hidden = !!data.customer;
    $(".merge-form", panel).hidden = !data.customer;
    if (!data.customer) { dl($(".record", panel), []); $(".past-cases", panel).replaceChildren(); return; }
    const c = data.customer;
    dl($(".record", panel), [["Record", `#${c.id}`], ["Name", c.name], ["E-mail", c.email], ["Phone", c.phone], ["Tier", c.tier || "none"],
      ["Notes", c.notes], ["Known as", c.identities.map((i) => `${i.channel} ${i.external_id}${i.verified ? " (verified)" : ""}`).join(", ")]]);
    $(".past-cases", panel).replaceChildren(...data.past_cases.map((p) => el("li", { "data-past-case": String(p.id),
      text: `#${p.id} ${new Date(p.created_at * 1000).toLocaleDateString()} · ${p.channel} · ${p.reason.replace(/_/g, " ")} → ` +
        `${p.status}${p.resolution ? " (" + p.resolution.replace(/_/g, " ") + ")" : ""}` })));
  } catch (error) { $(".chat-error", panel).textContent = error.message; }
}

function reloadCustomers() {
  for (const tab of state.tabs.values()) if (tab.kind === "case") loadCustomer(tab);
}

async function mergeCustomer(tab) {
  const { panel } = tab;
  const other = $(".merge-other", panel).value.trim();
  if (!other || !tab.customer) return;
  try {
    let absorb = /^\d+$/.test(other) ? Number(other) : null;
    if (absorb === null) {
      const found = (await api("GET", `/customers?email=${encodeURIComponent(other)}`)).customers.filter((c) => c.id !== tab.customer.id);
      if (found.length !== 1) throw new Error(found.length ? "several records have that e-mail; give the record's number" : "no other record has that e-mail");
      absorb = found[0].id;
    }
    await api("POST", "/customers/merge", { keep_id: tab.customer.id, absorb_id: absorb });
    $(".merge-other", panel).value = "";
    $(".merge-result", panel).textContent = `Record #${absorb} merged into #${tab.customer.id}.`;
    await loadCustomer(tab);
  } catch (error) { $(".merge-result", panel).textContent = error.message; }
}
