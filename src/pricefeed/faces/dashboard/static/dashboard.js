// pricefeed's dashboard. Feeds come from /feeds (polled for status and new feeds), prices from Hermes' /ws, health
// from /status (polled). A price update only marks its feed dirty; one animation frame then updates the dirty rows'
// cells, so the page keeps up with many feeds. With API keys, the page's ?token= goes on every request.
"use strict";
(() => {
  const SPARK_WINDOW_S = 300;         // the sparkline shows the last five minutes
  const BACKFILL_STEP_S = 5;          // earlier points from the service's history, one per 5 s
  const STATUS_EVERY_MS = 2000;
  const FEEDS_EVERY_MS = 10_000;      // statuses and new feeds (the whole list: not too often with many feeds)
  const SPARK_W = 120, SPARK_H = 26;
  const SVG = "http://www.w3.org/2000/svg";

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || params.get("ACCESS_TOKEN");
  const withToken = (path) => token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;

  const $ = (id) => document.getElementById(id);
  const feedRows = $("feed-rows");
  const search = $("search");
  const typeSelect = $("asset-type");

  const feeds = new Map();            // id -> {id, symbol, typeKey, haystack, row, cells, points, price, shown...}
  const dirty = new Set();
  let frame = 0;
  let clock = 0;                      // newest publish time seen (s): the sparkline's right edge, on the server's clock
  let socket = null;

  // ---- formatting

  const typeKey = (assetType) => assetType.trim().toLowerCase().replace(/ /g, "_");
  const decimalsFor = (value, expo) => {
    const magnitude = Math.abs(value);
    const wanted = magnitude >= 1000 ? 2 : magnitude >= 1 ? 4 : magnitude >= 0.01 ? 6 : 8;
    return Math.max(0, Math.min(wanted, -expo));
  };
  const formatPrice = (value, expo) => value.toLocaleString("en-US",
    { minimumFractionDigits: decimalsFor(value, expo), maximumFractionDigits: decimalsFor(value, expo) });
  const seconds = (s) => s === null || s === undefined ? "–" : s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
  const milliseconds = (ms) => typeof ms !== "number" ? "–"
    : Math.abs(ms) >= 10_000 ? seconds(ms / 1000) : `${Math.round(ms) || 0} ms`;  // || 0: no "-0 ms"
  const duration = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? `up ${d}d ${h}h` : h ? `up ${h}h ${m}m` : `up ${m}m ${Math.floor(s % 60)}s`;
  };
  const rate = (x) => x === undefined ? "–" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  async function getJson(path) {
    const response = await fetch(withToken(path), { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    return response.json();
  }

  function showProblem(text) {
    $("live-text").textContent = text;
  }

  // ---- feeds table

  // Rows are kept in symbol order; new rows at the end go in one fragment (the first load appends them all).
  const order = [];
  let tail = document.createDocumentFragment();
  const typeKeys = new Set();

  function addFeed(info) {
    const row = el("div", "row");
    row.dataset.id = info.id;
    row.dataset.symbol = info.symbol;
    const name = el("div", "feed");
    name.append(el("span", "symbol", info.display_symbol), el("span", "description", info.attributes.description || ""));
    const type = el("div", "type", info.asset_type);
    const price = el("div", "num price", "–");
    const change = el("div", "num change", "–");
    const sparkCell = el("div", "spark");
    const spark = document.createElementNS(SVG, "svg");
    spark.setAttribute("viewBox", `0 0 ${SPARK_W} ${SPARK_H}`);
    spark.setAttribute("width", SPARK_W);
    spark.setAttribute("height", SPARK_H);
    const line = document.createElementNS(SVG, "polyline");
    spark.append(line);
    sparkCell.append(spark);
    const status = el("div", "status");
    const badge = el("span", "badge");
    status.append(badge);
    if (info.simulated) status.append(el("span", "sim", "sim"));
    row.append(name, type, price, change, sparkCell, status, el("div", "source", info.source));
    const feed = {
      id: info.id, symbol: info.symbol, typeKey: typeKey(info.asset_type), row, expo: info.expo,
      haystack: `${info.symbol} ${info.display_symbol} ${info.attributes.description || ""}`.toLowerCase(),
      cells: { price, change, line, badge }, points: [], price: null, shownPrice: null, status: null, tick: null,
    };
    feeds.set(info.id, feed);
    insertSorted(feed);
    visibility.observe(row);
    addTypeOption(info.asset_type);
    if (info.price !== null) notePrice(feed, Math.floor(Date.parse(info.publish_time) / 1000), info.price, info.expo);
    setStatus(feed, info.status);
    applyFilter(feed);
    return feed;
  }

  function insertSorted(feed) {
    let low = 0, high = order.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (order[middle].symbol <= feed.symbol) low = middle + 1; else high = middle;
    }
    const next = order[low];
    order.splice(low, 0, feed);
    if (next && next.row.parentNode === feedRows) feedRows.insertBefore(feed.row, next.row);
    else if (next) next.row.before(feed.row);  // next is in the tail fragment, not yet in the table
    else tail.append(feed.row);
  }

  function appendTail() {
    feedRows.append(tail);
    tail = document.createDocumentFragment();
  }

  function removeFeed(feed) {
    feed.row.remove();
    visibility.unobserve(feed.row);
    order.splice(order.indexOf(feed), 1);
    feeds.delete(feed.id);
  }

  function addTypeOption(assetType) {
    const key = typeKey(assetType);
    if (typeKeys.has(key)) return;
    typeKeys.add(key);
    const option = el("option", "", assetType);
    option.value = key;
    const after = [...typeSelect.options].slice(1).find((o) => o.value > key);
    typeSelect.insertBefore(option, after || null);
  }

  function setStatus(feed, status) {
    if (feed.status === status) return;
    feed.status = status;
    feed.row.dataset.status = status;
    feed.cells.badge.textContent = status;
    feed.cells.badge.className = `badge ${status}`;
  }

  // ---- search and filter: rows are hidden, never rebuilt

  function matches(feed) {
    const needle = search.value.trim().toLowerCase();
    return (!typeSelect.value || feed.typeKey === typeSelect.value) && (!needle || feed.haystack.includes(needle));
  }

  function applyFilter(feed) {
    const hidden = !matches(feed);
    if (feed.row.hidden !== hidden) {
      feed.row.hidden = hidden;
      if (!hidden) markDirty(feed.id);  // hidden rows are not drawn: catch up now
    }
  }

  function filterAll() {
    for (const feed of feeds.values()) applyFilter(feed);
    const shown = [...feeds.values()].filter((f) => !f.row.hidden).length;
    $("shown").textContent = shown === feeds.size ? `${feeds.size} feeds` : `${shown} of ${feeds.size} feeds`;
  }

  search.addEventListener("input", filterAll);
  typeSelect.addEventListener("change", filterAll);

  // ---- prices and sparklines

  function notePrice(feed, t, value, expo, live = true) {
    const points = feed.points;
    const last = points[points.length - 1];
    if (!last || t > last[0]) points.push([t, value]);
    else if (t === last[0]) { if (live) last[1] = value; }                // one point per second: the newest
    else {                                                                  // a backfilled earlier point
      let i = points.length - 1;
      while (i > 0 && points[i - 1][0] >= t) i -= 1;
      if (points[i][0] !== t) points.splice(i, 0, [t, value]);
    }
    if (live && (!last || t >= last[0])) { feed.price = value; feed.expo = expo; }
    if (t > clock) clock = t;
    markDirty(feed.id);
  }

  // Only rows on screen (or near it) are drawn; a row that comes into view is drawn then.
  const inView = new Set();
  const visibility = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const id = entry.target.dataset.id;
      if (entry.isIntersecting) { inView.add(id); markDirty(id); } else inView.delete(id);
    }
  }, { rootMargin: "100% 0px" });

  function markDirty(id) {
    dirty.add(id);
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    const from = clock - SPARK_WINDOW_S;
    for (const id of dirty) {
      const feed = feeds.get(id);
      if (!feed || !inView.has(id)) continue;
      const points = feed.points;
      while (points.length > 2 && points[1][0] < from) points.shift();    // keep one point left of the window
      if (feed.price !== null && feed.price !== feed.shownPrice) {
        feed.cells.price.textContent = formatPrice(feed.price, feed.expo);
        feed.row.dataset.price = String(feed.price);
        if (feed.shownPrice !== null) flash(feed, feed.price > feed.shownPrice ? "up" : "down");
        feed.shownPrice = feed.price;
      }
      drawChange(feed, from);
      drawSpark(feed, from);
    }
    dirty.clear();
  }

  const TICK = { up: [{ color: "#2fbf71" }, { color: "#d8dee6" }], down: [{ color: "#f0524f" }, { color: "#d8dee6" }] };

  function flash(feed, direction) {  // the Web Animations API: no style attribute, no forced layout
    if (feed.tick) feed.tick.cancel();
    feed.tick = feed.cells.price.animate(TICK[direction], { duration: 800, easing: "ease-out" });
  }

  function drawChange(feed, from) {
    const first = feed.points.find((p) => p[0] >= from) || feed.points[0];
    if (!first || feed.price === null || first[1] === 0) return;
    const exact = (feed.price - first[1]) / first[1] * 100;
    const pct = Math.abs(exact) < 0.005 ? 0 : exact;  // no "-0.00%"
    const cell = feed.cells.change;
    cell.textContent = `${pct > 0 ? "+" : ""}${pct.toFixed(2)}%`;
    cell.className = `num change ${pct > 0 ? "up" : pct < 0 ? "down" : ""}`;
  }

  function drawSpark(feed, windowStart) {
    const points = feed.points;
    if (points.length < 2) return;
    const from = Math.max(windowStart, points[0][0]);  // a young history fills the width too
    const span = Math.max(1, clock - from);
    let low = Infinity, high = -Infinity;
    for (const [, v] of points) { if (v < low) low = v; if (v > high) high = v; }
    const range = high - low || 1;
    const text = points.map(([t, v]) => {
      const x = Math.max(0, (t - from) / span * SPARK_W);
      const y = SPARK_H - 2 - (v - low) / range * (SPARK_H - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(" ");
    feed.cells.line.setAttribute("points", text);
    const rising = points[points.length - 1][1] >= points[0][1];
    feed.cells.line.setAttribute("class", rising ? "up" : "down");
  }

  // ---- the price stream: Hermes' /ws

  function subscribe(ids) {
    if (!socket || socket.readyState !== WebSocket.OPEN || !ids.length) return;
    for (let i = 0; i < ids.length; i += 500) {
      socket.send(JSON.stringify({ type: "subscribe", ids: ids.slice(i, i + 500), ignore_invalid_price_ids: true }));
    }
  }

  function setLive(state, text) {
    $("live").dataset.state = state;
    $("live-text").textContent = text;
  }

  function connect(attempt = 0) {
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    socket = new WebSocket(withToken(url));
    setLive("connecting", attempt ? `reconnecting (attempt ${attempt})` : "connecting");
    socket.onopen = () => {
      attempt = 0;
      setLive("live", "live");
      subscribe([...feeds.keys()]);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "price_update") {
        const update = message.price_feed;
        const feed = feeds.get(update.id);
        if (feed) {
          const { price, expo, publish_time: t } = update.price;
          notePrice(feed, t, Number(`${price}e${expo}`), expo);
        }
      } else if (message.type === "response" && message.status === "error") {
        setLive("error", `stream: ${message.error}`);
      }
    };
    socket.onclose = (event) => {
      socket = null;
      const delay = Math.min(10_000, 500 * 2 ** attempt);
      setLive("down", `disconnected (${event.code}${event.reason ? ` ${event.reason}` : ""}); retry in ${(delay / 1000).toFixed(1)} s`);
      setTimeout(() => connect(attempt + 1), delay);
    };
  }

  // ---- earlier prices for the sparklines: the service's price history, sampled

  async function backfill() {
    const body = await getJson(`/dashboard/sparklines?seconds=${SPARK_WINDOW_S}&step=${BACKFILL_STEP_S}`);
    for (const [id, points] of Object.entries(body.feeds)) {
      const feed = feeds.get(id);
      if (feed) for (const [t, value] of points) notePrice(feed, t, value, feed.expo, false);
    }
  }

  // ---- /feeds: statuses, and feeds that appear or go

  async function refreshFeeds() {
    const list = await getJson("/feeds");
    const added = [];
    const seen = new Set();
    for (const info of list) {
      seen.add(info.id);
      const feed = feeds.get(info.id);
      if (feed) setStatus(feed, info.status);
      else added.push(addFeed(info).id);
    }
    appendTail();
    for (const [id, feed] of feeds) if (!seen.has(id)) removeFeed(feed);
    filterAll();
    $("feed-count").textContent = String(feeds.size);
    return added;
  }

  // ---- /status: sources, connections, rates, divergences

  function syncRows(tbody, items, keyOf, build, update) {
    const wanted = new Set(items.map(keyOf));
    for (const row of [...tbody.rows]) if (!wanted.has(row.dataset.key)) row.remove();
    items.forEach((item, index) => {
      const key = keyOf(item);
      let row = [...tbody.rows].find((r) => r.dataset.key === key);
      if (!row) { row = build(item); row.dataset.key = key; }
      if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
      update(row, item);
    });
  }

  const SOURCE_HEALTH = { connected: "green", starting: "yellow" };  // anything else: not delivering, red

  function renderSources(sources) {
    syncRows($("sources").tBodies[0], sources, (s) => s.name, (s) => {
      const row = el("tr");
      row.id = `source-${s.name}`;
      const light = el("td");
      light.append(el("span", "light"));
      const name = el("td", "name", s.name);
      if (s.simulated) name.append(el("span", "sim", "sim"));
      row.append(light, name, el("td", "state"), el("td", "num reconnects"), el("td", "num age"),
        el("td", "num latency"), el("td", "num rate"), el("td", "error"));
      return row;
    }, (row, s) => {
      const light = row.querySelector(".light");
      light.dataset.health = SOURCE_HEALTH[s.state] || "red";
      light.title = s.state;
      const texts = [s.state, String(s.reconnects), seconds(s.last_message_age_s),
        milliseconds(s.upstream_latency_ms), rate(s.updates_per_second),
        s.last_error || ""];
      texts.forEach((text, i) => { if (row.cells[i + 2].textContent !== text) row.cells[i + 2].textContent = text; });
      row.cells[2].className = `state ${light.dataset.health}`;
    });
  }

  function renderFaces(byFace) {
    const items = Object.entries(byFace || {}).sort(([a], [b]) => a.localeCompare(b));
    syncRows($("faces").tBodies[0], items, ([face]) => face, ([face]) => {
      const row = el("tr");
      row.id = `face-${face}`;
      row.append(el("td", "", face), el("td", "num"));
      return row;
    }, (row, [, count]) => {
      row.cells[1].textContent = String(count);
      row.classList.toggle("idle", count === 0);
    });
  }

  function renderDivergences(divergences) {
    const box = $("divergences");
    box.replaceChildren();
    if (!Array.isArray(divergences) || !divergences.length) {
      box.append(el("p", "none", "none"));
      return;
    }
    const table = el("table");
    table.append(el("thead"));
    table.tHead.append(el("tr"));
    for (const h of ["asset", "spread", "since", "sources"]) table.tHead.rows[0].append(el("th", "", h));
    const body = table.createTBody();
    for (const d of divergences) {
      const row = el("tr", "diverging");
      row.dataset.asset = d.asset;
      const since = typeof d.since === "number" ? new Date(d.since * (d.since > 1e12 ? 1 : 1000)) : new Date(d.since);
      const sources = Object.entries(d.sources || {}).map(([name, s]) =>
        `${name} ${s.price} (${seconds(s.age_s)}, ${s.status})`).join(" · ");
      row.append(el("td", "", d.asset), el("td", "num", `${Number(d.spread_bps).toFixed(1)} bps`),
        el("td", "", isNaN(since) ? String(d.since) : since.toLocaleTimeString()), el("td", "", sources));
      body.append(row);
    }
    box.append(table);
  }

  async function refreshStatus() {
    const status = await getJson("/status");
    $("uptime").textContent = duration(status.uptime_s);
    $("simulated-market").hidden = !status.simulated;
    $("stale-count").textContent = String(status.stale_feeds);
    $("updates-rate").textContent = rate(status.hub.updates_per_second);
    $("deliveries-rate").textContent = rate(status.hub.deliveries_per_second);
    $("connection-count").textContent = String(status.connections);
    $("subscription-count").textContent = String(status.subscriptions);
    renderSources(status.sources || []);
    renderFaces(status.connections_by_face);
    renderDivergences(status.divergences);
  }

  function every(ms, work) {
    const run = () => work().catch((error) => showProblem(String(error.message || error)))
      .finally(() => setTimeout(run, ms));
    setTimeout(run, ms);
  }

  async function start() {
    if (token) $("docs").href = withToken("/docs");
    try {
      await Promise.all([refreshFeeds(), refreshStatus()]);
    } catch (error) {
      showProblem(String(error.message || error));
    }
    connect();
    backfill().catch((error) => showProblem(String(error.message || error)));
    every(STATUS_EVERY_MS, refreshStatus);
    every(FEEDS_EVERY_MS, async () => subscribe(await refreshFeeds()));
  }

  start();
})();
