# Set-up access point ("captive portal") and status page.
#   run.py     run(port, cfg_dir, ...): AP + DNS + HTTP loop until a config is saved;
#              StatusServer: the /status page in normal operation
#   http.py    HTTP/1.0 server on non-blocking sockets (caps, timeouts, form parser)
#   dns.py     DNS catch-all answering every A query with the AP address
#   page.py    the HTML, streamed in small pieces
#   appass.py  the per-device AP password
