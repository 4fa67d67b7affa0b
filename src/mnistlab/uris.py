"""URIs as they may be shown: the password (and user name) of a URI's user-info masked.

`--mlflow http://alice:S3cr3t@host/` and `--storage s3://KEY:SECRET@bucket/x` carry secrets;
every message, log line and file that names a URI shows `mask_uri(uri)` instead, and the CLI
passes each error line through `mask_uris_in` as a last guard for messages of other libraries.
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"
# scheme://user-info@ inside free text: what mask_uris_in rewrites.
_USERINFO_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@'\"]+@[^\s'\"]*")


def mask_uri(uri: str) -> str:
    """`http://alice:pw@host/x` -> `http://***@host/x`; a URI without user-info, or a plain
    path, unchanged. The whole user-info goes: an access key id is a secret's half."""
    try:
        parts = urllib.parse.urlsplit(str(uri))
    except ValueError:  # malformed (e.g. an unclosed [ipv6): mask anything before an @
        return re.sub(r"//[^/@]*@", f"//{MASK}@", str(uri))
    if "@" not in parts.netloc:
        return str(uri)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def mask_uris_in(text: str) -> str:
    """Every URI with user-info in `text` masked (for messages that quote a URI)."""
    return _USERINFO_URI.sub(lambda m: mask_uri(m.group(0)), text)
