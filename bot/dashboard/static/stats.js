// The statistics page's charts (Chart.js, vendored under /static/chartjs/). The figures come from the
// page's <script type="application/json" id="stats-data"> element: no inline script, as the CSP wants.
(function () {
  "use strict";
  var source = document.getElementById("stats-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var names = data.names;
  var labels = data.labels;
  var COLORS = ["#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#0a7d8c", "#e16f24", "#57606a"];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  // Long names (programme titles) are cut for the axis; the table below the chart has them whole.
  function label(table, key) {
    var text = key ? (table && table[key]) || key : names.none;
    return text.length > 28 ? text.slice(0, 27) + "…" : text;
  }

  function bars(id, pairs, table, horizontal, series) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: pairs.map(function (p) { return label(table, p[0]); }),
        datasets: [{
          label: series || names.leads,
          data: pairs.map(function (p) { return p[1]; }),
          backgroundColor: pairs.map(function (_, i) { return COLORS[i % COLORS.length]; })
        }]
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }

  var days = data.days.map(function (d) { return d.slice(8, 10) + "/" + d.slice(5, 7); });
  new Chart(document.getElementById("chart-questions"), {
    type: "bar",
    data: {
      labels: days,
      datasets: [
        { label: names.questions, data: data.questions, backgroundColor: COLORS[0] },
        { label: names.staff_questions, data: data.staff_questions, backgroundColor: COLORS[2] }
      ]
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  });

  bars("chart-topics", data.topics, labels.category, true);
  bars("chart-funnel", data.funnel, names.funnel, true, names.people);
  bars("chart-status", data.leads_by_status, labels.status, false);
  bars("chart-programme", data.leads_by_programme, labels.programme, true);
  bars("chart-province", data.leads_by_province, null, true);

  var kinds = Object.keys(data.deliveries);
  var statuses = Object.keys(names.delivery);
  var statusColors = { sent: COLORS[1], blocked: COLORS[7], failed: COLORS[3], waiting: COLORS[2] };
  new Chart(document.getElementById("chart-delivery"), {
    type: "bar",
    data: {
      labels: kinds.map(function (k) { return names.kinds[k] || k; }),
      datasets: statuses.map(function (s) {
        return {
          label: names.delivery[s],
          data: kinds.map(function (k) { return data.deliveries[k][s] || 0; }),
          backgroundColor: statusColors[s]
        };
      })
    },
    options: {
      indexAxis: "y",
      scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } }
    }
  });
})();
