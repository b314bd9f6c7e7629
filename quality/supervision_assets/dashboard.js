// The supervision office's dashboard: draws the two charts from the data embedded in the
// page (no request). Each canvas gets data-rendered="1" once Chart.js has drawn it, and the
// body data-charts="N" with the number of charts drawn.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var colours = { reminder: "#3370ff", warning: "#e6a700", alarm: "#d4252c" };
  var drawn = 0;

  function markRendered(chart) {
    if (chart.canvas.dataset.rendered !== "1") {
      chart.canvas.dataset.rendered = "1";
      drawn += 1;
      document.body.dataset.charts = String(drawn);
    }
  }

  if (typeof Chart === "undefined") {
    document.body.dataset.charts = "unavailable";
    return;
  }
  Chart.defaults.font.family = '"WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  Chart.defaults.animation = false;
  var marker = { id: "rendered-marker", afterRender: markRendered };

  function levelSets(rows) {
    return data.levels.map(function (level) {
      return {
        label: level.name,
        data: rows.map(function (row) { return row[level.level]; }),
        backgroundColor: colours[level.level],
        stack: "alerts"
      };
    });
  }

  var departments = data.open_alerts.by_department;
  new Chart(document.getElementById("chart-departments"), {
    type: "bar",
    data: { labels: departments.map(function (d) { return d.department; }), datasets: levelSets(departments) },
    options: {
      responsive: true, maintainAspectRatio: false, indexAxis: "y",
      plugins: { title: { display: true, text: "在办预警 · 按处室" } },
      scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } }
    },
    plugins: [marker]
  });

  var trend = data.trend;
  var sets = levelSets(trend).concat([
    { type: "line", label: "办结数", data: trend.map(function (d) { return d.finished; }),
      borderColor: "#2ea121", backgroundColor: "#2ea121", stack: "finished" },
    { type: "line", label: "超期办结数", data: trend.map(function (d) { return d.finished_late; }),
      borderColor: "#8c1d18", backgroundColor: "#8c1d18", borderDash: [4, 3], stack: "late" }
  ]);
  new Chart(document.getElementById("chart-trend"), {
    type: "bar",
    data: {
      labels: trend.map(function (d) { var p = d.day.split("-"); return Number(p[1]) + "月" + Number(p[2]) + "日"; }),
      datasets: sets
    },
    options: {
      responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: "近" + data.days + "天：每日预警、办结与超期办结" } },
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
    },
    plugins: [marker]
  });
})();
