// Live refresh of the operations page: every data-refresh milliseconds
// (on <body>) while the tab is visible, fetch the page's own URL and swap
// in its #live element, unless text in it is selected. Forms with
// data-confirm ask before submitting.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
  // The message of an action just taken shows once: refreshes and reloads
  // of the page do not repeat it.
  if (window.URLSearchParams && window.history.replaceState) {
    var u = new URL(window.location.href);
    if (u.searchParams.has("done")) {
      u.searchParams.delete("done");
      window.history.replaceState(null, "", u.toString());
    }
  }
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!every || !live) return;
  var busy = false;
  function show(text, stale) {
    if (!status) return;
    status.textContent = text;
    status.className = stale ? "live-status stale" : "live-status";
  }
  function tick() {
    if (busy || document.hidden) return;
    // Leave the page alone while the user selects text in it (to copy an
    // error, say).
    var sel = window.getSelection && window.getSelection();
    if (sel && !sel.isCollapsed && live.contains(sel.anchorNode)) return;
    busy = true;
    fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) throw new Error("no live part");
        live.innerHTML = fresh.innerHTML;
        show("live · " + new Date().toLocaleTimeString(), false);
      })
      .catch(function (err) { show("refresh failed: " + err.message, true); })
      .then(function () { busy = false; });
  }
  window.setInterval(tick, every);
})();
