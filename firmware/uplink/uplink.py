# One upload window through every configured sink (MQTT, HTTPS, InfluxDB).
#
#   up = Uplink(cfg, port, device_id, state=rtc_bytes_or_None)
#   up.on_command = app.command            # relay commands from <prefix>/relay/set
#   stats = up.send(store, latest_reading, can_afford=lambda what: em.can_afford(what, mv))
#   rtc = up.dump()                        # 15 bytes for RTC memory (optional)
#
# Rules:
#   * The store is acknowledged only up to the record every configured sink confirmed
#     (MQTT: PUBACK of the QoS 1 batch; HTTPS: 2xx from the receiver; Influx: 204), so a
#     failure anywhere leaves the records in flash for the next window. Per sink the last
#     confirmed seq is remembered (RAM) so a retry in the same boot does not resend to
#     sinks that already have a record; receivers de-duplicate by (device, epoch, seq).
#   * can_afford("batch") is asked before every batch; "tls" before a TLS handshake.
#   * Every socket has a timeout (net_timeout_s, default 10 s); a sink that failed is
#     retried every 2, 4 ... 16 windows (backoff), so a dead server does not drain the
#     capacitor at every wake-up.
#   * Secrets (mqtt_password, hmac_key, influx_token) never reach port.log() or the
#     returned stats.
#
# MQTT topics (prefix = mqtt_prefix or "linky/<device id>"):
#   <prefix>/status     "online" (retained) / last will "offline" (retained)
#   <prefix>/batch      backlog batches (batch.py; signed when hmac_key is set), QoS 1
#   <prefix>/state      latest reading + diagnostics (retained), what HA renders
#   <prefix>/relay/set  ON / OFF / AUTO commands (subscribed, QoS 1, persistent session
#                       so a command sent while the dongle sleeps is delivered next window)
import json
import struct

from firmware.uplink import batch as B
from firmware.uplink import sign
from firmware.uplink import discovery
# https (and influx) are imported where a sink that needs them runs: an MQTT-only
# device never holds their functions and constants in its ~38 KB heap (measured by
# tools/bench/bench_heap.py: ~7 KB on the 64-bit unix port).

STATE_FILE = "uplink.json"
SINKS = ("mqtt", "https", "influx")
SIGNED = ("mqtt", "https")
RTC_MAGIC = b"U1"
# magic, next counter mqtt/https, consecutive failures mqtt/https/influx, window number.
# The per-sink "confirmed up to" seqs stay in RAM: after a deep sleep a record may go
# again to a sink that had it (receivers de-duplicate), but a seq restart (store
# re-formatted) can never make a sink skip a record it does not have.
RTC_FMT = "<2siiBBBH"
COMMANDS = ("ON", "OFF", "AUTO")
MAX_BACKOFF_EXP = 4


def _random31():
    try:
        import os
        return int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    except (ImportError, AttributeError, OSError):
        import time
        return int(time.time()) & 0x7FFFFFFF


class Records:
    # The records of one peek, [(seq, bytes)], decoded one at a time whenever they are
    # iterated: a batch is built in two passes over them and never holds them all as
    # dicts (24 decoded TIC records are ~3.5 KB of the ESP8266's heap; as bytes, ~1 KB).
    # Indexing decodes one record; slices and after() stay undecoded.
    def __init__(self, items, dec):
        self.items = items
        self.dec = dec

    def __len__(self):
        return len(self.items)

    def _one(self, item):
        seq, data = item
        try:
            rec = self.dec(data, None, seq)
            rec["seq"] = seq
        except Exception:
            # kept as hex rather than dropped: the receiver stores what it cannot read
            rec = B.raw_record(seq, data)
        return rec

    def __iter__(self):
        for item in self.items:
            yield self._one(item)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Records(self.items[i], self.dec)
        return self._one(self.items[i])

    def seq(self, i):
        return self.items[i][0]

    def after(self, seq):
        return Records([it for it in self.items if it[0] > seq], self.dec)


