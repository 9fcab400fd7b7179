"""`make bench`: how throughput and latency scale with web replicas, against physical baselines.

Run from the repository root as ``python -m tools.bench`` (``--help`` lists the options).

Everything runs in a compose project of its own (``newsdesk-bench``; nginx on
127.0.0.1:8090), made for the run and deleted after it (``down -v``): the main stack
(project ``newsdesk``) is never stopped, rescaled or restarted, and its data is not read.
Its containers' CPU use during the runs is reported as "other containers"; for the
cleanest figures stop it first (``make down``).

1. Start db, db-replica, redis, cache, nginx and one web replica with ``WEB_CPUS`` (0.25 by
   default: each replica gets the same CPU share), seed a fixed data set, create an API key.
2. Baselines: nginx answering ``/bench/static`` by itself, and one bare gunicorn gevent
   worker serving a hello-world JSON (``bench-hello``) with the same CPU share.
3. For N in 1, 2, 4 replicas: warm up, then drive the same saturating read mix through
   nginx with wrk (closed loop, a fixed number of connections per replica) and record
   throughput, p50/p99, errors and every container's CPU (cgroup counters, or
   ``docker stats`` sampling where those cannot be read). With one replica the same mix
   also goes to the replica directly and through nginx in interleaved segments: the
   proxy's cost, with drift and neighbours' load falling on both sides alike.
4. At the peak's replica count, open-loop runs at 50% and 80% of the peak throughput
   (loadtest/openloop.py: latency from each request's scheduled time).
5. Write reports/bench/scaling.{json,md,png} (and a copy under reports/bench/runs/<time>/
   with the raw generator output) and rewrite README's section between the bench markers.

The read mix (``BENCH_MIX``, weights): ``detail`` = cached article pages (/articles/<id>, the
front pages' articles), ``list`` = cached list pages (/?page=1..10), ``uncached`` = the API
list with an API key (GET /api/v1/articles?page=1..50 with ``Authorization: Bearer``): keyed
requests never use the shared cache, and with no write of its own the key's reads go to
the replica (its key lookup alone goes to the primary).

The load generators (wrk, Debian's package, and openloop.py) run in the ``bench-client``
container on the stack's network, so both "through nginx" and "direct" go the same way
and no host port proxy is measured. Needs Docker, Compose v2 and the host venv
(scripts/venv.sh: matplotlib for the chart, python-dotenv for ``.env``).

Modules: ``compose`` (the project: start, scale, stop), ``cpu`` (cgroup counters),
``load`` (the mixes, wrk and openloop.py), ``measure`` (the steps above, in order),
``report`` (scaling.json's shape, Markdown, README section), ``chart`` (scaling.png),
``__main__`` (the command line).
"""
