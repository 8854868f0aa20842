// Dashboard charts: fetch /api/v1/stats/* and draw them with Chart.js, following the theme.
// Each chart also fills a plain table (its text alternative). No inline script, no eval.
(function () {
  "use strict";
  var charts = {};

  function dark() { return document.documentElement.classList.contains("dark"); }
  function colours() {
    return dark()
      ? { text: "#cbd5e1", grid: "rgba(148,163,184,0.2)", bar: "#34d399", line: "#fbbf24" }
      : { text: "#334155", grid: "rgba(100,116,139,0.15)", bar: "#059669", line: "#d97706" };
  }

  function fillTable(canvas, rows) {
    var table = document.querySelector('[data-table-for="' + canvas.id + '"] tbody');
    if (!table) return;
    table.replaceChildren();
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (value) {
        var td = document.createElement("td");
        td.textContent = String(value);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
  }

  function axes(c) {
    return {
      x: { ticks: { color: c.text, maxRotation: 0, autoSkip: true }, grid: { color: c.grid } },
      y: { beginAtZero: true, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } },
    };
  }

  var builders = {
    timeline: function (canvas, data, c) {
      fillTable(canvas, data.map(function (p) { return [p.start, p.count]; }));
      return {
        type: "bar",
        data: { labels: data.map(function (p) { return p.start; }),
                datasets: [{ label: "Wins", data: data.map(function (p) { return p.count; }), backgroundColor: c.bar }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: axes(c) },
      };
    },
    categories: function (canvas, data, c) {
      return {
        type: "doughnut",
        data: { labels: data.map(function (x) { return x.name; }),
                datasets: [{ data: data.map(function (x) { return x.count; }),
                             backgroundColor: data.map(function (x) { return x.colour; }), borderWidth: 0 }] },
        options: { maintainAspectRatio: false, plugins: { legend: { position: "right", labels: { color: c.text } } } },
      };
    },
    mood: function (canvas, data, c) {
      fillTable(canvas, data.map(function (p) { return [p.week_start, p.average]; }));
      var scales = axes(c);
      scales.y.min = 1; scales.y.max = 5; scales.y.beginAtZero = false;
      return {
        type: "line",
        data: { labels: data.map(function (p) { return p.week_start; }),
                datasets: [{ label: "Average mood", data: data.map(function (p) { return p.average; }),
                             borderColor: c.line, backgroundColor: c.line, tension: 0.3 }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: scales },
      };
    },
  };

  function draw(canvas) {
    var kind = canvas.getAttribute("data-chart");
    var url = canvas.getAttribute("data-url");
    var period = canvas.getAttribute("data-period");
    canvas.removeAttribute("data-drawn");
    if (period) url += "?period=" + encodeURIComponent(period);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("stats " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (charts[canvas.id]) charts[canvas.id].destroy();
        var config = builders[kind](canvas, data, colours());
        // data-drawn marks a finished drawing (tests and assistive tools can rely on it).
        config.options.animation = { onComplete: function () { canvas.setAttribute("data-drawn", "true"); } };
        charts[canvas.id] = new Chart(canvas, config);
      })
      .catch(function () {
        var note = document.createElement("p");
        note.className = "hint";
        note.textContent = "This chart could not be loaded. Reload the page to try again.";
        canvas.replaceWith(note);
      });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Chart === "undefined") return;
    drawAll();
    document.querySelectorAll("[data-period]").forEach(function (button) {
      if (button.tagName !== "BUTTON") return;
      button.addEventListener("click", function () {
        var canvas = document.getElementById("timeline-chart");
        canvas.setAttribute("data-period", button.getAttribute("data-period"));
        document.querySelectorAll("button[data-period]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
        draw(canvas);
      });
    });
    // Redraw in the new colours when the theme changes.
    new MutationObserver(drawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  });
})();
