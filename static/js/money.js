// h18-money: the dashboard's money chart, from /api/v1/stats/money: one stacked bar per month,
// a colour per category, in the base currency. The page's tables hold the same figures (drawn
// by the server), so nothing is lost without JavaScript. No inline script, no eval.
(function () {
  "use strict";
  var chart = null;

  function dark() { return document.documentElement.classList.contains("dark"); }
  function colours() {
    return dark() ? { text: "#cbd5e1", grid: "rgba(148,163,184,0.2)" }
                  : { text: "#334155", grid: "rgba(100,116,139,0.15)" };
  }

  function config(data, c) {
    var series = {};
    var order = [];
    data.periods.forEach(function (period, i) {
      period.categories.forEach(function (cat) {
        var key = String(cat.category_id);
        if (!series[key]) {
          series[key] = { label: cat.name, backgroundColor: cat.colour, data: data.periods.map(function () { return 0; }) };
          order.push(key);
        }
        series[key].data[i] = Number(cat.total);
      });
    });
    var money = new Intl.NumberFormat(document.documentElement.lang || undefined,
                                      { style: "currency", currency: data.base_currency });
    return {
      type: "bar",
      data: { labels: data.periods.map(function (p) { return p.start.slice(0, 7); }),
              datasets: order.map(function (key) { return series[key]; }) },
      options: {
        maintainAspectRatio: false,
        plugins: {
          legend: { position: "bottom", labels: { color: c.text } },
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + money.format(item.raw); } } },
        },
        scales: {
          x: { stacked: true, ticks: { color: c.text, maxRotation: 0, autoSkip: true }, grid: { color: c.grid } },
          y: { stacked: true, beginAtZero: true, ticks: { color: c.text }, grid: { color: c.grid } },
        },
      },
    };
  }

  function draw(canvas) {
    canvas.removeAttribute("data-drawn");
    return fetch(canvas.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("money " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (chart) chart.destroy();
        var settings = config(data, colours());
        settings.options.animation = { onComplete: function () { canvas.setAttribute("data-drawn", "true"); } };
        chart = new Chart(canvas, settings);
      })
      .catch(function () {
        var note = document.createElement("p");
        note.className = "hint";
        note.textContent = "The money chart could not be loaded; the table below has the figures.";
        canvas.replaceWith(note);
      });
  }

  // Chart.js comes once the page has loaded (dashboard.js fetches it).
  if (!window.successDiaryCharts) return;
  window.successDiaryCharts.ready(function () {
    var canvas = document.querySelector("canvas[data-money-chart]");
    if (!canvas) return;
    draw(canvas);
    new MutationObserver(function () { draw(canvas); })
      .observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  });
})();
