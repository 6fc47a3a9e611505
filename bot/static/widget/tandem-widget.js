/*
 * Tandem web chat widget. Embed with one tag, no build step:
 *   <script src="https://HOST/widget/tandem-widget.js" data-site-key="demo"
 *           data-tandem-url="https://HOST" async></script>
 * Optional: data-title="Chat with us", data-lang="zh-CN" | "en" (else the host page's <html lang>,
 * else the browser's language; Chinese and English are built in).
 * data-identity='{"payload": {...}, "signature": "..."}': the signed-in customer as your server
 * signed it (docs/customers.md; anything unsigned is ignored).
 *
 * Everything lives in a shadow root (styles cannot leak either way) and the only global is
 * `TandemWidget`. All text from the server is rendered with textContent; links become <a>
 * elements only for http(s) URLs, through `appendFormatted`.
 */
(function () {
  "use strict";
  if (window.TandemWidget) { return; }

  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, document.baseURI) : null;
  var BASE = ((script && script.getAttribute("data-tandem-url")) || (scriptUrl ? scriptUrl.origin : location.origin)).replace(/\/+$/, "");
  var SITE_KEY = (script && script.getAttribute("data-site-key")) || "demo";
  // The header shows data-title if the host page sets one, else the business's name from
  // Tandem's settings (the session answer carries it: editor/persona_api.py).
  var FIXED_TITLE = script && script.getAttribute("data-title");
  var IDENTITY = readIdentity(script && script.getAttribute("data-identity"));
  // The widget's own words in the host page's language (issue 16). The server answers each
  // message in the language it was written in; this only sets the frame and the first language.
  var STRINGS = {
    en: {
      title: "Chat with us", open: "Open chat with {title}", close: "Close chat with {title}", launcher: "Chat",
      human: "Talk to a person", human_label: "Talk to a person from our team", close_label: "Close chat",
      log: "Conversation", typing: "The assistant is typing", agent_typing: "{name} is typing", our_agent: "Our agent",
      input_label: "Type your message", placeholder: "Type your message…", send: "Send", send_label: "Send message",
      not_available: "This chat is not available on this site.", reconnecting: "Reconnecting…", connecting: "Connecting…",
      lost: "Connection lost. Reconnecting in {s}s… Your messages will be sent when we're back.",
      not_sent: "Not sent", retry_label: "Not sent. Retry sending this message", retry: "Not sent. Retry", sending: "Sending",
      agent: "Agent", assistant: "Assistant", you: "You", quick: "Suggested replies",
      csat_scale: "Rate from 1 (very unsatisfied) to 5 (very satisfied)", csat_rate: "Rate {n} of 5",
      feedback_label: "Was this answer helpful?", feedback_q: "Was this helpful?", thanks: "Thanks for your feedback.",
      yes: "Yes", yes_label: "Yes, this answer was helpful", no: "No", no_label: "No, this answer was not helpful",
      sorry: "Sorry that didn't help.", wrong: "Something went wrong."
    },
    zh: {
      title: "在线客服", open: "打开与{title}的对话", close: "关闭与{title}的对话", launcher: "咨询",
      human: "转人工", human_label: "转接人工客服", close_label: "关闭对话",
      log: "对话记录", typing: "智能助手正在输入", agent_typing: "{name}正在输入", our_agent: "客服",
      input_label: "输入您的消息", placeholder: "请输入您的问题…", send: "发送", send_label: "发送消息",
      not_available: "本网站暂不支持在线咨询。", reconnecting: "正在重新连接…", connecting: "正在连接…",
      lost: "连接已断开，{s} 秒后重新连接…恢复后会自动发送您的消息。",
      not_sent: "未发送", retry_label: "未发送，点击重新发送", retry: "未发送，重试", sending: "发送中",
      agent: "客服", assistant: "智能助手", you: "我", quick: "推荐回复",
      csat_scale: "请打分：1 = 非常不满意，5 = 非常满意", csat_rate: "打 {n} 分（满分 5 分）",
      feedback_label: "这个回答有帮助吗？", feedback_q: "有帮助吗？", thanks: "感谢您的反馈。",
      yes: "有", yes_label: "有帮助", no: "没有", no_label: "没有帮助",
      sorry: "抱歉没能帮到您。", wrong: "出错了。"
    }
  };
  function pickLanguage(tags) {
    for (var i = 0; i < tags.length; i++) {
      var primary = String(tags[i] || "").toLowerCase().split(/[-_]/)[0];
      if (primary === "zh" || primary === "en") { return primary; }
    }
    return "en";
  }
  var LANG = pickLanguage([script && script.getAttribute("data-lang"), document.documentElement.getAttribute("lang"),
    navigator.language].concat(navigator.languages || []));
  var T = STRINGS[LANG];
  function t(key, values) {
    var text = T[key] || STRINGS.en[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(values[k])); });
    return text;
  }
  var TITLE = FIXED_TITLE || t("title");
  var STORE_KEY = "tandem-widget:" + BASE + ":" + SITE_KEY;
  var REQUEST_HUMAN = { title: t("human"), payload: "/request_human" };
  var OUTBOX_KEY = STORE_KEY + ":outbox";
  var MAX_BACKOFF_MS = 15000;
  var REPLY_TIMEOUT_MS = 45000;
  var RECEIPT_TIMEOUT_MS = 8000; // a sent message not echoed this long: is the connection alive?
  var PONG_TIMEOUT_MS = 5000;    // no pong this long: the connection is dead, reconnect and resend
  var GIVE_UP_MS = 30000;        // no contact with the server this long: "Not sent. Retry"

  // -- storage (localStorage may be unavailable, e.g. blocked cookies) ---------------------
  var memoryStore = {};
  function load() {
    try { return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}") || {}; }
    catch (e) { return memoryStore; }
  }
  function save(changes) {
    var state = load();
    Object.keys(changes).forEach(function (k) { state[k] = changes[k]; });
    try { window.localStorage.setItem(STORE_KEY, JSON.stringify(state)); }
    catch (e) { memoryStore = state; }
  }

  // Messages not yet stored by the server live in sessionStorage (this tab, across reloads and
  // the shop's pages) until the server acknowledges them; they are resent after reconnecting.
  var memoryOutbox = [];
  function loadOutbox() {
    try { return JSON.parse(window.sessionStorage.getItem(OUTBOX_KEY) || "[]") || []; }
    catch (e) { return memoryOutbox; }
  }
  function saveOutbox() {
    var items = state.outbox.map(function (item) {
      return { cid: item.cid, frame: item.frame, text: item.text, queuedAt: item.queuedAt, failed: item.failed };
    });
    try { window.sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(items)); }
    catch (e) { memoryOutbox = items; }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) { return "w-" + crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) { crypto.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); } }
    return "w-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // -- DOM helpers ----------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "className") { node.className = attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  /** A speech-bubble icon drawn with SVG (no emoji font needed on the host's machine). */
  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "tw-launcher-icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  var URL_PATTERN = /https?:\/\/[^\s<>"'`]+/gi;
  var TRAILING = /[.,;:!?)\]}]+$/;

  /** Text as text nodes; http(s) URLs as safe links. Never parses HTML. */
  function appendFormatted(parent, text) {
    var source = String(text);
    var last = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(source)) !== null) {
      var raw = match[0].replace(TRAILING, "");
      var start = match.index;
      var href = null;
      try {
        var parsed = new URL(raw);
        if (parsed.protocol === "http:" || parsed.protocol === "https:") { href = parsed.href; }
      } catch (e) { href = null; }
      if (!href || !raw) { continue; }
      if (start > last) { parent.appendChild(document.createTextNode(source.slice(last, start))); }
      var link = el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, raw);
      parent.appendChild(link);
      last = start + raw.length;
      URL_PATTERN.lastIndex = last;
    }
    if (last < source.length) { parent.appendChild(document.createTextNode(source.slice(last))); }
  }

  // -- widget state ---------------------------------------------------------------------------
  var state = {
    token: null, conversationId: null, mode: "bot", lastId: 0,
    ws: null, attempts: 0, timer: null, started: false, blocked: false, connecting: false,
    outbox: [], control: [], pendingTurns: {}, agentTyping: false, typingSent: false, typingTimer: null,
    unread: 0, open: false, lastContact: 0, pingAt: 0, watch: null,
  };
  var ui = {};
  var rendered = {}; // message id -> element: the de-duplication of history/live/ack copies

  function build() {
    var host = el("div", { className: "tandem-widget-host" });
    host.setAttribute("data-tandem-widget", "");
    host.setAttribute("lang", LANG === "zh" ? "zh-CN" : "en"); // CJK fonts and screen readers follow it
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var css = el("link", { rel: "stylesheet", href: BASE + "/widget/widget.css" });
    var wrap = el("div", { className: "tw-root" });

    var launcher = el("button", {
      type: "button", className: "tw-launcher", "aria-label": t("open", { title: TITLE }),
      "aria-expanded": "false", "aria-controls": "tw-panel",
    });
    launcher.appendChild(chatIcon());
    launcher.appendChild(el("span", { className: "tw-launcher-label" }, t("launcher")));
    var badge = el("span", { className: "tw-badge", "aria-hidden": "true", hidden: "" });
    launcher.appendChild(badge);

    var panel = el("div", {
      id: "tw-panel", className: "tw-panel", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "tw-title", hidden: "",
    });
    var header = el("div", { className: "tw-header" });
    var title = el("h2", { id: "tw-title", className: "tw-title" }, TITLE);
    header.appendChild(title);
    var human = el("button", { type: "button", className: "tw-human", "aria-label": t("human_label") }, t("human"));
    var close = el("button", { type: "button", className: "tw-close", "aria-label": t("close_label") }, "×");
    header.appendChild(human);
    header.appendChild(close);

    var status = el("div", { className: "tw-status", role: "status", "aria-live": "polite", hidden: "" });
    var log = el("div", { className: "tw-log", role: "log", "aria-live": "polite", "aria-label": t("log"), tabindex: "0" });
    var typing = el("div", { className: "tw-typing", hidden: "" });
    typing.appendChild(el("span", { "aria-hidden": "true" }, "…"));
    var typingText = el("span", { className: "tw-sr" }, t("typing"));
    typing.appendChild(typingText);
    var errors = el("div", { className: "tw-error", role: "alert", hidden: "" });

    var form = el("form", { className: "tw-form" });
    var label = el("label", { for: "tw-input", className: "tw-sr" }, t("input_label"));
    var input = el("textarea", {
      id: "tw-input", className: "tw-input", rows: "1", maxlength: "4000",
      placeholder: t("placeholder"), autocomplete: "off",
    });
    var send = el("button", { type: "submit", className: "tw-send", "aria-label": t("send_label") }, t("send"));
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(send);

    panel.appendChild(header);
    panel.appendChild(status);
    var intro = el("p", { className: "tw-intro", hidden: "" });
    panel.appendChild(intro);
    panel.appendChild(log);
    panel.appendChild(typing);
    panel.appendChild(errors);
    panel.appendChild(form);
    wrap.appendChild(panel);
    wrap.appendChild(launcher);
    root.appendChild(css);
    root.appendChild(wrap);
    document.body.appendChild(host);

    ui = { host: host, root: root, wrap: wrap, launcher: launcher, badge: badge, panel: panel, human: human, close: close, title: title, intro: intro,
           status: status, log: log, typing: typing, typingText: typingText, errors: errors, form: form, input: input };

    launcher.addEventListener("click", function () { if (state.open) { closePanel(); } else { openPanel(); } });
    close.addEventListener("click", function () { closePanel(); });
    human.addEventListener("click", function () { sendButton(REQUEST_HUMAN); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); closePanel(); }
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); sendText(); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); sendText(); }
    });
    input.addEventListener("input", noteTyping);
  }

  // -- open / close ---------------------------------------------------------------------------
  function openPanel() {
    state.open = true;
    save({ open: true });
    ui.panel.hidden = false;
    ui.wrap.classList.add("tw-open");
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.launcher.setAttribute("aria-label", t("close", { title: TITLE }));
    state.unread = 0;
    showBadge();
    start();
    scrollToEnd();
    ui.input.focus();
  }

  function closePanel() {
    state.open = false;
    save({ open: false });
    ui.panel.hidden = true;
    ui.wrap.classList.remove("tw-open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.setAttribute("aria-label", t("open", { title: TITLE }));
    ui.launcher.focus();
  }

  function showBadge() {
    ui.badge.hidden = state.unread === 0;
    ui.badge.textContent = state.unread > 9 ? "9+" : String(state.unread);
  }

  // -- connection -----------------------------------------------------------------------------
  function start() {
    if (state.started || state.blocked) { return; }
    state.started = true;
    connect();
  }

  function setStatus(text) {
    ui.status.hidden = !text;
    ui.status.textContent = text || "";
  }

  function retryAfterMs(response) {
    var seconds = Number(response.headers.get("Retry-After"));
    return seconds > 0 ? seconds * 1000 : 0;
  }

  /** The business's name in the header (unless the page fixed a title) and its greeting above the log. */
  function showBusiness(business) {
    if (!business || typeof business !== "object") { return; }
    if (!FIXED_TITLE && typeof business.name === "string" && business.name) {
      TITLE = business.name;
      ui.title.textContent = TITLE;
      ui.launcher.setAttribute("aria-label", t(state.open ? "close" : "open", { title: TITLE }));
    }
    if (typeof business.greeting === "string" && business.greeting) {
      ui.intro.textContent = business.greeting;
      ui.intro.hidden = false;
    }
  }

  /** The host page's signed identity: passed on as it is, the server checks the signature. */
  function readIdentity(text) {
    if (!text) { return null; }
    try {
      var value = JSON.parse(text);
      return value && typeof value === "object" ? value : null;
    } catch (e) {
      return null;
    }
  }

  function session(token) {
    var body = { site_key: SITE_KEY, lang: LANG };
    if (IDENTITY) { body.identity = IDENTITY; }
    if (token) { body.token = token; }
    var abort = window.AbortController ? new AbortController() : null;
    var timer = abort ? setTimeout(function () { abort.abort(); }, 10000) : null; // a silent network is a failure
    return fetch(BASE + "/widget/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: abort ? abort.signal : undefined,
    }).then(function (response) {
      clearTimeout(timer);
      return response.json().catch(function () { return {}; }).then(function (data) {
        // stale, forged or another site's token: start a new conversation
        if ((response.status === 401 || response.status === 403) && token) { return session(null); }
        if (response.status === 403) {
          state.blocked = true;
          throw new Error(data.error || t("not_available"));
        }
        if (!response.ok) {
          var error = new Error(data.error || ("HTTP " + response.status));
          error.retryAfterMs = retryAfterMs(response);
          throw error;
        }
        if (state.conversationId && data.conversation_id !== state.conversationId) { resetLog(); } // a new conversation
        return data;
      });
    });
  }

  function connect() {
    if (state.connecting || (state.ws && state.ws.readyState <= WebSocket.OPEN)) { return; }
    state.connecting = true;
    clearTimeout(state.timer);
    setStatus(state.attempts ? t("reconnecting") : t("connecting"));
    session(state.token || load().token).then(function (data) {
      state.connecting = false;
      state.token = data.token;
      state.conversationId = data.conversation_id;
      showBusiness(data.business);
      setMode(data.mode);
      save({ token: data.token });
      var url = BASE.replace(/^http/, "ws") + "/widget/ws?token=" + encodeURIComponent(data.token) + "&after=" + state.lastId;
      var ws = new WebSocket(url);
      state.ws = ws;
      ws.onopen = function () {
        if (state.ws !== ws) { return; }
        state.attempts = 0;
        state.lastContact = Date.now();
        state.pingAt = 0;
        setStatus("");
        flushOutbox();
      };
      ws.onmessage = function (event) {
        if (state.ws !== ws) { return; }
        state.lastContact = Date.now();
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        receive(frame);
      };
      ws.onclose = function () {
        if (state.ws === ws) { state.ws = null; reconnectLater(); }
      };
    }).catch(function (error) {
      state.connecting = false;
      if (state.blocked) { setStatus(error.message); return; }
      reconnectLater(error.retryAfterMs);
    });
  }

  /** The socket looks open but the server does not answer: drop it, reconnect, resend. */
  function dropConnection() {
    var ws = state.ws;
    state.ws = null;
    state.pingAt = 0;
    if (ws) { try { ws.close(); } catch (e) { /* already gone */ } }
    state.attempts = 0;
    connect();
  }

  function reconnectLater(atLeastMs) {
    clearTimeout(state.timer);
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, state.attempts)) * (0.75 + Math.random() * 0.5);
    delay = Math.max(delay, atLeastMs || 0);
    state.attempts += 1;
    setStatus(t("lost", { s: Math.ceil(delay / 1000) }));
    state.timer = setTimeout(connect, delay);
  }

  function transmit(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** On every (re)connection: everything not yet acknowledged goes again, in order. */
  function flushOutbox() {
    while (state.control.length && transmit(state.control[0])) { state.control.shift(); }
    state.outbox.forEach(function (item) { item.sentOn = null; });
    state.outbox.forEach(sendItem);
    watch();
  }

  function sendItem(item) {
    if (item.failed || item.sentOn === state.ws || (item.notBefore && Date.now() < item.notBefore)) { return; }
    if (transmit(item.frame)) { item.sentOn = state.ws; item.sentAt = Date.now(); }
  }

  /** Once a second while something is unacknowledged: resend when due, check the connection
   *  is alive when an echo is overdue, and give up (offer a retry) when the server is out of reach. */
  function watch() {
    if (state.watch || !state.outbox.length) { return; }
    state.watch = setInterval(function () {
      var now = Date.now();
      if (!state.outbox.length) { clearInterval(state.watch); state.watch = null; return; }
      var open = state.ws && state.ws.readyState === WebSocket.OPEN;
      state.outbox.forEach(function (item) {
        if (item.failed) { return; }
        if (now - Math.max(item.queuedAt, state.lastContact) > GIVE_UP_MS) { markFailed(item); return; }
        if (open) { sendItem(item); }
      });
      if (!open) { return; }
      if (state.pingAt && now - state.pingAt > PONG_TIMEOUT_MS) { dropConnection(); return; }
      var overdue = state.outbox.some(function (item) {
        return !item.failed && item.sentOn === state.ws && now - Math.max(item.sentAt, state.lastContact) > RECEIPT_TIMEOUT_MS;
      });
      if (overdue && !state.pingAt) { state.pingAt = now; transmit({ type: "ping" }); }
    }, 1000);
  }

  function findItem(cid) {
    for (var i = 0; i < state.outbox.length; i++) { if (state.outbox[i].cid === cid) { return state.outbox[i]; } }
    return null;
  }

  /** The server has stored it: forget it (the bubble stays, now with its server id). */
  function acknowledged(cid) {
    var item = cid ? findItem(cid) : null;
    if (!item) { return; }
    state.outbox.splice(state.outbox.indexOf(item), 1);
    saveOutbox();
    if (item.node) { item.node.classList.remove("tw-pending", "tw-failed"); item.node.removeAttribute("aria-label"); }
    var retry = item.node && item.node.querySelector(".tw-retry");
    if (retry) { retry.parentNode.removeChild(retry); }
  }

  function markFailed(item) {
    item.failed = true;
    item.sentOn = null;
    saveOutbox();
    turnDone(item.cid);
    if (!item.node) { return; }
    item.node.classList.remove("tw-pending");
    item.node.classList.add("tw-failed");
    item.node.setAttribute("aria-label", t("not_sent"));
    if (item.node.querySelector(".tw-retry")) { return; }
    var retry = el("button", { type: "button", className: "tw-retry", "aria-label": t("retry_label") }, t("retry"));
    retry.addEventListener("click", function () { retryItem(item); });
    item.node.appendChild(retry);
  }

  function retryItem(item) {
    item.failed = false;
    item.queuedAt = Date.now();
    item.notBefore = 0;
    saveOutbox();
    var retry = item.node && item.node.querySelector(".tw-retry");
    if (retry) { retry.parentNode.removeChild(retry); }
    if (item.node) { item.node.classList.remove("tw-failed"); item.node.classList.add("tw-pending"); item.node.setAttribute("aria-label", t("sending")); }
    beginWaiting(item.cid);
    if (state.ws && state.ws.readyState === WebSocket.OPEN) { sendItem(item); }
    else { state.attempts = 0; start(); connect(); }
    watch();
  }

  // -- frames from the server -------------------------------------------------------------------
  function receive(frame) {
    if (frame.type === "history") {
      (frame.messages || []).forEach(render);
      setMode(frame.mode);
      afterRender();
    } else if (frame.type === "message") {
      render(frame.message);
      afterRender();
      if (!state.open && frame.message && frame.message.sender !== "customer") { state.unread += 1; showBadge(); }
    } else if (frame.type === "ack") {
      acknowledged(frame.client_id);
      render(frame.message);
      (frame.messages || []).forEach(render);
      setMode(frame.mode);
      turnDone(frame.ref);
      afterRender();
    } else if (frame.type === "received") {
      acknowledged(frame.client_id);
      render(frame.message);
      afterRender();
    } else if (frame.type === "pong") {
      state.pingAt = 0;
    } else if (frame.type === "error") {
      failed(frame);
    } else if (frame.type === "typing") {
      state.agentTyping = !!frame.typing;
      ui.typingText.textContent = t("agent_typing", { name: frame.agent_name || t("our_agent") });
      showTyping();
    }
  }

  function setMode(mode) {
    if (!mode) { return; }
    state.mode = mode;
    ui.human.hidden = mode !== "bot";
  }

  function resetLog() {
    rendered = {};
    state.lastId = 0;
    while (ui.log.firstChild) { ui.log.removeChild(ui.log.firstChild); }
    state.outbox.forEach(function (item) { if (item.node) { ui.log.appendChild(item.node); } }); // still to send
  }

  /** Insert one server message once, in id order; our own unsent bubble (same client id) is reused. */
  function render(message) {
    if (!message || typeof message.id !== "number" || rendered[message.id]) { return; }
    var node = null;
    if (message.sender === "customer" && message.client_id) {
      var item = findItem(message.client_id);
      node = ui.log.querySelector("[data-cid=\"" + cssEscape(message.client_id) + "\"]");
      acknowledged(message.client_id);
      if (!item && node && node.hasAttribute("data-id")) { node = null; }
    }
    if (!node) { node = messageNode(message); }
    node.setAttribute("data-id", String(message.id));
    rendered[message.id] = node;
    state.lastId = Math.max(state.lastId, message.id);
    var before = null;
    var children = ui.log.children;
    for (var i = 0; i < children.length; i++) {
      var otherId = Number(children[i].getAttribute("data-id"));
      var unsent = children[i].hasAttribute("data-cid") && !children[i].hasAttribute("data-id");
      if (children[i] !== node && (unsent || otherId > message.id)) { before = children[i]; break; }
    }
    if (node.parentNode !== ui.log || before) { ui.log.insertBefore(node, before); }
    if (message.sender === "agent") { state.agentTyping = false; }
  }

  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(String(text)) : String(text).replace(/["\\]/g, "\\$&");
  }

  function messageNode(message) {
    var sender = ["customer", "bot", "agent", "system"].indexOf(message.sender) >= 0 ? message.sender : "system";
    var node = el("div", { className: "tw-msg tw-" + sender });
    if (message.kind) { node.classList.add("tw-kind-" + String(message.kind).replace(/[^a-z_]/gi, "")); }
    var who = sender === "agent" ? (message.agent_name || t("agent")) : sender === "bot" ? t("assistant") : sender === "customer" ? t("you") : null;
    if (who) { node.appendChild(el("span", { className: "tw-name" }, who)); }
    var body = el("div", { className: "tw-text" });
    appendFormatted(body, message.text || "");
    node.appendChild(body);
    if (sender === "bot" && message.faq_id) { node.appendChild(feedbackNode(message)); }
    if (message.buttons && message.buttons.length) {
      // The CSAT question (reports/csat_prompt.py) is a 1-5 scale on one row, answered once.
      var csat = message.kind === "csat_prompt";
      var group = el("div", { className: csat ? "tw-quick tw-csat" : "tw-quick", role: "group",
                              "aria-label": csat ? t("csat_scale") : t("quick") });
      message.buttons.forEach(function (button) {
        if (!button || typeof button.payload !== "string") { return; }
        var attrs = { type: "button", className: csat ? "tw-quick-btn tw-csat-btn" : "tw-quick-btn" };
        if (csat) { attrs["aria-label"] = t("csat_rate", { n: button.title || button.payload }); }
        var b = el("button", attrs, button.title || button.payload);
        b.addEventListener("click", function () {
          if (csat) { Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; }); }
          sendButton(button);
        });
        group.appendChild(b);
      });
      node.appendChild(group);
    }
    return node;
  }

  function feedbackNode(message) {
    var box = el("div", { className: "tw-feedback", role: "group", "aria-label": t("feedback_label") });
    var given = (load().feedback || []).indexOf(message.id) >= 0;
    if (given) {
      box.appendChild(el("span", { className: "tw-feedback-thanks" }, t("thanks")));
      return box;
    }
    box.appendChild(el("span", { className: "tw-feedback-q" }, t("feedback_q")));
    var yes = el("button", { type: "button", className: "tw-feedback-btn", "aria-label": t("yes_label") }, t("yes"));
    var no = el("button", { type: "button", className: "tw-feedback-btn", "aria-label": t("no_label") }, t("no"));
    function answer(helpful) {
      queue({ type: "feedback", message_id: message.id, helpful: helpful });
      var list = (load().feedback || []).concat([message.id]).slice(-200);
      save({ feedback: list });
      while (box.firstChild) { box.removeChild(box.firstChild); }
      box.appendChild(el("span", { className: "tw-feedback-thanks" }, helpful ? t("thanks") : t("sorry")));
      if (!helpful && state.mode === "bot") {
        var person = el("button", { type: "button", className: "tw-quick-btn" }, REQUEST_HUMAN.title);
        person.addEventListener("click", function () { person.disabled = true; sendButton(REQUEST_HUMAN); });
        box.appendChild(person);
        person.focus();
      }
    }
    yes.addEventListener("click", function () { answer(true); });
    no.addEventListener("click", function () { answer(false); });
    box.appendChild(yes);
    box.appendChild(no);
    return box;
  }

  /** Quick replies only make sense on the newest thing the bot/agent/system said. */
  function afterRender() {
    var nodes = ui.log.querySelectorAll(".tw-msg");
    var latest = null;
    for (var i = nodes.length - 1; i >= 0; i--) {
      if (!nodes[i].classList.contains("tw-customer")) { latest = nodes[i]; break; }
    }
    var groups = ui.log.querySelectorAll(".tw-quick");
    for (var j = 0; j < groups.length; j++) { groups[j].hidden = groups[j].parentNode !== latest; }
    showTyping();
    scrollToEnd();
  }

  function scrollToEnd() { ui.log.scrollTop = ui.log.scrollHeight; }

  // -- typing indicator ("…" while a reply is on its way) --------------------------------------
  function showTyping() {
    var waiting = Object.keys(state.pendingTurns).length > 0 && state.mode === "bot";
    if (waiting) { ui.typingText.textContent = t("typing"); }
    ui.typing.hidden = !(waiting || state.agentTyping);
  }

  function turnDone(ref) {
    if (ref && state.pendingTurns[ref]) {
      clearTimeout(state.pendingTurns[ref].timer);
      delete state.pendingTurns[ref];
    }
    showTyping();
  }

  function showError(text) {
    ui.errors.hidden = false;
    ui.errors.textContent = text || t("wrong");
    clearTimeout(ui.errors.timer);
    ui.errors.timer = setTimeout(function () { ui.errors.hidden = true; }, 8000);
  }

  /** An error frame. rate_limited: send again when told; server/conflict: offer a retry;
   *  invalid: the message cannot be taken as it is, so it goes back into the input box. */
  function failed(frame) {
    var item = frame.client_id ? findItem(frame.client_id) : (frame.ref ? findItem(frame.ref) : null);
    if (item && frame.code === "rate_limited") {
      item.sentOn = null;
      item.notBefore = Date.now() + 1000 * (Number(frame.retry_after) || 2);
      item.queuedAt = Math.max(item.queuedAt, item.notBefore);
      showError(frame.error);
      return;
    }
    turnDone(frame.ref);
    showError(frame.error);
    if (!item) { return; }
    if (frame.saved === true) { // stored, only the reply failed: never send it again
      state.outbox.splice(state.outbox.indexOf(item), 1);
      saveOutbox();
      return;
    }
    if (frame.code === "server" || frame.code === "conflict") { markFailed(item); return; }
    state.outbox.splice(state.outbox.indexOf(item), 1);
    saveOutbox();
    if (item.node && item.node.parentNode) { item.node.parentNode.removeChild(item.node); }
    if (!ui.input.value && item.frame.type === "message") { ui.input.value = item.text; } // nothing typed is lost
  }

  // -- sending --------------------------------------------------------------------------------
  /** Frames that need no receipt (feedback): sent now, or as soon as we are connected. */
  function queue(frame) {
    start();
    if (!transmit(frame)) { state.control.push(frame); }
  }

  function pendingBubble(item) {
    var node = el("div", { className: "tw-msg tw-customer tw-pending", "aria-label": t("sending") });
    node.setAttribute("data-cid", item.cid);
    node.appendChild(el("span", { className: "tw-name" }, t("you")));
    var body = el("div", { className: "tw-text" });
    appendFormatted(body, item.text);
    node.appendChild(body);
    ui.log.appendChild(node);
    return node;
  }

  function beginWaiting(cid) {
    clearTimeout((state.pendingTurns[cid] || {}).timer);
    state.pendingTurns[cid] = { timer: setTimeout(function () { turnDone(cid); }, REPLY_TIMEOUT_MS) };
    showTyping();
  }

  /** A customer message: kept (and shown pending) until the server has stored it. */
  function beginTurn(frame, text) {
    var cid = newClientId();
    frame.ref = cid;
    frame.client_id = cid;
    var item = { cid: cid, frame: frame, text: text, queuedAt: Date.now(), failed: false };
    item.node = pendingBubble(item);
    state.outbox.push(item);
    saveOutbox();
    beginWaiting(cid);
    start();
    sendItem(item);
    watch();
    afterRender();
  }

  /** After a reload: what was not yet stored is shown again, and sent once connected. */
  function restoreOutbox() {
    loadOutbox().forEach(function (saved) {
      if (!saved || typeof saved.cid !== "string" || !saved.frame) { return; }
      var item = { cid: saved.cid, frame: saved.frame, text: String(saved.text || ""), queuedAt: Number(saved.queuedAt) || Date.now(), failed: !!saved.failed };
      item.node = pendingBubble(item);
      state.outbox.push(item);
      if (item.failed) { item.failed = false; markFailed(item); }
    });
    watch();
    return state.outbox.length > 0;
  }

  function sendText() {
    var text = ui.input.value.trim();
    if (!text) { ui.input.focus(); return; }
    ui.input.value = "";
    stopTyping();
    beginTurn({ type: "message", text: text }, text);
    ui.input.focus();
  }

  function sendButton(button) {
    var title = String(button.title || button.payload);
    beginTurn({ type: "button", title: title, payload: String(button.payload) }, title);
  }

  function noteTyping() {
    if (state.mode === "bot") { return; } // only a person watching cares
    if (!state.typingSent) { state.typingSent = true; transmit({ type: "typing", typing: true }); }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, 3000);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent) { state.typingSent = false; transmit({ type: "typing", typing: false }); }
  }

  // -- boot -------------------------------------------------------------------------------------
  function mount() {
    build();
    // the business's name and greeting before the first message (editor/persona_api.py)
    fetch(BASE + "/api/persona").then(function (r) { return r.ok ? r.json() : null; })
      .then(showBusiness).catch(function () { /* the header keeps its fallback title */ });
    var saved = load();
    var unsent = restoreOutbox();
    if (saved.token || unsent) { start(); } // an ongoing conversation: restore it (and hear the agent) at once
    if (saved.open) { openPanel(); }
  }

  window.TandemWidget = Object.freeze({
    open: function () { if (ui.panel) { openPanel(); } },
    close: function () { if (ui.panel) { closePanel(); } },
    version: "1",
  });

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mount); }
  else { mount(); }
})();
