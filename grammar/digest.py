"""The digests of the caches' keys and of the redaction memory: BLAKE2b of 32 bytes.

Not ``hashlib``: it loads OpenSSL's libcrypto when imported (~200 page faults and
~10 M instructions, 2-3 % of a short diagnosis) for the sake of constructors stackdoc
never uses. ``hashlib.blake2b`` is Python's own BLAKE2 (hashlib prefers it to
OpenSSL's) and is as fast as OpenSSL's SHA-256 where Python's own SHA-256 is nine
times slower (the rule files are digested on every run: 2.3 ms against 0.2 ms).
"""
from _blake2 import blake2b


def digest(data: bytes = b"", size: int = 32):
    """A hash object (``update``, ``digest``, ``hexdigest``) of ``data``: by default 32
    bytes, 64 hexadecimal digits, as long as the SHA-256 digests it replaced."""
    return blake2b(data, digest_size=size)
