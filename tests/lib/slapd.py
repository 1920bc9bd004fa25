"""A private OpenLDAP server (Debian's slapd) for the directory sign-in tests.

    from slapd import Slapd
    why = Slapd.unavailable()          # None, or why slapd cannot run here
    d = Slapd().start()                # free 127.0.0.1 ports, a generated CA, config and tree
    d.url, d.ldaps_url, d.ca_pem       # ldap://127.0.0.1:P, ldaps://127.0.0.1:Q, the CA (PEM)
    d.other_name_url                   # ldaps://127.0.0.2:Q: a name the certificate does not hold
    d.modify("dn: uid=ann,...\\nchangetype: modify\\n...")
    d.stop(); d.start(); d.cleanup()

Everything lives in one temporary directory: the cn=config database made with `slapadd -n0`
from a generated LDIF, the mdb database, a CA and a server certificate (python3-cryptography)
valid for 127.0.0.1 and localhost, a second CA that signed nothing (for "wrong CA" tests), and
slapd's log. slapd runs in the foreground (-d) as a child of the test process, listening on
ldap:// (StartTLS offered) and ldaps:// on 127.0.0.1, and ldaps:// on 127.0.0.2 too.

The tree (SUFFIX dc=bic,dc=test):
  cn=admin                  the rootdn (ROOT_PW)
  cn=reader                 the service account (READER_PW): may read everything but passwords
  ou=people                 OpenLDAP style: inetOrgPerson (uid, cn, mail, employeeType)
  ou=groups                 groupOfNames with member DNs
  ou=ad                     Active Directory style: inetOrgPerson + bicAdUser (AD_SCHEMA) with
                            sAMAccountName, userAccountControl and static memberOf values
Anonymous clients may bind (authenticate) but read nothing, so searches need the reader.
"""
import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import time

SUFFIX = "dc=bic,dc=test"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "root-secret-for-tests"
READER_DN = "cn=reader," + SUFFIX
READER_PW = "reader-secret-for-tests"
SCHEMAS = ("core", "cosine", "inetorgperson")
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
MODULES = "/usr/lib/ldap"


# The few Active Directory attributes BIC reads, under AD's own OIDs and with the matching rules
# AD gives them (Debian's msuser schema leaves them without equality rules), and an auxiliary
# class to hang them on. AD's integerBitAndMatch filters work on them: slapd implements the rule.
AD_SCHEMA = """dn: cn=bicad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: bicad
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.2.102 NAME 'memberOf' EQUALITY distinguishedNameMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.1 NAME 'bicAdUser' DESC 'AD user attributes (tests)'
  SUP top AUXILIARY MAY ( sAMAccountName $ userAccountControl $ memberOf ) )
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ca(name):
    """A self-signed CA: (key, certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server_cert(ca_key, ca_cert, names, ips):
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem(obj):
    from cryptography.hazmat.primitives import serialization
    if hasattr(obj, "public_bytes") and hasattr(obj, "subject"):
        return obj.public_bytes(serialization.Encoding.PEM).decode()
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _hash_pw(pw):
    """{SSHA} of pw, as slappasswd makes it (so the LDIF never holds a clear password)."""
    import base64
    import hashlib
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(pw.encode() + salt).digest() + salt).decode()


