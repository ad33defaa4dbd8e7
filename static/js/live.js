// Keeps balances on the page live: one websocket, redraws a line when its balance changes.
//
// The server sends the current state of everything the page watches whenever the socket
// (re)connects, then each change, and a heartbeat when nothing moves. A socket that closes,
// or stays silent past two heartbeats (a laptop that slept, a network that dropped), is
// replaced, with growing pauses between tries; until then the page says it is not live.
// Every message is also dispatched as a "live:message" event for page-specific scripts.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  const FIRST_DELAY_MS = 1000;
  const MAX_DELAY_MS = 30000;
  let retryDelay = FIRST_DELAY_MS;
  let socket = null;
  let retryTimer = null;
  let lastHeard = 0;
  let silenceLimitMs = 40000; // until the server says its heartbeat

  function setStatus(state, text) {
    document.body.dataset.live = state;
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  }

  function redrawMoney(money) {
    for (const el of document.querySelectorAll(`[data-money-account="${money.account}"]`)) {
      el.textContent = money.display;
    }
  }

  function showNotice(message) {
    const area = document.getElementById("live-notices");
    if (!area) return;
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.dataset.percent = message.percent;
    notice.textContent = message.text;
    area.prepend(notice);
  }

  function redrawLine(message) {
    for (const bucket of message.buckets) {
      for (const item of document.querySelectorAll(`[data-bucket-id="${bucket.id}"]`)) {
        item.querySelector(".remaining").textContent = bucket.display;
        item.querySelector(".fill").style.width = bucket.percent_left + "%";
      }
    }
    redrawMoney(message.money);
    for (const card of document.querySelectorAll(`[data-line-id="${message.line}"]`)) {
      card.classList.remove("flash");
      void card.offsetWidth; // restart the highlight animation
      card.classList.add("flash");
    }
  }

  function subscribeAll() {
    for (const el of document.querySelectorAll("[data-subscribe-line]")) {
      socket.send(JSON.stringify({ action: "subscribe", line: Number(el.dataset.subscribeLine) }));
    }
    for (const el of document.querySelectorAll("[data-subscribe-node]")) {
      socket.send(JSON.stringify({ action: "subscribe", node: Number(el.dataset.subscribeNode) }));
    }
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    // Jitter spreads the reconnections of every page after a server restart.
    const wait = retryDelay / 2 + Math.random() * (retryDelay / 2);
    setStatus("offline", "not live, reconnecting…");
    retryTimer = setTimeout(function () {
      retryTimer = null;
      connect();
    }, wait);
    retryDelay = Math.min(retryDelay * 2, MAX_DELAY_MS);
  }

  function reconnectNow() {
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    retryDelay = FIRST_DELAY_MS;
    connect();
  }

  function connect() {
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    setStatus("connecting", "connecting…");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const current = new WebSocket(`${scheme}://${window.location.host}/ws/live/`);
    socket = current;
    current.onopen = function () {
      lastHeard = Date.now();
      subscribeAll();
    };
    current.onmessage = function (event) {
      lastHeard = Date.now();
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        retryDelay = FIRST_DELAY_MS;
        silenceLimitMs = 2.5 * message.heartbeat_seconds * 1000;
        setStatus("live", "live");
      }
      if (message.type === "line.changed") redrawLine(message);
      if (message.type === "account.changed") redrawMoney(message.money);
      if (message.type === "threshold.crossed") showNotice(message);
      document.dispatchEvent(new CustomEvent("live:message", { detail: message }));
    };
    current.onclose = function () {
      if (socket === current) socket = null;
      scheduleReconnect();
    };
  }

  function isSilent() {
    return !socket || socket.readyState !== WebSocket.OPEN || Date.now() - lastHeard > silenceLimitMs;
  }

  // A socket can die without a close event (sleep, a dropped network): replace a silent one.
  setInterval(function () {
    if (socket && socket.readyState === WebSocket.OPEN && isSilent()) {
      socket.close();
    }
  }, 5000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && isSilent()) reconnectNow();
  });
  window.addEventListener("online", reconnectNow);

  connect();
})();
