// Keeps balances on the page live: one websocket, redraws a line when its balance changes.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  let retryDelay = 1000;

  function setStatus(state, text) {
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

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws/live/`);
    socket.addEventListener("open", function () {
      retryDelay = 1000;
      for (const el of document.querySelectorAll("[data-subscribe-line]")) {
        socket.send(JSON.stringify({ action: "subscribe", line: Number(el.dataset.subscribeLine) }));
      }
    });
    socket.addEventListener("message", function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "ready") setStatus("live", "live");
      if (message.type === "line.changed") redrawLine(message);
      if (message.type === "account.changed") redrawMoney(message.money);
      if (message.type === "threshold.crossed") showNotice(message);
    });
    socket.addEventListener("close", function () {
      setStatus("offline", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  connect();
})();