class Slapd:
    """One slapd with its own CA, configuration and tree in a temporary directory."""

    @staticmethod
    def unavailable():
        """None when slapd can run here, else the reason (for skipTest)."""
        for path in (SLAPD, SLAPADD, "/usr/bin/ldapmodify"):
            if not os.access(path, os.X_OK):
                return "%s is missing (install slapd and ldap-utils)" % path
        if not os.path.exists(os.path.join(MODULES, "back_mdb.so")):
            return "slapd's mdb backend is missing from %s" % MODULES
        for s in SCHEMAS:
            if not os.path.exists("/etc/ldap/schema/%s.ldif" % s):
                return "the %s schema is missing from /etc/ldap/schema" % s
        try:
            import cryptography  # noqa: F401
        except ImportError:
            return "python3-cryptography is missing (needed for the test CA)"
        return None

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bic-slapd-")
        self.port = _free_port()
        self.ldaps_port = _free_port()
        self.proc = None
        self.log = None
        self.url = "ldap://127.0.0.1:%d" % self.port
        self.ldaps_url = "ldaps://127.0.0.1:%d" % self.ldaps_port
        # the same server at an address its certificate does not name (127/8 is all loopback)
        self.other_name_url = "ldaps://127.0.0.2:%d" % self.ldaps_port
        self._configured = False

    # ---- set-up -------------------------------------------------------------------------------
    def _path(self, *p):
        return os.path.join(self.dir, *p)

    def _write(self, name, text, mode=0o600):
        path = self._path(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def _certs(self):
        ca_key, ca = _ca("BIC test directory CA")
        key, cert = _server_cert(ca_key, ca, ["localhost"], ["127.0.0.1"])
        self.ca_pem = _pem(ca)
        self._write("ca.pem", self.ca_pem, 0o644)
        self._write("server.pem", _pem(cert), 0o644)
        self._write("server.key", _pem(key))
        # a CA that signed nothing of this server
        self.other_ca_pem = _pem(_ca("Some other CA")[1])

    def _config_ldif(self):
        schemas = "".join("include: file:///etc/ldap/schema/%s.ldif\n\n" % s for s in SCHEMAS)
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self._path("slapd.pid")}
olcTLSCACertificateFile: {self._path("ca.pem")}
olcTLSCertificateFile: {self._path("server.pem")}
olcTLSCertificateKeyFile: {self._path("server.key")}
olcLogLevel: stats

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULES}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}{AD_SCHEMA}
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: 500

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {self._path("db")}
olcDbMaxSize: 16777216
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {_hash_pw(ROOT_PW)}
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail,sAMAccountName eq
olcDbIndex: member eq
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{READER_DN}" read by * none
"""

    def _tree_ldif(self):
        return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: bic
o: BIC tests

dn: {READER_DN}
objectClass: person
cn: reader
sn: reader
userPassword: {_hash_pw(READER_PW)}

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=ad,{SUFFIX}
objectClass: organizationalUnit
ou: ad
"""

    def _configure(self):
        os.makedirs(self._path("slapd.d"))
        os.makedirs(self._path("db"))
        self._certs()
        self._write("config.ldif", self._config_ldif())
        self._write("tree.ldif", self._tree_ldif())
        for args in (["-n0", "-F", self._path("slapd.d"), "-l", self._path("config.ldif")],
                     ["-n1", "-F", self._path("slapd.d"), "-l", self._path("tree.ldif")]):
            r = subprocess.run([SLAPADD, *args], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("slapadd %s failed: %s%s" % (args[0], r.stdout, r.stderr))
        self._configured = True

    # ---- life cycle ---------------------------------------------------------------------------
    def start(self, timeout=15):
        if not self._configured:
            self._configure()
        self.log = open(self._path("slapd.log"), "ab")
        urls = "ldap://127.0.0.1:%d/ ldaps://127.0.0.1:%d/ ldaps://127.0.0.2:%d/" % (
            self.port, self.ldaps_port, self.ldaps_port)
        # -d keeps slapd in the foreground, a child of this process
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-h", urls, "-F", self._path("slapd.d")],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited with %s:\n%s" % (self.proc.returncode, self.log_text()[-3000:]))
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("slapd did not answer within %ss:\n%s" % (timeout, self.log_text()[-3000:]))

    def _answers(self):
        for port in (self.port, self.ldaps_port):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
            except OSError:
                return False
        r = subprocess.run(["ldapsearch", "-x", "-H", self.url, "-D", READER_DN, "-w", READER_PW,
                            "-b", SUFFIX, "-s", "base", "1.1"], capture_output=True)
        return r.returncode == 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log and not self.log.closed:
            self.log.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        self.stop()
        if not os.environ.get("BIC_KEEP_TEST_VAR"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self._path("slapd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- data ---------------------------------------------------------------------------------
    def _ldap(self, tool, ldif):
        r = subprocess.run([tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW], input=ldif,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s\n%s" % (tool, r.returncode, r.stdout, r.stderr, ldif))

    def add(self, ldif):
        self._ldap("ldapadd", ldif)

    def modify(self, ldif):
        self._ldap("ldapmodify", ldif)

    def add_person(self, uid, password, cn=None, mail=None, employee_type=None):
        """An OpenLDAP-style user under ou=people; returns its DN."""
        dn = "uid=%s,ou=people,%s" % (uid, SUFFIX)
        lines = ["dn: " + dn, "objectClass: inetOrgPerson", "uid: " + uid, "cn: " + (cn or uid),
                 "sn: " + uid, "userPassword: " + _hash_pw(password)]
        if mail:
            lines.append("mail: " + mail)
        if employee_type:
            lines.append("employeeType: " + employee_type)
        self.add("\n".join(lines) + "\n")
        return dn

    def add_group(self, cn, members):
        """A groupOfNames under ou=groups; returns its DN."""
        dn = "cn=%s,ou=groups,%s" % (cn, SUFFIX)
        # groupOfNames needs a member: the reader stands in for an empty group
        self.add("\n".join(["dn: " + dn, "objectClass: groupOfNames", "cn: " + cn] +
                           ["member: " + m for m in (members or [READER_DN])]) + "\n")
        return dn

    def add_ad_user(self, sam, password, display=None, uac=512, member_of=()):
        """An Active Directory-style user under ou=ad; returns its DN."""
        dn = "cn=%s,ou=ad,%s" % (sam, SUFFIX)
        lines = ["dn: " + dn, "objectClass: inetOrgPerson", "objectClass: bicAdUser", "cn: " + sam,
                 "sn: " + sam, "sAMAccountName: " + sam, "userAccountControl: %d" % uac,
                 "userPassword: " + _hash_pw(password)]
        if display:
            lines.append("displayName: " + display)
        lines += ["memberOf: " + g for g in member_of]
        self.add("\n".join(lines) + "\n")
        return dn

    def delete(self, dn):
        self._ldap("ldapdelete", dn + "\n")

    def set_attr(self, dn, attr, values):
        """Replaces attr of dn with values (an empty list removes it)."""
        ldif = "dn: %s\nchangetype: modify\nreplace: %s\n" % (dn, attr)
        ldif += "".join("%s: %s\n" % (attr, v) for v in values)
        self.modify(ldif)

    def remove_member(self, group_dn, member_dn):
        try:
            self.modify("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n" % (group_dn, member_dn))
        except RuntimeError as e:
            if "requires attribute 'member'" not in str(e):
                raise
            # the last member: groupOfNames needs one, so the reader stands in
            self.set_attr(group_dn, "member", [READER_DN])
