// rkms dashboard: local times, copy buttons, instant product filter, live activations.
// Self-contained: talks only to this server, builds DOM with textContent (no HTML injection).
"use strict";

(function () {
  function localTime(el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.title = el.textContent;
      el.textContent = d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
    }
  }

  function copyText(text, button) {
    function done() {
      var old = button.textContent;
      button.textContent = "Copied";
      button.classList.add("done");
      setTimeout(function () { button.textContent = old; button.classList.remove("done"); }, 1500);
    }
    function fallback() {
      // Plain http on a LAN is not a secure context: no Clipboard API there.
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      document.body.removeChild(area);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.copy");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var from = b.getAttribute("data-copy-from");
    if (from) {
      var src = document.getElementById(from);
      text = src ? src.textContent : "";
    }
    if (text) copyText(text, b);
  });

  function productFilter() {
    var input = document.getElementById("product-filter");
    if (!input) return;
    var cards = Array.prototype.slice.call(document.querySelectorAll("article.product"));
    var count = document.getElementById("product-count");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      cards.forEach(function (c) {
        var hit = !q || c.getAttribute("data-search").indexOf(q) >= 0;
        c.hidden = !hit;
        if (hit) shown++;
      });
      if (count) count.textContent = String(shown);
    });
  }

  function cell(tr, text) {
    var td = document.createElement("td");
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function liveRow(a) {
    var tr = document.createElement("tr");
    var t = document.createElement("time");
    t.setAttribute("datetime", new Date(a.time * 1000).toISOString());
    t.title = new Date(a.time * 1000).toISOString();
    t.textContent = new Date(a.time * 1000).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
    cell(tr, t);
    var link = document.createElement("a");
    link.href = "/clients/" + encodeURIComponent(a.cmid);
    link.textContent = a.workstation;
    cell(tr, link);
    cell(tr, a.product);
    var badge = document.createElement("span");
    badge.className = "badge " + (a.status === "refused" ? "refused" : "activated");
    badge.textContent = a.status;
    var td = cell(tr, badge);
    if (a.status === "refused") {
      var code = document.createElement("code");
      code.className = "small";
      code.textContent = "0x" + (a.hresult >>> 0).toString(16).toUpperCase().padStart(8, "0");
      td.appendChild(document.createTextNode(" "));
      td.appendChild(code);
    }
    cell(tr, a.protocol);
    cell(tr, a.address);
    return tr;
  }

  function live() {
    var table = document.getElementById("live");
    if (!table || !window.fetch) return;
    var status = document.getElementById("live-status");
    var body = table.querySelector("tbody");
    var src = table.getAttribute("data-src");
    function poll() {
      fetch(src, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) {
          var rows = data.activations || [];
          var fresh = document.createDocumentFragment();
          rows.forEach(function (a) { fresh.appendChild(liveRow(a)); });
          if (!rows.length) {
            var tr = document.createElement("tr");
            tr.className = "empty";
            var td = cell(tr, "No activations yet.");
            td.colSpan = 6;
            fresh.appendChild(tr);
          }
          body.replaceChildren(fresh);
          if (status) status.textContent = "· live, updated " + new Date().toLocaleTimeString();
        })
        .catch(function (e) {
          if (status) status.textContent = "· live updates paused (" + e.message + ")";
        });
    }
    poll();
    setInterval(poll, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), localTime);
    productFilter();
    live();
  });
})();