def _entry(sink, ok, records, nbytes, error):
    return {"sink": sink, "ok": ok, "records": records, "bytes": nbytes, "error": error}


class Uplink:
    def __init__(self, cfg, port, device_id, state=None):
        self.cfg = cfg
        self.port = port
        self.dev = device_id
        self.prefix = cfg.get("mqtt_prefix") or ("linky/" + device_id)
        self.on_command = None
        # skip a failing sink for 2, 4 ... 16 windows; off when the caller already spaces
        # its windows after failures (the app's energy manager does)
        self.backoff = True
        self.status = None          # optional callable -> {"relay": .., "relay_mode": ..}
        self.decode = None          # record decoder, default firmware.store.record.decode
        self.config_error = None
        try:
            self.key = sign.parse_key(cfg.get("hmac_key") or "")
        except ValueError as e:
            self.key = None
            self.config_error = str(e)
        try:
            self.ca_der = None
            if cfg.get("ca_pem"):
                from firmware.uplink import https
                self.ca_der = https.pem_to_der(cfg["ca_pem"]) or None
        except Exception:
            self.ca_der = None
            self.config_error = "ca_pem: not a PEM certificate"
        if cfg.get("ca_pem") and not self.ca_der and not self.config_error:
            self.config_error = "ca_pem: not a PEM certificate"
        if (cfg.get("https_url") or "").startswith("http://") and not self.key \
                and not self.config_error:
            # in the clear, batches must at least be signed (config.validate says so too)
            self.config_error = "https_url: http:// needs hmac_key"
        # ESP8266's axTLS cannot verify a certificate chain (batches are signed instead)
        self.can_verify = getattr(port, "chip", "host") != "esp8266"
        self.timeout_s = int(cfg.get("net_timeout_s") or 10)
        self.max_bytes = int(cfg.get("batch_max_bytes") or B.MAX_BYTES)
        # records decoded per peek: ~200 B each as dicts; the ESP8266 heap (~38 KB) takes
        # fewer at a time (one 2 KB batch holds ~30 historic-TIC rows)
        self.batch_records = int(cfg.get("batch_records") or (
            24 if getattr(port, "chip", "") == "esp8266" else 60))
        self.sinks = []
        if cfg.get("mqtt_host"):
            self.sinks.append("mqtt")
        if cfg.get("https_url"):
            self.sinks.append("https")
        if cfg.get("influx_url"):
            self.sinks.append("influx")
        # Sinks the settings cannot carry out safely on this chip are left out, with the
        # reason in every window's report (config.sink_errors): on the ESP8266 any TLS
        # sink (axTLS takes ~45 KB of its 38 KB heap, measured by tools/bench/
        # bench_heap.py --frozen32: plain MQTT / http:// with hmac_key is its way);
        # elsewhere a TLS sink without ca_pem (it would accept any certificate, and an
        # impostor's 200 would make the store drop readings it never delivered); and an
        # MQTT password without TLS that the user did not allow in the clear.
        from firmware.config import tls_sinks, sink_errors
        self.tls = tls_sinks(cfg)
        self.refused = {}
        for sk, _k, msg in sink_errors(cfg, getattr(port, "chip", "host")):
            if sk in self.sinks and sk not in self.refused:
                self.sinks.remove(sk)
                self.refused[sk] = msg
        self.done = {}
        self.fails = {}
        self.window = 0
        self._times = {}
        self._relay_seen = None
        self._file = self._read_file()
        # numbering epoch: a fresh file system (new device, wiped flash) starts a new
        # one, so a receiver never mistakes restarted seq numbers for duplicates
        # (the store's own epoch is preferred when it has one)
        self.epoch = self._file.get("ep")
        if not isinstance(self.epoch, int):
            self.epoch = _random31()
            self._file["ep"] = self.epoch
            self._write_file()
        nxt = self.load(state)
        self.counters = {}
        for s in SIGNED:
            self.counters[s] = sign.Counter(
                (lambda s=s: self._file.get("ctr", {}).get(s, 0)),
                (lambda hi, s=s: self._save_ctr(s, hi)), nxt.get(s))

    # -- persistent state ------------------------------------------------------------
    def _path(self):
        return (getattr(self.port, "fs_root", ".") or ".") + "/" + STATE_FILE

    def _read_file(self):
        try:
            with open(self._path()) as f:
                d = json.load(f)
            return d if isinstance(d, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_file(self):
        import os
        p = self._path()
        try:
            with open(p + ".tmp", "w") as f:
                f.write(json.dumps(self._file))
            os.rename(p + ".tmp", p)
        except OSError:
            self.port.log("uplink: state file not written")

    def _save_ctr(self, sink, hi):
        c = self._file.get("ctr")
        if not isinstance(c, dict):
            c = {}
            self._file["ctr"] = c
        c[sink] = hi
        self._write_file()

    def load(self, data):
        # RTC bytes from dump() -> {sink: next counter}; restores fails/window
        nxt = {}
        if data and len(data) >= struct.calcsize(RTC_FMT) and bytes(data[:2]) == RTC_MAGIC:
            v = struct.unpack(RTC_FMT, bytes(data[:struct.calcsize(RTC_FMT)]))
            nxt = {"mqtt": v[1], "https": v[2]}
            for i in range(len(SINKS)):
                if v[3 + i]:
                    self.fails[SINKS[i]] = v[3 + i]
            self.window = v[6]
        return nxt

    def dump(self):
        c = getattr(self, "counters", {})
        return struct.pack(RTC_FMT, RTC_MAGIC,
                           c["mqtt"].next if "mqtt" in c else -1,
                           c["https"].next if "https" in c else -1,
                           min(self.fails.get("mqtt", 0), 255),
                           min(self.fails.get("https", 0), 255),
                           min(self.fails.get("influx", 0), 255), self.window & 0xFFFF)

    # -- records -----------------------------------------------------------------------
    def _decoder(self):
        if self.decode is None:
            from firmware.store import record
            self.decode = record.decode
        return self.decode

    def _peek(self, store):
        # the store hands back self-contained records (no previous record needed), as
        # short byte strings decoded when a batch is built
        return Records(store.peek(self.batch_records), self._decoder())

    # -- backoff -----------------------------------------------------------------------
    def _due(self, sink):
        f = self.fails.get(sink, 0)
        if not f or not self.backoff:
            return True
        period = 1 << min(f, MAX_BACKOFF_EXP)
        return self.window % period == 0

    # -- the window --------------------------------------------------------------------
    def send(self, store, latest=None, can_afford=None, whole=None):
        # whole: the latest whole (not early-stopped) reading of this boot, which
        # grows the meter's capability set for discovery as latest does
        self._whole = whole
        can = can_afford or (lambda what: True)
        self.window = (self.window + 1) & 0xFFFF
        res = {"ok": False, "records": 0, "bytes": 0, "connections": [], "commands": [],
               "deferred": False}
        self._res = res
        if self.config_error:
            self.port.log("uplink: config " + self.config_error)
            res["connections"].append(_entry("config", False, 0, 0, self.config_error))
            return res
        for sk in self.refused:
            res["connections"].append(_entry(sk, False, 0, 0, self.refused[sk]))
        if not self.sinks:
            return res
        active = []
        for s in self.sinks:
            if self._due(s):
                active.append(s)
            else:
                res["connections"].append(_entry(s, False, 0, 0, "backoff"))
        failed = []
        self._mq = None
        self._mq_entry = None
        last_rec = None
        # one body buffer for the window, taken while the heap is still in one piece
        self._buf = bytearray(self.max_bytes + B.OUT_SLACK)
        try:
            if "mqtt" in active and not self._mqtt_open(can):
                failed.append("mqtt")
            while True:
                if not can("batch"):
                    res["deferred"] = True
                    break
                recs = self._peek(store)
                if not len(recs):
                    break
                for r in recs:
                    if r.get("kind") == "relay" and r.get("state") is not None:
                        self._relay_seen = r.get("state")
                    if r.get("kind", "reading") == "reading":
                        last_rec = r
                    r = None
                # a full peek means more records wait in the store: a short tail batch
                # waits for the next peek to be filled up
                more = len(recs) >= self.batch_records
                for s in active:
                    if s in failed:
                        continue
                    todo = recs.after(self.done.get(s, -1))
                    if len(todo) and not self._deliver(s, todo, store, can, more):
                        failed.append(s)
                    todo = None
                upto = min([self.done.get(s, -1) for s in self.sinks])
                if upto < recs.seq(0):
                    break
                n = 0
                for i in range(len(recs)):
                    if recs.seq(i) <= upto:
                        n += 1
                store.ack(upto)
                res["records"] += n
            if self._mq is not None and "mqtt" not in failed:
                if not self._mqtt_finish(store, latest or last_rec):
                    failed.append("mqtt")
        finally:
            self._buf = None
            if self._mq is not None:
                self._mq.close()
                if self._mq_entry is not None:
                    self._mq_entry["bytes"] = self._mq.bytes
            if self._mq_entry is not None:
                res["connections"].append(self._mq_entry)
            self._mq = None
        for s in active:
            self.fails[s] = self.fails.get(s, 0) + 1 if s in failed else 0
        tot = 0
        for c in res["connections"]:
            tot += c["bytes"]
        res["bytes"] = tot
        res["ok"] = bool(active) and not failed
        return res

    def _new_tls(self, sink):
        # every HTTPS / Influx request opens its own TLS connection (Connection: close):
        # each one costs a handshake the energy manager must be able to pay for
        return sink != "mqtt" and sink in self.tls

    def _deliver(self, sink, todo, store, can, more=False):
        first = True
        tls = self._new_tls(sink)
        while len(todo):
            if (tls and not can("tls")) or (not first and not can("batch")):
                self._res["deferred"] = True
                return True
            if sink == "influx":
                n = self._influx(todo, more and not first)
            else:
                n = self._signed(sink, todo, store, more and not first)
            if n == -1:
                return True    # tail left for the next peek
            first = False
            if not n:
                return False
            todo = todo[n:]
        return True

    def _room(self):
        return self.max_bytes - (sign.TAIL_LEN if self.key else 0)

    def _body(self, sink, recs, store):
        # signed: the channel ("mqtt" / "https", also for http://) and that channel's
        # counter go inside the signed bytes (docs/wire-format.md), so a batch sealed for
        # one channel is refused on the other
        ctr = self.counters[sink].take() if self.key else None
        buf = self._buf
        body, first, last, n = B.build(self.dev, recs, getattr(store, "dropped", 0),
                                       getattr(store, "aggregated", 0),
                                       getattr(store, "epoch", None) or self.epoch, ctr,
                                       self._room(), buf, sink if self.key else None)
        if self.key:
            if isinstance(body, memoryview):
                body = memoryview(buf)[:sign.seal_into(self.key, buf, len(body))]
            else:
                body = sign.seal(self.key, body)
        return body, last, n

    def _signed(self, sink, recs, store, hold_tail=False):
        if hold_tail:
            # would this be a short tail? then leave it for the next, fuller, peek
            if B.count(self.dev, recs, self._room()) == len(recs):
                return -1
        body, last, n = self._body(sink, recs, store)
        if sink == "mqtt":
            try:
                self._mq.publish((self.prefix + "/batch").encode(), body, False, 1)
            except Exception as e:
                self._mqtt_fail(e)
                return 0
            self.done["mqtt"] = last
            self._mq_entry["records"] += n
            return n
        got, hint = self._https(body, last, n)
        if not got and hint is not None and self.key:
            # the receiver has seen a later counter (our state file was wiped): jump past
            # it once and resend; the receiver's refusal proves it holds the key's history
            self.counters["https"].skip_to(hint)
            body, last, n = self._body(sink, recs, store)
            got, hint = self._https(body, last, n)
        return got

    # -- HTTPS --------------------------------------------------------------------------
    def _tls_ca(self, url, sink):
        # -> the CA list to verify the server with (None for http://), or raise
        # NetError("config"): TLS is never used unverified (sink_errors leaves such sinks
        # out already; this holds whatever the caller did)
        if not url.startswith("https:"):
            return None
        if self.can_verify and self.ca_der:
            return self.ca_der
        from firmware.uplink import https
        raise https.NetError("config", "%s: https needs ca_pem" % sink)

    def _https(self, body, last, n):
        # -> (records confirmed, counter hint from a 409 or None)
        from firmware.uplink import https
        url = self.cfg["https_url"]
        ent = _entry("https", False, 0, 0, None)
        self._res["connections"].append(ent)
        try:
            ca = self._tls_ca(url, "https")
            status, rbody, nb = https.request(
                "POST", url, body, {"Content-Type": "application/json",
                                    "X-Linky-Device": self.dev},
                ca, self.timeout_s, self.port.activity)
            ent["bytes"] = nb
        except https.NetError as e:
            ent["error"] = str(e)
            self.port.log("uplink https: " + str(e))
            return 0, None
        if 200 <= status < 300:
            ent["ok"] = True
            ent["records"] = n
            self.done["https"] = last
            return n, None
        ent["error"] = "http %d" % status
        self.port.log("uplink https: status %d" % status)
        hint = None
        if status == 409:
            try:
                hint = json.loads(rbody).get("last_ctr")
            except (ValueError, AttributeError):
                hint = None
        return 0, hint if isinstance(hint, int) else None

    # -- Influx -------------------------------------------------------------------------
    def _influx(self, recs, hold_tail=False):
        if hold_tail and len(recs) < 40:
            return -1
        from firmware.uplink import https, influx
        chunk = recs[:40]
        body, written, skipped = influx.lines(self.dev, chunk, self._times)
        while len(body) > self.max_bytes * 2 and len(chunk) > 1:
            chunk = chunk[:len(chunk) // 2]
            body, written, skipped = influx.lines(self.dev, chunk, self._times)
        last = chunk.seq(-1)
        ent = _entry("influx", False, 0, 0, None)
        if not written:
            # nothing with a known time: nothing to write, delivered as far as Influx goes
            self.done["influx"] = last
            return len(chunk)
        self._res["connections"].append(ent)
        c = self.cfg
        url = c["influx_url"].rstrip("/") + influx.write_path(c.get("influx_org") or "",
                                                             c.get("influx_bucket") or "")
        try:
            ca = self._tls_ca(url, "influx")
            status, rbody, nb = https.request(
                "POST", url, body, {"Authorization": "Token " + (c.get("influx_token") or ""),
                                    "Content-Type": "text/plain; charset=utf-8"},
                ca, self.timeout_s, self.port.activity)
            ent["bytes"] = nb
        except https.NetError as e:
            ent["error"] = str(e)
            self.port.log("uplink influx: " + str(e))
            return 0
        if 200 <= status < 300:
            ent["ok"] = True
            ent["records"] = written
            self.done["influx"] = last
            return len(chunk)
        ent["error"] = "http %d" % status
        self.port.log("uplink influx: status %d" % status)
        return 0

    # -- MQTT ---------------------------------------------------------------------------
    def _on_message(self, topic, msg):
        if topic != (self.prefix + "/relay/set").encode():
            return
        try:
            cmd = msg.decode().strip().upper()
        except (UnicodeError, AttributeError):
            return
        if cmd not in COMMANDS:
            self.port.log("uplink: ignored relay command")
            return
        self._res["commands"].append(cmd)
        if self.on_command is not None:
            try:
                self.on_command(cmd)
            except Exception as e:
                self.port.log("uplink: relay command failed %r" % (e,))

    def _mqtt_fail(self, e):
        err = str(e)
        if self._mq_entry is not None:
            self._mq_entry["error"] = err
            self._mq_entry["ok"] = False
        self.port.log("uplink mqtt: " + err)
        if self._mq is not None:
            self._mq.abort()
            self._mq_entry["bytes"] = self._mq.bytes
        self._mq = None

    def _mqtt_open(self, can):
        from firmware.uplink import mqtt
        c = self.cfg
        tls = "mqtt" in self.tls
        port = int(c.get("mqtt_port") or (8883 if tls else 1883))
        self._mq_entry = _entry("mqtt", False, 0, 0, None)
        if tls and not (self.can_verify and self.ca_der):
            # never unverified (sink_errors refuses it first; this holds regardless)
            self._mq_entry["error"] = "config: mqtt_tls needs ca_pem"
            return False
        if tls and not can("tls"):
            self._mq_entry["error"] = "energy"
            return False
        try:
            ca = self.ca_der if tls else None
            self.port.activity("tls" if tls else "tx")
            self._mq = mqtt.Session(("linky-" + self.dev).encode(), c["mqtt_host"], port,
                                    c.get("mqtt_user") or None, c.get("mqtt_password") or None,
                                    tls, ca, self.timeout_s, 60, self._on_message)
            status = (self.prefix + "/status").encode()
            # persistent session (clean=False): commands sent while asleep are queued
            self._mq.connect(status, b"offline", False)
            self.port.activity("tx")
            self._mq.publish(status, b"online", True, 0)
            self._mq.subscribe((self.prefix + "/relay/set").encode(), 1)
        except Exception as e:
            self._mqtt_fail(e)
            return False
        self._mq_entry["ok"] = True
        return True

    def _mqtt_finish(self, store, reading):
        # discovery (only when its hash changed), then the retained state
        try:
            if reading is not None and self.cfg.get("ha_discovery", True) not in (False, 0, "0",
                                                                                  "false"):
                has_relay = "relay_set" in (getattr(self.port, "board", None) or {})
                # the meter's capability set (union of what its readings carried, kept
                # across boots): a reading that lacks values cannot make discovery flap
                caps = discovery.grow(discovery.grow(self._file.get("caps"),
                                                     getattr(self, "_whole", None)), reading)
                h = None if caps is None else discovery.config_hash(
                    self.dev, self.prefix, None, has_relay, caps=caps)
                if h is not None and h != self._file.get("disc"):
                    # QoS 0, then the last one QoS 1: the broker handles one connection in
                    # order, so its PUBACK confirms them all. One payload in RAM at a time
                    # (plus the one being sent).
                    held = None
                    for m in discovery.messages(self.dev, self.prefix, None, has_relay,
                                                caps=caps):
                        if held is not None:
                            self._mq.publish(held[0].encode(), held[1], True, 0)
                        held = m
                    if held is not None:
                        self._mq.publish(held[0].encode(), held[1], True, 1)
                    self._file["disc"] = h
                    self._file["caps"] = caps
                    self._write_file()
            if reading is not None:
                st = self.status() if self.status else {}
                relay = st.get("relay") if st else None
                if relay in (None, "unknown"):
                    relay = self._relay_seen
                res = self._res
                errors = 0
                for e in res["connections"]:
                    if not e["ok"]:
                        errors += 1
                diag = {"vcap_mv": self.port.vcap_mv(), "backlog": store.count,
                        "up_records": res["records"],
                        "up_bytes": self._mq.bytes + sum([e["bytes"] for e in res["connections"]]),
                        "up_errors": errors, "dropped": getattr(store, "dropped", 0)}
                payload = discovery.state_payload(reading, diag, relay,
                                                  st.get("relay_mode") if st else None)
                self._mq.publish((self.prefix + "/state").encode(), payload, True, 1)
        except Exception as e:
            self._mqtt_fail(e)
            return False
        return True
