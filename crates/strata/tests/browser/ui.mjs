// Drives Debian's chromium (through playwright-core) through Strata's web UI.
//   node ui.mjs BASE_URL SCREENSHOT_DIR [--scenario NAME [--token TOKEN]]
//               [--expect-finding NAME --finding-wait SECONDS]
// Asserts: every page loads without console errors; charts have data; the requests table
// has rows and the drill-down shows a timeline plus engine and GPU series; with --scenario,
// engines and GPUs are shown by name (node · GPU n · model), the drill-down names the GPUs of the
// request's own engine; the switch changes the simulator's scenario (checked through the API)
// and, with --expect-finding, that finding appears on the Overview within --finding-wait
// seconds as one card naming the engines it affects. Saves light and dark
// screenshots of every page. Prints one JSON line of what it measured; exits 1 on failure.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, shots, ...rest] = process.argv.slice(2);
if (!base || !shots) {
  console.error("usage: node ui.mjs BASE_URL SCREENSHOT_DIR [--scenario NAME] [--finding-wait SECONDS]");
  process.exit(2);
}
const flag = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const scenario = flag("--scenario");
const findingWait = Number(flag("--finding-wait") || 0);
const expectFinding = flag("--expect-finding");
const token = flag("--token");
let expected401 = false;
mkdirSync(shots, { recursive: true });

const failures = [];
const report = { pages: {}, screenshots: 0 };
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok;
};

const profile = mkdtempSync(join(tmpdir(), "strata-ui-chromium-"));
const started = Date.now();
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = ctx.pages()[0] || (await ctx.newPage());
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() !== "error") return;
  const path = new URL(m.location().url || base, base).pathname;
  consoleErrors.push({ path, text: m.text(), line: `${page.url()}: ${m.text()} (${m.location().url})` });
});
page.on("pageerror", (e) => consoleErrors.push({ line: `${page.url()}: uncaught ${e.message}` }));
// Set while the test itself loads or reloads a page: the browser then cancels the old page's
// polls (net::ERR_ABORTED), which is the navigation, not a failure of the UI.
let navigating = false;
page.on("requestfailed", (r) => {
  const why = r.failure()?.errorText || "";
  if (navigating && why === "net::ERR_ABORTED") return;
  consoleErrors.push({ line: `${r.url()}: request failed ${why}` });
});

/** Console errors the run expects: the page's probe of the optional scenario endpoint
 * (404 without a simulator, as the API contract says) and, with an admin token, the first
 * switch's 401 before the page asks for the token. Chromium logs both. */
function expectedError(e) {
  if (e.path !== "/api/v1/scenario") return false;
  if (!scenario) return e.text.includes("404");
  return expected401 && e.text.includes("401");
}

async function api(path, init) {
  const r = await fetch(new URL(path, base), init);
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Opens `#/hash` and waits until the page drew `name` (the router sets data-page). */
async function open(hash, name) {
  const before = await page.evaluate(() => document.getElementById("main")?.dataset.updated || "");
  const url = new URL(`/#/${hash}`, base).toString();
  navigating = true;
  try {
    if (page.url() === url) await page.reload();
    else await page.goto(url);
  } finally {
    navigating = false;
  }
  await page.waitForFunction(
    ([n, b]) => {
      const m = document.getElementById("main");
      return m && m.dataset.page === n && m.dataset.updated && m.dataset.updated !== b && !m.hasAttribute("aria-busy");
    },
    [name, before],
    { timeout: 20000 },
  );
}

/** Every chart on the page: its caption and data-points. */
const charts = (sel = ".chart") =>
  page.$$eval(sel, (els) => els.map((e) => ({ title: e.querySelector("figcaption")?.textContent, points: Number(e.dataset.points) })));

async function screenshots(name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
    report.screenshots += 1;
  }
  await page.emulateMedia({ colorScheme: "light" });
}

// Charts that may be empty: once an alert fires, incident mode scrapes GPUs every 250 ms
// with the reduced field set, which leaves out PCIe (sources::scrape::profile).
const MAY_BE_EMPTY = ["PCIe rx + tx"];

