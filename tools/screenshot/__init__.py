"""`make screenshot`: a PNG of a page of the running stack as a logged-in user sees it, taken
with Debian's headless Chromium (the README's picture of /ops).

Run from the repository root as ``python -m tools.screenshot`` (``--help`` lists the options).
It logs in through the login form with ``requests`` (the account is created with
``flask users create`` in a web replica when ``--create-admin`` is given), hands the session
cookie to Chromium and captures the whole page. Chromium is driven over the DevTools protocol
on a pipe (``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so nothing beyond the standard library and ``requests`` is needed, and no
port is opened.
"""
