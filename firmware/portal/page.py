# The portal's HTML, streamed as generators of small strings (never a whole page in
# RAM: the ESP8266 has ~38 KB of heap). Mobile-first, inline CSS, no script, no
# external assets. Everything that came from outside (scanned SSIDs, submitted values,
# meter text) goes through esc(). Secrets are never written back: their inputs are
# empty with the placeholder "unchanged" (or "not set").
from firmware import config

CSS = ("body{font:16px/1.4 system-ui,sans-serif;margin:0;background:#f3f4f6;color:#1f2937}"
       "main{max-width:34rem;margin:auto;padding:.8rem}"
       "h1{font-size:1.3rem;margin:.4rem 0}h2{font-size:1.05rem;margin:0 0 .4rem}"
       "fieldset{border:0;background:#fff;border-radius:.6rem;margin:.7rem 0;padding:.7rem;"
       "box-shadow:0 1px 2px #0002}"
       "label{display:block;font-weight:600;margin:.5rem 0 .15rem}"
       "input,select,textarea{box-sizing:border-box;width:100%;font:inherit;padding:.55rem;"
       "border:1px solid #9ca3af;border-radius:.4rem;background:#fff}"
       "textarea{min-height:6rem;font:12px monospace}"
       "input[type=checkbox]{width:auto}"
       ".h{color:#6b7280;font-size:.85rem;margin:.1rem 0}"
       ".e{color:#b91c1c;font-weight:600;margin:.15rem 0}"
       "[aria-invalid=true]{border:2px solid #b91c1c}"
       "ul.n{list-style:none;padding:0;margin:0}ul.n li{display:flex;justify-content:space-between;"
       "padding:.35rem 0;border-bottom:1px solid #e5e7eb}"
       ".s{font-family:monospace;white-space:nowrap}"
       "button,.b{display:block;width:100%;padding:.8rem;font:inherit;font-weight:700;"
       "border:0;border-radius:.5rem;background:#2563eb;color:#fff;text-align:center;"
       "text-decoration:none;margin:.8rem 0}"
       ".ok{background:#dcfce7;padding:.7rem;border-radius:.5rem}"
       ".bad{background:#fee2e2;padding:.7rem;border-radius:.5rem}"
       "table{width:100%;border-collapse:collapse}td{padding:.3rem;border-bottom:1px solid #e5e7eb}"
       "td:first-child{color:#6b7280}")

# (title, ((key, label, kind, hint), ...)); kinds: t text, s secret, n number,
# b yes/no, e enum, a textarea
SECTIONS = (
    ("Wi-Fi", (("ssid", "Network name (SSID)", "t", ""),
               ("password", "Wi-Fi password", "s", "8 to 63 characters; empty for an open network"))),
    ("MQTT", (("mqtt_host", "Broker host", "t", "empty: MQTT off"),
              ("mqtt_port", "Broker port", "n", "empty: 1883, or 8883 with TLS"),
              ("mqtt_tls", "TLS", "b", "needs the broker's CA certificate (TLS section); "
               "a CA certificate turns it on"),
              ("mqtt_user", "User", "t", ""),
              ("mqtt_password", "Password", "s", "sent only over TLS, unless allowed below"),
              ("mqtt_plain_ok", "Send the password without TLS", "b",
               "yes: anyone on the network can read it (the status page says so)"),
              ("mqtt_prefix", "Topic prefix", "t", "empty: linky/<device id>"),
              ("ha_discovery", "Home Assistant discovery", "b", ""))),
    ("HTTPS", (("https_url", "Endpoint URL", "t", "https://... (http:// with an HMAC key on ESP8266) receives batches; empty: off"),
               ("hmac_key", "HMAC key (hex)", "s", "32 to 128 hex digits"))),
    ("TLS", (("ca_pem", "CA certificate (PEM)", "a",
              "the CA that signs your MQTT/HTTPS server; at most 4096 bytes"),)),
    ("InfluxDB v2", (("influx_url", "URL", "t", "empty: off"),
                     ("influx_token", "Token", "s", ""),
                     ("influx_org", "Organisation", "t", ""),
                     ("influx_bucket", "Bucket", "t", ""))),
    ("Meter", (("meter_protocol", "Protocol", "e", "auto finds TIC or P1 by itself"),
               ("meter_key", "Smarty decryption key", "s", "Luxembourg only: 32 hex digits"),
               ("meter_aak", "Smarty authentication key", "t", "32 hex digits"))),
    ("Relay", (("relay_threshold_va", "Shed the load above (VA)", "n",
                "empty: from the subscription"),
               ("relay_mode", "Mode", "e", ""))),
    ("Readings", (("reading_interval_s", "Interval (s)", "n", ""),)),
)


