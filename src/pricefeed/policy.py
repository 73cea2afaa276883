"""Access policy, in one place: which browser origins may use a listener, which keys it takes, and how much
a key or an anonymous client IP may use.

A browser sends ``Origin`` with every WebSocket handshake and cross-origin
request; a page from an origin that is not allowed is refused (403) by the
transport. Clients that are not browsers send no ``Origin`` and are not
subject to it (as Socket.IO and the seed's CORS setting behave). Decisions are
pure functions of the request, so they are tested without a server.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .transport.limits import ByteBudget, TokenBucket

log = logging.getLogger(__name__)


def normalise_origin(text: str) -> str:
    """``scheme://host[:port]`` in lower case, without a path or trailing slash; ``ValueError`` if not an origin.

    A default port is dropped (``http://a:80`` is ``http://a``), as browsers send it.
    """
    value = text.strip()
    if value == "null":  # what a browser sends from a file:// page or a sandboxed frame
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ValueError(f"invalid origin {text!r}: expected scheme://host[:port], e.g. http://localhost:3000")
    scheme = parts.scheme.lower()
    port = parts.port
    default = {"http": 80, "https": 443}[scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The origins allowed to connect; ``None`` allows every origin."""

    allowed: frozenset[str] | None = None
    setting: str = "CORS_ORIGINS (or --cors-origins)"
    """The setting that lists them, named in a refusal."""

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        """From a setting's list: empty or ``*`` allows every origin."""
        listed = [o for o in (o.strip() for o in origins) if o]
        if not listed or "*" in listed:
            return cls(None)
        return cls(frozenset(normalise_origin(o) for o in listed))

    @property
    def allows_any(self) -> bool:
        return self.allowed is None

    def allows(self, origin: str | None, host: str | None = None) -> bool:
        """Whether a request with this ``Origin`` header (None: not sent, not a browser) may proceed; a page
        of the server itself (its origin's host is the request's ``Host``) always may."""
        if origin is None or self.allowed is None:
            return True
        try:
            normal = normalise_origin(origin)
        except ValueError:
            return False
        return normal in self.allowed or (host is not None and normal.split("://", 1)[-1] == host.strip().lower())

    def refusal(self, origin: str | None, host: str | None = None) -> str | None:
        """Why a request with this origin is refused (its 403 body), or None if it is allowed."""
        if self.allows(origin, host):
            return None
        return f"origin {origin!r} is not allowed: set {self.setting} to allow it\n"


ANY_ORIGIN = OriginPolicy(None)


# -- API keys and limits -------------------------------------------------------------------------------------------

BEARER = "bearer"
ACCESS_TOKEN_QUERY = "ACCESS_TOKEN"
"""Hermes and Lazer browsers' query parameter."""
TOKEN_QUERY = "token"
"""A browser WebSocket's query parameter (a browser cannot set headers on a WebSocket)."""
LAZER_AUTH_SUBPROTOCOL = "pyth-lazer-auth"
OPEN_PATHS = frozenset({"/health", "/live", "/ready"})
"""HTTP paths a load balancer probes: never behind a key."""
HANDSHAKE_CHECK_INTERVAL_S = 1.0
"""How often a handshake may look at the keys file's modification time."""


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries, in any of its ecosystems' forms: ``Authorization: Bearer <key>`` (Hermes and Lazer
    SDKs), ``?ACCESS_TOKEN=`` (Hermes, Lazer browsers), the ``pyth-lazer-auth, <key>`` subprotocol (Lazer SDK 7),
    ``?token=`` (browser WebSockets); None if it carries none. ``headers`` are lower-cased."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == BEARER and credentials.strip():
        return credentials.strip()
    for name in (ACCESS_TOKEN_QUERY, TOKEN_QUERY):
        if query.get(name):
            return query[name]
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if LAZER_AUTH_SUBPROTOCOL in offered:
        rest = [p for p in offered if p and p != LAZER_AUTH_SUBPROTOCOL]
        if rest:
            return rest[0]
    return None


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What one key may use at once, over every face (None: no limit beyond the listener's own)."""

    connections: int | None = None
    subscriptions: int | None = None
    messages_per_second: float | None = None
    bytes_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    secret: str = field(repr=False)
    faces: frozenset[str] | None = None
    """Faces (``seed000``, ``hermes``, ``hermes_ws``, ``lazer``, ``streams``, ``rest`` ...) it may use; a name
    covers the faces it prefixes (``hermes`` covers ``hermes_ws``); None: all."""
    feeds: frozenset[str] | None = None
    """Feed ids or symbols it may subscribe to; None: all."""
    limits: KeyLimits = KeyLimits()

    def allows_face(self, face: str) -> bool:
        return self.faces is None or any(face == f or face.startswith(f + "_") for f in self.faces)

    def allows_feed(self, *names: str) -> bool:
        """Whether any of a feed's names (id, symbol) is allowed."""
        return self.feeds is None or any(name in self.feeds for name in names)


def parse_keys(data: object, where: str) -> list[ApiKey]:
    """Keys from a keys file's document: ``{"keys": [{"name", "key", "faces"?, "feeds"?, "limits"?}]}``."""
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a list of keys under 'keys'")
    keys: list[ApiKey] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise ValueError(f"{where}: key {number} needs a non-empty 'key'")
        limits = entry.get("limits", {})
        unknown = set(limits) - set(KeyLimits.__dataclass_fields__) if isinstance(limits, dict) else {"?"}
        if unknown:
            raise ValueError(f"{where}: key {number}: unknown limits {sorted(map(str, unknown))} (known: "
                             f"{', '.join(KeyLimits.__dataclass_fields__)})")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in limits.values()):
            raise ValueError(f"{where}: key {number}: limits must be positive numbers")
        lists = {name: entry.get(name) for name in ("faces", "feeds")}
        if not all(v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in lists.values()):
            raise ValueError(f"{where}: key {number}: 'faces' and 'feeds' must be lists of names")
        keys.append(ApiKey(
            name=str(entry.get("name") or f"key{number}"), secret=entry["key"],
            faces=None if lists["faces"] is None else frozenset(lists["faces"]),
            feeds=None if lists["feeds"] is None else frozenset(lists["feeds"]),
            limits=KeyLimits(**limits)))
    return keys