try {
  // The scenario switch first: diagnoses take a minute or more to fire.
  if (scenario) {
    await open("overview", "overview");
    await page.waitForSelector("#scenario:not([hidden])", { timeout: 15000 });
    const before = await api("/api/v1/scenario");
    check(before.status === 200, `GET /api/v1/scenario answered ${before.status}`);
    check(before.body?.data?.current !== scenario, `the scenario is already ${scenario}`);
    await page.selectOption("#scenario-select", scenario);
    await page.click("#scenario button[type=submit]");
    const switched = (s) => document.getElementById("scenario-status").textContent.includes(`Scenario ${s} since`);
    await page.waitForFunction((s) => document.getElementById("scenario-status").textContent.includes(`Scenario ${s} since`) || !document.getElementById("token-wrap").hidden, scenario, {
      timeout: 10000,
    });
    if (!(await page.evaluate(switched, scenario))) {
      // The demo has an admin token: the page asked for it (after a 401, which Chromium logs).
      check(token, "the page asked for an admin token, and the test has none (--token)");
      expected401 = true;
      await page.fill("#admin-token", token || "");
      await page.click("#scenario button[type=submit]");
      await page.waitForFunction(switched, scenario, { timeout: 10000 });
    }
    report.token_asked = expected401;
    const after = await api("/api/v1/scenario");
    check(after.body?.data?.current === scenario, `after the switch the API says ${JSON.stringify(after.body?.data?.current)}, not ${scenario}`);
    await page.waitForFunction((s) => document.getElementById("scenario").dataset.current === s, scenario, { timeout: 10000 });
    report.scenario = after.body?.data?.current;
  }

  for (const [hash, name] of [
    ["overview", "overview"],
    ["engines", "engines"],
    ["gpus", "gpus"],
    ["tenants", "tenants"],
  ]) {
    await open(hash, name);
    const c = await charts();
    report.pages[name] = c;
    check(c.length > 0, `${name}: no charts`);
    for (const x of c) check(x.points > 0 || MAY_BE_EMPTY.includes(x.title), `${name}: chart "${x.title}" has no data`);
    check((await page.$$("h1")).length === 1, `${name}: not exactly one h1`);
    await screenshots(name);
  }
  // Tables on the engines and GPU pages have one row per instance / GPU, named as people
  // name them: engines by name (not host:port), GPUs as node · GPU index · model.
  const ADDRESS = /^\[?[0-9a-f.:]+\]?:\d+$/i;
  await open("engines", "engines");
  const engineNames = await page.$$eval("main table tbody tr th", (ths) => ths.map((t) => t.textContent.trim()));
  report.engine_names = engineNames;
  check(engineNames.length > 0, "engines: the instance table is empty");
  check(engineNames.every((n) => n && !ADDRESS.test(n)), `engines: rows named by address, not by name: ${engineNames.join(", ")}`);
  await open("gpus", "gpus");
  const gpuNames = await page.$$eval("main table tbody tr th", (ths) => ths.map((t) => t.textContent.trim()));
  report.gpu_names = gpuNames;
  check(gpuNames.length > 0 && gpuNames.every((n) => / · GPU \d+ · /.test(n)), `gpus: rows not named node · GPU n · model: ${gpuNames.join(", ")}`);

  await open("requests", "requests");
  const rows = await page.$$("#recent table tbody tr");
  report.requests = rows.length;
  check(rows.length > 0, "requests: the recent table has no rows");
  await screenshots("requests");

  // Drill-down from the slowest request, by keyboard: focus its link and press Enter.
  const link = page.locator("main table.requests a").first();
  const id = await link.textContent();
  await link.focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    () => document.getElementById("main").dataset.page === "request" && !document.getElementById("main").hasAttribute("aria-busy"),
    null,
    { timeout: 20000 },
  );
  const tl = await charts(".timeline");
  const eng = await charts(".engine-series");
  const gpu = await charts(".gpu-series");
  report.drilldown = { id, timeline: tl, engine: eng, gpu };
  check(tl.length === 1 && tl[0].points > 0, `drill-down ${id}: the timeline has no tokens`);
  // Every engine exposes running and waiting; KV cache and token counters not all (TGI).
  check(eng.filter((c) => c.points > 0).length >= 2, `drill-down ${id}: engine series without data ${JSON.stringify(eng)}`);
  check(gpu.length > 0 && gpu.every((c) => c.points > 0), `drill-down ${id}: GPU series without data ${JSON.stringify(gpu)}`);
  check((await page.textContent("main")).includes("time-window join"), "drill-down: does not say it is a time-window join");
  // Exactly the request's engine's GPUs, from the discovered engine↔GPU links.
  const gpuNote = await page.textContent("main");
  check(/runs on \(discovered\): [^.]* · GPU \d+ · /.test(gpuNote), "drill-down: the GPUs are not the request's engine's discovered GPUs");

  await screenshots("request");

  if (expectFinding) {
    // Polled through the page itself: the Overview as a user would reload it.
    const deadline = started + findingWait * 1000;
    let names = [];
    for (;;) {
      await open("overview", "overview");
      names = await page.$$eval("[data-finding]", (els) => els.map((e) => e.dataset.finding));
      if (names.includes(expectFinding) || Date.now() > deadline) break;
      await page.waitForTimeout(2000);
    }
    report.findings = names;
    report.finding_after_s = (Date.now() - started) / 1000;
    check(names.includes(expectFinding), `finding ${expectFinding} did not appear within ${findingWait} s (open: ${names.join(", ") || "none"})`);
    // One card per cause, naming the engines it affects (not one card per instance).
    const cards = names.filter((n) => n === expectFinding).length;
    check(cards === 1, `${cards} ${expectFinding} cards: one card per cause expected`);
    const affected = await page.$eval(`[data-finding="${expectFinding}"] .meta`, (m) => m.textContent);
    report.finding_affected = affected;
    check(!/\b\d+\.\d+\.\d+\.\d+:\d+\b/.test(affected.split("·")[0]), `the ${expectFinding} card names engines by address: ${affected}`);
    await screenshots("overview-finding");
  }
  const unexpected = consoleErrors.filter((e) => !expectedError(e)).map((e) => e.line);
  check(unexpected.length === 0, `console errors:\n  ${unexpected.join("\n  ")}`);
} catch (e) {
  failures.push(`browser run failed: ${e.stack || e}`);
} finally {
  report.seconds = (Date.now() - started) / 1000;
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
if (failures.length) {
  console.error(`UI test failed:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
