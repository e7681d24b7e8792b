// The schedule form: previews the next runs as the cron, interval or time zone is typed (the
// server computes them as beat will), and asks before a delete. No dependencies.
(function () {
  "use strict";

  var preview = document.getElementById("preview");
  var body = document.getElementById("preview-body");
  var timer = null;

  function field(name) {
    var element = document.getElementById(name);
    return element ? element.value.trim() : "";
  }

  function show(answer) {
    body.textContent = "";
    if (answer.error) {
      var p = document.createElement("p");
      p.className = "error-text";
      p.id = "preview-error";
      p.textContent = answer.error;
      body.appendChild(p);
      return;
    }
    var list = document.createElement("ol");
    list.className = "runs";
    answer.runs.forEach(function (run) {
      var item = document.createElement("li");
      var time = document.createElement("time");
      time.dateTime = run.iso;
      time.textContent = run.local;
      var utc = document.createElement("span");
      utc.className = "muted";
      utc.textContent = " (" + run.utc + ")";
      item.appendChild(time);
      item.appendChild(utc);
      list.appendChild(item);
    });
    body.appendChild(list);
  }

  function refresh() {
    var query = new URLSearchParams({
      cron: field("cron"),
      interval_seconds: field("interval_seconds"),
      timezone: field("timezone"),
    });
    fetch(preview.dataset.previewUrl + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.json(); })
      .then(show)
      .catch(function () { /* the server-rendered preview stays */ });
  }

  if (preview) {
    ["cron", "interval_seconds", "timezone"].forEach(function (name) {
      var element = document.getElementById(name);
      if (!element) return;
      element.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(refresh, 300);
      });
    });
  }

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
