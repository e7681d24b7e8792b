// Live updates of the dashboard without reloading: polls the page's JSON feed (the element
// with data-live-url) and swaps in the server-rendered HTML of what changed. Announces state
// changes to screen readers; pauses while the tab is hidden. No dependencies.
(function () {
  "use strict";

  var PERIOD_MS = 1500;
  var announcer = document.getElementById("live-announce");
  var updated = document.getElementById("live-updated");

  function announce(text) {
    if (announcer) announcer.textContent = text;
  }

  function fromHtml(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function keepFocus(swap) {
    var focused = document.activeElement && document.activeElement.id;
    swap();
    if (focused && document.activeElement !== document.getElementById(focused)) {
      var again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  // Jobs table: one <tr data-job-id> per job, in the server's order.
  function applyRows(table, data) {
    var body = table.tBodies[0];
    var present = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-job-id]"), function (tr) {
      present[tr.dataset.jobId] = tr;
    });
    var changes = [];
    keepFocus(function () {
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      var previous = null;
      var wanted = {};
      data.rows.forEach(function (row) {
        wanted[row.id] = true;
        var tr = present[row.id];
        if (!tr || tr.dataset.tag !== row.tag) {
          var fresh = fromHtml(row.html);
          fresh.dataset.tag = row.tag;
          if (tr && tr.dataset.state !== row.state) {
            changes.push("Job " + fresh.dataset.shortId + " is now " + row.state + ".");
          }
          if (tr) tr.replaceWith(fresh);
          tr = fresh;
        }
        var slot = previous ? previous.nextElementSibling : body.firstElementChild;
        if (slot !== tr) body.insertBefore(tr, slot);
        previous = tr;
      });
      Object.keys(present).forEach(function (id) {
        if (!wanted[id]) present[id].remove();
      });
      if (!data.rows.length && data.empty) body.appendChild(fromHtml(data.empty));
    });
    if (changes.length) announce(changes.join(" "));
  }

  // Job page: one region replaced as a whole when it changed.
  function applyRegion(region, data) {
    if (region.dataset.tag === data.tag) return;
    var before = region.dataset.state;
    keepFocus(function () {
      region.innerHTML = data.html;
    });
    region.dataset.tag = data.tag;
    region.dataset.state = data.state;
    if (before && before !== data.state) announce("The job is now " + data.state + ".");
  }

  function start(element) {
    var url = element.dataset.liveUrl;
    var isTable = element.tagName === "TABLE";
    var stopped = false;

    function schedule() {
      if (!stopped) window.setTimeout(tick, PERIOD_MS);
    }

    function tick() {
      if (document.hidden) return schedule();
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) {
            stopped = true;
            if (updated) updated.textContent = "Signed out: sign in again to see live updates.";
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (!data) return;
          if (isTable) applyRows(element, data);
          else {
            applyRegion(element, data);
            if (!data.live) stopped = true; // finished: nothing more will change
          }
          if (updated) updated.textContent = "Live: updated " + new Date().toLocaleTimeString() + ".";
        })
        .catch(function () {
          if (updated) updated.textContent = "Live updates paused: the server did not answer; retrying.";
        })
        .then(schedule);
    }

    schedule();
  }

  // A cancel button asks first (the form still works without this script).
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-live-url]"), start);
})();