def fields():
    # every form field name, in page order
    out = []
    for _, items in SECTIONS:
        for it in items:
            out.append(it[0])
    return out


def esc(s):
    if s is None:
        return ""
    if not isinstance(s, str):
        s = str(s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;").replace("'", "&#39;")


def quote(s):
    # percent-encode for a query string (everything but letters and digits)
    out = []
    for b in s.encode():
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def ssid_text(b):
    # scan results are bytes that need not be UTF-8: undecodable bytes shown as \xNN
    if isinstance(b, str):
        return b
    try:
        return bytes(b).decode()
    except UnicodeError:
        out = []
        for x in b:
            out.append(chr(x) if 32 <= x < 127 else "\\x%02x" % x)
        return "".join(out)


def bars(rssi):
    # signal strength as 0-4 bars (-90 dBm and below: 0, -55 dBm and above: 4)
    try:
        r = int(rssi)
    except (TypeError, ValueError):
        return 0
    n = (r + 90) * 4 // 35 + (1 if r > -90 else 0)
    return 0 if n < 0 else 4 if n > 4 else n


def networks(scan, limit=20):
    # -> [(ssid_text, rssi)] strongest first, one entry per name, hidden ones dropped
    best = {}
    for item in scan or ():
        try:
            s, r = item[0], int(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        t = ssid_text(s)
        if not t:
            continue
        if t not in best or r > best[t]:
            best[t] = r
    lst = [(t, best[t]) for t in best]
    lst.sort(key=lambda x: -x[1])
    return lst[:limit]


def head(title, refresh=None):
    yield "<!doctype html><html lang=en><head><meta charset=utf-8>"
    yield "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
    if refresh:
        yield "<meta http-equiv=refresh content=%d>" % refresh
    yield "<title>" + esc(title) + "</title><style>"
    yield CSS
    yield "</style></head><body><main>"


def foot():
    yield "</main></body></html>\n"


def _shown(key, cfg, values):
    # the value written into an input: what was just submitted (kept after an error),
    # else the saved one. Never for secrets.
    if values is not None and key in values:
        v = values[key]
    else:
        v = cfg.get(key)
        if key == "mqtt_port" and v == config.default_mqtt_port(cfg):
            # the implied default shows empty, so adding a CA later moves it to 8883
            v = None
    if v is None:
        return ""
    if v is True:
        return "1"
    if v is False:
        return "0"
    return str(v)


def _field(key, label, kind, hint, cfg, values, errors):
    err = errors.get(key) if errors else None
    yield "<label for=%s>%s</label>" % (key, esc(label))
    inv = " aria-invalid=true aria-describedby=err-%s" % key if err else ""
    if kind == "s":
        ph = "unchanged" if cfg.get(key) else "not set"
        yield ("<input type=password id=%s name=%s value=\"\" placeholder=\"%s\" "
               "autocomplete=off%s>" % (key, key, ph, inv))
        if cfg.get(key):
            yield ("<label class=h><input type=checkbox name=clear_%s value=1> forget the "
                   "saved one</label>" % key)
    elif kind == "a":
        yield "<textarea id=%s name=%s spellcheck=false%s>" % (key, key, inv)
        yield esc(_shown(key, cfg, values))
        yield "</textarea>"
    elif kind in ("e", "b"):
        cur = _shown(key, cfg, values)
        opts = config.ENUMS[key] if kind == "e" else ("1", "0")
        yield "<select id=%s name=%s%s>" % (key, key, inv)
        for o in opts:
            text = o if kind == "e" else ("yes" if o == "1" else "no")
            sel = " selected" if o == cur or (kind == "b" and cur in ("true", "on") and o == "1") \
                else ""
            yield "<option value=\"%s\"%s>%s</option>" % (esc(o), sel, esc(text))
        yield "</select>"
    else:
        typ = " inputmode=numeric" if kind == "n" else ""
        extra = " list=nets autocapitalize=none" if key == "ssid" else ""
        yield "<input id=%s name=%s%s%s value=\"%s\" autocomplete=off%s>" % (
            key, key, typ, extra, esc(_shown(key, cfg, values)), inv)
    if hint:
        yield "<p class=h>" + esc(hint) + "</p>"
    if err:
        yield "<p class=e id=err-%s>%s</p>" % (key, esc(err))


def form_page(cfg, token, device_id, scan=None, values=None, errors=None, notice=None):
    # The set-up form. values: the fields just submitted (kept after an error);
    # errors: key -> message shown under the field; notice: a line on top.
    for s in head("Linky dongle " + device_id + " set-up"):
        yield s
    yield "<h1>Set up dongle %s</h1>" % esc(device_id)
    if errors:
        yield "<p class=bad id=errors>Not saved: %d field%s to fix below.</p>" % (
            len(errors), "s" if len(errors) > 1 else "")
        for k in errors:
            if k.startswith("_"):
                yield "<p class=e id=err-%s>%s</p>" % (esc(k[1:]), esc(errors[k]))
    if notice:
        yield "<p class=bad>" + esc(notice) + "</p>"
    nets = networks(scan)
    yield "<fieldset><h2>Networks in range</h2><ul class=n id=nets-list>"
    if not nets:
        yield "<li>none found</li>"
    for t, r in nets:
        b = bars(r)
        # a tap on a network fills in its name (a link: no script needed)
        yield ("<li><a href=\"/?ssid=%s\">%s</a><span class=s title=\"%d dBm\">%s%s %d dBm"
               "</span></li>" % (quote(t), esc(t), r, "|" * b, "." * (4 - b), r))
    yield "</ul><a href=/scan>scan again</a></fieldset><datalist id=nets>"
    for t, r in nets:
        yield "<option value=\"%s\">" % esc(t)
    yield "</datalist>"
    yield "<form method=post action=/save accept-charset=utf-8 autocomplete=off>"
    yield "<input type=hidden name=_token value=\"%s\">" % esc(token)
    for title, items in SECTIONS:
        yield "<fieldset><h2>" + esc(title) + "</h2>"
        for key, label, kind, hint in items:
            for s in _field(key, label, kind, hint, cfg, values, errors):
                yield s
        yield "</fieldset>"
    yield "<button type=submit>Save and connect</button></form>"
    yield "<p><a href=/status>Status</a></p>"
    for s in foot():
        yield s


def message_page(title, text, ok, links=(), token=None, finish=False):
    for s in head(title):
        yield s
    yield "<h1>%s</h1><p class=%s id=result>%s</p>" % (esc(title), "ok" if ok else "bad",
                                                         esc(text))
    if finish and token:
        yield ("<form method=post action=/finish><input type=hidden name=_token value=\"%s\">"
               "<button type=submit>Finish and restart anyway</button></form>" % esc(token))
    for href, label in links:
        yield "<a class=b href=\"%s\">%s</a>" % (esc(href), esc(label))
    for s in foot():
        yield s


def _kwh(wh):
    # integer Wh -> "12345.678 kWh" without floats (ESP8266 floats have 30 bits)
    if wh is None:
        return None
    wh = int(wh)
    sign = "-" if wh < 0 else ""
    wh = abs(wh)
    return "%s%d.%03d kWh" % (sign, wh // 1000, wh % 1000)


def _volts(mv):
    if mv is None:
        return None
    mv = int(mv)
    return "%d.%02d V" % (mv // 1000, (mv % 1000) // 10)


def _ago(ms):
    s = ms // 1000
    if s < 120:
        return "%d s ago" % s
    if s < 7200:
        return "%d min ago" % (s // 60)
    return "%d h ago" % (s // 3600)


def _row(name, value, rid=None):
    if value is None or value == "":
        value = "-"
    return "<tr><td>%s</td><td%s>%s</td></tr>" % (esc(name), " id=" + rid if rid else "",
                                                  esc(value))


def notes(cfg):
    # settings the owner chose against the safe default, shown on every status page
    out = []
    if config.plain_credentials(cfg):
        out.append("the MQTT password is sent without TLS (allowed in the settings): "
                   "anyone on the network can read it")
    return out


def status_page(status, now_ms=None, device_id="", warnings=()):
    # status: the dict App.status() returns (or None): latest reading, vcap_mv, backlog,
    # dropped, aggregated, last_upload_ms, relay, relay_mode, line, stats.
    # warnings: notes(cfg), shown on top
    st = status or {}
    for s in head("Linky dongle " + device_id + " status", refresh=10):
        yield s
    yield "<h1>Dongle %s</h1>" % esc(device_id)
    for w in warnings:
        yield "<p class=bad id=warning>Warning: %s.</p>" % esc(w)
    r = st.get("latest") or {}
    yield "<fieldset><h2>Last reading</h2><table>"
    if not r:
        yield _row("reading", "none yet", "reading")
    else:
        yield _row("meter", r.get("protocol"), "protocol")
        yield _row("meter id", r.get("meter_id"))
        yield _row("meter time", r.get("timestamp"))
        yield _row("import", _kwh(r.get("energy_import_wh")), "import")
        if r.get("energy_export_wh") is not None:
            yield _row("export", _kwh(r.get("energy_export_wh")))
        p = r.get("apparent_power_va")
        if p is not None:
            yield _row("power", "%d VA" % p, "power")
        p = r.get("active_power_w")
        if p is not None:
            yield _row("power", "%d W" % p, "power_w")
        yield _row("tariff", r.get("tariff_period"))
        cur = r.get("current_a")
        if cur:
            yield _row("current", " / ".join(["%s A" % c for c in cur]))
        vol = r.get("voltage_v")
        if vol:
            yield _row("voltage", " / ".join(["%s V" % v for v in vol]))
    yield "</table></fieldset><fieldset><h2>Device</h2><table>"
    yield _row("capacitor", _volts(st.get("vcap_mv")), "vcap")
    bl = st.get("backlog")
    yield _row("store backlog", None if bl is None else "%d records" % bl, "backlog")
    if st.get("dropped"):
        yield _row("dropped", "%d" % st.get("dropped"))
    if st.get("aggregated"):
        yield _row("aggregated", "%d" % st.get("aggregated"))
    lu = st.get("last_upload_ms")
    if lu is None:
        up = "never"
    elif now_ms is not None:
        up = _ago(now_ms - lu)
    else:
        up = "at %d ms" % lu
    yield _row("last upload", up, "upload")
    relay = st.get("relay")
    mode = st.get("relay_mode")
    yield _row("relay", (relay or "unknown") + (" (%s)" % mode if mode else ""), "relay")
    yield _row("meter line", st.get("line"))
    errs = (st.get("stats") or {}).get("errors") or {}
    if errs:
        yield _row("errors", ", ".join(["%s %d" % (k, errs[k]) for k in sorted(errs)]))
    yield "</table></fieldset><p><a href=/>Set-up</a></p>"
    for s in foot():
        yield s
