"""Thrift helpers for the black-box tests: Python code generated from thrift/kestrel.thrift at test
time (never committed), framed/binary clients, and raw frame encoding for hostile-input tests.

Environment: THRIFT (compiler, default `thrift`), top_srcdir (where thrift/kestrel.thrift is).
"""
import importlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

_generated = None


def idl_path():
    base = os.environ.get("top_srcdir")
    return (Path(base).resolve() if base else REPO_ROOT) / "thrift" / "kestrel.thrift"


def generated():
    """(Kestrel service module, ttypes module), generated once per test session."""
    global _generated
    if _generated is None:
        out = tempfile.mkdtemp(prefix="kestrel-thrift-py-")
        subprocess.run([os.environ.get("THRIFT", "thrift"), "--gen", "py", "-out", out,
                        str(idl_path())], check=True)
        sys.path.insert(0, out)
        _generated = (importlib.import_module("kestrel.Kestrel"),
                      importlib.import_module("kestrel.ttypes"))
    return _generated


class ThriftClient:
    """A generated Kestrel client over framed transport and binary protocol."""

    def __init__(self, port, timeout=10.0):
        from thrift.protocol import TBinaryProtocol
        from thrift.transport import TSocket, TTransport
        Kestrel, _ = generated()
        self.socket = TSocket.TSocket(HOST, port)
        self.socket.setTimeout(timeout * 1000)
        self.transport = TTransport.TFramedTransport(self.socket)
        self.client = Kestrel.Client(TBinaryProtocol.TBinaryProtocol(self.transport))
        self.transport.open()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- raw frames

def encode_call(method, args=None, seqid=1):
    """A framed binary CALL of `method` with the generated `<method>_args` struct (or an empty
    struct for methods the service does not have)."""
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport
    Kestrel, _ = generated()
    buf = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buf)
    proto.writeMessageBegin(method, TMessageType.CALL, seqid)
    if args is None:
        proto.writeStructBegin("args")
        proto.writeFieldStop()
        proto.writeStructEnd()
    else:
        args.write(proto)
    proto.writeMessageEnd()
    return frame(buf.getvalue())


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def message_header(method, seqid=1, mtype=1):
    """A strict binary message header (mtype 1 = CALL)."""
    name = method.encode()
    return struct.pack(">Ii", 0x80010000 | mtype, len(name)) + name + struct.pack(">i", seqid)


class RawThrift:
    """A plain socket speaking framed Thrift by hand."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise EOFError("connection closed (buffered %r)" % self.buf[:100])
        self.buf += chunk

    def read_frame(self):
        while len(self.buf) < 4:
            self._fill()
        (n,) = struct.unpack(">I", self.buf[:4])
        while len(self.buf) < 4 + n:
            self._fill()
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return payload

    def read_reply(self):
        """(name, type, seqid, decoded result or TApplicationException) of one reply frame."""
        from thrift.protocol import TBinaryProtocol
        from thrift.Thrift import TApplicationException, TMessageType
        from thrift.transport import TTransport
        proto = TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(self.read_frame()))
        name, mtype, seqid = proto.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(proto)
            return name, mtype, seqid, x
        Kestrel, _ = generated()
        result = getattr(Kestrel, "%s_result" % name)()
        result.read(proto)
        return name, mtype, seqid, result

    def closed_by_server(self, timeout=5.0):
        """True once the server closed the connection (after any data it still sent)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
