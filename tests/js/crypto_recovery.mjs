// socket.io-client v4 against crypto-prices with connection state recovery: subscribe, receive a few arrays, lose
// the transport (socket.io.engine.close(), as socket.io's docs simulate it), reconnect by itself, and go on.
// Usage: node crypto_recovery.mjs URL BEFORE AFTER   Prints one JSON line: each array's offset in arrival order,
// whether the reconnect recovered, and the connects seen.
import { io } from "socket.io-client";

const [url, before, after] = process.argv.slice(2);
const socket = io(url, { transports: ["websocket"], reconnectionDelay: 500, reconnectionDelayMax: 500 });
const result = { offsets: [], connects: [], dropped_after: null };
const timer = setTimeout(() => { console.error("timeout", JSON.stringify(result)); process.exit(2); }, 30000);

socket.on("connect", async () => {
  result.connects.push({ recovered: Boolean(socket.recovered), at: result.offsets.length });
  if (!socket.recovered) {  // a new session: subscribe (a recovered one is back in its rooms)
    await socket.timeout(5000).emitWithAck("subscribe", { channel: "crypto-prices" });
  }
});
socket.on("crypto-prices", (coins, offset) => {
  result.offsets.push(offset ?? null);
  const count = result.offsets.length;
  if (count === Number(before) && result.dropped_after === null) {
    result.dropped_after = count;
    socket.io.engine.close();  // the link fails; the manager reconnects after 500 ms while prices move on
  } else if (result.dropped_after !== null && count >= Number(before) + Number(after)) {
    clearTimeout(timer);
    console.log(JSON.stringify(result));
    socket.disconnect();
    process.exit(0);
  }
});
