// The shop's small scripts: refresh an order's timeline while it is fulfilled, and update the
// guided-selling price summary when a choice changes (the server computes every price).
(function () {
  "use strict";

  const card = document.getElementById("timeline-card");
  if (card) {
    const url = card.dataset.timelineUrl;
    const refresh = function () {
      const timeline = document.getElementById("timeline");
      if (!timeline || timeline.dataset.open !== "true") return;
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html) card.innerHTML = html;
          setTimeout(refresh, 1000);
        })
        .catch(function () { setTimeout(refresh, 3000); });
    };
    setTimeout(refresh, 1000);
  }

  const form = document.getElementById("guided-form");
  if (form) {
    form.addEventListener("change", function () {
      const params = new URLSearchParams(new FormData(form));
      params.delete("csrfmiddlewaretoken");
      fetch("?" + params.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          const page = new DOMParser().parseFromString(html, "text/html");
          const fresh = page.getElementById("price-summary");
          const current = document.getElementById("price-summary");
          if (fresh && current) current.replaceWith(fresh);
        });
    });
  }
})();
