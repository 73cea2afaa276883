// socket.io-client v4 presenting an API key in the connect packet's auth payload, as io(url, {auth: {token}}) does.
// Usage: node crypto_auth.mjs URL TOKEN|- CHANNEL   Prints one JSON line: the connect_error's message, or the ack of
// a subscribe to CHANNEL.
import { io } from "socket.io-client";

const [url, token, channel] = process.argv.slice(2);
const socket = io(url, { transports: ["websocket"], reconnection: false, ...(token === "-" ? {} : { auth: { token } }) });
const timer = setTimeout(() => { console.error("timeout"); process.exit(2); }, 20000);

function finish(result) {
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  socket.disconnect();
  process.exit(0);
}

socket.on("connect_error", (error) => finish({ connectError: error.message }));
socket.on("connect", async () => finish({ ack: await socket.timeout(5000).emitWithAck("subscribe", { channel }) }));
