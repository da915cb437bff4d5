# Uplink: how stored readings leave the dongle (MQTT + Home Assistant discovery, HTTPS,
# InfluxDB), in few connections, each batch acknowledged before the store forgets it.
#
#   batch.py      compact JSON batch of store records (columnar, bounded size)
#   sign.py       HMAC-SHA256 over the batch body, monotonic counter (replay protection)
#   mqtt.py       micropython-lib umqtt.simple session (old and new API), QoS 1 batches
#   discovery.py  Home Assistant MQTT discovery payloads + the state payload they render
#   https.py      minimal HTTP(S) POST over socket + ssl, CA-verified where the chip can
#   influx.py     InfluxDB v2 line protocol
#   uplink.py     Uplink: one upload window through every configured sink
