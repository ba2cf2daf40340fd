// Strata's HTTP API as the page uses it: the Prometheus envelope unwrapped, PromQL
// instant and range queries, and value formatting.

/** An API call that failed: the status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET (or `init`) `path`; resolves to `data` of the envelope, rejects with ApiError. */
export async function api(path, init) {
  const resp = await fetch(path, init);
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not JSON: reported below with the status.
  }
  if (!resp.ok || !body || body.status !== "success") {
    const msg = body && body.error ? body.error : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, msg);
  }
  return body.data;
}

/** Whether `path` answers (a HEAD-free probe: optional endpoints answer 404 when absent). */
export async function optional(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** Instant query: the vector's samples as {metric, value:number}. */
export async function instant(expr) {
  const data = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (data.resultType !== "vector") return [];
  return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** Range query over [startS, endS] (Unix seconds): series as {metric, points:[[ms, v]]}. */
export async function range(expr, startS, endS, stepS) {
  const q = new URLSearchParams({
    query: expr,
    start: startS.toFixed(3),
    end: endS.toFixed(3),
    step: String(stepS),
  });
  const data = await api(`/api/v1/query_range?${q}`);
  if (data.resultType !== "matrix") return [];
  return data.result.map((s) => ({
    metric: s.metric,
    points: s.values
      .map(([t, v]) => [t * 1000, Number(v)])
      .filter(([, v]) => Number.isFinite(v)),
  }));
}

/** A series' name from its labels (identity labels first, job and __name__ left out). */
export function seriesName(metric, prefer) {
  const keys = prefer || Object.keys(metric).filter((k) => k !== "__name__" && k !== "job");
  const parts = keys.filter((k) => metric[k] !== undefined).map((k) => `${k}=${metric[k]}`);
  return parts.length ? parts.join(", ") : metric.__name__ || "value";
}

const SI = [
  [1e12, "T"],
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

function si(v, unit, digits = 3) {
  const a = Math.abs(v);
  for (const [f, p] of SI) {
    if (a >= f) return `${(v / f).toPrecision(digits)} ${p}${unit}`;
  }
  return `${Number(v.toPrecision(digits))} ${unit}`.trim();
}

/** Formats `v` in `unit`: s, ratio, bytes, B/s, Hz, W, C, /s, or a plain number. */
export function fmt(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  switch (unit) {
    case "s":
      if (Math.abs(v) < 1) return `${Number((v * 1000).toPrecision(3))} ms`;
      return `${Number(v.toPrecision(3))} s`;
    case "ms":
      return v < 1000 ? `${Number(v.toPrecision(4))} ms` : `${Number((v / 1000).toPrecision(3))} s`;
    case "ratio":
      return `${Number((v * 100).toPrecision(3))} %`;
    case "bytes": {
      const u = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < u.length - 1) {
        x /= 1024;
        i += 1;
      }
      return `${Number(x.toPrecision(3))} ${u[i]}`;
    }
    case "B/s":
      return si(v, "B/s");
    case "Hz":
      return si(v, "Hz");
    case "W":
      return `${Number(v.toPrecision(3))} W`;
    case "C":
      return `${Number(v.toPrecision(3))} °C`;
    case "/s":
      return `${si(v, "")}/s`;
    case "x":
      return `${Number(v.toPrecision(3))}×`;
    default:
      return si(v, "");
  }
}

/** Clock time of a Unix-ms instant (local, seconds). */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}
