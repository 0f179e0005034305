// The admin UI's only script of its own (served at /assets/tracer.js, so
// the pages' Content-Security-Policy can forbid inline scripts):
// - renders the flow's sequence diagram with the vendored mermaid, and
//   makes each message a link to its row of the event table;
// - refreshes the capture counters of the flows page from /api/stats.
(function () {
  "use strict";

  function renderDiagram() {
    var source = document.getElementById("diagram");
    if (!source || !window.mermaid) {
      return;
    }
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      theme: "default",
      maxTextSize: 5000000,
      maxEdges: 100000,
      // Wide diagrams shrink to the page; narrow ones keep their size.
      sequence: { useMaxWidth: true },
    });
    window.mermaid
      .render("flow-diagram", source.textContent)
      .then(function (result) {
        var holder = document.createElement("div");
        holder.className = "rendered";
        holder.innerHTML = result.svg;
        source.replaceWith(holder);
        // Message N (in document order) is event N of the table.
        var texts = holder.querySelectorAll(".messageText");
        texts.forEach(function (t, i) {
          t.addEventListener("click", function () {
            location.hash = "ev-" + (i + 1);
          });
        });
      })
      .catch(function (err) {
        var note = document.getElementById("diagram-note");
        if (note) {
          note.textContent =
            "mermaid could not draw this diagram (" + err + "); its source is shown instead.";
          note.className = "error";
        }
      });
  }

  function uptime(secs) {
    var d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24;
    var m = Math.floor(secs / 60) % 60, s = secs % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + two(m) + "m";
    if (m > 0) return m + "m " + two(s) + "s";
    return s + "s";
  }

  function liveCounters() {
    var cells = document.querySelectorAll("[data-stat]");
    if (!cells.length) {
      return;
    }
    function refresh() {
      fetch("/api/stats", { cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (stats) {
          cells.forEach(function (cell) {
            var key = cell.getAttribute("data-stat");
            var value = key === "uptime" ? uptime(stats.uptime_secs) : stats.queue[key];
            if (value !== undefined) {
              cell.textContent = String(value);
            }
          });
        })
        .catch(function () { /* the daemon stopped: keep the last values */ });
    }
    setInterval(refresh, 2000);
  }

  renderDiagram();
  liveCounters();
})();
