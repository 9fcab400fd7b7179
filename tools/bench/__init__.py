"""`make bench`: how throughput and latency scale with web replicas, what a cached read costs against
physical baselines, and how the cost of uncached reads grows with the data.

Run from the repository root as ``python -m tools.bench`` (``--help`` lists the options).

Everything runs in a compose project of its own (``newsdesk-bench``; nginx on
127.0.0.1:8090), made for the run and deleted after it (``down -v``, also when interrupted):
the main stack (project ``newsdesk``) is never stopped, rescaled or restarted, and its data is
not read. Its containers' CPU use during the runs is reported as "other containers"; for the
cleanest figures stop it first (``make down``).

The project is docker-compose.yml plus tools/bench/compose.override.yml. A web replica stands
for a small machine: it gets ``BENCH_CPUS`` (0.25) of a core as a CFS quota per
``BENCH_CPU_PERIOD`` (10 ms by default; quota = cpus x period), and so does the bare-gunicorn
baseline. Docker's ``cpus`` would use a 100 ms period, in which a burst over a 0.25 share
freezes the replica for up to 75 ms: the p99 would measure the throttle, not the server.

1. Start db, db-replica, redis, cache, nginx and one web replica; seed ``BENCH_ARTICLES``
   (1,000) articles with a fixed random seed; create the bench user, an API key that only
   reads and one that writes, and log in through the login form (its CSRF token) for a session.
2. Data size, small: the uncached read path at one connection through nginx, 1 replica: the
   logged-in list page ``/``, the keyed API list's first page (``per_page=20``) and its deepest
   page (``per_page=100``, following ``next`` links up to 100 times: at 1,000 articles, the last
   page). Cost = mean latency at one connection (see the report for why).
3. Scaling rounds: per round the baselines (nginx answering ``/bench/static``; one bare gunicorn
   gevent worker serving a hello world, ``bench-hello``) and, for N in 1, 2, 4 replicas, a
   saturating closed-loop run of today's mix and of its cached parts only (wrk, 16
   connections per replica, after a warm-up), plus at 1 replica the mix sent to the replica
   directly (the proxy's cost). Every container's CPU comes from its cgroup counters.
4. Open loop at 50% and 80% of the peak's median throughput (loadtest/openloop.py: latency
   from each request's scheduled time), in rounds too, after a closed-loop warm-up.
5. Read/write rounds at the most replicas: the mix saturates them while the writing key
   publishes ``BENCH_WRITE_RATE`` (1) articles a second and a probe without cookies asks for
   ``/`` ``BENCH_PROBE_RATE`` (15) times a second, counting its ``X-Cache`` header (hit, shared,
   miss): the home page's hit ratio under writes. Worker and beat run for these rounds only.
6. Data size, large: ``flask seed --articles <to BENCH_LARGE_ARTICLES> --bulk``, ``VACUUM
   (ANALYZE)``, wait for the replica to replay it, then step 2 again (the deep page is now 10,000
   rows in). A failure here still writes the report, without the large size (exit status 1).
7. Write reports/bench/scaling.{json,md,png} (and a copy under reports/bench/runs/<time>/ with
   the raw generator output and each phase's seconds) and rewrite README's section between the
   bench markers.

Every configuration runs ``BENCH_REPETITIONS`` (5) times, interleaved: each round measures
every configuration once, the next round in the reverse order (1, 2, 4 replicas, then 4, 2,
1), so drift and the neighbours' load fall on all of them alike. scaling.json keeps every
value; the report gives the median and the min-max of each figure, and the targets are judged
on the medians. Five rounds, not three: with three, E(2) came out 0.96 (0.92-1.12) in one run and
0.91 (0.79-1.14) in the next, the round-to-round spread of one replica's throughput (316-459
req/s in a run) being six times the target's margin. A default run takes about 40 minutes (the
command prints its estimate).

The read mix (``BENCH_MIX``, weights): ``detail`` = cached article pages (/articles/<id>, the
front pages' articles), ``list`` = cached list pages (/?page=1..10), ``uncached`` = the API
list with the reading key (GET /api/v1/articles?page=1..50 with ``Authorization: Bearer``):
keyed requests are never cached, and a key that never wrote reads from the replica. The
cached-only run keeps ``detail`` and ``list`` in the same proportion.

The load generators (wrk, Debian's package, and openloop.py) run in the ``bench-client``
container on the stack's network (four times the default CPU weight, so the fixed-rate clock does
not wait behind the replicas), so both "through nginx" and "direct" go the same way
and no host port proxy is measured. Needs Docker, Compose v2 and the host venv
(scripts/venv.sh: matplotlib for the chart, python-dotenv for ``.env``).

Modules: ``compose`` (the project: start, scale, stop, the CPU limit), ``cpu`` (cgroup
counters), ``load`` (request files, wrk and openloop.py), ``site`` (logging in, following next
links), ``measure`` (the steps above, in order), ``stats`` (median and spread), ``report``
(scaling.json's shape, derived figures, targets), ``render`` (Markdown, README section, files),
``chart`` (scaling.png), ``__main__`` (the command line).
"""
