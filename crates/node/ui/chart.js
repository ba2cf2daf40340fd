// Charts drawn by the page as SVG: time series (one line per series, an optional shaded
// window) and a request timeline. Each chart carries its point count in data-points and a
// text alternative (aria-label and a visible summary line).

import { fmt, clock } from "./api.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 200;
const PAD = { l: 64, r: 12, t: 10, b: 24 };

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

/**
 * A time-series chart.
 * opts: {title, unit, series:[{name, points:[[ms, v]]}], from, to (ms),
 *        window: [ms, ms] shaded (optional), windowLabel, empty (text when no data),
 *        threshold: a value drawn as a dashed line with its label (optional)}
 */
export function timeChart(opts) {
  const { title, unit, series, from, to } = opts;
  const n = series.reduce((a, s) => a + s.points.length, 0);
  const fig = el("figure", { class: "chart", "data-points": n, "data-series": series.length });
  const id = `c${Math.random().toString(36).slice(2, 9)}`;
  fig.append(el("figcaption", { id: `${id}-t` }, title));
  const latest = series
    .filter((s) => s.points.length)
    .map((s) => `${s.name}: ${fmt(s.points[s.points.length - 1][1], unit)}`);
  const summary = n
    ? `${series.length} series, ${n} points from ${clock(from)} to ${clock(to)}; latest ${latest.slice(0, 4).join("; ")}${latest.length > 4 ? "; …" : ""}`
    : opts.empty || "No data in this range.";
  const g = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-labelledby": `${id}-t ${id}-s`,
    preserveAspectRatio: "xMidYMid meet",
  });
  const x0 = PAD.l;
  const x1 = W - PAD.r;
  const y0 = H - PAD.b;
  const y1 = PAD.t;
  const vals = series.flatMap((s) => s.points.map((p) => p[1]));
  const th = Number.isFinite(opts.threshold) ? [opts.threshold] : [];
  let lo = Math.min(0, ...vals, ...th);
  let hi = Math.max(...vals, ...th, unit === "ratio" ? 1 : 0);
  if (!Number.isFinite(hi) || hi === lo) hi = lo + 1;
  const sx = (t) => x0 + ((t - from) / (to - from || 1)) * (x1 - x0);
  const sy = (v) => y0 - ((v - lo) / (hi - lo)) * (y0 - y1);
  if (opts.window) {
    const [a, b] = opts.window;
    const xa = Math.max(x0, sx(a));
    const xb = Math.min(x1, Math.max(sx(b), xa + 2));
    g.append(svg("rect", { class: "window", x: xa, y: y1, width: xb - xa, height: y0 - y1 }));
    if (opts.windowLabel) {
      const right = xa > (x0 + x1) / 2;
      const attrs = right ? { x: xa - 3, "text-anchor": "end" } : { x: xb + 3 };
      g.append(svg("text", { class: "wlabel", y: y1 + 12, ...attrs }, opts.windowLabel));
    }
  }
  for (const v of niceTicks(lo, hi, 4)) {
    const y = sy(v);
    g.append(svg("line", { class: "gl", x1: x0, x2: x1, y1: y, y2: y }));
    g.append(svg("text", { class: "tick", x: x0 - 6, y: y + 4, "text-anchor": "end" }, fmt(v, unit)));
  }
  const span = (to - from) / 1000;
  const tstep = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => span / s <= 6) || 3600;
  for (let t = Math.ceil(from / 1000 / tstep) * tstep * 1000; t <= to; t += tstep * 1000) {
    g.append(svg("text", { class: "tick", x: sx(t), y: H - 6, "text-anchor": "middle" }, clock(t).slice(0, 8)));
  }
  g.append(svg("line", { class: "axis", x1: x0, x2: x1, y1: y0, y2: y0 }));
  for (const v of th) {
    g.append(svg("line", { class: "threshold", x1: x0, x2: x1, y1: sy(v), y2: sy(v) }));
    g.append(svg("text", { class: "wlabel", x: x1 - 3, y: sy(v) - 4, "text-anchor": "end" }, `threshold ${fmt(v, unit)}`));
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points
      .map(([t, v], k) => `${k ? "L" : "M"}${sx(t).toFixed(1)},${sy(v).toFixed(1)}`)
      .join("");
    g.append(svg("path", { class: `line s${i % 8}`, d }));
    if (s.points.length === 1) {
      const [t, v] = s.points[0];
      g.append(svg("circle", { class: `dot s${i % 8}`, cx: sx(t), cy: sy(v), r: 2.5 }));
    }
  });
  fig.append(g);
  fig.append(el("p", { class: "summary", id: `${id}-s` }, summary));
  if (series.length > 1 || (series.length === 1 && series[0].name)) {
    const legend = el("ul", { class: "legend" });
    series.forEach((s, i) => legend.append(el("li", { class: `s${i % 8}` }, s.name)));
    fig.append(legend);
  }
  return fig;
}

