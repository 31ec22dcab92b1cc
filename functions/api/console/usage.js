// Estimated spend and jobs per UTC day and model (GET /v1/usage), as a stacked bar chart in plain SVG and as a
// table (the same numbers, for reading aloud and copying).

import { api } from "./api.js";
import { clear, errorBox, h, heading, s, table, usd } from "./dom.js";

// Okabe–Ito: told apart by people with any common colour-vision deficiency.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const PERIODS = [
  ["month", "This month"],
  ["7", "Last 7 days"],
  ["30", "Last 30 days"],
  ["90", "Last 90 days"],
  ["custom", "Custom"],
];
const W = 960;
const H = 320;
const M = { top: 16, right: 16, bottom: 44, left: 64 };

function day(date) {
  return date.toISOString().slice(0, 10);
}

function daysBetween(first, last) {
  const days = [];
  for (let at = new Date(`${first}T00:00:00Z`); day(at) <= last; at.setUTCDate(at.getUTCDate() + 1)) {
    days.push(day(at));
  }
  return days;
}

export function renderUsage(main) {
  let stopped = false;
  const period = h(
    "select",
    { id: "usage-period", name: "period" },
    PERIODS.map(([value, label]) => h("option", { value }, label)),
  );
  const metric = h(
    "select",
    { id: "usage-metric", name: "metric" },
    h("option", { value: "usd" }, "Spend (USD)"),
    h("option", { value: "jobs" }, "Jobs"),
  );
  const today = day(new Date());
  const from = h("input", { id: "usage-from", type: "date", max: today, value: today.slice(0, 8) + "01" });
  const to = h("input", { id: "usage-to", type: "date", max: today, value: today });
  const custom = h(
    "span",
    { class: "toolbar" },
    h("label", { for: "usage-from" }, "From"),
    from,
    h("label", { for: "usage-to" }, "To"),
    to,
  );
  custom.hidden = true;
  const totals = h("p", { class: "totals", id: "usage-totals" });
  const chart = h("div", { id: "usage-chart" });
  const detail = h("div");
  const problem = h("div");
  let report = null;

  clear(main).append(
    heading("Usage"),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "usage-period" }, "Period"),
      period,
      custom,
      h("label", { for: "usage-metric" }, "Show"),
      metric,
    ),
    problem,
    totals,
    chart,
    detail,
  );

  function query() {
    if (period.value === "month") return {};
    if (period.value === "custom") return { from: from.value, to: to.value };
    const start = new Date();
    start.setUTCDate(start.getUTCDate() - Number(period.value) + 1);
    return { from: day(start), to: today };
  }

  async function load() {
    custom.hidden = period.value !== "custom";
    problem.replaceChildren();
    try {
      const answer = await api("GET", "/usage", { query: query() });
      if (stopped) return;
      report = answer;
      draw();
    } catch (error) {
      if (!stopped) problem.replaceChildren(errorBox(error));
    }
  }

  function draw() {
    const value = metric.value === "usd" ? (row) => row.estimated_usd : (row) => row.jobs;
    const label = metric.value === "usd" ? usd : (n) => String(n);
    totals.replaceChildren(
      h("span", null, "Spend ", h("strong", null, usd(report.total_usd))),
      h("span", null, "Jobs ", h("strong", null, String(report.jobs))),
      h("span", { class: "help" }, `${report.from} to ${report.to} (UTC)`),
    );
    const days = daysBetween(report.from, report.to);
    const models = [...new Set(report.data.map((row) => row.model))].sort();
    const colour = new Map(models.map((model, i) => [model, PALETTE[i % PALETTE.length]]));
    chart.replaceChildren(svg(days, models, colour, value, label), legend(models, colour));
    detail.replaceChildren(
      report.data.length
        ? table(
            "Usage per day and model",
            ["Day", "Model", "Spend", "Jobs"],
            report.data.map((row) =>
              h(
                "tr",
                null,
                h("td", null, row.day),
                h("td", null, row.model),
                h("td", { class: "num" }, usd(row.estimated_usd)),
                h("td", { class: "num" }, String(row.jobs)),
              ),
            ),
          )
        : h("p", { class: "help" }, "No usage in this period."),
    );
  }

  function svg(days, models, colour, value, label) {
    const byDay = new Map(days.map((d) => [d, []]));
    for (const row of report.data) if (byDay.has(row.day)) byDay.get(row.day).push(row);
    const highest = Math.max(0, ...[...byDay.values()].map((rows) => rows.reduce((sum, r) => sum + value(r), 0)));
    // Whole jobs on every gridline of the jobs chart.
    const top = metric.value === "jobs" ? Math.max(4, Math.ceil(highest / 4) * 4) : niceCeiling(highest);
    const plotW = W - M.left - M.right;
    const plotH = H - M.top - M.bottom;
    const step = plotW / days.length;
    const barW = Math.max(1, Math.min(48, step * 0.7));
    const y = (v) => M.top + plotH - (top ? (v / top) * plotH : 0);
    const graph = s(
      "svg",
      {
        class: "chart",
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-labelledby": "usage-chart-title",
        preserveAspectRatio: "xMidYMid meet",
      },
      s(
        "title",
        { id: "usage-chart-title" },
        `${metric.value === "usd" ? "Spend" : "Jobs"} per day and model, ${report.from} to ${report.to}`,
      ),
    );
    for (let i = 0; i <= 4; i += 1) {
      const v = (top / 4) * i;
      graph.append(
        s("line", { class: "grid", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }),
        s("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end" }, label(metric.value === "jobs" ? Math.round(v) : v)),
      );
    }
    const every = Math.ceil(days.length / 12);
    days.forEach((d, i) => {
      const x = M.left + i * step + (step - barW) / 2;
      let base = 0;
      for (const model of models) {
        const row = byDay.get(d).find((r) => r.model === model);
        if (!row || !value(row)) continue;
        const height = y(base) - y(base + value(row));
        graph.append(
          s(
            "rect",
            { class: "bar", x, y: y(base + value(row)), width: barW, height, fill: colour.get(model), "data-day": d, "data-model": model },
            s("title", null, `${d} · ${model}: ${usd(row.estimated_usd)}, ${row.jobs} job${row.jobs === 1 ? "" : "s"}`),
          ),
        );
        base += value(row);
      }
      if (i % every === 0) {
        graph.append(s("text", { x: M.left + i * step + step / 2, y: H - M.bottom + 18, "text-anchor": "middle" }, d.slice(5)));
      }
    });
    graph.append(s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: y(0), y2: y(0) }));
    return graph;
  }

  function legend(models, colour) {
    return h(
      "ul",
      { class: "legend", "aria-label": "Models" },
      models.map((model) =>
        h(
          "li",
          null,
          s("svg", { width: "14", height: "14", "aria-hidden": "true" }, s("rect", { width: "14", height: "14", fill: colour.get(model) })),
          model,
        ),
      ),
    );
  }

  period.addEventListener("change", load);
  from.addEventListener("change", load);
  to.addEventListener("change", load);
  metric.addEventListener("change", () => report && draw());
  load();
  return () => {
    stopped = true;
  };
}

// The axis's top: 1, 2 or 5 times a power of ten, at or above the highest bar.
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= value) return factor * power;
  return 10 * power;
}
