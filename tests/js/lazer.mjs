// Pyth's official Lazer SDK (@pythnetwork/pyth-lazer-sdk) against pricefeed, unchanged apart from its URLs.
// Usage: node lazer.mjs API_BASE_URL SECONDS   Subscribes to BTC and ETH (Lazer ids 1 and 2) on every channel at
// once, one subscription per channel, and prints one JSON line: the symbols, and per subscription what arrived.
import { PythLazerClient } from "@pythnetwork/pyth-lazer-sdk";

const [baseUrl, seconds] = process.argv.slice(2);
const streamUrl = baseUrl.replace(/^http/, "ws") + "/v1/stream";
const channels = ["real_time", "fixed_rate@50ms", "fixed_rate@200ms", "fixed_rate@1000ms"];
const errors = [];
const client = await PythLazerClient.create({
  token: "pricefeed-test-token",
  metadataServiceUrl: baseUrl,
  priceServiceUrl: baseUrl,
  webSocketPoolConfig: { urls: [streamUrl], numConnections: 2, onWebSocketPoolError: (e) => errors.push(String(e)) },
});
const result = { symbols: (await client.getSymbols({ query: "BTC" })).map((s) => ({ id: s.pyth_lazer_id, symbol: s.symbol })),
                 responses: [], updates: {} };
client.addMessageListener((message) => {
  if (message.type !== "json") return;
  const value = message.value;
  if (value.type !== "streamUpdated") { result.responses.push(value); return; }
  (result.updates[value.subscriptionId] ??= []).push({
    receivedAt: Date.now(), timestampUs: value.parsed.timestampUs,
    feeds: value.parsed.priceFeeds.map((f) => ({ id: f.priceFeedId, price: f.price, exponent: f.exponent, t: f.feedUpdateTimestamp })),
  });
});
channels.forEach((channel, index) => client.subscribe({
  type: "subscribe", subscriptionId: index + 1, priceFeedIds: [1, 2],
  properties: ["price", "exponent", "feedUpdateTimestamp"], formats: [], deliveryFormat: "json", channel,
  parsed: true, jsonBinaryEncoding: "base64", ignoreInvalidFeedIds: false,
}));
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
client.shutdown();
result.errors = errors;
console.log(JSON.stringify(result));
process.exit(0);
