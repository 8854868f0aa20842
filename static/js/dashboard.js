// Dashboard charts: Chart.js draws each server-rendered table (its figures and labels are in
// the page, so nothing is fetched) and the table folds away under the chart, one tap from view.
// No inline script or style attribute, no eval; the charts follow the theme.
(function () {
  "use strict";
  var charts = {};

  function dark() { return document.documentElement.classList.contains("dark"); }
  function colours() {
    return dark()
      ? { text: "#cbd5e1", grid: "rgba(148,163,184,0.2)", bar: "#34d399", line: "#fbbf24" }
      : { text: "#334155", grid: "rgba(100,116,139,0.15)", bar: "#059669", line: "#d97706" };
  }

  // The table's rows: axis label (short: "12 Nov", "Nov 2026"), full label, figure, colour.
  function rowsOf(table) {
    return Array.prototype.map.call(table.querySelectorAll("tbody tr"), function (tr) {
      var label = tr.querySelector("th").textContent.trim();
      return {
        axis: tr.getAttribute("data-axis") || label,
        label: label,
        value: parseFloat(tr.querySelector("td").textContent),
        colour: tr.getAttribute("data-colour"),
      };
    });
  }

  function axes(c) {
    return {
      x: { ticks: { color: c.text, maxRotation: 0, autoSkip: true, autoSkipPadding: 12 }, grid: { color: c.grid } },
      y: { beginAtZero: true, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } },
    };
  }

  // Tooltips name the period in full ("Week of" rows say "9 Nov 2026").
  function tooltip(rows) {
    return { callbacks: { title: function (items) { return items.length ? rows[items[0].dataIndex].label : ""; } } };
  }

  var builders = {
    timeline: function (rows, c) {
      return {
        type: "bar",
        data: { labels: rows.map(function (r) { return r.axis; }),
                datasets: [{ label: "Wins", data: rows.map(function (r) { return r.value; }), backgroundColor: c.bar }] },
        options: { maintainAspectRatio: false, scales: axes(c),
                   plugins: { legend: { display: false }, tooltip: tooltip(rows) } },
      };
    },
    categories: function (rows, c) {
      return {
        type: "doughnut",
        data: { labels: rows.map(function (r) { return r.label; }),
                datasets: [{ data: rows.map(function (r) { return r.value; }),
                             backgroundColor: rows.map(function (r) { return r.colour; }), borderWidth: 0 }] },
        // The table beside the chart is its legend (names, colours and counts).
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } } },
      };
    },
    mood: function (rows, c) {
      var scales = axes(c);
      // Half a step of room above 5 and below 1, and no clipping: no point is ever cut in half.
      scales.y = { min: 0.5, max: 5.5, ticks: { color: c.text, stepSize: 1 }, grid: { color: c.grid },
                   afterBuildTicks: function (scale) { scale.ticks = [1, 2, 3, 4, 5].map(function (v) { return { value: v }; }); } };
      scales.x.offset = true;
      return {
        type: "line",
        data: { labels: rows.map(function (r) { return r.axis; }),
                datasets: [{ label: "Average mood", data: rows.map(function (r) { return r.value; }), clip: false,
                             borderColor: c.line, backgroundColor: c.line, tension: 0.3, pointRadius: 4 }] },
        options: { maintainAspectRatio: false, scales: scales,
                   plugins: { legend: { display: false }, tooltip: tooltip(rows) } },
      };
    },
  };

  function draw(canvas) {
    var table = document.querySelector('[data-table-for="' + canvas.id + '"]');
    if (!table) return;
    canvas.removeAttribute("data-drawn");
    canvas.parentElement.hidden = false;
    if (charts[canvas.id]) charts[canvas.id].destroy();
    var config = builders[canvas.getAttribute("data-chart")](rowsOf(table), colours());
    // data-drawn marks a finished drawing (tests and assistive tools can rely on it).
    config.options.animation = { onComplete: function () { canvas.setAttribute("data-drawn", "true"); } };
    charts[canvas.id] = new Chart(canvas, config);
    var folder = table.closest("details.chart-table");
    if (folder && !folder.hasAttribute("data-folded")) {
      folder.open = false;
      folder.setAttribute("data-folded", "");
    }
  }

  // One chart a task, so a tap is answered between two of them.
  function drawAll() {
    var canvases = Array.prototype.slice.call(document.querySelectorAll("canvas[data-chart]"));
    (function next() {
      var canvas = canvases.shift();
      if (!canvas) return;
      draw(canvas);
      setTimeout(next, 0);
    })();
  }

  // Chart.js (200 kB to evaluate) is fetched once the page has loaded, not before its first
  // paint: the tables are already there, the charts come after. Other scripts (money.js) wait
  // for it through successDiaryCharts.ready(callback).
  var waiting = [];
  var loaded = false;
  window.successDiaryCharts = {
    ready: function (then) { if (loaded) setTimeout(then, 0); else waiting.push(then); },
  };
  window.addEventListener("load", function () {
    var me = document.querySelector("script[data-chartjs]");
    if (!me || !document.querySelector("canvas")) return;
    var script = document.createElement("script");
    script.src = me.getAttribute("data-chartjs");
    script.onload = function () {
      loaded = true;
      waiting.splice(0).forEach(function (then) { setTimeout(then, 0); });
    };
    document.head.appendChild(script);
  });

  window.successDiaryCharts.ready(function () {
    drawAll();
    // Redraw in the new colours when the theme changes.
    new MutationObserver(drawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  });
})();
