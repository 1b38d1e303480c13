"""SHA-256, for the caches' keys and the redaction memory.

``hashlib`` loads OpenSSL's libcrypto when imported (~200 page faults and 7-12 M
instructions: 2-3 % of a short diagnosis) for the sake of constructors stackdoc never
uses. Python's own SHA-256, the module hashlib falls back on where OpenSSL is missing,
gives the same digests."""
try:
    from _sha256 import sha256
except ImportError:   # a Python that names it otherwise (3.12: _sha2): hashlib's
    from hashlib import sha256

__all__ = ["sha256"]
