// Small behaviours the pages need, kept out of inline scripts so the Content-Security-Policy can forbid them.
"use strict";

document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  const text = source.matches("input, textarea") ? source.value : source.textContent;
  navigator.clipboard.writeText(text.trim()).then(function () {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});

// The evidence report's "Print" button (the page's print stylesheet does the rest).
document.addEventListener("click", function (event) {
  if (event.target.closest("button[data-print]")) window.print();
});

// Forms (or one of their buttons) that do something hard to undo ask first.
document.addEventListener("submit", function (event) {
  const button = event.submitter && event.submitter.closest("[data-confirm]");
  const form = event.target.closest("form[data-confirm]");
  const question = button ? button.dataset.confirm : form && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// An htmx request that fails outright (network down, 500) must not look like nothing happened.
document.addEventListener("htmx:responseError", function (event) {
  const xhr = event.detail.xhr;
  // A limit (429) says in plain text what was refused and when to try again: show its words.
  const limited = xhr.status === 429 && (xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0;
  const row = event.detail.elt.closest("tr");
  if (row && !limited) row.classList.add("stale");
  const banner = document.getElementById("connection-problem") || (function () {
    const p = document.createElement("p");
    p.id = "connection-problem";
    p.className = "message message-error";
    p.setAttribute("role", "alert");
    document.querySelector("main").prepend(p);
    return p;
  })();
  banner.textContent = limited ? xhr.responseText.trim()
    : "The dashboard answered with an error (" + xhr.status + "). Reload the page; if it persists, tell the operators.";
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

// The server list's selection (the toolbar of #bulk-form): the header checkbox selects this page; once the page is
// selected, "Select all N matching" turns the run button into "Run check on all N matching" (scope=all, the list's
// filters); the button's words follow the count. Without this script the row boxes and "Run on all" still work.
(function () {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const pageBox = document.querySelector("input[data-select-page]");
  const run = form.querySelector("[data-run-selected]");
  const note = form.querySelector("[data-selection]");
  const matching = form.querySelector("[data-select-matching]");
  const clear = form.querySelector("[data-clear-selection]");
  const total = Number(form.dataset.total);
  let allMatching = false;

  // The rows' boxes: the list is inside the form, each box a field named "server".
  function rowBoxes() { return Array.from(form.querySelectorAll("tbody input[name=server]")); }

  function update() {
    const boxes = rowBoxes();
    const ticked = boxes.filter(function (box) { return box.checked; }).length;
    const wholePage = boxes.length > 0 && ticked === boxes.length;
    if (!wholePage) allMatching = false;
    if (pageBox) {
      pageBox.checked = wholePage;
      pageBox.indeterminate = ticked > 0 && !wholePage;
    }
    run.value = allMatching ? "all" : "selected";
    run.textContent = allMatching ? "Run check on all " + total + " matching"
      : ticked ? "Run check on " + ticked + " selected" : "Run check on selected";
    note.textContent = allMatching ? "All " + total + " matching servers are selected."
      : wholePage && matching ? "All " + ticked + " on this page are selected." : "";
    if (matching) matching.hidden = !wholePage || allMatching;
    if (clear) clear.hidden = !allMatching;
  }

  if (pageBox) pageBox.addEventListener("change", function () {
    rowBoxes().forEach(function (box) { box.checked = pageBox.checked; });
    update();
  });
  if (matching) matching.addEventListener("click", function () { allMatching = true; update(); run.focus(); });
  if (clear) clear.addEventListener("click", function () {
    allMatching = false;
    rowBoxes().forEach(function (box) { box.checked = false; });
    update();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("tbody input[name=server]")) update();
  });
  // A row swapped by htmx (its check ran) comes back unticked: tick it again if it was.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const box = event.detail.target && event.detail.target.querySelector("input[name=server]");
    if (box && box.checked) form.dataset.keep = (form.dataset.keep || "") + " " + box.value;
  });
  document.addEventListener("htmx:afterSettle", function () {
    const keep = (form.dataset.keep || "").split(" ");
    rowBoxes().forEach(function (box) { if (keep.indexOf(box.value) >= 0) box.checked = true; });
    form.dataset.keep = "";
    update();
  });
  update();
})();

// The list's filters sit behind a "Filters" button on a phone; on a wide screen they are simply open.
document.querySelectorAll("details[data-open-wide]").forEach(function (details) {
  if (window.matchMedia("(min-width: 761px)").matches) details.open = true;
});

// The server list's strips: each group's data-ticks ("<letter><id>.<minute>" each, base 36, each after the first
// the difference from the one before; see checks/strip.py) drawn as ticks, each a link to its check titled with
// when and what. The group's label says the same in words, for a reader without this script.
(function () {
  const source = document.getElementById("strip-legend");
  if (!source) return;
  const legend = JSON.parse(source.textContent);

  function draw(strip) {
    let pk = 0, minute = 0;
    const ticks = strip.dataset.ticks.split(" ").map(function (token) {
      const [ids, minutes] = token.slice(1).split(".");
      pk += parseInt(ids, 36);
      minute += parseInt(minutes, 36);
      const [kind, words] = legend.kinds[token[0]];
      const tick = document.createElement("a");
      tick.href = legend.href.replace("{}", pk);
      tick.className = "tick tick-" + kind;
      tick.title = new Date(minute * 60000).toISOString().slice(0, 16).replace("T", " ") + ": " + words;
      return tick;
    });
    strip.prepend.apply(strip, ticks);
    strip.dataset.drawn = "";
  }

  function drawAll(root) {
    root.querySelectorAll(".strip[data-ticks]:not([data-drawn])").forEach(draw);
  }
  drawAll(document);
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail.elt.parentNode || document); });
})();

// The server list's rows say each thing once (checks/fleet_row.py): a time's exact moment is its datetime (in
// TIME_ZONE, with its offset, as other pages say times), made its tooltip here; Run's URL is its formaction (the
// plain form post without this script), given to htmx as hx-post here, so a click swaps the row (hx-target and
// hx-swap come from the <tbody>).
(function () {
  function dress(root) {
    root.querySelectorAll(".fleet time[datetime]:not([title])").forEach(function (time) {
      var moment = time.getAttribute("datetime"), offset = moment.slice(19);  // "+01:00", "+00:00" or "Z"
      time.title = moment.slice(0, 19).replace("T", " ") + " UTC" + (/^(Z|[+-]00:00)$/.test(offset) ? "" : offset);
    });
    root.querySelectorAll(".fleet button[formaction]:not([hx-post])").forEach(function (button) {
      button.setAttribute("hx-post", button.getAttribute("formaction"));
      if (window.htmx) window.htmx.process(button);
    });
  }
  dress(document);
  document.addEventListener("htmx:load", function (event) { dress(event.detail.elt.parentNode || document); });
})();

// A list cell too narrow for its words ends them in "…" (app.css): on hover its whole text becomes its title, so
// what was cut can be read without opening the server (a title on every cell would cost each row its bytes twice).
(function () {
  document.addEventListener("mouseover", function (event) {
    var cell = event.target.closest && event.target.closest(".fleet td");
    if (!cell || cell.hasAttribute("title") || cell.scrollWidth <= cell.clientWidth) return;
    cell.title = cell.textContent.replace(/\s+/g, " ").trim();
  });
})();
