// socket.io-client v4 against pricefeed's crypto-prices service (seed 002), as the seed's own clients connect.
// Usage: node crypto_prices.mjs URL TRANSPORTS   Prints one JSON line: the ack, an error event, the first full array.
import { io } from "socket.io-client";

const [url, transports] = process.argv.slice(2);
const socket = io(url, { transports: transports.split(","), reconnection: false });
const result = {};
const timer = setTimeout(() => { console.error("timeout", JSON.stringify(result)); process.exit(2); }, 20000);
const shown = (coin) => Object.fromEntries(Object.entries(coin).map(([k, v]) => [k, typeof v === "number" ? String(v) : v]));

socket.on("connect_error", (error) => { console.error(`connect_error: ${error.message}`); process.exit(1); });
socket.on("error", (error) => { result.error = error; });
socket.on("crypto-prices", (coins) => {
  if (coins.length < 10 || coins.some((c) => c.stale)) return;  // before CoinGecko's first answer
  result.prices = coins.map(shown);
  result.transport = socket.io.engine.transport.name;
  if (result.ack && result.error) finish();
});
socket.on("connect", async () => {
  result.error = null;
  await socket.emitWithAck("subscribe", { channel: "nope" });
  result.ack = await socket.timeout(5000).emitWithAck("subscribe", { channel: "crypto-prices" });
  if (result.prices) finish();
});

function finish() {
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  socket.disconnect();
  process.exit(0);
}
