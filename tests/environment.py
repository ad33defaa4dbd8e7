"""Loaded before Django's settings (``-p tests.environment`` in pytest's options), so the suite
runs with the settings as production has them (DEBUG off unless the environment asks for it),
less what a test cannot do.

The settings refuse to start without a secret key while DEBUG is off: the suite brings a
throw-away one. The test client and the suite's live servers speak plain HTTP, which
production redirects to HTTPS.
"""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
# Live pushes' keys of this run alone: who watches what is kept in Redis per server process,
# and a run that just ended (or one beside this) must not count as watching this run's lines.
os.environ.setdefault("CHANNELS_PREFIX", f"test{os.getpid()}")
