// The dashboard's page script (docs/dashboard.md): charts (Plotly, served by the warehouse),
// drill-down clicks, the time picker, auto-refresh, live updates over /ws, messages for API
// errors, login/logout and the edit controls. No build step: a plain ES module.
import { drawCharts, mergePoints } from "./charts.js";

const state = { data: readData(document), socket: null, retry: 0, refreshing: null };
window.__dashboard = state; // for the browser tests and the bench: what the page shows

function readData(doc) {
  const node = doc.getElementById("page-data");
  try { return JSON.parse(node ? node.textContent : "{}"); } catch { return {}; }
}

export function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  if (!box) return;
  box.textContent = text;
  box.className = `message message-${kind}`;
  box.hidden = !text;
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

// fetch() for the API: cookie session + CSRF header; a 401/403 becomes a message.
export async function api(url, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const csrf = cookie("wh_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(url, { credentials: "same-origin", ...options, headers });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    const what = response.status === 403 ? "Not allowed" :
      response.status === 401 ? "Please log in again" : `Error ${response.status}`;
    showMessage(`${what}: ${detail}`);
    throw new Error(detail);
  }
  return response;
}

// -- refreshing what the page shows ------------------------------------------------------
// The server renders the page; a refresh fetches the same URL, swaps the live regions and
// the page data, and redraws the charts (zoom is kept: Plotly.react with uirevision).
async function refresh() {
  if (state.refreshing) return state.refreshing;
  state.refreshing = (async () => {
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (response.status === 401 || response.redirected) { location.reload(); return; }
      if (!response.ok) { showMessage(`Refresh failed: ${response.status}`); return; }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live]")) {
        const fresh = doc.querySelector(`[data-live="${region.dataset.live}"]`);
        if (fresh && fresh.innerHTML !== region.innerHTML) region.innerHTML = fresh.innerHTML;
      }
      state.data = readData(doc);
      pinExports(state.data.window);
      drawCharts(state.data, document.body.dataset.page);
      state.refreshedAt = Date.now();
      document.dispatchEvent(new CustomEvent("dashboard:refreshed"));
    } catch (error) {
      showMessage(`Refresh failed: ${error.message}`);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

// Export links pin the window shown (the server renders them with it): after a refresh
// the window moved, so the links must name the new one, or a file would miss the rows
// that just appeared on the screen.
function pinExports(window) {
  if (!window || !window.start || !window.end) return;
  for (const link of document.querySelectorAll("a[data-export]")) {
    const url = new URL(link.getAttribute("href"), location.href);
    url.searchParams.set("range", "custom");
    url.searchParams.set("from", window.start);
    url.searchParams.set("to", window.end);
    link.setAttribute("href", url.pathname + url.search);
  }
}

// The metrics page asks only for what is new: its own query (same series names, same
// bucket width) from the last timestamp it shows, merged into the chart.
async function newPoints(change) {
  const rows = (state.data.tables || {}).points || [];
  const last = rows.reduce((m, r) => (r.ts > m ? r.ts : m), "");
  const from = last || change.start;
  if (!from) return refresh();
  const params = new URLSearchParams(location.search);
  params.set("from", from);
  params.set("to", "now+1d"); // points written with a clock slightly ahead still show
  params.set("every", state.data.bucket || "raw");
  params.set("format", "json");
  params.set("table", "points");
  try {
    const response = await api(`${location.pathname}?${params}`);
    mergePoints(state.data, await response.json());
    // The chart now runs to this moment: so do its exports.
    if (state.data.window) {
      state.data.window = { ...state.data.window, end: new Date().toISOString() };
      pinExports(state.data.window);
    }
    drawCharts(state.data, "metrics");
    const count = document.querySelector('[data-live="count"]');
    if (count) count.textContent = `${state.data.tables.points.length} points shown.`;
    state.refreshedAt = Date.now();
    document.dispatchEvent(new CustomEvent("dashboard:refreshed"));
  } catch { /* shown */ }
}

// -- live updates: one WebSocket per page, reconnecting with backoff ---------------------
function setLive(text, on) {
  const badge = document.getElementById("live");
  if (badge) { badge.textContent = text; badge.classList.toggle("on", on); }
}

function connect() {
  const wants = state.data.subscribe;
  if (!wants || !Object.keys(wants).length || !document.getElementById("live")) {
    setLive("", false);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  let refused = false;
  let busy = 0; // seconds the server asked us to wait (too many live connections)
  socket.onopen = () => socket.send(JSON.stringify({ type: "subscribe", ...wants }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      const resumed = state.retry > 0;
      state.retry = 0;
      setLive("● live", true);
      if (state.busy) { state.busy = false; showMessage(""); }
      if (resumed) refresh(); // changes made while we were away
    } else if (message.type === "change" || message.type === "resync") {
      state.lastChange = message;
      const pointsOnly = message.type === "change" && !message.truncated &&
        message.kinds.length === 1 && message.kinds[0] === "points";
      if (pointsOnly && document.body.dataset.page === "metrics") newPoints(message);
      else refresh();
    } else if (message.type === "error" && message.status === 429) {
      busy = Number(message.retry_after) || 10;
    } else if (message.type === "error") {
      showMessage(`Live updates: ${message.detail}`);
      refused = message.status === 401 || message.status === 403;
    }
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    setLive("○ reconnecting", false);
    if (refused) { setLive("○ offline", false); return; }
    let delay = Math.min(30000, 500 * 2 ** state.retry++);
    if (busy || event.code === 1013) {
      // The server is full: wait at least what it asked, doubling, with jitter so that
      // refused pages do not all come back at the same moment.
      state.busy = true;
      setLive("○ busy", false);
      showMessage("Too many live connections, retrying…", "warning");
      delay = Math.max(delay, (busy || 10) * 1000) * (1 + Math.random() / 2);
    } else if (state.busy) {
      state.busy = false;
    }
    setTimeout(connect, Math.min(delay, 120000));
  };
}

// -- controls ----------------------------------------------------------------------------
function wireControls() {
  const range = document.getElementById("range");
  const picker = range && range.form;
  if (picker) {
    const toggleCustom = () => picker.classList.toggle("is-custom", range.value === "custom");
    toggleCustom();
    range.addEventListener("change", () => {
      toggleCustom();
      if (range.value !== "custom") {
        picker.querySelector("#from").value = "";
        picker.querySelector("#to").value = "";
        picker.requestSubmit();
      }
    });
    // An empty field would put "from=&to=" into the shareable URL: leave them out.
    picker.addEventListener("formdata", (event) => {
      for (const key of ["from", "to", "refresh"]) {
        if (!event.formData.get(key)) event.formData.delete(key);
      }
    });
  }
  const every = Number(new URLSearchParams(location.search).get("refresh"));
  if (every >= 5) setInterval(refresh, every * 1000);

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
      location.href = "/login";
    });
  }
  for (const button of document.querySelectorAll("[data-post]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api(button.dataset.post, { method: "POST" });
        showMessage("Done.", "info");
      } catch { /* shown */ } finally { button.disabled = false; }
    });
  }
  const addPoint = document.getElementById("add-point");
  if (addPoint) addPoint.addEventListener("submit", writePoint);
  const login = document.getElementById("login-form");
  if (login) login.addEventListener("submit", logIn);
}

async function writePoint(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const labels = {};
  for (const pair of String(form.get("labels") || "").split(",")) {
    const [key, ...rest] = pair.split("=");
    if (key.trim()) labels[key.trim()] = rest.join("=").trim();
  }
  const point = { metric: form.get("metric"), value: Number(form.get("value")),
                  ts: new Date().toISOString(), labels };
  try {
    await api("/api/v1/points", { method: "POST", body: JSON.stringify([point]),
                                   headers: { "Content-Type": "application/json" } });
    showMessage("Point written.", "info");
  } catch { /* shown */ }
}

async function logIn(event) {
  event.preventDefault();
  const form = event.target;
  const body = new URLSearchParams(new FormData(form));
  const response = await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
  if (response.ok) {
    location.href = form.dataset.next || "/";
    return;
  }
  let detail = response.statusText;
  try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
  showMessage(`Log in failed: ${detail}`);
}

function start() {
  wireControls();
  const page = document.body.dataset.page;
  const draw = () => drawCharts(state.data, page);
  if (window.Plotly) draw(); else window.addEventListener("load", draw);
  connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
