// Foundry dashboard: live refresh of the #live region, confirmations, select-all.
// The server renders (and escapes) every fragment; this script only swaps it in.
"use strict";

(function () {
  const live = document.getElementById("live");

  function busy() {
    // Never pull the page from under a user who is choosing or typing.
    return live.querySelector("input:checked") !== null || live.contains(document.activeElement);
  }

  async function refresh() {
    if (document.hidden || busy()) return;
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    url.searchParams.delete("note");
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok && !busy()) {
        live.innerHTML = await response.text();
        live.dataset.refreshedAt = String(Date.now());
      }
    } catch (error) {
      // The next tick tries again; the page keeps what it shows.
    }
  }

  if (live) {
    const seconds = Math.max(1, Number(live.dataset.refresh) || 5);
    window.setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  }

  document.addEventListener("submit", function (event) {
    const submitter = event.submitter;
    const message = (submitter && submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (!box.matches || !box.matches("[data-select-all]")) return;
    box.closest("table").querySelectorAll("input[name=pick]").forEach(function (pick) {
      pick.checked = box.checked;
    });
  });
})();