/**
 * One request's timeline: received, first token, every recorded token, last token, end.
 * r: a /api/v1/requests entry.
 */
export function timeline(r) {
  const offs = r.token_offsets_ms || [];
  const end = r.e2e_ms ?? (offs.length ? offs[offs.length - 1] : 0);
  const span = Math.max(end, 1);
  const fig = el("figure", { class: "chart timeline", "data-points": offs.length });
  const id = `t${Math.random().toString(36).slice(2, 9)}`;
  fig.append(el("figcaption", { id: `${id}-t` }, "Request timeline (ms since the gateway received it)"));
  const last = offs.length ? offs[offs.length - 1] : null;
  const capped = r.output_tokens > offs.length ? ` (first ${offs.length} of ${r.output_tokens} tokens timed)` : "";
  const summary =
    `Received at ${clock(r.received_ms)}; first token after ${fmt(r.ttft_ms, "ms")}; ` +
    `${offs.length} token arrivals${capped}; last token at ${fmt(last, "ms")}; ended after ${fmt(r.e2e_ms, "ms")}.`;
  const h = 110;
  const tw = 2 * W; // drawn full width: twice as wide keeps its text the size of the charts'
  const g = svg("svg", { viewBox: `0 0 ${tw} ${h}`, role: "img", "aria-labelledby": `${id}-t ${id}-s` });
  const x0 = PAD.l;
  const x1 = tw - PAD.r;
  const sx = (ms) => x0 + (ms / span) * (x1 - x0);
  const y = 60;
  g.append(svg("line", { class: "axis", x1: x0, x2: x1, y1: y, y2: y }));
  if (r.ttft_ms != null) {
    g.append(svg("rect", { class: "wait", x: x0, y: y - 8, width: Math.max(1, sx(r.ttft_ms) - x0), height: 16 }));
  }
  for (const o of offs) g.append(svg("line", { class: "token", x1: sx(o), x2: sx(o), y1: y - 14, y2: y + 14 }));
  const marks = [
    ["received", 0],
    ["first token", r.ttft_ms],
    ["last token", last],
    ["end", r.e2e_ms],
  ].filter(([, v]) => v !== null && v !== undefined);
  marks.forEach(([name, v], i) => {
    const x = sx(v);
    const above = i % 2 === 0;
    g.append(svg("line", { class: "mark", x1: x, x2: x, y1: above ? 22 : y, y2: above ? y : 98 }));
    const anchor = x > x1 - 60 ? "end" : x < x0 + 40 ? "start" : "middle";
    g.append(svg("text", { class: "mlabel", x, y: above ? 16 : 108, "text-anchor": anchor }, `${name} ${fmt(v, "ms")}`));
  });
  fig.append(g);
  fig.append(el("p", { class: "summary", id: `${id}-s` }, summary));
  return fig;
}

export { el };