def read_keys_file(path: Path) -> list[ApiKey]:
    """A keys file, TOML (``[[keys]]`` tables) or JSON; ``ValueError`` or ``OSError`` says what is wrong."""
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    return parse_keys(data, str(path))


class KeyRing:
    """The keys of the service: ``--api-key`` values and a ``--keys`` file, re-read when it changes (a bad
    change is logged and the keys in force stay)."""

    def __init__(self, secrets: Iterable[str] = (), path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._static = {s: ApiKey(name=f"api-key-{i}", secret=s) for i, s in enumerate(secrets, 1)}
        self.path = path
        self._clock = clock
        self._file_keys: dict[str, ApiKey] = {}
        self._stamp: tuple[float, int] | None = None
        self._checked_at = -math.inf
        if path is not None:
            self._file_keys = {k.secret: k for k in read_keys_file(path)}  # a bad file at start-up is fatal
            self._stamp = _stamp(path)

    @property
    def configured(self) -> bool:
        return bool(self._static) or self.path is not None

    def get(self, secret: str) -> ApiKey | None:
        self.reload_if_changed()
        return self._file_keys.get(secret) or self._static.get(secret)

    def reload_if_changed(self) -> None:
        if self.path is None or self._clock() - self._checked_at < HANDSHAKE_CHECK_INTERVAL_S:
            return
        self._checked_at = self._clock()
        try:
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return
            keys = read_keys_file(self.path)
        except (OSError, ValueError) as exc:
            log.error("keys file %s not reloaded, the keys in force stay: %s", self.path, exc)
            return
        self._stamp = stamp
        self._file_keys = {k.secret: k for k in keys}
        log.info("keys file %s reloaded: %d keys", self.path, len(keys))


def _stamp(path: Path) -> tuple[float, int]:
    stat = path.stat()
    return stat.st_mtime, stat.st_size


@dataclass(frozen=True, slots=True)
class AnonymousLimits:
    """Per client IP, for clients without a key (when no key is required); None: no limit (the default, since a
    benchmark or a proxy brings thousands of connections from one address)."""

    connections_per_ip: int | None = None
    handshakes_per_second_per_ip: float | None = None
    handshake_burst: int = 100
    bytes_per_second_per_ip: float | None = None
    """Outbound bytes per second over the IP's connections (Hermes closes a ``/ws`` over 256 KiB/s per IP)."""

    @property
    def counted(self) -> bool:
        """Whether an IP's connections are counted (a limit needs them)."""
        return self.connections_per_ip is not None or self.bytes_per_second_per_ip is not None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request or handshake is refused: its HTTP status, the metric's reason and the body."""

    status: int
    reason: str
    message: str
    who: str
    """The key's name or the client IP, for the log line."""


@dataclass(slots=True)
class Admission:
    """A connection let in: the key it presented (None without) and the IP it counts against."""

    key: ApiKey | None
    ip: str
    released: bool = False
    byte_budget: ByteBudget | None = None
    """Outbound bytes per second, shared by every connection of its key (or of its IP without a key)."""
    feeds: set[str] = field(default_factory=set)
    """The feeds it is subscribed to, as its key's subscription limit counts them."""

    @property
    def limits(self) -> KeyLimits:
        return KeyLimits() if self.key is None else self.key.limits


OPEN = Admission(None, "-")
"""The admission of a connection no policy counted (nothing to release)."""
OPEN.released = True


class AccessPolicy:
    """Who may connect, and how much: keys when configured, per-IP limits for clients without one.

    Decisions are taken once per handshake or request (never per delivery); the transports apply them.
    """

    def __init__(self, keys: KeyRing | None = None, anonymous: AnonymousLimits = AnonymousLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys if keys is not None else KeyRing()
        self.anonymous = anonymous
        self._clock = clock
        self._by_key: dict[str, int] = {}
        self._by_ip: dict[str, int] = {}
        self._handshakes: dict[str, TokenBucket] = {}
        self._subscriptions: dict[str, int] = {}
        """Feeds subscribed per key name, over its connections."""
        self._budgets: dict[str, ByteBudget] = {}
        """Outbound byte budgets per key name, or per IP (``ip:`` prefix), while they have connections."""
        self._requests: dict[str, TokenBucket] = {}
        """HTTP requests per second per key name (its ``messages_per_second``)."""
        self.feed_names: Callable[[str], Iterable[str]] = lambda feed: (feed,)
        """A feed id's other names (symbols) a key's ``feeds`` may list; the app sets it from the hub's feeds."""

    @property
    def keys_required(self) -> bool:
        return self.keys.configured

    def check(self, face: str, headers: Mapping[str, str], query: Mapping[str, str]) -> ApiKey | Refusal | None:
        """The key of a request to ``face``, a refusal, or None when keys are not required."""
        if not self.keys.configured:
            return None
        secret = presented_key(headers, query)
        if secret is None:
            return Refusal(401, "missing_key", f"{face}: an API key is required (Authorization: Bearer <key>, "
                           "?ACCESS_TOKEN=<key> or ?token=<key>)\n", "-")
        key = self.keys.get(secret)
        if key is None:
            return Refusal(401, "wrong_key", f"{face}: the API key is not valid\n", "-")
        if not key.allows_face(face):
            return Refusal(403, "face_not_allowed", f"{face}: the API key {key.name!r} may not use this face\n",
                           key.name)
        return key

    def admit(self, face: str, headers: Mapping[str, str], query: Mapping[str, str],
              ip: str | None) -> Admission | Refusal:
        """Let a connection in (count it until :meth:`release`) or refuse it; without a key and with ``ip`` None
        (not known yet at the handshake), the IP's limits are left to :meth:`admit_ip` once it is."""
        checked = self.check(face, headers, query)
        if isinstance(checked, Refusal):
            return dataclasses.replace(checked, who=ip or "-") if checked.who == "-" else checked
        if checked is not None:
            limit = checked.limits.connections
            if limit is not None and self._by_key.get(checked.name, 0) >= limit:
                return Refusal(429, "key_connections", f"{face}: the API key {checked.name!r} has its {limit} "
                               "connections open already\n", checked.name)
            self._by_key[checked.name] = self._by_key.get(checked.name, 0) + 1
            per_second = checked.limits.bytes_per_second
            return Admission(checked, ip or "-", byte_budget=None if per_second is None else
                             self._budget(checked.name, per_second))
        return OPEN if ip is None else self.admit_ip(face, ip)

    def admit_ip(self, face: str, ip: str) -> Admission | Refusal:
        """Let a connection without a key in, within its IP's handshake rate and connections."""
        anon = self.anonymous
        if anon.handshakes_per_second_per_ip is not None:
            bucket = self._handshakes.get(ip)
            if bucket is None:
                if len(self._handshakes) > 10_000:  # forget quiet IPs rather than grow without bound
                    self._handshakes = {k: b for k, b in self._handshakes.items() if k in self._by_ip}
                bucket = self._handshakes[ip] = TokenBucket(anon.handshakes_per_second_per_ip, anon.handshake_burst,
                                                            self._clock)
            if not bucket.take():
                return Refusal(429, "ip_handshakes", f"{face}: too many connection attempts from {ip}: at most "
                               f"{anon.handshakes_per_second_per_ip:g} per second\n", ip)
        if not anon.counted:
            return OPEN
        if anon.connections_per_ip is not None and self._by_ip.get(ip, 0) >= anon.connections_per_ip:
            return Refusal(429, "ip_connections", f"{face}: {ip} has its {anon.connections_per_ip} "
                           "connections open already\n", ip)
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        per_second = anon.bytes_per_second_per_ip
        return Admission(None, ip, byte_budget=None if per_second is None else self._budget("ip:" + ip, per_second))

    def _budget(self, holder: str, per_second: float) -> ByteBudget:
        """The byte budget a key or an IP shares over its connections (two seconds' worth of burst)."""
        budget = self._budgets.get(holder)
        if budget is None:
            budget = self._budgets[holder] = ByteBudget(per_second, 2 * per_second, self._clock)
        return budget

    def claim(self, admission: Admission, feeds: Iterable[str]) -> Refusal | None:
        """Let a connection subscribe to ``feeds`` (its key may see them all, within its subscription limit, over
        its connections) and count them until :meth:`unclaim` or :meth:`release`; or refuse all of them (403 for
        a feed the key may not see, 429 past its limit)."""
        key = admission.key
        if key is None:
            return None
        wanted = list(dict.fromkeys(feeds))
        hidden = self.feed_refusal(key, wanted)
        if hidden is not None:
            return hidden
        new = [f for f in wanted if f not in admission.feeds]
        limit = key.limits.subscriptions
        held = self._subscriptions.get(key.name, 0)
        if limit is not None and new and held + len(new) > limit:
            return Refusal(429, "key_subscriptions", f"subscription limit of the API key {key.name!r} reached: at "
                           f"most {limit} feeds over its connections ({held} already subscribed)", key.name)
        if new:
            admission.feeds.update(new)
            self._subscriptions[key.name] = held + len(new)
        return None

    def feed_refusal(self, key: ApiKey, feeds: Iterable[str]) -> Refusal | None:
        """A refusal (403) if ``key`` may not see one of ``feeds`` (ids, with or without ``0x``), or None."""
        if key.feeds is None:
            return None
        hidden = [f for f in feeds if not key.allows_feed(f, *self.feed_names(f.lower().removeprefix("0x")))]
        if not hidden:
            return None
        return Refusal(403, "feed_not_allowed", f"the API key {key.name!r} may not see {', '.join(hidden)}",
                       key.name)

    def unclaim(self, admission: Admission, feeds: Iterable[str]) -> None:
        """A connection unsubscribed from ``feeds``: they no longer count against its key's limit."""
        key = admission.key
        if key is None or admission.released:
            return
        gone = [f for f in dict.fromkeys(feeds) if f in admission.feeds]
        admission.feeds.difference_update(gone)
        self._count_down(self._subscriptions, key.name, len(gone))

    def request_refusal(self, face: str, key: ApiKey) -> Refusal | None:
        """An HTTP request over its key's ``messages_per_second`` (429), or None."""
        rate = key.limits.messages_per_second
        if rate is None:
            return None
        bucket = self._requests.get(key.name)
        if bucket is None or bucket.rate != rate:
            bucket = self._requests[key.name] = TokenBucket(rate, max(1.0, 2 * rate), self._clock)
        if bucket.take():
            return None
        return Refusal(429, "key_messages", f"{face}: the API key {key.name!r} is over its request rate: at most "
                       f"{rate:g} per second\n", key.name)

    def release(self, admission: Admission) -> None:
        """A connection let in has gone."""
        if admission.released:
            return
        admission.released = True
        if admission.key is None:
            if not self._count_down(self._by_ip, admission.ip, 1):
                self._budgets.pop("ip:" + admission.ip, None)
            return
        name = admission.key.name
        self._count_down(self._subscriptions, name, len(admission.feeds))
        admission.feeds.clear()
        if not self._count_down(self._by_key, name, 1):
            self._budgets.pop(name, None)

    @staticmethod
    def _count_down(counts: dict[str, int], name: str, by: int) -> int:
        """Take ``by`` off a count (forgotten at zero); what is left."""
        left = counts.get(name, 0) - by
        if left > 0:
            counts[name] = left
        else:
            counts.pop(name, None)
        return max(0, left)

    def connections_of(self, key_name: str) -> int:
        return self._by_key.get(key_name, 0)

    def subscriptions_of(self, key_name: str) -> int:
        return self._subscriptions.get(key_name, 0)


OPEN_POLICY = AccessPolicy()

MAX_WARNED = 100
"""Refusals (per face, reason and origin, key or IP) logged at warning level; the rest at debug (a client may
retry in a loop, and origins and IPs are free to make up)."""


def log_refusal(face: str, refusal: Refusal, warned: set[tuple[str, str, str]]) -> None:
    """Log a refusal once at warning level (per face, reason and who), then at debug."""
    seen = (face, refusal.reason, refusal.who)
    first = seen not in warned and len(warned) < MAX_WARNED
    if first:
        warned.add(seen)
    log.log(logging.WARNING if first else logging.DEBUG, "%s: refused %s (%s): %s", face, refusal.who,
            refusal.reason, refusal.message.strip())
