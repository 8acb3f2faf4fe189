// Small behaviours the pages need, kept out of inline scripts so the Content-Security-Policy can forbid them.
"use strict";

document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});

// The evidence report's "Print" button (the page's print stylesheet does the rest).
document.addEventListener("click", function (event) {
  if (event.target.closest("button[data-print]")) window.print();
});

// Forms that do something hard to undo ask first.
document.addEventListener("submit", function (event) {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// An htmx request that fails outright (network down, 500) must not look like nothing happened.
document.addEventListener("htmx:responseError", function (event) {
  const row = event.detail.elt.closest("tr");
  if (row) row.classList.add("stale");
  const banner = document.getElementById("connection-problem") || (function () {
    const p = document.createElement("p");
    p.id = "connection-problem";
    p.className = "message message-error";
    p.setAttribute("role", "alert");
    document.querySelector("main").prepend(p);
    return p;
  })();
  banner.textContent = "The dashboard answered with an error (" + event.detail.xhr.status + "). Reload the page; if it persists, tell the operators.";
});
document.addEventListener("htmx:sendError", function () {
  const p = document.getElementById("connection-problem") || document.createElement("p");
  p.id = "connection-problem";
  p.className = "message message-error";
  p.setAttribute("role", "alert");
  p.textContent = "The dashboard cannot be reached. Updates resume when it answers again.";
  if (!p.isConnected) document.querySelector("main").prepend(p);
});

// A search box with suggestions (the history's server filter): as you type, ask the page's endpoint for up
// to 20 matching names and offer them in the box's <datalist>. Without this script the box still filters.
document.addEventListener("input", function (event) {
  const box = event.target.closest("input[data-suggest]");
  if (!box || !box.list) return;
  clearTimeout(box.suggestTimer);
  box.suggestTimer = setTimeout(function () {
    const url = box.dataset.suggest + "?q=" + encodeURIComponent(box.value.trim());
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { servers: [] }; })
      .then(function (answer) {
        box.list.replaceChildren.apply(box.list, answer.servers.map(function (server) {
          const option = document.createElement("option");
          option.value = server.name;
          option.label = server.resource_group;
          return option;
        }));
      })
      .catch(function () { /* suggestions are a convenience; the filter works without them */ });
  }, 150);
});
