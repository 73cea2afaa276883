// Pyth's official JavaScript clients against a Hermes-compatible base URL (pricefeed).
// Usage: node clients.mjs BASE_URL FEED_ID...   Prints one JSON line with what each call returned.
import { HermesClient } from "@pythnetwork/hermes-client";
import { PriceServiceConnection } from "@pythnetwork/price-service-client";

const [baseUrl, ...ids] = process.argv.slice(2);
const result = {};

function withTimeout(promise, ms, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))]);
}

// @pythnetwork/hermes-client
const hermes = new HermesClient(baseUrl, {});
const feeds = await hermes.getPriceFeeds({ query: "btc", assetType: "crypto" });
result.priceFeeds = feeds.map((f) => ({ id: f.id, symbol: f.attributes.symbol }));
const latest = await hermes.getLatestPriceUpdates(ids);
result.latest = latest.parsed.map((p) => ({ id: p.id, price: p.price.price, expo: p.price.expo, slot: p.metadata.slot }));
const stream = await hermes.getPriceUpdatesStream(ids, { parsed: true });
result.stream = await withTimeout(new Promise((resolve, reject) => {
  const seen = [];
  stream.onmessage = (event) => {
    const update = JSON.parse(event.data);
    for (const p of update.parsed) seen.push({ id: p.id, price: p.price.price, slot: p.metadata.slot });
    if (seen.length >= 6) { stream.close(); resolve(seen); }
  };
  stream.onerror = (error) => { stream.close(); reject(new Error(`stream error: ${JSON.stringify(error.data ?? error.message)}`)); };
}), 15000, "SSE stream");

// @pythnetwork/price-service-client (its default WebSocket error handler exits the process)
const connection = new PriceServiceConnection(baseUrl, { priceFeedRequestConfig: { verbose: true } });
const legacy = await connection.getLatestPriceFeeds(ids);
result.legacyLatest = legacy.map((f) => ({ id: f.id, price: f.getPriceUnchecked().price, expo: f.getPriceUnchecked().expo }));
result.subscribed = await withTimeout(new Promise((resolve) => {
  const seen = [];
  connection.subscribePriceFeedUpdates(ids, (feed) => {
    seen.push({ id: feed.id, price: feed.getPriceUnchecked().price, slot: feed.getMetadata()?.slot });
    if (seen.length >= 6) resolve(seen);
  });
}), 15000, "price-service-client subscription");
connection.closeWebSocket();

console.log(JSON.stringify(result));
process.exit(0);
