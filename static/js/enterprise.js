// The manager's tree: opens a node's children on demand, and redraws limits and pools when
// a node.changed message arrives (live.js dispatches each message as a "live:message" event).
(function () {
  "use strict";
  const MB = 1024 * 1024;
  const GB = 1024 * MB;

  // As charging.units.format_units shows them.
  function formatUnits(quantity, unit) {
    const n = (value, digits) =>
      value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    if (unit === "bytes") return Math.abs(quantity) >= GB ? `${n(quantity / GB, 2)} GB` : `${n(quantity / MB, 1)} MB`;
    if (unit === "seconds") {
      const minutes = Math.floor(quantity / 60);
      return `${n(minutes, 0)} min ${String(quantity % 60).padStart(2, "0")} s`;
    }
    if (unit === "messages") return `${n(quantity, 0)} SMS`;
    return `${n(quantity, 0)} ${unit}`;
  }

  function setText(parent, selector, text) {
    const el = parent.querySelector(selector);
    if (el) el.textContent = text;
  }

  function redrawNode(message) {
    for (const area of document.querySelectorAll(`[data-node-figures="${message.node}"]`)) {
      for (const limit of message.limits || []) {
        // Only this node's own figures, not those of nodes nested inside it.
        const items = area.querySelectorAll(`[data-limit-unit="${limit.unit}"]`);
        for (const item of items) {
          if (item.closest("[data-node-figures]") !== area) continue;
          const used = Math.min(limit.used, limit.limit);
          const remaining = Math.max(limit.limit - limit.used - limit.reserved, 0);
          setText(item, ".limit", limit.limit_display);
          setText(item, ".used", limit.used_display);
          setText(item, ".reserved", formatUnits(limit.reserved, limit.unit));
          setText(item, ".remaining", formatUnits(remaining, limit.unit));
          const fill = item.querySelector(".fill");
          if (fill) fill.style.width = (limit.limit ? Math.round((100 * used) / limit.limit) : 100) + "%";
        }
      }
      for (const pool of message.pools || []) {
        for (const item of area.querySelectorAll(`[data-pool-id="${pool.id}"]`)) {
          setText(item, ".remaining", pool.display);
          const fill = item.querySelector(".fill");
          if (fill) fill.style.width = pool.percent_left + "%";
        }
      }
      area.classList.remove("flash");
      void area.offsetWidth; // restart the highlight animation
      area.classList.add("flash");
    }
  }

  document.addEventListener("live:message", function (event) {
    const message = event.detail;
    if (message && message.type === "node.changed") redrawNode(message);
  });

  async function toggle(button) {
    const item = button.closest("li");
    let below = item.querySelector(":scope > ul.tree");
    if (button.dataset.loaded !== "true") {
      button.disabled = true;
      try {
        const response = await fetch(button.dataset.childrenUrl, { headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error(response.statusText);
        below = document.createElement("ul");
        below.className = "tree";
        below.innerHTML = await response.text();
        item.appendChild(below);
        button.dataset.loaded = "true";
      } catch (error) {
        button.title = "Could not load: try again";
        return;
      } finally {
        button.disabled = false;
      }
    } else if (below) {
      below.hidden = !below.hidden;
    }
    const open = below && !below.hidden;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "▾" : "▸";
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.toggle[data-children-url]");
    if (button) toggle(button);
  });
})();
