# Host services the tests, the demo, the simulator and the benchmarks share, in one place:
# free loopback ports, a mosquitto broker (plain listener, optional TLS listener), and
# certificates (a CA and a server certificate signed by it).
#
# Layering: tests import tools, never the reverse; this module imports nothing from
# tests/. It also imports on the MicroPython unix port (tests/fw/portal_util.py uses
# free_port there): only os, socket and time at module level, the rest where it is used.
import os
import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(kind=socket.SOCK_STREAM):
    # A loopback port nothing listens on now: bind to port 0 and read back the number the
    # kernel chose. The MicroPython unix port's socket may lack getsockname(): there a
    # random port in 20000-49999 (the caller retries on EADDRINUSE, as any bind must).
    s = socket.socket(socket.AF_INET, kind)
    try:
        if hasattr(s, "getsockname"):
            s.bind(socket.getaddrinfo(LOOPBACK, 0)[0][-1])
            return s.getsockname()[1]
    finally:
        s.close()
    r = os.urandom(2)
    return 20000 + ((r[0] << 8) | r[1]) % 30000


def wait_port(port, up=True, timeout=10, host=LOOPBACK):
    # Wait until a TCP port accepts connections (up) or refuses them (not up).
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.2).close()
            if up:
                return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    raise RuntimeError("port %d not %s after %d s" % (port, "up" if up else "down", timeout))


# -- mosquitto ---------------------------------------------------------------------------
def mosquitto_exe():
    # -> path of the mosquitto binary (Debian installs it in /usr/sbin, often not on a
    # user's PATH), or None
    import shutil
    exe = shutil.which("mosquitto")
    if exe:
        return exe
    return "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None


class Mosquitto:
    """A throwaway mosquitto on loopback.

    Mosquitto().start() listens on a free plain port (.port); with tls=(certfile,
    keyfile) or tls=(cafile, certfile, keyfile) it adds a TLS listener (.tls_port).
    Anonymous, no persistence. Use as a context manager or call stop().

    Its configuration and readable copies of the TLS files live in a directory of its
    own, removed by stop(): mosquitto started as root drops to its own user, which must
    be able to read them (pytest's tmp_path and mkdtemp() directories are 0700).
    """

    def __init__(self, port=None, tls=None, exe=None):
        self.exe = exe or mosquitto_exe()
        if self.exe is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt install "
                                    "mosquitto, or sudo sh tools/setup_system.sh)")
        self.port = port or free_port()
        self.tls = tuple(tls) if tls else None
        self.tls_port = free_port() if tls else None
        self.dir = None
        self.proc = None

    def _readable_copies(self):
        out = []
        for src in self.tls:
            dst = os.path.join(self.dir, "tls-%d.pem" % len(out))
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
            os.chmod(dst, 0o644)   # throwaway test keys only
            out.append(dst)
        return out

    def config(self):
        lines = ["per_listener_settings false", "allow_anonymous true", "persistence false",
                 "listener %d %s" % (self.port, LOOPBACK)]
        if self.tls:
            files = self._readable_copies()
            if len(files) == 2:
                files = [None] + files
            ca, cert, key = files
            lines.append("listener %d %s" % (self.tls_port, LOOPBACK))
            if ca:
                lines.append("cafile %s" % ca)
            lines += ["certfile %s" % cert, "keyfile %s" % key]
        return "\n".join(lines) + "\n"

    def start(self, timeout=10):
        import subprocess
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="mosquitto-")
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        self.proc = subprocess.Popen([self.exe, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            for p in (self.port, self.tls_port):
                if p:
                    wait_port(p, timeout=timeout)
        except RuntimeError:
            err = b""
            if self.proc.poll() is not None:
                err = self.proc.stderr.read()
            self.stop(wait_down=False)
            raise RuntimeError("mosquitto did not start: %s" % err.decode(errors="replace")[-500:])
        return self

    def stop(self, wait_down=True):
        import subprocess
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stderr is not None:
            p.stderr.close()
        if self.dir is not None:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if wait_down:
            wait_port(self.port, up=False)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


# -- certificates ------------------------------------------------------------------------
def make_pki(sans=(LOOPBACK, "localhost"), days=825, not_before=None, ca=None,
             key_type="ec"):
    """-> (ca_pem, cert_pem, key_pem, (ca_key, ca_cert)). ECDSA P-256 by default, which
    the ESP32 (mbedTLS) handles; key_type="rsa" (2048 bit, CA and leaf) for axTLS, the
    ESP8266's, which has no elliptic curves. not_before/days let tests make expired
    certificates; ca=(ca_key, ca_cert) signs with an existing CA."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def new_key():
        if key_type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())
    now = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
        minutes=5)
    if ca is None:
        ca_key = new_key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Linky collector CA")])
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                False, False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    else:
        ca_key, ca_cert = ca
    key = new_key()
    alt = []
    for s in sans:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            alt.append(x509.DNSName(s))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca_cert.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()), (ca_key, ca_cert))


def ensure_pki(data_dir, sans=(LOOPBACK, "localhost")):
    """CA + server certificate in data_dir (made on first run, kept after).
    -> (ca_pem str, server cert path, server key path)."""
    ca_p = os.path.join(data_dir, "ca.pem")
    cert_p = os.path.join(data_dir, "server.pem")
    key_p = os.path.join(data_dir, "server.key")
    if not (os.path.exists(ca_p) and os.path.exists(cert_p) and os.path.exists(key_p)):
        os.makedirs(data_dir, exist_ok=True)
        ca_pem, cert_pem, key_pem, _ = make_pki(sans)
        for p, data in ((ca_p, ca_pem), (cert_p, cert_pem), (key_p, key_pem)):
            with open(p, "wb") as f:
                f.write(data)
        os.chmod(key_p, 0o600)
    with open(ca_p) as f:
        return f.read(), cert_p, key_p


def write_pki(workdir, sans=(LOOPBACK, "localhost"), key_type="ec", prefix="server"):
    """A fresh CA and server certificate, the certificate and key written into workdir.
    -> (cert path, key path, CA PEM str)."""
    ca_pem, cert_pem, key_pem, _ = make_pki(sans, key_type=key_type)
    cp = os.path.join(workdir, prefix + "-cert.pem")
    kp = os.path.join(workdir, prefix + "-key.pem")
    with open(cp, "wb") as f:
        f.write(cert_pem)
    with open(kp, "wb") as f:
        f.write(key_pem)
    return cp, kp, ca_pem.decode()
